/**
 * The retention aggregate of the store port (see `store.ts`): {@link RetentionStore} and
 * {@link purgedAudit}, the audit row of one purge chunk.
 */
import type { AuditRecord } from './store-audit.ts'

/**
 * Bounded deletes of rows nothing depends on any more: dead codes, empty ended batches, idle
 * limiter counters, old audit rows. The service calls each method in a loop of chunks (`runPurge`)
 * until a call deletes fewer than `limit`.
 *
 * Concurrency: each call deletes at most `limit` rows in one short statement, or in one
 * chunk-sized transaction with its audit row; never one unbounded delete, never a long
 * transaction. Eligibility is checked again by the delete itself, so a row that changed after it
 * was picked stays. Safe beside itself and beside every other method of the store; idempotent.
 */
export interface RetentionStore {
  /**
   * Deletes at most `limit` code rows that can never verify again and whose end is older than
   * `before`: codes `used`/`invalidated`/`deleted` with their change time `< before`, codes of a
   * non-active batch whose `endedAt < before`, and codes whose `expiresAt < before`.
   * Eligibility is re-checked inside the delete. Returns the number deleted.
   *
   * `audit`, when given, is appended in the same transaction when at least one row was deleted,
   * with `data.deleted` set to the number deleted ({@link purgedAudit}).
   *
   * Concurrency: safe beside itself and beside `consumeCode`; never deletes a code that could
   * still verify. Idempotent; holds no long transaction.
   */
  purgeCodes(input: { before: number; limit: number; audit?: AuditRecord }): Promise<number>

  /**
   * Deletes at most `limit` non-active batches with no code rows left and `endedAt < before`.
   * Returns the number deleted; `audit` as for `purgeCodes`.
   */
  purgeEmptyBatches(input: { before: number; limit: number; audit?: AuditRecord }): Promise<number>

  /**
   * Deletes at most `limit` limiter counters that nothing depends on any more: last reserved
   * before `before` and not locked at or after it (`lockedUntil < before`). A later failure on the
   * key starts from zero. Returns the number deleted; idempotent, one short statement per call.
   */
  purgeAttempts(input: { before: number; limit: number }): Promise<number>

  /** Deletes at most `limit` audit records with `at < before`. Returns the number deleted. */
  purgeAudit(input: { before: number; limit: number }): Promise<number>
}

/** The audit row of a purge chunk: `data.deleted` set to the rows it deleted. */
export function purgedAudit(audit: AuditRecord, deleted: number): AuditRecord {
  return { ...audit, data: { ...audit.data, deleted } }
}
