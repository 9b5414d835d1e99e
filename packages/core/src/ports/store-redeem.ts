/**
 * The optional redeem aggregate of the store port (see `store.ts`): {@link RedeemStore}, its
 * records, and {@link composeRedeemCode}, the same redeem from the other aggregates.
 */
import { type AttemptKey, type AttemptState, type AttemptStore, behindReservation } from './store-attempts.ts'
import type { AuditRecord, AuditStore } from './store-audit.ts'
import type { BatchStore, ConsumedCode } from './store-batches.ts'

/** The input of {@link RedeemStore.redeemCode}. */
export interface RedeemCodeInput {
  userId: string
  digests: readonly Uint8Array[]
  now: number
  /** The limiter counters, reserved all or nothing exactly as by `reserveAttempts`. */
  keys: readonly AttemptKey[]
  /** On a consume these counters are deleted; every other key gets its reservation back. */
  reset: readonly string[]
  /**
   * Appended when a code is consumed, with `batchId` set to the code's batch and
   * `data.remaining` to the active codes left in it.
   */
  audit: AuditRecord
}

/** The outcome of {@link RedeemStore.redeemCode}. */
export type RedeemCodeOutcome =
  /** Some key was locked or full: nothing changed; `states` as `reserveAttempts` returns them. */
  | { outcome: 'denied'; states: AttemptState[] }
  /** Reserved, looked up, nothing usable: the reservations stay as failures; `states` after the call. */
  | { outcome: 'missed'; states: AttemptState[] }
  /**
   * Reserved and consumed; counters settled and the audit row appended. `auditFailed` is set by
   * {@link composeRedeemCode} when only the audit append failed: the code stays consumed.
   */
  | { outcome: 'consumed'; code: ConsumedCode; auditFailed?: unknown }

/**
 * The optional one-call redeem, for stores that can do a whole redeem in one round trip.
 *
 * Contract: `redeemCode(input)` returns what {@link composeRedeemCode}`(store, input)` returns over
 * the other aggregates for the same state, and leaves the same state behind. Concurrency: that of
 * the composition (see `redeemCode`); a store that runs it as one transaction also makes it all or
 * nothing.
 */
export interface RedeemStore {
  /**
   * Optional: one redeem in one call, with the result of `reserveAttempts(keys)`, then
   * `consumeCode`, then on a consume `settleAttempts({ reset, release: the other keys })` and
   * `appendAudit(audit)`, and nothing more. The service uses it when present (one round trip
   * instead of four) and composes the four calls otherwise; {@link composeRedeemCode} is that
   * composition.
   *
   * Concurrency: the guarantees of `reserveAttempts` and `consumeCode` hold (N concurrent calls
   * with one code: one `consumed`; N concurrent wrong guesses on a fresh key with `maxAttempts`
   * m: exactly m `missed`, the rest `denied`). A store that runs it as one transaction makes it
   * all or nothing: no reservation outlives a failed call.
   */
  redeemCode?(input: RedeemCodeInput): Promise<RedeemCodeOutcome>
}

/**
 * `redeemCode` from the store's other methods, for stores without a one-call version:
 * {@link behindReservation} around `consumeCode`, then the audit row. Not one transaction: a crash
 * between the calls can leave a reservation held, which the service heals into an ordinary
 * lockout.
 *
 * @example
 * ```ts
 * const outcome = await composeRedeemCode(store, { userId, digests, now, keys, reset, audit })
 * ```
 */
export async function composeRedeemCode(
  store: BatchStore & AttemptStore & AuditStore,
  input: RedeemCodeInput,
): Promise<RedeemCodeOutcome> {
  const { userId, digests, now, audit } = input
  const r = await behindReservation(store, input, () => store.consumeCode({ userId, digests, now }))
  if (r.outcome !== 'found') return r
  const code = r.value
  try {
    await store.appendAudit(consumedAudit(audit, code))
  } catch (error) {
    return { outcome: 'consumed', code, auditFailed: error }
  }
  return { outcome: 'consumed', code }
}

/** The audit row of a consume: `batchId` and `data.remaining` from the consumed code. */
export function consumedAudit(audit: AuditRecord, code: ConsumedCode): AuditRecord {
  return { ...audit, batchId: code.batchId, data: { ...audit.data, remaining: code.remaining } }
}
