/**
 * `kyselyStore` on MySQL 8 / MariaDB 10.11 (Kysely's `MysqlDialect` over a mysql2 pool). Reads
 * and appends are the shared aggregates' (`store/batches.ts`, `store/audit.ts`, …). Every write
 * the other dialects make with `RETURNING`, `ON CONFLICT` or a DELETE by row address is in
 * `store/mysql-*.ts` (statements in `queries/mysql.ts`): a READ COMMITTED transaction of row locks
 * taken in one order, limiter rows (byte order) → code rows → batch rows (id order) → appended
 * rows, with batch creation, ending a batch and `addCodes` first taking a per-user named lock
 * (`SqlDialect.sessionUserLock`, {@link MysqlContext.userLocked}).
 * READ COMMITTED: no gap locks (concurrent first reservations of one key do not deadlock), and
 * each statement reads a fresh snapshot (a consume's count of what is left, after the batch row
 * lock, sees every consume before it). A transaction InnoDB rolls back on a deadlock is run again
 * from its start, at most {@link MAX_TRIES} times.
 */
import type { AuditRecord, RecoveryCodeStore } from '@recovery-codes/core'
import { RecoveryCodesError } from '@recovery-codes/core'
import type { Compilable, Kysely, KyselyPlugin, QueryResult, UnknownRow } from 'kysely'
import { MYSQL_MAX_KEY_BYTES, type SqlDialect } from '../dialect.ts'
import { MYSQL_DEADLOCK, mysqlErrno, mysqlStoreError } from '../mysql-errors.ts'
import { type MysqlQueries, mysqlQueries } from '../queries/mysql.ts'
import type { RecoveryCodesDatabase } from '../schema.ts'
import { type Compiled, template } from '../sql/template.ts'
import { attemptStore } from './attempts.ts'
import { auditStore } from './audit.ts'
import { batchStore } from './batches.ts'
import { Rollback, type StoreContext, storeContext } from './context.ts'
import { limiterStatements } from './limiter-statements.ts'
import { mysqlAttempts } from './mysql-attempts.ts'
import { mysqlBatches } from './mysql-batches.ts'
import { mysqlImport } from './mysql-import.ts'
import { mysqlReplace } from './mysql-replace.ts'
import { mysqlRetention } from './mysql-retention.ts'

/** Tries of a transaction that InnoDB rolled back on a deadlock (`ER_LOCK_DEADLOCK`). */
const MAX_TRIES = 5
/** Statements with more slots than this (many keys) are compiled per call, not cached. */
const MAX_CACHED_SLOTS = 32

type Trx = Kysely<RecoveryCodesDatabase>

/** What the MySQL aggregates share: the store's context, MySQL's statements and checks. */
export interface MysqlContext extends StoreContext {
  m: MysqlQueries
  /**
   * A READ COMMITTED transaction on `on` (the store's instance, or one connection of it), run again
   * from the start after a deadlock; {@link Rollback} rolls it back quietly, resolving to `fallback`.
   */
  tx<T>(fn: (trx: Trx) => Promise<T>, fallback?: T, on?: Trx): Promise<T>
  /** Runs `fn` (one autocommit statement) again after a deadlock. */
  retry<T>(fn: () => Promise<T>): Promise<T>
  /** A statement compiled once per `shape` (see `sql/template.ts`). */
  shaped(shape: string, names: readonly string[], build: (slots: any) => Compilable<unknown>): Compiled<any>
  /** Write side: refuses a value of a `varbinary(1024)` column longer than 1024 UTF-8 bytes. */
  keyBytes(field: string, value: unknown): void
  /** Read side: a value no `varbinary(1024)` row can carry (read as "not found"). */
  tooLong(...values: unknown[]): boolean
  /** {@link MysqlContext.keyBytes} on the indexed fields of an audit record. */
  auditBytes(record: AuditRecord | undefined): void
  /**
   * `fn` on one connection that holds the user's named lock (`SqlDialect.sessionUserLock`): taken
   * before `fn` (so before any row lock of its transaction), released after it on the same
   * connection, whatever happened in between. Not granted in time: `STORE_TIMEOUT` for `op`.
   */
  userLocked<T>(op: string, userId: string, fn: (conn: Trx) => Promise<T>): Promise<T>
}

const overLimit = (v: unknown) => typeof v === 'string' && Buffer.byteLength(v, 'utf8') > MYSQL_MAX_KEY_BYTES

/**
 * Reads every `varbinary` column back as the string it was written from (ids, user ids, keys,
 * events); `digest`, the one binary value, stays a `Buffer`. The store applies it to its own
 * statements; a host (or a test) that reads the `rc_` tables itself can add it to its instance.
 */
export const MYSQL_TEXT_COLUMNS: KyselyPlugin = {
  transformQuery: (args) => args.node,
  transformResult: async (args) => {
    const { rows } = args.result
    if (rows.length === 0) return args.result
    return { ...args.result, rows: rows.map(textRow) } as QueryResult<UnknownRow>
  },
}

