import type { ColumnType } from 'kysely'

/**
 * A timestamp column: UTC epoch milliseconds. SQLite stores an `integer`; PostgreSQL stores a
 * `timestamptz`, so the driver hands back a `Date`. The store converts both to epoch ms; hosts that
 * query the tables themselves should do the same.
 */
export type RcTimestamp = ColumnType<number | Date, number | Date, number | Date>

/** `rc_batches`: one row per generated batch; kept after its codes are purged (history, R-LC-5). */
export interface RcBatchesTable {
  id: string
  user_id: string
  /** Pepper id the batch's codes were hashed with. */
  key_id: string
  /** `active` | `superseded` | `disabled` | `deleted`. At most one `active` row per user (partial unique index). */
  status: string
  created_at: RcTimestamp
  expires_at: RcTimestamp | null
  /** When the batch left `active`. */
  ended_at: RcTimestamp | null
  issued: number
  /**
   * Used codes whose rows were purged (since `0005_store_v2`; the purge that deletes them adds
   * them here in the same transaction). A batch's `used` = this + its code rows in state `used`: a
   * redeem writes only its code row.
   */
  purged_used: number
  /** Codes invalidated / deleted one by one, counted in the same transaction as the change. */
  invalidated: number
  deleted: number
  viewed_at: RcTimestamp | null
  downloaded_at: RcTimestamp | null
  emailed_at: RcTimestamp | null
  verified_at: RcTimestamp | null
  /** The latest `used_at` among the purged used codes (see `purged_used`). */
  purged_last_used_at: RcTimestamp | null
}

/** `rc_codes`: one row per code; never the plaintext. */
export interface RcCodesTable {
  id: string
  user_id: string
  batch_id: string
  key_id: string
  /** Raw 32-byte HMAC (`blob` / `bytea`). Unique per user. */
  digest: Uint8Array
  /** `active` | `used` | `invalidated` | `deleted`. */
  state: string
  created_at: RcTimestamp
  expires_at: RcTimestamp | null
  used_at: RcTimestamp | null
  /**
   * When the code's row became purgeable for a reason other than expiry: it was invalidated or
   * deleted, or its batch ended, whichever came first. A redeem leaves it alone (since
   * `0005_store_v2`; it sets `state` and `used_at` only, so it touches no index): a used code's row
   * stays while its batch is active. Purge eligibility reads this column through a partial index.
   */
  changed_at: RcTimestamp | null
}

/** `rc_attempts`: limiter counters keyed by an opaque key. */
export interface RcAttemptsTable {
  key: string
  failures: number
  consecutive: number
  lockouts: number
  /** Epoch 0 when never locked. */
  locked_until: RcTimestamp
  /**
   * When the counter was last reserved (since `0004_attempts_touched`); purge deletes counters
   * untouched and unlocked for `purge.attemptRetentionDays`.
   */
  touched_at: ColumnType<number | Date, number | Date | undefined, number | Date>
}

/**
 * `rc_audit_log` (since `0005_store_v2`; it replaced `rc_audit`): append-only audit records, keyed
 * by `(at, id)` so an append lands at the right edge of one B-tree, with one index per query the
 * store serves (by user, by event).
 */
export interface RcAuditLogTable {
  id: string
  at: RcTimestamp
  event: string
  user_id: string | null
  batch_id: string | null
  identifier_hash: string | null
  client_hash: string | null
  outcome: string
  reason: string | null
  /** JSON text (SQLite) or `jsonb` (PostgreSQL). */
  data: unknown
}

/** `rc_email_log`: who was mailed what kind of message and when; never the body. */
export interface RcEmailLogTable {
  id: string
  at: RcTimestamp
  user_id: string
  batch_id: string
  kind: string
  recipient: string
  outcome: string
}

/** The tables this package owns, for a host that wants to type its own queries on them. */
export interface RecoveryCodesDatabase {
  rc_batches: RcBatchesTable
  rc_codes: RcCodesTable
  rc_attempts: RcAttemptsTable
  rc_audit_log: RcAuditLogTable
  rc_email_log: RcEmailLogTable
}
