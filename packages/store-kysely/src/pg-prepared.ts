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
  /**
   * Keep one connection out of the pool while it is free and give it to the next `connect()`
   * directly, without pg-pool's queue, events and idle timer on every query. Only a free
   * connection is handed out (a concurrent caller gets another from the pool), and one is kept only
   * when it comes back outside a transaction, with no failed query or connection error, and
   * nobody waiting on the pool; otherwise it goes back to the pool as usual. While kept its socket
   * does not hold the process open, a connection error drops it (as pg-pool drops an idle one),
   * and `end()` gives it back first.
   * @default true, unless the pool retires connections (pg-pool `maxUses` or `maxLifetimeSeconds`)
   */
  keepClient?: boolean
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
  /** pg's health flags, read as pg-pool reads them when a client comes back. */
  _queryable?: boolean
  _ending?: boolean
  /** The last ReadyForQuery status: `I` idle, `T` in a transaction, `E` in a failed one. */
  getTransactionStatus?(): string | null
  on?(event: 'error', listener: (e: unknown) => void): unknown
  removeListener?(event: 'error', listener: (e: unknown) => void): unknown
  ref?(): void
  unref?(): void
}

/** What keeping a client reads of the pool (node-postgres' `pg.Pool`); all optional. */
interface PgPoolLike {
  waitingCount?: number
  options?: { maxUses?: number; maxLifetimeSeconds?: number }
  emit?(event: 'error', error: unknown, client: unknown): boolean
}

interface Conn {
  raw: PgClient
  parsed: Record<string, string>
  submitted: Record<string, string>
  /** Names prepared on this connection (as far as we know), least recently used first → SQL text. */
  lru: Map<string, string>
  /** The most recently used name (the last of `lru`): used again, it needs no reordering. */
  newest: string | undefined
  /** Names to DEALLOCATE before their next use (their result type changed under them). */
  stale: Set<string>
  /** pg's map may disagree with the server (after a client-side error or a lost statement). */
  resync: boolean
  /** Named queries of ours under way on this connection (Kysely runs one at a time). */
  pending: number
  /** A query of ours failed since the connection was handed out: it is not kept at release. */
  failed: boolean
  /** Out of the pool between uses (`keepClient`), with {@link Conn.onError} listening on it. */
  held: boolean
  /** A connection error seen while held: passed to pg-pool at release, which then drops it. */
  broken: unknown
  onError: (e: unknown) => void
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
 * unnamed, giving the caller the server's own answer, and the repair waits for a later call. A
 * statement already prepared with nothing to repair goes straight to pg (no async step of ours).
 *
 * With `keepClient` (the default) one free connection stays out of the pool between queries, so a
 * store call in steady state skips pg-pool's checkout and release; see
 * {@link PgPreparedStatementsOptions.keepClient}. The pool's counts then show it as in use, and a
 * caller of the underlying pool itself (not through this wrapper) can have one connection fewer.
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
  const pgPool = pool as PostgresPool & PgPoolLike
  // A kept connection would dodge the pool's retirement (it counts uses and ages at checkout).
  const retires =
    (pgPool.options?.maxUses ?? Number.POSITIVE_INFINITY) < Number.POSITIVE_INFINITY ||
    (pgPool.options?.maxLifetimeSeconds ?? 0) > 0
  const keep = options.keepClient ?? !retires
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
  /** The connection kept out of the pool, free (`keepClient`); handed out by the next `connect()`. */
  let kept: Conn | undefined
  let ending = false

  /** pg's bookkeeping for `name` set to whether the server holds it (`text`) or not. */
  const record = (c: Conn, name: string, text: string | undefined) => {
    delete c.submitted[name]
    if (text === undefined) delete c.parsed[name]
    else c.parsed[name] = text
  }

