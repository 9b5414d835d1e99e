/**
 * `@recovery-codes/import`: readers that turn another system's stored recovery codes into
 * `ImportSource`s for `rc.importCodes`, so users keep the codes they printed.
 *
 * - {@link djangoRecoveryCodesSource}: django-auth-recovery-codes (legacy digests, full lifecycle).
 * - {@link betterAuthSource}: better-auth two-factor backup codes (decrypted, native codes).
 * - {@link fortifySource}: Laravel Fortify recovery codes (decrypted, native codes).
 * - Rows for the last two from a database ({@link betterAuthRowsFromDb}, {@link fortifyRowsFromDb})
 *   or from an export file ({@link readRowsFile}).
 */
export type {
  BetterAuthRow,
  BetterAuthRowsFromDbOptions,
  BetterAuthSecrets,
  BetterAuthSourceOptions,
} from './better-auth.ts'
export { BETTER_AUTH_SOURCE_NAME, betterAuthRowsFromDb, betterAuthSource } from './better-auth.ts'
export type { DjangoRecoveryCodesSourceOptions, DjangoUserId } from './django.ts'
export {
  DEFAULT_DJANGO_PAGE_SIZE,
  DEFAULT_DJANGO_TABLE_PREFIX,
  DJANGO_SOURCE_NAME,
  djangoRecoveryCodesSource,
  MAX_DJANGO_PAGE_SIZE,
} from './django.ts'
export type { RowsInput } from './encrypted-rows.ts'
export type { FortifyRow, FortifyRowsFromDbOptions, FortifySourceOptions, LaravelCipher } from './fortify.ts'
export { FORTIFY_SOURCE_NAME, fortifyRowsFromDb, fortifySource, LARAVEL_CIPHERS } from './fortify.ts'
export { DEFAULT_ROWS_PAGE_SIZE, MAX_ROWS_PAGE_SIZE } from './rows-db.ts'
export type { ReadRowsFileOptions, RowsFileRecord } from './rows-file.ts'
export { readRowsFile } from './rows-file.ts'
