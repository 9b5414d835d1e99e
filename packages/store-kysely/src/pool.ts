import { type Logger, RecoveryCodesError } from '@recovery-codes/core'

/**
 * The database-enforced deadline of {@link createPgPool}, in milliseconds.
 * @default 5000
 */
export const DEFAULT_PG_DEADLINE_MS = 5_000
/** {@link createPgPool}'s wait for a new connection, in milliseconds. */
export const DEFAULT_PG_CONNECTION_TIMEOUT_MS = 5_000
/** {@link createPgPool}'s idle time before a pooled connection is closed, in milliseconds. */
export const DEFAULT_PG_IDLE_TIMEOUT_MS = 10_000
/** How far the client-side `query_timeout` lies past the server's deadline, in milliseconds. */
export const PG_QUERY_TIMEOUT_SLACK_MS = 1_000

/** What {@link createPgPool} reads of a node-postgres client: `on('error')`. */
export interface PgClientLike {
  on(event: 'error', listener: (error: Error) => void): unknown
}

/** What {@link createPgPool} reads of a node-postgres `Pool`: `on('error')` and `on('connect')`. */
export interface PgPoolLike {
  on(event: 'error', listener: (error: Error) => void): unknown
  on(event: 'connect', listener: (client: PgClientLike) => void): unknown
}

/** Options of {@link createPgPool}; everything else is passed to the `Pool` constructor as given. */
export interface CreatePgPoolOptions {
  /**
   * One deadline for every statement, enforced by PostgreSQL itself: the startup parameters
   * `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout` are set to it,
   * so a statement that cannot finish in time is cancelled and rolled back by the server (nothing
   * commits after the caller gave up); the client-side `query_timeout` is this plus
   * {@link PG_QUERY_TIMEOUT_SLACK_MS}, for a server that does not answer at all. An explicit
   * `statement_timeout` (etc.) in the options wins.
   * @default 5000
   */
  deadlineMs?: number
  /**
   * Connection and pool errors are logged here (error name and SQLSTATE only; never the connection
   * string, a password or a query). Without one they are swallowed, never thrown.
   */
  logger?: Pick<Logger, 'warn'>
}

type PoolCtor<C, P> = new (config?: C) => P

function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new RecoveryCodesError('CONFIG_INVALID', `createPgPool: ${name} must be an integer >= 1`)
  }
  return value
}

/** Name and SQLSTATE of an error, the only fields ever logged. */
function errorFields(error: unknown): { error: string; code: string | undefined } {
  const e = error as { name?: unknown; code?: unknown } | null
  return {
    error: typeof e?.name === 'string' ? e.name : typeof error,
    code: typeof e?.code === 'string' ? e.code : undefined,
  }
}

/**
 * A node-postgres pool that survives the database going away and never waits forever.
 *
 * - An `'error'` listener on the pool **and** on every client (`pool.on('connect', c => c.on('error', …))`):
 *   a terminated backend (`57P01`, e.g. after `kill -9` of PostgreSQL or `pg_terminate_backend`)
 *   is logged instead of becoming an unhandled `'error'` event that ends the process. The pool's
 *   own listener only covers idle clients; a client checked out under load has none but ours.
 *   pg removes a broken client from the pool, so the next call opens a fresh connection.
 * - One deadline (`deadlineMs`) enforced in the database: `statement_timeout`, `lock_timeout`
 *   and `idle_in_transaction_session_timeout`, plus a client-side `query_timeout` slightly above
 *   it. The Kysely store maps the resulting `57014` / `55P03` / "Query read timeout" to
 *   `RecoveryCodesError('STORE_TIMEOUT')` (HTTP 503).
 * - `connectionTimeoutMillis` (default 5000) and `idleTimeoutMillis` (default 10000).
 *
 * `pg` stays your dependency: pass its `Pool` constructor; every other option (connection string,
 * `max`, `ssl`, `options`, …) goes to it unchanged and typed by your `@types/pg`. The input object
 * is not mutated.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { Kysely, PostgresDialect } from 'kysely'
 * import { createPgPool, kyselyStore } from '@recovery-codes/store-kysely'
 *
 * const pool = createPgPool(pg.Pool, { connectionString: process.env.DATABASE_URL, max: 10, logger: console })
 * const store = kyselyStore(new Kysely({ dialect: new PostgresDialect({ pool }) }))
 * ```
 */
export function createPgPool<C extends object, P extends PgPoolLike>(
  Pool: PoolCtor<C, P>,
  options: C & CreatePgPoolOptions,
): P {
  const { deadlineMs: deadlineOption, logger, ...config } = options
  const deadlineMs = positiveInteger('deadlineMs', deadlineOption ?? DEFAULT_PG_DEADLINE_MS)
  const pool = new Pool({
    connectionTimeoutMillis: DEFAULT_PG_CONNECTION_TIMEOUT_MS,
    idleTimeoutMillis: DEFAULT_PG_IDLE_TIMEOUT_MS,
    statement_timeout: deadlineMs,
    lock_timeout: deadlineMs,
    idle_in_transaction_session_timeout: deadlineMs,
    query_timeout: deadlineMs + PG_QUERY_TIMEOUT_SLACK_MS,
    ...config,
  } as unknown as C)
  // An idle client's error reaches both listeners (pg-pool re-emits it on the pool): log it once.
  const logged = new WeakSet<object>()
  const log = (source: string, error: unknown) => {
    if (typeof error === 'object' && error !== null) {
      if (logged.has(error)) return
      logged.add(error)
    }
    logger?.warn(`recovery-codes: PostgreSQL ${source} error`, errorFields(error))
  }
  pool.on('error', (error) => log('pool', error))
  pool.on('connect', (client) => {
    client.on('error', (error) => log('connection', error))
  })
  return pool
}
