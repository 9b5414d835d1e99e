/** Reading rows back: timestamps, batch summaries, limiter counters, audit records. */
import {
  type AttemptState,
  type AuditRecord,
  type BatchStatus,
  type BatchSummary,
  RecoveryCodesError,
} from '@recovery-codes/core'

/** Reads a timestamp column (integer ms in SQLite; `Date` from a PostgreSQL `timestamptz`). */
export function toMs(v: unknown): number {
  if (v instanceof Date) return v.getTime()
  if (typeof v === 'number') return v
  if (typeof v === 'bigint') return Number(v)
  if (typeof v === 'string') return /^-?\d+$/.test(v) ? Number(v) : Date.parse(v)
  throw new RecoveryCodesError('INTERNAL', 'unexpected timestamp value from the database')
}

const toMsOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : toMs(v))

/** The stored columns of `rc_batches` a summary is read from (plus `live_used`, `live_last_used_at`). */
export const BATCH_COLUMNS = [
  'id',
  'user_id',
  'key_id',
  'status',
  'created_at',
  'expires_at',
  'ended_at',
  'issued',
  'purged_used',
  'invalidated',
  'deleted',
  'viewed_at',
  'downloaded_at',
  'emailed_at',
  'verified_at',
  'purged_last_used_at',
] as const

/**
 * A batch row as a {@link BatchSummary}. A redeem writes only its code row, so the use counts are
 * derived: `used` = the used codes already purged (`purged_used`, folded in by the purge that
 * deleted them) + the used code rows still there (`live_used`); `unused` = what is left of `issued`.
 */
export function summary(r: Record<string, unknown>): BatchSummary {
  const used = Number(r.purged_used) + Number(r.live_used ?? 0)
  const invalidated = Number(r.invalidated)
  const deleted = Number(r.deleted)
  const purgedLast = toMsOrNull(r.purged_last_used_at)
  const liveLast = toMsOrNull(r.live_last_used_at)
  return {
    id: r.id as string,
    userId: r.user_id as string,
    keyId: r.key_id as string,
    status: r.status as BatchStatus,
    createdAt: toMs(r.created_at),
    expiresAt: toMsOrNull(r.expires_at),
    endedAt: toMsOrNull(r.ended_at),
    issued: Number(r.issued),
    unused: Number(r.issued) - used - invalidated - deleted,
    used,
    invalidated,
    deleted,
    viewedAt: toMsOrNull(r.viewed_at),
    downloadedAt: toMsOrNull(r.downloaded_at),
    emailedAt: toMsOrNull(r.emailed_at),
    verifiedAt: toMsOrNull(r.verified_at),
    lastUsedAt:
      purgedLast === null ? liveLast : liveLast === null ? purgedLast : Math.max(purgedLast, liveLast),
  }
}

/** A limiter counter row (missing: all zero). */
export function attempts(r: Record<string, unknown> | undefined): AttemptState {
  if (r === undefined) return { failures: 0, consecutive: 0, lockouts: 0, lockedUntil: 0 }
  return {
    failures: Number(r.failures),
    consecutive: Number(r.consecutive),
    lockouts: Number(r.lockouts),
    lockedUntil: toMs(r.locked_until),
  }
}

/** An `rc_audit_log` row as an {@link AuditRecord}. */
export function auditRow(r: Record<string, unknown>): AuditRecord {
  const data = r.data
  return {
    id: r.id as string,
    at: toMs(r.at),
    event: r.event as string,
    userId: r.user_id as string | null,
    batchId: r.batch_id as string | null,
    identifierHash: r.identifier_hash as string | null,
    clientHash: r.client_hash as string | null,
    outcome: r.outcome as AuditRecord['outcome'],
    reason: r.reason as string | null,
    data:
      data === null || data === undefined
        ? null
        : ((typeof data === 'string' ? JSON.parse(data) : data) as AuditRecord['data']),
  }
}

/** The counters of `keys`, in their order, from rows that carry a `key` (a missing row: all zero). */
export function statesOf(
  keys: readonly { key: string }[],
  rows: readonly (Record<string, unknown> & { key: string | null })[],
): AttemptState[] {
  const byKey = new Map(rows.map((r) => [r.key, r]))
  return keys.map((x) => attempts(byKey.get(x.key)))
}
