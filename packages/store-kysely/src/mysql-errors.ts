/**
 * MySQL / MariaDB failures as store errors (what `errors.ts` does for SQLite and PostgreSQL): a
 * statement stopped at a deadline is `STORE_TIMEOUT`, anything else `STORE_UNAVAILABLE`, the
 * driver error always the `cause` and its message never copied (it can echo values).
 */
import { RecoveryCodesError } from '@recovery-codes/core'

/** `ER_LOCK_DEADLOCK`: InnoDB rolled the whole transaction back; it can be run again. */
export const MYSQL_DEADLOCK = 1213

/** `ER_DUP_ENTRY`: a unique key refused the row; only the statement was rolled back. */
export const MYSQL_DUP_ENTRY = 1062

/**
 * Server errors of a statement stopped at a deadline: a row lock not granted within
 * `innodb_lock_wait_timeout` (1205), MySQL's `max_execution_time` (3024), MariaDB's
 * `max_statement_time` (1969, which mysql2 knows by number only).
 */
const TIMEOUT_ERRNOS = new Map([
  [1205, 'ER_LOCK_WAIT_TIMEOUT'],
  [3024, 'ER_QUERY_TIMEOUT'],
  [1969, 'ER_STATEMENT_TIMEOUT'],
])
/** mysql2's client-side query `timeout`. */
const CLIENT_TIMEOUT = 'PROTOCOL_SEQUENCE_TIMEOUT'
/** How many links of a `cause` chain are searched. */
const MAX_DEPTH = 4
/** A mysql2 error code: a server name (`ER_DUP_ENTRY`), a socket error or a protocol error. */
const DRIVER_CODE = /^(ER_[A-Z0-9_]{1,60}|E[A-Z]{2,20}|PROTOCOL_[A-Z_]{1,40})$/

type Link = { code?: unknown; errno?: unknown; sqlState?: unknown; cause?: unknown }

function* chain(e: unknown): Generator<Link> {
  let x = e
  for (let depth = 0; depth < MAX_DEPTH && typeof x === 'object' && x !== null; depth++) {
    yield x as Link
    x = (x as Link).cause
  }
}

/** The server error number of a mysql2 error in `e`'s `cause` chain (`errno` beside a `sqlState`). */
export function mysqlErrno(e: unknown): number | undefined {
  for (const x of chain(e)) if (typeof x.errno === 'number' && typeof x.sqlState === 'string') return x.errno
  return undefined
}

/** The error a MySQL store call `op` rejects with when it failed with `e` (see `storeError`). */
export function mysqlStoreError(op: string, e: unknown): RecoveryCodesError {
  if (e instanceof RecoveryCodesError) return e
  const errno = mysqlErrno(e)
  const timeout = errno === undefined ? undefined : TIMEOUT_ERRNOS.get(errno)
  const client = [...chain(e)].some((x) => x.code === CLIENT_TIMEOUT)
  if (timeout !== undefined || client) {
    const why = timeout ?? 'client query timeout'
    return new RecoveryCodesError('STORE_TIMEOUT', `store-kysely: ${op} timed out (${why})`, { cause: e })
  }
  const code = [...chain(e)].map((x) => x.code).find((c) => typeof c === 'string' && DRIVER_CODE.test(c))
  const why = code !== undefined ? ` (${code})` : errno !== undefined ? ` (errno ${errno})` : ''
  return new RecoveryCodesError('STORE_UNAVAILABLE', `store-kysely: ${op} failed${why}`, { cause: e })
}
