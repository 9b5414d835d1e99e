/**
 * The package's migrations (one file per migration under `migrations/`; shipped ones never change,
 * see test/migrations-pinned.test.ts) and {@link migrateRecoveryCodes}.
 */
import { RecoveryCodesError } from '@recovery-codes/core'
import { type Kysely, type Migration, type MigrationResultSet, Migrator, sql } from 'kysely'
import { detectDialect } from './dialect.ts'
import { init } from './migrations/0001-init.ts'
import { attemptsTouched, purgeAt, redeem } from './migrations/0002-0004.ts'
import { storeV2 } from './migrations/0005-store-v2.ts'
import { redeemV4 } from './migrations/0006-redeem-v4.ts'

export { detectDialect, PURGE_AT_PRESENT, purgeAtSql, type RecoveryCodesDialect } from './dialect.ts'

/** Name of this package's own migration table, so it never mixes with the host's migrations. */
export const DEFAULT_MIGRATION_TABLE = 'rc_migrations'
/** Name of this package's own migration lock table. */
export const DEFAULT_MIGRATION_LOCK_TABLE = 'rc_migrations_lock'

/**
 * The package's migrations, as code, for the host's own Kysely `Migrator`. Keys sort in order.
 * Give the Migrator this package's own table names so the host's migration history is untouched.
 *
 * @example
 * ```ts
 * const migrator = new Migrator({
 *   db,
 *   provider: { getMigrations: async () => recoveryCodesMigrations },
 *   migrationTableName: 'rc_migrations',
 *   migrationLockTableName: 'rc_migrations_lock',
 * })
 * await migrator.migrateToLatest()
 * ```
 */
export const recoveryCodesMigrations: Record<string, Migration> = Object.freeze({
  '0001_init': init,
  '0002_redeem': redeem,
  '0003_purge_at': purgeAt,
  '0004_attempts_touched': attemptsTouched,
  '0005_store_v2': storeV2,
  '0006_redeem_v4': redeemV4,
})

/** Options for {@link migrateRecoveryCodes}. */
export interface MigrateRecoveryCodesOptions {
  /** @default 'rc_migrations' */
  migrationTableName?: string
  /** @default 'rc_migrations_lock' */
  migrationLockTableName?: string
  /**
   * PostgreSQL schema for the migration tables.
   * @default the connection's `current_schema()` on PostgreSQL; unused on SQLite
   */
  migrationTableSchema?: string
}

/**
 * Runs this package's migrations to the latest version with its own migration table, and returns the
 * Migrator's result set. Throws `RecoveryCodesError('STORE_UNAVAILABLE')` (with the migration error as
 * `cause`) when a migration fails.
 *
 * @example
 * ```ts
 * const db = new Kysely({ dialect: new SqliteDialect({ database: new Database('app.db') }) })
 * await migrateRecoveryCodes(db)
 * const store = kyselyStore(db)
 * ```
 */
export async function migrateRecoveryCodes(
  db: Kysely<any>,
  options: MigrateRecoveryCodesOptions = {},
): Promise<MigrationResultSet> {
  let schema = options.migrationTableSchema
  if (schema === undefined && detectDialect(db) === 'postgres') {
    // Kysely's Migrator looks for its table in every schema when none is given; pin it to ours so
    // a second schema on the same server (one per tenant or per test file) gets its own history.
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db)
    schema = rows[0]?.schema
  }
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => recoveryCodesMigrations },
    migrationTableName: options.migrationTableName ?? DEFAULT_MIGRATION_TABLE,
    migrationLockTableName: options.migrationLockTableName ?? DEFAULT_MIGRATION_LOCK_TABLE,
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  })
  const result = await migrator.migrateToLatest()
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName
    throw new RecoveryCodesError(
      'STORE_UNAVAILABLE',
      `recovery-codes migration failed${failed === undefined ? '' : `: ${failed}`}`,
      { cause: result.error },
    )
  }
  return result
}
