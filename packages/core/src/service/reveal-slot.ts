/**
 * The reveal slot in the cache: where a new batch's sealed codes wait for the one view, download
 * and email. Sealing and opening are in `reveal.ts`; this module finds, checks and drops slots.
 */
import { isExpired } from '../domain/batch-state.ts'
import { RecoveryCodesError } from '../errors.ts'
import type { BatchSummary } from '../ports/store.ts'
import { errorName, type ServiceContext } from './context.ts'
import { openReveal, parseRevealToken, type RevealHandle, type SealedSlotContent } from './reveal.ts'

/** Cache key of a slot. */
export const slotKey = (slotId: string) => `rc:reveal:${slotId}`
/** Cache key of the pointer from an owner (keyed user label) to their current slot id. */
export const slotPointerKey = (owner: string) => `rc:reveal-owner:${owner}`

/** What {@link createRevealSlots} returns. */
export interface RevealSlots {
  /**
   * Opens the user's slot for `token`, checked against the active batch. Throws
   * `REVEAL_UNAVAILABLE` when it is gone, and drops a slot whose batch is no longer active.
   */
  openSlot(
    userId: string,
    token: unknown,
    now: number,
  ): Promise<{ handle: RevealHandle; content: SealedSlotContent; active: BatchSummary }>
  /** Removes a slot; a failure is logged, never thrown. */
  dropSlot(slotId: string): Promise<void>
  /**
   * Drops the slot once every enabled channel is used, judged from the batch as `openSlot` read it
   * plus the flag this call just won: no second read. A channel won concurrently in between only
   * leaves the slot to its TTL; the store's once-flags already refuse a second use.
   */
  closeSlotIfSpent(slotId: string, active: BatchSummary, won: 'downloaded' | 'emailed'): Promise<void>
  /** Removes the user's current slot and its pointer; a failure is logged, never thrown. */
  dropOwnerSlot(userId: string): Promise<void>
}

/** Builds the reveal-slot functions of one service. */
export function createRevealSlots(sc: ServiceContext): RevealSlots {
  const { config, store, cache, logger, userLabel, guardStore } = sc

  const revealGone = () =>
    new RecoveryCodesError(
      'REVEAL_UNAVAILABLE',
      'These codes are no longer available. Generate a new batch to get new codes.',
    )

  async function openSlot(userId: string, token: unknown, now: number) {
    const handle = parseRevealToken(token)
    if (!handle) throw revealGone()
    const owner = userLabel(userId)
    let raw: unknown
    try {
      raw = await cache.getItem(slotKey(handle.slotId))
    } catch (error) {
      logger.warn('recovery-codes: reveal slot read failed', { error: errorName(error) })
      throw revealGone()
    }
    const content = openReveal(handle, raw, owner, now)
    if (!content) throw revealGone()
    const active = await guardStore(() => store.getActiveBatch(userId))
    if (!active || active.id !== content.batchId || isExpired(active.expiresAt, now)) {
      await dropSlot(handle.slotId)
      throw revealGone()
    }
    return { handle, content, active }
  }

  async function dropSlot(slotId: string): Promise<void> {
    try {
      await cache.removeItem(slotKey(slotId))
    } catch (error) {
      logger.warn('recovery-codes: reveal slot removal failed', { error: errorName(error) })
    }
  }

  async function closeSlotIfSpent(
    slotId: string,
    active: BatchSummary,
    won: 'downloaded' | 'emailed',
  ): Promise<void> {
    const downloaded = won === 'downloaded' || active.downloadedAt !== null
    const emailed = won === 'emailed' || active.emailedAt !== null || !config.email.enabled
    if (downloaded && emailed) await dropSlot(slotId)
  }

  async function dropOwnerSlot(userId: string): Promise<void> {
    try {
      const owner = userLabel(userId)
      const previous = await cache.getItem<string>(slotPointerKey(owner))
      if (typeof previous === 'string') await dropSlot(previous)
      await cache.removeItem(slotPointerKey(owner))
    } catch (error) {
      logger.warn('recovery-codes: reveal slot removal failed', { error: errorName(error) })
    }
  }

  return { openSlot, dropSlot, closeSlotIfSpent, dropOwnerSlot }
}
