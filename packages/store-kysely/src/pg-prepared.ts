import { createHash } from 'node:crypto'
import { RecoveryCodesError } from '@recovery-codes/core'
import type { PostgresPool, PostgresPoolClient } from 'kysely'
import { sqlState } from './errors.ts'

/** Options for {@link pgPreparedStatements}. */
export interface PgPreparedStatementsOptions {
  /**
   * Most statements kept prepared per connection; past it the least recently used one is dropped
   * with `DEALLOCATE`.
   * @default 100
   */
  max?: number
}

/** What the wrapper reads of a node-postgres client: `query`, `release`, and pg's statement maps. */
interface PgClient {
  query(...args: unknown[]): unknown
  release(...args: unknown[]): void
  /** node-postgres' wire connection: the names it believes parsed (or in flight) on the server. */
  connection?: {
    parsedStatements?: Record<string, string>
    submittedNamedStatements?: Record<string, string>
  }
}

interface Conn {
  raw: PgClient
  parsed: Record<string, string>
  submitted: Record<string, string>
  /** Names prepared on this connection (as far as we know), least recently used first → SQL text. */
  lru: Map<string, string>
  /** Names to DEALLOCATE before their next use (their result type changed under them). */
  stale: Set<string>
  /** pg's map may disagree with the server (after a client-side error or a lost statement). */
  resync: boolean
  /** Named queries of ours under way on this connection (Kysely runs one at a time). */
  pending: number
  client: PostgresPoolClient
}

const NAMES_MAX = 1024

/** The statement name for `text`: `rc_` + the first 16 hex digits of its SHA-256 (never input). */
export function preparedStatementName(text: string): string {
  return `rc_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`
}

/**
 * Opt-in: wraps a node-postgres `pg.Pool` for `new PostgresDialect({ pool })` so every
 * parameterized query runs as a named prepared statement on its connection
 * (`client.query({ name, text, values })`): the server parses and plans each store statement once
 * per connection instead of on every call. Kysely's `PostgresDriver` calls
 * `client.query(sql, parameters)`; those calls with at least one parameter are prepared, under the
 * name `rc_` + 16 hex digits of the SHA-256 of the text. Everything else passes through unchanged:
 * calls without parameters (`begin`, `commit`, DDL, multi-statement texts, which take the simple
 * protocol as before), query objects and cursors (`stream()`), callback forms.
 *
 * Bounded per physical connection: an LRU of the names prepared on it; past `max` the least
 * recently used is dropped with `DEALLOCATE` and forgotten in node-postgres' own map
 * (`connection.parsedStatements`), so a later use prepares it again. Prepared statements outlive
 * transactions (neither `ROLLBACK` nor an error undoes them). A failed call leaves pg's map true
 * when the server refused it, except in two cases repaired before the next call on that
 * connection: after a client-side failure (e.g. a value that cannot be serialized; pg then closes
 * the statement) or a statement the server no longer knows (`26000`, e.g. after `DISCARD ALL`),
 * pg's map is reconciled with `pg_prepared_statements`; a statement whose result type changed
 * under it (`0A000`, "cached plan must not change result type", after DDL on its tables) is
 * deallocated and prepared again. When a repair cannot run (an aborted transaction) the call runs
 * unnamed, giving the caller the server's own answer, and the repair waits for a later call.
 *
 * Caveats: if other code runs `DEALLOCATE ALL` / `DISCARD ALL` on a connection, the next named call
 * there fails once (`26000`) and the connection then recovers; a
 * transaction-pooling PgBouncer needs prepared-statement support (1.21+, `max_prepared_statements`);
 * PostgreSQL may switch a prepared statement to a generic plan after five executions
 * (`plan_cache_mode`). A client without node-postgres' `connection.parsedStatements` (not a
 * `pg` client) is passed through untouched.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { Kysely, PostgresDialect } from 'kysely'
 * import { createPgPool, kyselyStore, pgPreparedStatements } from '@recovery-codes/store-kysely'
 *
 * const pool = pgPreparedStatements(createPgPool(pg.Pool, { connectionString: process.env.DATABASE_URL }))
 * const db = new Kysely({ dialect: new PostgresDialect({ pool }) })
 * const store = kyselyStore(db)
 * ```
 */
