/**
 * The optional import aggregate of the store port (see `store.ts`): {@link ImportStore} and its
 * records. It writes batches carried over from another system (`rc.importCodes`), with the
 * lifecycle they had there, next to the batches this library generates.
 */
import type { AuditRecord } from './store-audit.ts'
import type { BatchStatus, CodeState, NewBatch } from './store-batches.ts'

/** One imported code: its digest (under the current pepper or a legacy scheme) and its state. */
export interface ImportedCode {
  id: string
  /** 32 bytes, like every digest of the store. */
  digest: Uint8Array
  state: CodeState
  /** When it was used, for a `used` code; `null` otherwise. */
  usedAt: number | null
}

/** A batch as the source had it: status, end and expiry kept, every code with its own state. */
export interface ImportedBatch extends NewBatch {
  status: BatchStatus
  /** When the batch left `active`; `null` for an `active` batch. */
  endedAt: number | null
  codes: readonly ImportedCode[]
}

/**
 * What {@link ImportStore.importBatch} did: `imported` (written), `exists` (a batch with this id is
 * there already: nothing written), `conflict` (an `active` batch for a user who has one already:
 * nothing written).
 */
export type ImportBatchOutcome = 'imported' | 'exists' | 'conflict'

/**
 * Writing imported batches. Optional: `rc.importCodes` refuses to run on a store without it.
 *
 * Concurrency: `importBatch` is all or nothing (batch, codes and the audit row in one transaction).
 * Under N concurrent calls with one batch id, across connections and processes, exactly one gets
 * `imported` and the others `exists`, so a source imported twice at once writes every code once.
 * It never supersedes: the one-active-batch-per-user rule is checked by the write itself.
 */
export interface ImportStore {
  /**
   * Writes `batch` and its codes as they are, with `audit` in the same transaction.
   *
   * @returns `exists` when a batch with `batch.id` exists (for any user), `conflict` when
   *   `batch.status` is `active` and the user has an `active` batch, else `imported`.
   * @throws when a code id exists already or a digest repeats within the user's rows; nothing is
   *   written then.
   */
  importBatch(batch: ImportedBatch, audit: AuditRecord): Promise<ImportBatchOutcome>
}
