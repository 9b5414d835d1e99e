/**
 * Input checks: strings that cannot be stored are refused before any SQL runs (writes), or read as
 * "not found" (reads), identically on every dialect. PostgreSQL `text` cannot hold U+0000.
 */
import { type AuditRecord, type NewBatch, type NewCode, RecoveryCodesError } from '@recovery-codes/core'
import { bytes } from './sql/template.ts'

/** Longest id, key or short text this store writes; longer input is rejected before any SQL runs. */
export const MAX_TEXT_LENGTH = 1024

const hasNul = (s: string) => s.includes('\u0000')
const invalid = (message: string) => new RecoveryCodesError('INVALID_INPUT', message)

/** A storable string: non-empty, no NUL, at most {@link MAX_TEXT_LENGTH} characters. */
export function writeText(field: string, value: unknown, nullable = false): void {
  if (nullable && value === null) return
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT_LENGTH || hasNul(value)) {
    throw invalid(`${field} must be a non-empty string without NUL, at most ${MAX_TEXT_LENGTH} characters`)
  }
}

/** A read key that no stored row can carry. */
export const unreadable = (...values: unknown[]): boolean =>
  values.some((v) => typeof v !== 'string' || hasNul(v))

export function time(field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw invalid(`${field} must be an integer epoch-ms timestamp`)
  }
}

export function count(field: string, value: unknown, min = 0): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalid(`${field} must be an integer >= ${min}`)
  }
}

export function oneOf<T extends string>(
  field: string,
  value: unknown,
  allowed: readonly T[],
): asserts value is T {
  if (!allowed.includes(value as T)) throw invalid(`${field} is not allowed`)
}

/** A purge chunk's input: an integer `before` and a `limit >= 0`. */
export function chunk(input: { before: unknown; limit: unknown }): void {
  time('before', input.before)
  count('limit', input.limit)
}

/** The limiter keys of a reserve: an array of distinct storable keys with integer `maxAttempts >= 0`. */
export function attemptKeys(keys: unknown): asserts keys is readonly { key: string; maxAttempts: number }[] {
  if (!Array.isArray(keys)) throw invalid('keys must be an array')
  const seen = new Set<string>()
  for (const x of keys) {
    writeText('key', x?.key)
    count('maxAttempts', x.maxAttempts)
    if (seen.has(x.key)) throw invalid('keys must be distinct')
    seen.add(x.key)
  }
}

/** Byte order (= PostgreSQL `COLLATE "C"`): every limiter statement locks shared keys in one order. */
export function byteOrder<T extends { key: string }>(keys: readonly T[]): readonly T[] {
  return keys.length === 1
    ? keys
    : [...keys].sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)))
}

/** An audit record that can be stored (`batchId` unchecked when the store sets it itself). */
export function auditRecord(record: AuditRecord, checkBatchId = true): void {
  writeText('id', record.id)
  time('at', record.at)
  writeText('event', record.event)
  writeText('userId', record.userId, true)
  if (checkBatchId) writeText('batchId', record.batchId, true)
  writeText('identifierHash', record.identifierHash, true)
  writeText('clientHash', record.clientHash, true)
  oneOf('outcome', record.outcome, ['success', 'failure', 'info'])
  writeText('reason', record.reason, true)
  // JSON.stringify escapes U+0000 as `\u0000`, which PostgreSQL `jsonb` refuses.
  if (
    record.data !== null &&
    (typeof record.data !== 'object' || JSON.stringify(record.data).includes('\\u0000'))
  ) {
    throw invalid('data must be a plain object without NUL characters')
  }
}

/** The input of `createBatch` on every dialect: its audit row, the batch, each code's id and digest. */
export function newBatch(batch: NewBatch, codes: readonly NewCode[], audit: AuditRecord | undefined): void {
  if (audit !== undefined) auditRecord(audit)
  writeText('batch.id', batch.id)
  writeText('batch.userId', batch.userId)
  writeText('batch.keyId', batch.keyId)
  time('batch.createdAt', batch.createdAt)
  if (batch.expiresAt !== null) time('batch.expiresAt', batch.expiresAt)
  for (const c of codes) {
    writeText('code.id', c.id)
    bytes(c.digest)
  }
}
