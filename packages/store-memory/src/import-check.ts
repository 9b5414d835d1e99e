/**
 * The input check of the memory store's `importBatch`: everything the port calls malformed throws
 * `INVALID_INPUT` here, before the store looks at its own rows (see `ImportStore` in core).
 */
import {
  type AuditRecord,
  type BatchStatus,
  type CodeState,
  type ImportedBatch,
  RecoveryCodesError,
} from '@recovery-codes/core'

const STATUSES: readonly unknown[] = ['active', 'superseded', 'disabled', 'deleted'] satisfies BatchStatus[]
const STATES: readonly unknown[] = ['active', 'used', 'invalidated', 'deleted'] satisfies CodeState[]

const invalid = (message: string) => new RecoveryCodesError('INVALID_INPUT', `memoryStore: ${message}`)

function text(value: unknown, name: string): void {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${name} must be a non-empty string`)
}

function time(value: unknown, name: string): void {
  if (!Number.isSafeInteger(value)) throw invalid(`${name} must be an integer epoch ms`)
}

/**
 * Checks `batch` and `audit` of an `importBatch` call; `digestKey` checks one digest (the store's
 * digest rule) and returns its key in the `(userId, digest)` index. Returns the keys, in code
 * order. Nothing is echoed into a message but field names.
 */
export function checkImportedBatch(
  batch: ImportedBatch,
  audit: AuditRecord,
  digestKey: (digest: Uint8Array) => string,
): string[] {
  if (typeof batch !== 'object' || batch === null) throw invalid('batch must be an object')
  if (typeof audit !== 'object' || audit === null) throw invalid('audit must be an audit record')
  time(audit.at, 'audit.at')
  text(audit.id, 'audit.id')
  text(batch.id, 'batch.id')
  text(batch.userId, 'batch.userId')
  text(batch.keyId, 'batch.keyId')
  time(batch.createdAt, 'batch.createdAt')
  if (batch.expiresAt !== null) time(batch.expiresAt, 'batch.expiresAt')
  if (!STATUSES.includes(batch.status)) throw invalid('batch.status is not a batch status')
  if (batch.status === 'active') {
    if (batch.endedAt !== null) throw invalid('batch.endedAt must be null for an active batch')
  } else time(batch.endedAt, 'batch.endedAt')
  if (!Array.isArray(batch.codes) || batch.codes.length === 0)
    throw invalid('batch.codes must be a non-empty array')
  const ids = new Set<string>()
  const keys = new Set<string>()
  for (const code of batch.codes) {
    if (typeof code !== 'object' || code === null) throw invalid('a code must be an object')
    text(code.id, 'code.id')
    if (!STATES.includes(code.state)) throw invalid('code.state is not a code state')
    if (code.state === 'used') time(code.usedAt, 'code.usedAt')
    else if (code.usedAt !== null) throw invalid('code.usedAt must be null for a code that is not used')
    const key = digestKey(code.digest)
    if (ids.has(code.id)) throw invalid('code ids must be distinct within the batch')
    if (keys.has(key)) throw invalid('digests must be distinct within the batch')
    ids.add(code.id)
    keys.add(key)
  }
  return [...keys]
}
