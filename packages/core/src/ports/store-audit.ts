/** The audit aggregate of the store port (see `store.ts`): {@link AuditStore} and its records. */

/** One audit record. Never a code, digest, pepper, session id or raw identifier. */
export interface AuditRecord {
  id: string
  at: number
  /** e.g. `batch.generated`, `login.failure`, `purge.run`. */
  event: string
  userId: string | null
  batchId: string | null
  /** Keyed hash of the normalised identifier, when one was submitted. */
  identifierHash: string | null
  /** Keyed hash of the client key (IP), when known. */
  clientHash: string | null
  outcome: 'success' | 'failure' | 'info'
  reason: string | null
  /** Small, JSON-serialisable, secret-free details (counts, formats). */
  data: Record<string, string | number | boolean | null> | null
}

/** One sent-email log row: who and when, never the body. */
export interface EmailLogRecord {
  id: string
  at: number
  userId: string
  batchId: string
  kind: string
  /** The recipient address as resolved by the host. */
  recipient: string
  outcome: 'sent' | 'failed'
}

/**
 * The append-only audit trail and the email log.
 *
 * Concurrency: every append is one independent insert; an audit id that exists already rejects the
 * append. Nothing here updates or deletes a row (only `purgeAudit` of `RetentionStore` deletes).
 * The audit row of a state change is not appended here: it is passed to the change itself (`audit`
 * of `createBatch`, `setCodeState`, `endBatch`, `purgeCodes`, `purgeEmptyBatches`, and of
 * `redeemCode`), which commits it in the change's own transaction, or writes neither.
 */
export interface AuditStore {
  /** Appends an audit record. The audit API is append-only; only `purgeAudit` deletes. */
  appendAudit(record: AuditRecord): Promise<void>

  /** Newest first. */
  listAudit(input: { limit: number; userId?: string; event?: string }): Promise<AuditRecord[]>

  /** Appends an email log row (no body). */
  appendEmailLog(record: EmailLogRecord): Promise<void>
}