function textRow(row: UnknownRow): UnknownRow {
  let out = row
  for (const key in row) {
    const v = row[key]
    if (key !== 'digest' && Buffer.isBuffer(v)) {
      if (out === row) out = { ...row }
      out[key] = v.toString('utf8')
    }
  }
  return out
}

const pause = (attempt: number) => new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt))

/** {@link MysqlContext.userLocked} on the store's instance `k`, with the dialect's `userLock`. */
function userLocked<T>(
  k: Trx,
  userLock: NonNullable<SqlDialect['sessionUserLock']>,
  op: string,
  userId: string,
  fn: (conn: Trx) => Promise<T>,
): Promise<T> {
  return k.connection().execute(async (conn) => {
    const granted = (await userLock.take(userId).execute(conn)).rows[0] as { got?: unknown } | undefined
    if (Number(granted?.got) !== 1) {
      throw new RecoveryCodesError('STORE_TIMEOUT', `store-kysely: ${op} timed out (user lock)`)
    }
    try {
      return await fn(conn)
    } finally {
      await userLock
        .release(userId)
        .execute(conn)
        .catch(() => {})
    }
  })
}

/** The store of {@link kyselyStore} on MySQL. */
export function mysqlStore(
  db: Kysely<any>,
): RecoveryCodeStore & Required<Pick<RecoveryCodeStore, 'redeemCode' | 'importBatch' | 'addCodes'>> {
  const base = storeContext(db.withPlugin(MYSQL_TEXT_COLUMNS), 'mysql')
  const { k } = base

  async function run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (e) {
      throw mysqlStoreError(op, e)
    }
  }

  async function retry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn()
      } catch (error) {
        if (attempt >= MAX_TRIES || mysqlErrno(error) !== MYSQL_DEADLOCK) throw error
        await pause(attempt)
      }
    }
  }

  /** When `fn` throws, its error is the one rethrown, never a failed ROLLBACK's after it. */
  async function tx<T>(fn: (trx: Trx) => Promise<T>, fallback?: T, on: Trx = k): Promise<T> {
    try {
      return await retry(async () => {
        let failed: { error: unknown } | undefined
        try {
          return await on
            .transaction()
            .setIsolationLevel('read committed')
            .execute(async (trx) => {
              try {
                return await fn(trx)
              } catch (error) {
                failed = { error }
                throw error
              }
            })
        } catch (e) {
          throw failed === undefined ? e : failed.error
        }
      })
    } catch (error) {
      if (error instanceof Rollback) return fallback as T
      throw error
    }
  }

  const cache = new Map<string, Compiled<any>>()
  const keyBytes = (field: string, value: unknown) => {
    if (overLimit(value)) {
      throw new RecoveryCodesError(
        'INVALID_INPUT',
        `${field} must be at most ${MYSQL_MAX_KEY_BYTES} UTF-8 bytes on MySQL`,
      )
    }
  }
  const ctx: MysqlContext = {
    ...base,
    run,
    tx,
    retry,
    writeTx: (fn) => tx(fn),
    m: mysqlQueries(base.d),
    shaped: (shape, names, build) => {
      let t = cache.get(shape)
      if (t === undefined) {
        t = template(build, names)
        if (names.length <= MAX_CACHED_SLOTS) cache.set(shape, t)
      }
      return t
    },
    keyBytes,
    tooLong: (...values) => values.some(overLimit),
    auditBytes: (record) => {
      if (record === undefined) return
      keyBytes('audit.id', record.id)
      keyBytes('audit.event', record.event)
      keyBytes('audit.userId', record.userId)
    },
    userLocked: (op, userId, fn) => userLocked(k, base.d.sessionUserLock!, op, userId, fn),
  }

  // The shared aggregates serve what MySQL runs as they wrote it: code lookups, batch summaries,
  // counters, audit reads and appends. Their consume statements are never used here.
  const notOnMysql = (): never => {
    throw new RecoveryCodesError('INTERNAL', 'store-kysely: not a MySQL statement')
  }
  const shared = {
    ...batchStore(ctx, notOnMysql, notOnMysql),
    ...attemptStore(ctx, limiterStatements(ctx), notOnMysql),
    ...auditStore(ctx),
  }
  return {
    findCode: shared.findCode,
    getActiveBatch: shared.getActiveBatch,
    listBatches: shared.listBatches,
    getAttempts: shared.getAttempts,
    listAudit: shared.listAudit,
    appendAudit: (record) =>
      run('appendAudit', async () => {
        ctx.auditBytes(record)
        return shared.appendAudit(record)
      }),
    appendEmailLog: (record) =>
      run('appendEmailLog', async () => {
        keyBytes('id', record.id)
        keyBytes('userId', record.userId)
        return shared.appendEmailLog(record)
      }),
    ...mysqlBatches(ctx),
    ...mysqlAttempts(ctx),
    ...mysqlRetention(ctx),
    ...mysqlImport(ctx),
    ...mysqlReplace(ctx),
  }
}
