/** The batch aggregate of the store port (see `store.ts`): {@link BatchStore} and its records. */
import type { AuditRecord } from './store-audit.ts'

/** Lifecycle of a batch. `expired` is derived from `expiresAt`, never stored. */
export type BatchStatus = 'active' | 'superseded' | 'disabled' | 'deleted'

/** Lifecycle of one code. `deleted` is a soft delete; purge removes the row. */
export type CodeState = 'active' | 'used' | 'invalidated' | 'deleted'

/** The once-only flags of a batch; each can be set once. */
export type BatchFlag = 'viewed' | 'downloaded' | 'emailed' | 'verified'

/** A batch as written by `createBatch`. */
export interface NewBatch {
  id: string
  userId: string
  /** Pepper id the codes were hashed with. */
  keyId: string
  createdAt: number
  /** `null` = never expires. Valid iff `now < expiresAt`. */
  expiresAt: number | null
}

/** One code as written by `createBatch`: never the plaintext. */
export interface NewCode {
  id: string
  digest: Uint8Array
}

/** A batch with its counts, as history and status read it. */
export interface BatchSummary {
  id: string
  userId: string
  keyId: string
  status: BatchStatus
  createdAt: number
  expiresAt: number | null
  /** When the batch left `active` (superseded, disabled or deleted). */
  endedAt: number | null
  /** Total codes issued. */
  issued: number
  /** Codes still `active` (expiry not applied: callers compare `expiresAt`). */
  unused: number
  used: number
  invalidated: number
  deleted: number
  viewedAt: number | null
  downloadedAt: number | null
  emailedAt: number | null
  verifiedAt: number | null
  /** Last successful redeem in this batch. */
  lastUsedAt: number | null
}

/** A code that matched a digest and is currently usable. */
export interface CodeMatch {
  codeId: string
  batchId: string
  keyId: string
}

/** The result of a successful consume. */
export interface ConsumedCode extends CodeMatch {
  /** Active codes left in the batch after this consume. */
  remaining: number
}

/**
 * Batches and their codes: writing a batch (which supersedes the previous one), consuming and
 * retiring codes, ending a batch, the once-only flags, and the reads behind status and history.
 *
 * Concurrency: every write is one atomic step whose condition is checked by the write itself, never
 * read first and written after. `createBatch` is all or nothing (supersede, batch, codes and its
 * audit row); `consumeCode`, `setCodeState`, `endBatch` and `setBatchFlag` are compare-and-set, so
 * under N concurrent calls on one code or batch exactly one caller gets the code or `true`. A code
 * is usable only while it is `active`, its batch is `active` and `now < expiresAt`, checked in the
 * statement that consumes it. Reads change nothing and see committed writes only.
 */
export interface BatchStore {
  /**
   * Writes a batch and its codes, and supersedes the user's previous `active` batch
   * (`status = 'superseded'`, `endedAt = batch.createdAt`), all or nothing.
   *
   * `audit`, when given, is appended in the same transaction: the batch never exists without its
   * audit row, nor the row without the batch.
   *
   * Concurrency: after this resolves no code of any earlier batch can be consumed; two concurrent
   * calls for one user leave exactly one `active` batch. A failure leaves no trace.
   * Rejects when a digest repeats within the user's rows (unique `(user_id, digest)`).
   */
  createBatch(batch: NewBatch, codes: readonly NewCode[], audit?: AuditRecord): Promise<void>

  /**
   * Consumes one code: the first of `digests` that matches a code that is `active`, in the user's
   * `active` batch, and unexpired (`expiresAt === null || now < expiresAt`). Sets it `used` with
   * `usedAt = now` and returns it; `null` when nothing matches.
   *
   * Concurrency: one conditional write. Under N concurrent calls for the same code exactly one
   * caller receives it.
   */
  consumeCode(input: {
    userId: string
    digests: readonly Uint8Array[]
    now: number
  }): Promise<ConsumedCode | null>

  /**
   * Finds a usable code (same predicate as `consumeCode`) without changing it.
   */
  findCode(input: { userId: string; digests: readonly Uint8Array[]; now: number }): Promise<CodeMatch | null>

  /**
   * Compare-and-set on one code: moves it from `active` to `to` only if it is still `active`.
   * Returns `true` when this call made the change; `audit`, when given, is appended with the change
   * in one transaction (and not at all when nothing changed).
   */
  setCodeState(input: {
    userId: string
    codeId: string
    to: 'invalidated' | 'deleted'
    now: number
    audit?: AuditRecord
  }): Promise<boolean>

  /**
   * Compare-and-set on a batch's status: moves an `active` batch to `to`, setting `endedAt = now`.
   * Returns `true` when this call made the change. Codes keep their own state; verification
   * checks the batch status in the same statement. `audit`, when given, is appended with the change
   * in one transaction (and not at all when nothing changed).
   */
  endBatch(input: {
    userId: string
    batchId: string
    to: 'disabled' | 'deleted'
    now: number
    audit?: AuditRecord
  }): Promise<boolean>

  /**
   * Sets a once-only flag (`viewedAt`, …) if it is unset. Returns `true` for exactly one caller
   * under concurrency. Works on a batch of any status.
   */
  setBatchFlag(input: { userId: string; batchId: string; flag: BatchFlag; now: number }): Promise<boolean>

  /** The user's `active` batch with counts, or `null`. */
  getActiveBatch(userId: string): Promise<BatchSummary | null>

  /**
   * The user's batches, newest first (`createdAt` desc, then `id` desc), `offset`/`limit` applied
   * in the store; `total` counts all the user's batches.
   */
  listBatches(input: {
    userId: string
    offset: number
    limit: number
  }): Promise<{ items: BatchSummary[]; total: number }>
}
