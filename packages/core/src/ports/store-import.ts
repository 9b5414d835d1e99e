/**
 * The optional import aggregate of the store port (see `store.ts`): {@link ImportStore} and its
 * records. It writes batches carried over from another system (`rc.importCodes`), with the
 * lifecycle they had there, next to the batches this library generates.
 */
import type { AuditRecord } from './store-audit.ts'
import type { BatchStatus, CodeState, NewBatch } from './store-batches.ts'

/** One imported code: its digest (under the current pepper or a legacy scheme) and its state. */
export interface ImportedCode {
  /** Unique among every code of the store, like the ids `createBatch` writes. */
  id: string
  /** 32 bytes, like every digest of the store; unique within the user's rows. */
  digest: Uint8Array
  state: CodeState
  /** When it was used (an integer epoch ms) for a `used` code; `null` for every other state. */
  usedAt: number | null
}

/** A batch as the source had it: status, end and expiry kept, every code with its own state. */
export interface ImportedBatch extends NewBatch {
  status: BatchStatus
  /** When the batch left `active` (an integer epoch ms); `null` exactly for an `active` batch. */
  endedAt: number | null
  /**
   * At least one; ids and digests distinct within the list. An empty batch is refused: the service
   * never writes one (`rc.importCodes` takes 1 to 1,000 codes per batch), an empty `active` batch
   * would stand in for a usable one, and `checkStoreInvariants` holds every batch to `issued >= 1`.
   */
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
 * It never supersedes: the one-active-batch-per-user rule is checked by the write itself, so of
 * two concurrent `active` imports for one user (different ids) one gets `imported` and the other
 * `conflict`, and a concurrent `createBatch` and `active` import for one user leave exactly one
 * `active` batch (`createBatch`'s: it supersedes an import that committed first, and an import
 * that comes second is a `conflict`).
 *
 * Once written, an imported batch is like any other: its summary counts its code rows by state
 * (`issued`, `unused`, `used`, `invalidated`, `deleted`; `lastUsedAt` the latest `usedAt`), an
 * `active` code of an `active`, unexpired batch is consumed exactly once, and purge, supersede,
 * `endBatch` and `setCodeState` treat it as they treat a generated batch. The source does not say
 * when a code died, so for purge every code of a batch that ended is dead since the batch's
 * `endedAt`, and an `invalidated` or `deleted` code of an `active` batch since the batch's
 * `createdAt`; a `used` code of an `active` batch stays until the batch ends or expires, as a
 * redeemed one does.
 */
export interface ImportStore {
  /**
   * Writes `batch` and its codes as they are, with `audit` in the same transaction.
   *
   * Checks in this order: malformed input throws `RecoveryCodesError('INVALID_INPUT')` before any
   * write (ids, `userId` or `keyId` not non-empty strings, a status or state not of the port,
   * times not safe integers, `endedAt` not `null` exactly when `active`, `usedAt` not set exactly
   * on `used` codes, a digest not a 32-byte `Uint8Array`, no codes, a code id or a digest twice in
   * `codes`, a malformed `audit`); then `exists`; then `conflict`; then the write.
   *
   * @returns `exists` when a batch with `batch.id` exists (for any user; before `conflict`, so an
   *   imported active batch imported again is `exists`), `conflict` when `batch.status` is
   *   `active` and the user has an `active` batch, else `imported`. `audit` is written exactly
   *   when the result is `imported`.
   * @throws when a code id exists already or a digest repeats one of the user's rows; nothing is
   *   written then. Never with a digest in the message.
   */
  importBatch(batch: ImportedBatch, audit: AuditRecord): Promise<ImportBatchOutcome>
}