  /** After a named call of ours failed: what to repair before the next one. */
  const failed = (c: Conn, name: string, e: unknown) => {
    c.failed = true
    const state = sqlState(e)
    // A server error keeps pg's map true (set on ParseComplete only), except these two.
    if (state === '0A000') c.stale.add(name)
    else if (state === undefined || state === '26000') c.resync = true
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
        c.failed = true
        return await c.raw.query(text, values)
      }
      c.newest = name
      if (c.lru.delete(name)) c.lru.set(name, text)
      else {
        c.lru.set(name, text)
        // Only when no other call of ours is queued on this connection (it may use an old name).
        if (c.lru.size > max && c.pending === 1) await evict(c)
      }
      try {
        return await c.raw.query({ name, text, values })
      } catch (e) {
        failed(c, name, e)
        throw e
      }
    } finally {
      c.pending--
    }
  }

  /**
   * Marks `name` (known on `c`) most recently used; false when it is not in `c`'s LRU. The same name
   * again leaves the map alone (a delete and set each time would churn its table).
   */
  const used = (c: Conn, name: string, text: string): boolean => {
    if (c.newest === name) return true
    if (!c.lru.delete(name)) return false
    c.lru.set(name, text)
    c.newest = name
    return true
  }

  /**
   * A statement prepared on `c` with nothing to repair: pg's callback form, so the caller's promise
   * is the only one (no async frame or promise of pg's in between).
   */
  function prepared(c: Conn, name: string, text: string, values: unknown[]): Promise<unknown> {
    c.pending++
    return new Promise((resolve, reject) => {
      const done = (e: unknown, result?: unknown) => {
        c.pending--
        if (e) {
          failed(c, name, e)
          reject(e)
        } else resolve(result)
      }
      try {
        c.raw.query({ name, text, values }, done)
      } catch (e) {
        done(e)
      }
    })
  }

  /** Gives a held connection back to the pool (with the error that broke it, if any). */
  function unhold(c: Conn, error?: unknown) {
    c.held = false
    c.raw.removeListener?.('error', c.onError)
    const broken = error ?? c.broken
    c.broken = undefined
    c.failed = false
    if (broken !== undefined) c.raw.release(broken)
    else {
      if (c.raw._queryable !== false) c.raw.ref?.()
      c.raw.release()
    }
  }

  /** Whether `c`, coming back from its caller, may be kept instead of going back to the pool. */
  const keepable = (c: Conn): boolean => {
    if (kept !== undefined || ending || c.failed || c.pending > 0 || c.broken !== undefined) return false
    const { raw } = c
    if (raw._queryable === false || raw._ending === true || raw.on === undefined) return false
    const tx = raw.getTransactionStatus?.()
    return tx !== 'T' && tx !== 'E' && !((pgPool.waitingCount ?? 0) > 0)
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
      newest: undefined,
      stale: new Set(),
      resync: false,
      pending: 0,
      failed: false,
      held: false,
      broken: undefined,
      // Listening only while held: as pg-pool's listener on an idle client, a connection error of
      // the kept one drops it and is re-emitted on the pool.
      onError: (e) => {
        c.broken ??= e
        if (kept === c) {
          kept = undefined
          unhold(c, e)
          pgPool.emit?.('error', e, raw)
        }
      },
      client: {
        query(...args: unknown[]) {
          if (args.length === 2) {
            const text = args[0]
            const values = args[1]
            if (typeof text === 'string' && Array.isArray(values) && values.length > 0) {
              const name = nameOf(text)
              if (!c.resync && c.parsed[name] !== undefined && !c.stale.has(name) && used(c, name, text)) {
                return prepared(c, name, text, values)
              }
              return named(c, text, values)
            }
          }
          return raw.query(...args)
        },
        release(...args: unknown[]) {
          if (kept === c)
            throw new Error('Release called on client which has already been released to the pool.')
          if (keep && args.length === 0 && keepable(c)) {
            if (!c.held) {
              c.held = true
              raw.on!('error', c.onError)
            }
            raw.unref?.()
            kept = c
            return
          }
          if (c.held) unhold(c, args[0])
          else {
            c.failed = false
            raw.release(...args)
          }
        },
      } as PostgresPoolClient,
    }
    return c.client
  }

  const adopt = (client: unknown): PostgresPoolClient => {
    const raw = client as PgClient
    let c = conns.get(raw)
    if (c === undefined) {
      c = wrap(raw)
      conns.set(raw, c)
    }
    return c
  }

  return {
    connect(): Promise<PostgresPoolClient> {
      const c = kept
      if (c !== undefined) {
        kept = undefined
        if (c.raw._queryable !== false && c.raw._ending !== true) {
          c.raw.ref?.()
          return Promise.resolve(c.client)
        }
        // Closed while kept without an error event: back to the pool, which drops it.
        unhold(c)
      }
      return pool.connect().then(adopt)
    },
    end() {
      ending = true
      const c = kept
      if (c !== undefined) {
        kept = undefined
        unhold(c)
      }
      return pool.end()
    },
  }
}
