/**
 * The batch and code lifecycles as transition tables (data), the checks built on them, and
 * expiry, which is derived from `expiresAt` and never stored as a state.
 */
import { RecoveryCodesError } from '../errors.ts'
import type { BatchStatus, BatchSummary, CodeState, NewBatch } from '../ports/store.ts'

/** A batch status, or `purged`: the terminal target of purge (the row is gone, so never stored). */
export type BatchLifecycleState = BatchStatus | 'purged'

/** A code state, or `purged`: the terminal target of purge (the row is gone, so never stored). */
export type CodeLifecycleState = CodeState | 'purged'

/**
 * Legal batch transitions: `active → superseded | disabled | deleted`, and every ended batch
 * `→ purged`. Anything not listed is illegal, self-transitions included.
 */
export const BATCH_TRANSITIONS: Readonly<Record<BatchLifecycleState, readonly BatchLifecycleState[]>> =
  Object.freeze({
    active: Object.freeze(['superseded', 'disabled', 'deleted'] as const),
    superseded: Object.freeze(['purged'] as const),
    disabled: Object.freeze(['purged'] as const),
    deleted: Object.freeze(['purged'] as const),
    purged: Object.freeze([] as const),
  })

/**
 * Legal code transitions: `active → used | invalidated | deleted | purged` (purged only when its
 * batch has ended), and every ended code `→ purged`. Anything not listed is illegal.
 */
export const CODE_TRANSITIONS: Readonly<Record<CodeLifecycleState, readonly CodeLifecycleState[]>> =
  Object.freeze({
    active: Object.freeze(['used', 'invalidated', 'deleted', 'purged'] as const),
    used: Object.freeze(['purged'] as const),
    invalidated: Object.freeze(['purged'] as const),
    deleted: Object.freeze(['purged'] as const),
    purged: Object.freeze([] as const),
  })

/** Whether the batch table allows `from → to`. Unknown states are never allowed. */
export function canTransitionBatch(from: BatchLifecycleState, to: BatchLifecycleState): boolean {
  return allowed(BATCH_TRANSITIONS, from, to)
}

/** Whether the code table allows `from → to`. Unknown states are never allowed. */
export function canTransitionCode(from: CodeLifecycleState, to: CodeLifecycleState): boolean {
  return allowed(CODE_TRANSITIONS, from, to)
}

/**
 * Throws unless the batch table allows `from → to`.
 *
 * @throws RecoveryCodesError `ILLEGAL_TRANSITION`, naming both states.
 * @example assertBatchTransition('superseded', 'active') // throws
 */
export function assertBatchTransition(from: BatchLifecycleState, to: BatchLifecycleState): void {
  if (!canTransitionBatch(from, to)) {
    throw new RecoveryCodesError('ILLEGAL_TRANSITION', `illegal batch transition: ${from} → ${to}`)
  }
}

/**
 * Throws unless the code table allows `from → to`.
 *
 * @throws RecoveryCodesError `ILLEGAL_TRANSITION`, naming both states.
 * @example assertCodeTransition('used', 'active') // throws
 */
export function assertCodeTransition(from: CodeLifecycleState, to: CodeLifecycleState): void {
  if (!canTransitionCode(from, to)) {
    throw new RecoveryCodesError('ILLEGAL_TRANSITION', `illegal code transition: ${from} → ${to}`)
  }
}

/**
 * Whether a batch with this `expiresAt` has expired at `now`: valid iff `now < expiresAt`;
 * `null` never expires.
 *
 * @example isExpired(1000, 999) // false
 * @example isExpired(1000, 1000) // true
 */
export function isExpired(expiresAt: number | null, now: number): boolean {
  return expiresAt !== null && !(now < expiresAt)
}

/**
 * Whether a code can be redeemed or verified at `now`: the code and its batch are both
 * `active` and the batch has not expired. Stores apply the same predicate in one statement.
 */
export function isCodeUsable(input: {
  codeState: CodeState
  batchStatus: BatchStatus
  expiresAt: number | null
  now: number
}): boolean {
  return (
    input.codeState === 'active' && input.batchStatus === 'active' && !isExpired(input.expiresAt, input.now)
  )
}

function allowed<S extends string>(table: Readonly<Record<S, readonly S[]>>, from: S, to: S): boolean {
  return Object.hasOwn(table, from) && table[from].includes(to)
}

/**
 * The summary of a batch just created with `issued` codes: `active`, every count but `issued` and
 * `unused` zero, no flag set. For stores that keep summaries as records (`memoryStore`).
 *
 * @example freshBatchSummary({ id: 'b1', userId: 'u1', keyId: 'k1', createdAt: 0, expiresAt: null }, 10).unused // 10
 */
export function freshBatchSummary(batch: NewBatch, issued: number): BatchSummary {
  const { id, userId, keyId, createdAt, expiresAt } = batch
  return {
    id,
    userId,
    keyId,
    status: 'active',
    createdAt,
    expiresAt,
    endedAt: null,
    issued,
    unused: issued,
    used: 0,
    invalidated: 0,
    deleted: 0,
    viewedAt: null,
    downloadedAt: null,
    emailedAt: null,
    verifiedAt: null,
    lastUsedAt: null,
  }
}
