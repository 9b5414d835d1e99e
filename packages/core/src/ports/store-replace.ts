/**
 * The optional replacement aggregate of the store port (see `store.ts`): {@link ReplaceStore}.
 * NIST SP 800-63B-4 §4.2.1.1: after a saved recovery code is used, the CSP issues a new one.
 * `rc.redeem` with `replaceOnUse` appends the replacement to the batch the used code came from.
 */
import type { AuditRecord } from './store-audit.ts'
import type { NewCode } from './store-batches.ts'

/** The input of {@link ReplaceStore.addCodes}. */
export interface AddCodesInput {
  userId: string
  batchId: string
  /** One or more codes; ids unique in the store, digests unique within the user's rows. */
  codes: readonly NewCode[]
  now: number
  /** Appended in the same transaction when the codes are written (and not at all otherwise). */
  audit?: AuditRecord
}

/**
 * Appending codes to a live batch. Optional: `replaceOnUse` refuses a store without it.
 *
 * Concurrency: one compare-and-set. `addCodes` writes the codes, raises the batch's `issued` by
 * their number and appends `audit`, all or nothing, only while the batch is the user's `active`
 * batch and unexpired (`expiresAt === null || now < expiresAt`), checked by the write itself;
 * it returns `true` when it wrote them. A batch that was superseded, disabled, deleted or has
 * expired (or belongs to another user) gets `false` and nothing changes. A code written by a call
 * that returned `true` is usable at once (`consumeCode` finds it); after a `createBatch` that
 * superseded the batch has resolved, no call writes into it any more.
 */
export interface ReplaceStore {
  addCodes(input: AddCodesInput): Promise<boolean>
}
