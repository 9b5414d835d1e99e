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
export {
  type CreatePgPoolOptions,
  createPgPool,
  DEFAULT_PG_CONNECTION_TIMEOUT_MS,
  DEFAULT_PG_DEADLINE_MS,
  DEFAULT_PG_IDLE_TIMEOUT_MS,
  PG_QUERY_TIMEOUT_SLACK_MS,
  type PgClientLike,
  type PgPoolLike,
} from './pool.ts'
export type * from './schema.ts'
export {
  type CachedSqliteDatabase,
  type SqliteStatementCacheOptions,
  sqliteStatementCache,
} from './sqlite-cache.ts'
export {
  type CheckpointedSqliteDatabase,
  type SqliteCheckpointer,
  type SqliteCheckpointerOptions,
  startSqliteCheckpointer,
} from './sqlite-checkpoint.ts'
export { MYSQL_TEXT_COLUMNS } from './store/mysql.ts'
export type { SyncSqliteDatabase, SyncSqliteStatement } from './store/steps.ts'
export {
  type KyselyRecoveryCodeStore,
  type KyselyStoreOptions,
  kyselyStore,
  MAX_TEXT_LENGTH,
  PURGE_REST_RATIO,
} from './store.ts'
