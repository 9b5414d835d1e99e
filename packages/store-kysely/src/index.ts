export {
  DEFAULT_MIGRATION_LOCK_TABLE,
  DEFAULT_MIGRATION_TABLE,
  detectDialect,
  type MigrateRecoveryCodesOptions,
  migrateRecoveryCodes,
  type RecoveryCodesDialect,
  recoveryCodesMigrations,
} from './migrations.ts'
export {
  type PgPreparedStatementsOptions,
  pgPreparedStatements,
  preparedStatementName,
} from './pg-prepared.ts'
export type * from './schema.ts'
export {
  type CachedSqliteDatabase,
  type SqliteStatementCacheOptions,
  sqliteStatementCache,
} from './sqlite-cache.ts'
export { type KyselyStoreOptions, kyselyStore, MAX_TEXT_LENGTH } from './store.ts'
