/**
 * Input checks: strings that cannot be stored are refused before any SQL runs (writes), or read as
 * "not found" (reads), identically on every dialect. PostgreSQL `text` cannot hold U+0000.
 */
import {
  type AddCodesInput,
  type AuditRecord,
  type ImportedBatch,
  type NewBatch,
  type NewCode,
  RecoveryCodesError,
} from '@recovery-codes/core'
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

/** Bytes of every digest `importBatch` writes (an HMAC-SHA-256, or a legacy digest cut to that). */
export const IMPORT_DIGEST_BYTES = 32

/**
 * The input of `importBatch` on every dialect (see `ImportStore` in core): the audit row, the
 * batch's fields and lifecycle (`endedAt` set exactly when it is not `active`), at least one code,
 * and each code's id, 32-byte digest, state and `usedAt` (set exactly when `used`), ids and
 * digests distinct within the batch. Messages name the field, never a value.
 */
export function importedBatch(batch: ImportedBatch, audit: AuditRecord): void {
  if (typeof batch !== 'object' || batch === null) throw invalid('batch must be an object')
  if (typeof audit !== 'object' || audit === null) throw invalid('audit must be an audit record')
  auditRecord(audit)
  newBatch(batch, [], undefined)
  oneOf('batch.status', batch.status, ['active', 'superseded', 'disabled', 'deleted'])
  if (batch.status === 'active') {
    if (batch.endedAt !== null) throw invalid('batch.endedAt must be null for an active batch')
  } else time('batch.endedAt', batch.endedAt)
  if (!Array.isArray(batch.codes) || batch.codes.length === 0) {
    throw invalid('batch.codes must be a non-empty array')
  }
  const ids = new Set<string>()
  const digests = new Set<string>()
  for (const c of batch.codes) {
    if (typeof c !== 'object' || c === null) throw invalid('a code must be an object')
    writeText('code.id', c.id)
    if (!(c.digest instanceof Uint8Array) || c.digest.byteLength !== IMPORT_DIGEST_BYTES) {
      throw invalid(`code.digest must be a ${IMPORT_DIGEST_BYTES}-byte Uint8Array`)
    }
    oneOf('code.state', c.state, ['active', 'used', 'invalidated', 'deleted'])
    if (c.state === 'used') time('code.usedAt', c.usedAt)
    else if (c.usedAt !== null) throw invalid('code.usedAt must be null for a code that is not used')
    const key = bytes(c.digest).toString('latin1')
    if (ids.has(c.id)) throw invalid('code ids must be distinct within the batch')
    if (digests.has(key)) throw invalid('digests must be distinct within the batch')
    ids.add(c.id)
    digests.add(key)
  }
}

/** Bytes of every digest `addCodes` writes (an HMAC-SHA-256, as the service makes them). */
export const ADDED_DIGEST_BYTES = 32

/**
 * The input of `addCodes` on every dialect (see `ReplaceStore` in core): an integer `now`, the
 * audit row when given, at least one code, each with an id and a 32-byte digest, ids and digests
 * distinct within the call. `userId` and `batchId` are not checked: a value no row can carry
 * matches no batch, so the call is `false` (see {@link unreadable}). Messages name the field,
 * never a value.
 */
export function addedCodes(input: AddCodesInput): void {
  if (typeof input !== 'object' || input === null) throw invalid('input must be an object')
  time('now', input.now)
  if (input.audit !== undefined) auditRecord(input.audit)
  if (!Array.isArray(input.codes) || input.codes.length === 0)
    throw invalid('codes must be a non-empty array')
  const ids = new Set<string>()
  const digests = new Set<string>()
  for (const c of input.codes) {
    if (typeof c !== 'object' || c === null) throw invalid('a code must be an object')
    writeText('code.id', c.id)
    if (!(c.digest instanceof Uint8Array) || c.digest.byteLength !== ADDED_DIGEST_BYTES) {
      throw invalid(`code.digest must be a ${ADDED_DIGEST_BYTES}-byte Uint8Array`)
    }
    const key = bytes(c.digest).toString('latin1')
    if (ids.has(c.id)) throw invalid('code ids must be distinct within the call')
    if (digests.has(key)) throw invalid('digests must be distinct within the call')
    ids.add(c.id)
    digests.add(key)
  }
}
