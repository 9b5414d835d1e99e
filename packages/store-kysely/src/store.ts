/**
 * `kyselyStore`: the {@link RecoveryCodeStore} over a host-supplied Kysely instance, composed from
 * its aggregates (`store/batches.ts`, `store/attempts.ts`, `store/redeem.ts`,
 * `store/retention.ts`, `store/audit.ts`, `store/import.ts`, `store/replace.ts`), each with its statements in
 * `queries/` and every dialect difference in `dialect.ts`.
 */
import { type RecoveryCodeStore, RecoveryCodesError } from '@recovery-codes/core'
import type { Kysely } from 'kysely'
import { count, oneOf } from './checks.ts'
import { detectDialect, type RecoveryCodesDialect } from './dialect.ts'
import { DEFAULT_PG_DEADLINE_MS } from './pool.ts'
import { attemptStore } from './store/attempts.ts'
import { auditStore } from './store/audit.ts'
import { batchStore } from './store/batches.ts'
import { storeContext } from './store/context.ts'
import { importStore } from './store/import.ts'
import { limiterStatements } from './store/limiter-statements.ts'
import { mysqlStore } from './store/mysql.ts'
import { redeemer } from './store/redeem.ts'
import { replaceStore } from './store/replace.ts'
import { retentionStore } from './store/retention.ts'
import type { SyncSqliteDatabase } from './store/steps.ts'

export { MAX_TEXT_LENGTH } from './checks.ts'
export { createQueries, type RecoveryCodesQueries, type RedeemQueryInput } from './queries/index.ts'

/**
 * The pause after each purge chunk of codes, as a fraction of the chunk (see `purgeRestRatio`).
 * Measured at 1M rows with a redeem every 2 ms on another connection. SQLite: 0 starved it (p99
 * 137 ms, 413 redeems in 6 s), 0.5 gave p99 9 ms at 53–65k rows/s, 1 gave p99 4 ms at 19k rows/s.
 * PostgreSQL (2 cores shared by purge, redeems and the app): 0 gave a redeem p99 1.9–2.8× idle at
 * 127–152k rows/s.
 */
export const PURGE_REST_RATIO = { sqlite: 0.5, postgres: 0.25 } as const

/** Options for {@link kyselyStore}. */
export interface KyselyStoreOptions {
  /**
   * The SQL dialect of `db`.
   * @default detected from `db.getExecutor().adapter`
   */
  dialect?: RecoveryCodesDialect
  /**
   * PostgreSQL: how long after the call a redeem may still start in the database, in milliseconds;
   * `null` turns the check off. A redeem that reaches the server later (it sat in a socket buffer
   * while the server was frozen, or waited for a connection that long) is refused by the server
   * (`STORE_TIMEOUT`) and changes nothing, so it cannot consume a code after its caller gave up.
   * Give it the `deadlineMs` of {@link createPgPool}. Measured on the server's clock: the store
   * reads the offset between the two clocks once, and again every 10 minutes.
   * @default 5000 (`DEFAULT_PG_DEADLINE_MS`)
   */
  startDeadlineMs?: number | null
  /**
   * SQLite on better-sqlite3: the `Database` under `db`'s `SqliteDialect` (the one given to
   * `sqliteStatementCache`, if that wraps it). A redeem then runs as one synchronous transaction on
   * it, without a promise per statement, whenever no transaction is open on the connection (the
   * store checks once that it is the same connection, else `CONFIG_INVALID`). Without it, every
   * statement goes through Kysely.
   */
  sqliteDatabase?: SyncSqliteDatabase
  /**
   * After each full chunk of `purgeCodes` the store pauses this fraction of the chunk's duration
   * before it returns, a number from 0 to 10 (0: no pause); the service's chunk budget
   * (`purge.chunkBudgetMs`) then covers chunk and pause. SQLite has one write lock for the whole
   * database, and a redeem on another connection waiting for it sleeps in its busy handler (1, 2,
   * 5, 10 ms, …): chunks back to back starve it. PostgreSQL locks rows; its pause leaves CPU and
   * I/O to the redeems beside the purge. MySQL: no pause.
   * @default 0.5 on SQLite, 0.25 on PostgreSQL (`PURGE_REST_RATIO`)
   */
  purgeRestRatio?: number
}

/**
 * What {@link kyselyStore} returns: a {@link RecoveryCodeStore} with `redeemCode`, `importBatch`
 * and `addCodes`.
 */
