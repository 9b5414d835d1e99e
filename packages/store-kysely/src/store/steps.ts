/**
 * A write transaction written once as steps, run two ways. A body is a generator that yields each
 * compiled statement and receives its result; {@link runAsync} runs it on a Kysely driver
 * connection (one `await` per statement), {@link sqliteSync} on the host's better-sqlite3
 * `Database` in one synchronous call: no promise per statement, nothing else in the process can
 * run in between, and the transaction costs what its statements cost.
 */
import { randomBytes } from 'node:crypto'
import { RecoveryCodesError } from '@recovery-codes/core'
import type { CompiledQuery, QueryResult } from 'kysely'

/** A statement's result as a body sees it. */
export type StepResult = QueryResult<Record<string, unknown>>
/** A transaction body: yields statements, receives their results, returns the call's result. */
export type Steps<T> = Generator<CompiledQuery, T, StepResult>

/** The part of a better-sqlite3 `Database` the synchronous runner uses. */
export interface SyncSqliteDatabase {
  prepare(sql: string): SyncSqliteStatement
  readonly inTransaction: boolean
  function(name: string, fn: (token: unknown) => unknown): unknown
}

/** The part of a better-sqlite3 `Statement` the synchronous runner uses. */
export interface SyncSqliteStatement {
  readonly reader: boolean
  all(parameters: readonly unknown[]): unknown[]
  run(parameters: readonly unknown[]): { changes: number | bigint }
}

/** Runs `steps` with `exec` for each statement (one await each). */
export async function runAsync<T>(
  steps: Steps<T>,
  exec: (c: CompiledQuery) => Promise<StepResult>,
): Promise<T> {
  let r = steps.next()
  while (r.done !== true) r = steps.next(await exec(r.value))
  return r.value
}

/** Statements the synchronous runner keeps prepared (the redeem has a few shapes). */
const MAX_PREPARED = 64

/**
 * The synchronous runner on `database`. `write(steps)` runs `BEGIN IMMEDIATE`, the steps and
 * `COMMIT` in one call, rolling back when a step or the commit throws (that error is rethrown; a
 * failed ROLLBACK is ignored). It returns `undefined` without running anything when the
 * connection is not free for it: a transaction is open on it (the host's, or one of Kysely's
 * across an `await`), or a statement is still iterating (better-sqlite3's "busy" `TypeError`).
 * The caller then takes the async path, which waits for Kysely's connection.
 */
export function sqliteSync(database: SyncSqliteDatabase) {
  const prepared = new Map<string, SyncSqliteStatement>()
  const statement = (sql: string) => {
    let st = prepared.get(sql)
    if (st === undefined) {
      st = database.prepare(sql)
      if (prepared.size < MAX_PREPARED) prepared.set(sql, st)
    }
    return st
  }
  const exec = (c: CompiledQuery): StepResult => {
    const st = statement(c.sql)
    if (st.reader) return { rows: st.all(c.parameters) as Record<string, unknown>[] }
    return { rows: [], numAffectedRows: BigInt(st.run(c.parameters).changes) }
  }
  const begin = () => statement('begin immediate').run([])
  return {
    database,
    write<T>(steps: () => Steps<T>): { value: T } | undefined {
      if (database.inTransaction) return undefined
      try {
        begin()
      } catch (e) {
        // An iterating statement holds the connection: not now, and nothing ran.
        if (e instanceof TypeError) return undefined
        throw e
      }
      try {
        const g = steps()
        let r = g.next()
        while (r.done !== true) r = g.next(exec(r.value))
        statement('commit').run([])
        return { value: r.value }
      } catch (e) {
        try {
          if (database.inTransaction) statement('rollback').run([])
        } catch {}
        throw e
      }
    },
  }
}

/** Per database: the tokens of the stores that registered `rc_same_connection` on it. */
const probeTokens = new WeakMap<SyncSqliteDatabase, Set<string>>()

/**
 * Checks that `database` is the connection under the store's Kysely instance: it registers the
 * function `rc_same_connection(token)` on `database` (1 for a token registered there) and calls it
 * through `query` (the Kysely instance). Another connection has no such function, or does not know
 * this token.
 *
 * @throws RecoveryCodesError `CONFIG_INVALID` when it is another connection.
 */
export async function sameConnection(
  database: SyncSqliteDatabase,
  query: (token: string) => Promise<{ rows: { ok?: unknown }[] }>,
): Promise<void> {
  let tokens = probeTokens.get(database)
  if (tokens === undefined) {
    const known = new Set<string>()
    tokens = known
    probeTokens.set(database, known)
    database.function('rc_same_connection', (token: unknown) => (known.has(String(token)) ? 1 : 0))
  }
  const token = randomBytes(12).toString('hex')
  tokens.add(token)
  let ok = false
  let cause: unknown
  try {
    ok = Number((await query(token)).rows[0]?.ok) === 1
  } catch (e) {
    cause = e
  }
  if (!ok) {
    throw new RecoveryCodesError(
      'CONFIG_INVALID',
      "store-kysely: sqliteDatabase is not the database under db's SqliteDialect",
      { cause },
    )
  }
}
