/**
 * Django's column values as the drivers hand them back. SQLite keeps what Django's SQLite backend
 * writes (`datetime` as text `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC with `USE_TZ = True`, `date` as
 * `YYYY-MM-DD`, `bool` as 0/1, `UUIDField` as 32 hex digits); PostgreSQL returns `timestamptz` as a
 * `Date` (or text with an offset, with a custom type parser), `boolean` and `uuid` natively.
 */

/** Milliseconds in a day. */
export const DAY_MS = 86_400_000

/** Throws the reader's error for the row being read; `what` names the column, never its value. */
export type Fail = (what: string) => never

const DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2})(?::?(\d{2}))?)?$/
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/

/**
 * A Django `DateTimeField` as epoch milliseconds (microseconds truncated); text without an offset
 * is UTC, as Django writes it on SQLite with `USE_TZ = True`.
 *
 * @returns `null` for SQL NULL.
 */
export function readDatetime(value: unknown, column: string, fail: Fail): number | null {
  if (value === null || value === undefined) return null
  if (value instanceof Date) {
    const ms = value.getTime()
    if (!Number.isFinite(ms)) fail(`${column} is not a valid date and time`)
    return ms
  }
  const m = typeof value === 'string' ? DATETIME.exec(value) : null
  if (m === null) return fail(`${column} is not a Django date and time (YYYY-MM-DD HH:MM:SS[.ffffff])`)
  const [y, mo, d, h, mi] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ]
  const s = Number(m[6] ?? 0)
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3))
  const utc = Date.UTC(y, mo - 1, d, h, mi, s, ms)
  if (!sameCalendar(utc, y, mo, d) || h > 23 || mi > 59 || s > 59) {
    return fail(`${column} is not a valid date and time`)
  }
  let offsetMin = 0
  if (m[9] !== undefined) {
    const oh = Number(m[10])
    const om = Number(m[11] ?? 0)
    if (oh > 23 || om > 59) return fail(`${column} has an invalid UTC offset`)
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om)
  }
  return utc - offsetMin * 60_000
}

/**
 * A Django `DateField` (read as text, `YYYY-MM-DD`) as the epoch milliseconds of that day's start
 * in UTC.
 *
 * @returns `null` for SQL NULL.
 */
export function readDate(value: unknown, column: string, fail: Fail): number | null {
  if (value === null || value === undefined) return null
  const m = typeof value === 'string' ? DATE.exec(value) : null
  if (m === null) return fail(`${column} is not a date (YYYY-MM-DD)`)
  const [y, mo, d] = [m[1], m[2], m[3]].map(Number) as [number, number, number]
  const utc = Date.UTC(y, mo - 1, d)
  if (!sameCalendar(utc, y, mo, d)) return fail(`${column} is not a valid date`)
  return utc
}

/** A Django `BooleanField`: SQLite 0/1, PostgreSQL `boolean`. */
export function readBool(value: unknown, column: string, fail: Fail): boolean {
  if (value === true || value === 1 || value === 1n) return true
  if (value === false || value === 0 || value === 0n) return false
  return fail(`${column} is not a boolean`)
}

/** A Django `PositiveSmallIntegerField`. */
export function readCount(value: unknown, column: string, fail: Fail): number {
  const n = typeof value === 'bigint' ? Number(value) : typeof value === 'string' ? Number(value) : value
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > 32767) {
    return fail(`${column} is not an integer from 0 to 32767`)
  }
  return n
}

const HEX32 = /^[0-9a-f]{32}$/i
const HYPHENATED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * A `UUIDField` in one form on every backend (SQLite stores 32 hex digits, PostgreSQL a `uuid`):
 * lower-case and hyphenated, so a database moved from SQLite to PostgreSQL keeps its import ids.
 *
 * @returns `null` when the value is not a UUID.
 */
export function canonicalUuid(value: unknown): string | null {
  if (typeof value !== 'string') return null
  if (HYPHENATED.test(value)) return value.toLowerCase()
  if (!HEX32.test(value)) return null
  const h = value.toLowerCase()
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

function sameCalendar(utc: number, y: number, mo: number, d: number): boolean {
  const t = new Date(utc)
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d
}