export type KyselyRecoveryCodeStore = RecoveryCodeStore &
  Required<Pick<RecoveryCodeStore, 'redeemCode' | 'importBatch' | 'addCodes'>>

/**
 * A {@link RecoveryCodeStore} over a host-supplied Kysely instance: SQLite (better-sqlite3) or
 * PostgreSQL (pg, or PGlite). Run {@link migrateRecoveryCodes} (or the host's `Migrator` with
 * `recoveryCodesMigrations`) first.
 *
 * Guarantees: consume is one conditional `UPDATE … RETURNING` on the unique `(user_id, digest)` row
 * and writes nothing else (a batch's counts are derived from its codes); batch creation supersedes
 * and inserts in one transaction; a redeem is one statement (PostgreSQL) or one transaction
 * (SQLite) with its audit row, and a successful one writes no limiter row; flags and state changes
 * are compare-and-set; purge deletes bounded chunks and re-checks eligibility in the DELETE;
 * `importBatch` checks `exists` and `conflict` in its own transaction, under createBatch's per-user
 * lock for an active batch (`store/import.ts`); `addCodes` is one compare-and-set on the batch row
 * with its codes and audit row, under the same lock (`store/replace.ts`).
 * Database failures throw `RecoveryCodesError('STORE_UNAVAILABLE')` with the driver error as
 * `cause`; a statement cancelled at its deadline (`57014`, `55P03`, pg's "Query read timeout"; see
 * `createPgPool`) throws `STORE_TIMEOUT` instead, also with the driver error as `cause`; bad input
 * throws `INVALID_INPUT` before any SQL runs.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { Kysely, SqliteDialect } from 'kysely'
 * import { kyselyStore, migrateRecoveryCodes } from '@recovery-codes/store-kysely'
 *
 * const db = new Kysely({ dialect: new SqliteDialect({ database: new Database('app.db') }) })
 * await migrateRecoveryCodes(db)
 * const rc = createRecoveryCodes({ store: kyselyStore(db), … })
 * ```
 */
export function kyselyStore(db: Kysely<any>, options: KyselyStoreOptions = {}): KyselyRecoveryCodeStore {
  const dialect = options.dialect ?? detectDialect(db)
  oneOf('dialect', dialect, ['sqlite', 'postgres', 'mysql'])
  const startDeadlineMs =
    options.startDeadlineMs === undefined ? DEFAULT_PG_DEADLINE_MS : options.startDeadlineMs
  if (startDeadlineMs !== null) count('startDeadlineMs', startDeadlineMs, 1)
  const rest =
    options.purgeRestRatio === undefined
      ? dialect === 'mysql'
        ? 0
        : PURGE_REST_RATIO[dialect]
      : options.purgeRestRatio
  if (typeof rest !== 'number' || !Number.isFinite(rest) || rest < 0 || rest > 10) {
    throw new RecoveryCodesError(
      'CONFIG_INVALID',
      'store-kysely: purgeRestRatio must be a number from 0 to 10',
    )
  }
  // MySQL / MariaDB: its own write paths (no RETURNING, row locks in one order): `store/mysql.ts`.
  if (dialect === 'mysql') return mysqlStore(db)
  if (options.sqliteDatabase !== undefined) syncDatabase(dialect, options.sqliteDatabase)
  const ctx = storeContext(db, dialect, options.sqliteDatabase)
  const limiter = limiterStatements(ctx)
  const redeem = redeemer(ctx, limiter, startDeadlineMs, () => store)
  const store: KyselyRecoveryCodeStore = {
    ...batchStore(ctx, redeem.consumeQuery, redeem.remaining),
    ...attemptStore(ctx, limiter, redeem.reserveThroughRedeem),
    redeemCode: redeem.redeemCode,
    ...retentionStore(ctx, rest),
    ...auditStore(ctx),
    ...importStore(ctx),
    ...replaceStore(ctx),
  }
  return store
}

/** `sqliteDatabase` is for SQLite and must look like a better-sqlite3 `Database`. */
function syncDatabase(dialect: RecoveryCodesDialect, database: SyncSqliteDatabase): void {
  const ok =
    typeof database === 'object' &&
    database !== null &&
    typeof database.prepare === 'function' &&
    typeof database.function === 'function' &&
    typeof database.inTransaction === 'boolean'
  if (dialect !== 'sqlite' || !ok) {
    throw new RecoveryCodesError(
      'CONFIG_INVALID',
      'store-kysely: sqliteDatabase must be the better-sqlite3 Database of a SQLite Kysely instance',
    )
  }
}