export function pgPreparedStatements(
  pool: PostgresPool,
  options: PgPreparedStatementsOptions = {},
): PostgresPool {
  const max = options.max ?? 100
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new RecoveryCodesError('CONFIG_INVALID', 'pgPreparedStatements: max must be an integer >= 1')
  }
  // One wrapper per physical connection: Kysely keys its own connection state by the client object.
  const conns = new WeakMap<object, PostgresPoolClient>()
  // SQL text → statement name, so the hash is not recomputed on every call.
  const names = new Map<string, string>()
  const nameOf = (text: string): string => {
    let name = names.get(text)
    if (name === undefined) {
      if (names.size >= NAMES_MAX) names.clear()
      name = preparedStatementName(text)
      names.set(text, name)
    }
    return name
  }

  /** pg's bookkeeping for `name` set to whether the server holds it (`text`) or not. */
  const record = (c: Conn, name: string, text: string | undefined) => {
    delete c.submitted[name]
    if (text === undefined) delete c.parsed[name]
    else c.parsed[name] = text
  }

  /**
   * Makes pg's map match the server before the next named call: for the whole connection after an
   * error that may have left them apart, for one stale name by dropping it. False when that cannot
   * be done now (an aborted transaction, a broken connection); it is tried again on the next call.
   */
  async function repair(c: Conn, name: string): Promise<boolean> {
    try {
      if (c.resync) {
        const r = (await c.raw.query('select name from pg_prepared_statements')) as {
          rows: { name: string }[]
        }
        const held = new Set(r.rows.map((x) => x.name))
        for (const n of Object.keys(c.parsed)) if (!held.has(n)) record(c, n, undefined)
        for (const [n, text] of c.lru) if (held.has(n)) record(c, n, text)
        c.resync = false
      }
      if (c.stale.has(name)) {
        if (c.parsed[name] !== undefined) {
          try {
            await c.raw.query(`DEALLOCATE ${name}`)
          } catch (e) {
            if (sqlState(e) !== '26000') throw e
          }
        }
        record(c, name, undefined)
        c.stale.delete(name)
      }
      return true
    } catch {
      return false
    }
  }

  /** Drops the least recently used names past `max` (never the one about to run: it is the newest). */
  async function evict(c: Conn) {
    while (c.lru.size > max) {
      const [old, text] = c.lru.entries().next().value as [string, string]
      c.lru.delete(old)
      c.stale.delete(old)
      // Never parsed (its Parse failed): nothing on the server to drop.
      if (c.parsed[old] === undefined) continue
      // Forgotten before DEALLOCATE is queued, so a use queued after it prepares afresh.
      record(c, old, undefined)
      try {
        await c.raw.query(`DEALLOCATE ${old}`)
      } catch (e) {
        if (sqlState(e) === '26000') continue
        // Not dropped (aborted transaction, broken connection): still prepared; tried again later.
        record(c, old, text)
        c.lru = new Map([[old, text], ...c.lru])
        return
      }
    }
  }

  async function named(c: Conn, text: string, values: readonly unknown[]): Promise<unknown> {
    const name = nameOf(text)
    c.pending++
    try {
      if ((c.resync || c.stale.has(name)) && !(await repair(c, name))) {
        // Cannot settle it now: run it unnamed, which gives the caller the server's own answer.
        return await c.raw.query(text, values)
      }
      if (c.lru.delete(name)) c.lru.set(name, text)
      else {
        c.lru.set(name, text)
        // Only when no other call of ours is queued on this connection (it may use an old name).
        if (c.lru.size > max && c.pending === 1) await evict(c)
      }
      try {
        return await c.raw.query({ name, text, values })
      } catch (e) {
        const state = sqlState(e)
        // A server error keeps pg's map true (set on ParseComplete only), except these two.
        if (state === '0A000') c.stale.add(name)
        else if (state === undefined || state === '26000') c.resync = true
        throw e
      }
    } finally {
      c.pending--
    }
  }

  function wrap(raw: PgClient): PostgresPoolClient {
    const parsed = raw.connection?.parsedStatements
    const submitted = raw.connection?.submittedNamedStatements
    // Not node-postgres' JavaScript client: nothing to keep consistent with, so no preparing.
    if (parsed === undefined || submitted === undefined) return raw as unknown as PostgresPoolClient
    const c: Conn = {
      raw,
      parsed,
      submitted,
      lru: new Map(),
      stale: new Set(),
      resync: false,
      pending: 0,
      client: {
        query(...args: unknown[]) {
          const [text, values] = args
          if (args.length === 2 && typeof text === 'string' && Array.isArray(values) && values.length > 0) {
            return named(c, text, values)
          }
          return raw.query(...args)
        },
        release(...args: unknown[]) {
          raw.release(...args)
        },
      } as PostgresPoolClient,
    }
    return c.client
  }

  return {
    async connect() {
      const raw = (await pool.connect()) as unknown as PgClient
      let c = conns.get(raw)
      if (c === undefined) {
        c = wrap(raw)
        conns.set(raw, c)
      }
      return c
    },
    end: () => pool.end(),
  }
}
