/**
 * What every aggregate of the store shares: the host's Kysely instance, the statements, how a
 * statement runs, how a call's failure is reported, and the transactions.
 */
import type { AuditRecord } from '@recovery-codes/core'
import type { CompiledQuery, DatabaseConnection, Kysely, QueryResult } from 'kysely'
import { sql } from 'kysely'
import { type SqlDialect, sqlDialect } from '../dialect.ts'
import { storeError } from '../errors.ts'
import { createQueries, type Db, type RecoveryCodesQueries } from '../queries/index.ts'
import type { RecoveryCodesDatabase } from '../schema.ts'
import { constant, positionalTemplate } from '../sql/template.ts'
import { runAsync, type Steps, type SyncSqliteDatabase, sameConnection, sqliteSync } from './steps.ts'

/** A driver connection: what {@link StoreContext.rawWriteTx} hands its body. */
export type Connection = Pick<DatabaseConnection, 'executeQuery'>

/** Rolls a transaction back from inside without surfacing an error (see {@link StoreContext.tx}). */
export class Rollback extends Error {}

/** The shared runtime of one `kyselyStore`. */
export interface StoreContext {
  k: Kysely<RecoveryCodesDatabase>
  q: RecoveryCodesQueries
  d: SqlDialect
  /** Runs one compiled statement on the store's instance, a transaction, or a raw connection. */
  exec<R = Record<string, unknown>>(db: Db | Connection, c: CompiledQuery): Promise<QueryResult<R>>
  /** Store call `op`: its failure as a `RecoveryCodesError` with the original as `cause` (see `storeError`). */
  run<T>(op: string, fn: () => Promise<T>): Promise<T>
  /**
   * A transaction that can be rolled back quietly with {@link Rollback}, resolving to `fallback`.
   * SQLite: {@link writeTx}; PostgreSQL: Kysely's (a host's driver may hook BEGIN, see
   * `pgPreparedStatements`). When `fn` throws, its error is the one rethrown, never a failed
   * ROLLBACK's after it.
   */
  tx<T>(fn: (trx: Kysely<RecoveryCodesDatabase>) => Promise<T>, fallback?: T): Promise<T>
  /**
   * SQLite: a transaction that holds the write lock from its start (`BEGIN IMMEDIATE`, which waits
   * through the busy handler), so it may read before it writes; rolled back when `fn` (or the
   * COMMIT) throws, and that error is rethrown. A failed ROLLBACK is ignored: after SQLITE_FULL,
   * SQLITE_IOERR, … SQLite may have rolled back already ("no transaction is active").
   */
  writeTx<T>(fn: (conn: Kysely<RecoveryCodesDatabase>) => Promise<T>): Promise<T>
  /**
   * {@link writeTx} on the driver's connection itself, for bodies that only run compiled
   * statements (`exec`): no Kysely instance or executor is built for the call (the redeem).
   */
  rawWriteTx<T>(fn: (conn: Connection) => Promise<T>): Promise<T>
  /**
   * SQLite: the write transaction of a step body ({@link Steps}). With the store's
   * `sqliteDatabase`, in one synchronous call on it whenever its connection is free (checked once
   * to be the connection under the Kysely instance); otherwise {@link rawWriteTx}.
   */
  writeSteps<T>(steps: () => Steps<T>): Promise<T>
  /** The precompiled audit insert for one record (its `data` as JSON text). */
  appendAudit(record: AuditRecord): CompiledQuery
}

/** The {@link StoreContext} of `db`. */
export function storeContext(
  db: Kysely<any>,
  dialect: SqlDialect['name'],
  sqliteDatabase?: SyncSqliteDatabase,
): StoreContext {
  const k = db as Kysely<RecoveryCodesDatabase>
  const q = createQueries(dialect)
  const d = sqlDialect(dialect)
  const { ts } = d
  const control = {
    begin: constant(sql`begin immediate`, k),
    commit: constant(sql`commit`, k),
    rollback: constant(sql`rollback`, k),
  }
  // By position, in the order the insert binds them: the values array is the parameter array.
  const audit = positionalTemplate(
    (i: any) => q.appendAudit(k, i),
    ['id', 'at', 'event', 'userId', 'batchId', 'identifierHash', 'clientHash', 'outcome', 'reason', 'data'],
  )

  const exec = <R>(on: Db | Connection, c: CompiledQuery) => on.executeQuery(c as CompiledQuery<R>)

  async function run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (e) {
      throw storeError(op, e)
    }
  }

  /** BEGIN IMMEDIATE, `fn`, COMMIT on `conn`; ROLLBACK (its failure ignored) when either throws. */
  async function inWriteTx<C extends Db | Connection, T>(conn: C, fn: (conn: C) => Promise<T>): Promise<T> {
    await exec(conn, control.begin({}))
    try {
      const result = await fn(conn)
      await exec(conn, control.commit({}))
      return result
    } catch (e) {
      try {
        // A driver connection may throw synchronously: caught here all the same.
        await exec(conn, control.rollback({}))
      } catch {}
      throw e
    }
  }

  const writeTx = <T>(fn: (conn: Kysely<RecoveryCodesDatabase>) => Promise<T>): Promise<T> =>
    k.connection().execute((conn) => inWriteTx(conn, fn))

  const rawWriteTx = <T>(fn: (conn: Connection) => Promise<T>): Promise<T> =>
    k.getExecutor().provideConnection((conn) => inWriteTx<Connection, T>(conn, fn))

  const sync = sqliteDatabase === undefined ? undefined : sqliteSync(sqliteDatabase)
  /** Set once `sqliteDatabase` is known to be `db`'s connection. */
  let checked = false

  async function writeSteps<T>(steps: () => Steps<T>): Promise<T> {
    if (sync !== undefined) {
      if (!checked) {
        await sameConnection(sync.database, (token) =>
          exec<{ ok?: unknown }>(
            k,
            sql<{ ok: unknown }>`select rc_same_connection(${token}) as ok`.compile(k),
          ),
        )
        checked = true
      }
      const done = sync.write(steps)
      if (done !== undefined) return done.value
    }
    return rawWriteTx((conn) => runAsync(steps(), (c) => exec(conn, c)))
  }

  async function tx<T>(fn: (trx: Kysely<RecoveryCodesDatabase>) => Promise<T>, fallback?: T): Promise<T> {
    let failed: { error: unknown } | undefined
    const body = async (trx: Kysely<RecoveryCodesDatabase>) => {
      try {
        return await fn(trx)
      } catch (error) {
        failed = { error }
        throw error
      }
    }
    try {
      return await (d.pg ? k.transaction().execute(body) : writeTx(body))
    } catch (e) {
      const error = failed === undefined ? e : failed.error
      if (error instanceof Rollback) return fallback as T
      throw error
    }
  }

  return {
    k,
    q,
    d,
    exec,
    run,
    tx,
    writeTx,
    rawWriteTx,
    writeSteps,
    appendAudit: (r) =>
      audit([
        r.id,
        ts(r.at),
        r.event,
        r.userId,
        r.batchId,
        r.identifierHash,
        r.clientHash,
        r.outcome,
        r.reason,
        r.data === null ? null : JSON.stringify(r.data),
      ]),
  }
}
