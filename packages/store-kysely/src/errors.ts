import { RecoveryCodesError } from '@recovery-codes/core'

/** SQLSTATEs of a statement PostgreSQL cancelled at its deadline: `statement_timeout`, `lock_timeout`. */
const TIMEOUT_SQLSTATES = new Set(['57014', '55P03'])
/** How many links of a `cause` chain are searched. */
const MAX_DEPTH = 4
/** A SQLite result code as better-sqlite3 names it: `SQLITE_FULL`, `SQLITE_IOERR_WRITE`, … */
const SQLITE_CODE = /^SQLITE_[A-Z0-9_]{1,40}$/

/** The shape of a SQLSTATE: five digits or capitals. */
const SQLSTATE = /^[0-9A-Z]{5}$/

type Link = { code?: unknown; message?: unknown; cause?: unknown; severity?: unknown }

/** `e` and the errors of its `cause` chain (at most {@link MAX_DEPTH}), outermost first. */
function* chain(e: unknown): Generator<Link> {
  let x = e
  for (let depth = 0; depth < MAX_DEPTH && typeof x === 'object' && x !== null; depth++) {
    yield x as Link
    x = (x as Link).cause
  }
}

/**
 * Why `e` (or an error in its `cause` chain) is a deadline, for the message of `STORE_TIMEOUT`:
 * `SQLSTATE 57014` (query_canceled) / `SQLSTATE 55P03` (lock_not_available) from the server, or
 * node-postgres' client-side `query_timeout` ("Query read timeout"). Never echoes the driver's message.
 */
export function timeoutKind(e: unknown): string | undefined {
  for (const x of chain(e)) {
    if (typeof x.code === 'string' && TIMEOUT_SQLSTATES.has(x.code)) return `SQLSTATE ${x.code}`
    if (x.message === 'Query read timeout') return 'client query_timeout'
  }
  return undefined
}

/** A PostgreSQL server error's SQLSTATE (node-postgres' `DatabaseError`: a `code` beside a `severity`). */
export function sqlState(e: unknown): string | undefined {
  const x = e as Link | null
  return typeof x?.code === 'string' && typeof x.severity === 'string' ? x.code : undefined
}

/**
 * The driver's code for `e` or an error in its `cause` chain, for a message: a SQLite result code
 * (`SQLITE_FULL`) or a server SQLSTATE (`SQLSTATE 57P01`). A fixed name from the driver, never its
 * message text (which may echo values).
 */
export function driverCode(e: unknown): string | undefined {
  for (const x of chain(e)) {
    if (typeof x.code === 'string' && SQLITE_CODE.test(x.code)) return x.code
    const state = sqlState(x)
    if (state !== undefined && SQLSTATE.test(state)) return `SQLSTATE ${state}`
  }
  return undefined
}

/**
 * The error a store call `op` rejects with when it failed with `e`: `e` itself when it already is a
 * `RecoveryCodesError`; `STORE_TIMEOUT` for a deadline ({@link timeoutKind}); else
 * `STORE_UNAVAILABLE`, naming the {@link driverCode} when there is one (`store-kysely: createBatch
 * failed (SQLITE_FULL)`, `… failed (SQLSTATE 57P01)`). `e` is always the `cause`; its message is
 * never copied.
 */
export function storeError(op: string, e: unknown): RecoveryCodesError {
  if (e instanceof RecoveryCodesError) return e
  const timeout = timeoutKind(e)
  if (timeout !== undefined) {
    return new RecoveryCodesError('STORE_TIMEOUT', `store-kysely: ${op} timed out (${timeout})`, { cause: e })
  }
  const code = driverCode(e)
  const why = code === undefined ? '' : ` (${code})`
  return new RecoveryCodesError('STORE_UNAVAILABLE', `store-kysely: ${op} failed${why}`, { cause: e })
}
