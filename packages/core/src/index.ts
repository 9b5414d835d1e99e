export * from './compliance.ts'
export * from './config.ts'
export * from './config-import.ts'
export * from './domain/batch-state.ts'
export * from './domain/code-format.ts'
export * from './domain/cooldown.ts'
export * from './domain/generate.ts'
export type { HmacSha256, Pepper } from './domain/hash.ts'
export {
  computeDigest,
  DUMMY_USER_ID,
  digestCandidates,
  digestEquals,
  keyedLabel,
  nobleHmacSha256,
} from './domain/hash.ts'
export * from './domain/identifier.ts'
export * from './domain/legacy-digest.ts'
export * from './domain/purge.ts'
export * from './env.ts'
export type { RecoveryCodesErrorCode, RecoveryCodesErrorOptions, RecoveryCodesIssue } from './errors.ts'
export { ERROR_HTTP_STATUS, isRecoveryCodesError, RecoveryCodesError } from './errors.ts'
export * from './http/index.ts'
export type * from './ports/index.ts'
export {
  behindReservation,
  composeRedeemCode,
  consumedAudit,
  purgedAudit,
  STORE_SCOPE,
  settlement,
} from './ports/store.ts'
export {
  platformHmacSha3_512,
  platformHmacSha256,
  systemClock,
  systemHmacSha3_512,
  systemHmacSha256,
  systemRandom,
} from './runtime.ts'
export type { PurgeRunInput, RecoveryCodes } from './service/create.ts'
export {
  createRecoveryCodes,
  EMAIL_JOB,
  MAX_CODE_INPUT_LENGTH,
  PURGE_AUDIT_JOB,
  PURGE_JOB,
} from './service/create.ts'
export type { ExportInput, ExportRenderer, ExportRenderers } from './service/export.ts'
export {
  BUILT_IN_EXPORT_FORMATS,
  csvCell,
  EXPORT_FORMATS,
  exportHeader,
  renderCsv,
  renderExport,
  renderTxt,
} from './service/export.ts'
export type { Counts, ImportProgress, ImportReport, ImportRunOptions } from './service/import.ts'
export { importedId } from './service/import.ts'
export { NOTIFY_JOB } from './service/notify.ts'
export type * from './service/types.ts'
