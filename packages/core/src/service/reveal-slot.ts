/**
 * The reveal slot in the cache: where a new batch's sealed codes wait for their channels (the
 * view, each offered download format, the email), each usable once while the slot lives. Sealing
 * and opening are in `reveal.ts`; this module finds, checks and drops slots, and decides each
 * channel's one use in the store, never in the cache (R-PT-2, R-CACHE-1).
 */
import { isExpired } from '../domain/batch-state.ts'
import { keyedLabel } from '../domain/hash.ts'
import { RecoveryCodesError } from '../errors.ts'
import type { BatchSummary } from '../ports/store.ts'
import { systemHmacSha256 } from '../runtime.ts'
import { errorName, type ServiceContext } from './context.ts'
import { availableExportFormats } from './export.ts'
import { openReveal, parseRevealToken, type RevealHandle, type SealedSlotContent } from './reveal.ts'
import type { RevealChannel } from './types.ts'

/** Cache key of a slot. */
export const slotKey = (slotId: string) => `rc:reveal:${slotId}`
/** Cache key of the pointer from an owner (keyed user label) to their current slot id. */
export const slotPointerKey = (owner: string) => `rc:reveal-owner:${owner}`

/**
 * The store counter that records the one use of `channel` of a slot: a keyed label of the slot id
 * and the channel, so the store never learns which cache entry holds the slot. A counter with a
 * budget of one is taken atomically by exactly one caller (`reserveAttempts`), on every store and
 * across processes. It outlives the slot by far (`purge.attemptRetentionDays` is at least a day,
 * `reveal.ttlSeconds` at most 900 s), so a used channel never reopens while its slot lives.
 */
export const channelClaimKey = (labelKey: Uint8Array, slotId: string, channel: SlotClaim) =>
  `reveal:${keyedLabel(labelKey, 'reveal-channel', `${slotId}:${channel}`, systemHmacSha256)}`

/** What a slot's one-use claims are for: its channels, and the confirm of a pending batch. */
export type SlotClaim = RevealChannel | 'confirm'

/** An opened slot: its content, and the batch as the channels present it. */
export interface OpenedSlot {
  handle: RevealHandle
  content: SealedSlotContent
  /** When the batch was made and when it expires, for the download header. */
  batch: { createdAt: number; expiresAt: number | null }
  /**
   * `true` while the slot's batch waits for `rc.confirm`: not in the store, the user's current
   * batch still active. `false` once the slot's batch is the active one.
   */
  pending: boolean
}

/** What {@link createRevealSlots} returns. */
export interface RevealSlots {
  /**
   * The channels of every slot of this service, frozen: `view`, each offered export format
   * (`txt`, `csv`, `pdf` when configured), `email` when email is enabled.
   */
  readonly channels: readonly RevealChannel[]
  /**
   * Opens the user's slot for `token`: a pending batch's slot while its confirm is unused,
   * otherwise checked against the active batch. Throws `REVEAL_UNAVAILABLE` when it is gone, and
   * drops a slot whose batch is no longer active.
   */
  openSlot(userId: string, token: unknown, now: number): Promise<OpenedSlot>
  /**
   * Whether `channel` of the slot is used. A read, deciding nothing: it spares a repeat the work
   * (a PDF rendering) before {@link RevealSlots.claimChannel} refuses it anyway.
   */
  isUsed(slotId: string, channel: SlotClaim, now: number): Promise<boolean>
  /**
   * Uses `channel` of the slot once: `true` for exactly one caller, however many race, on every
   * store; `false` for every other. Never given back: a failure after the claim (a mail that
   * bounced) does not reopen the channel (R-PT-2).
   */
  claimChannel(slotId: string, channel: SlotClaim, now: number): Promise<boolean>
  /** The store counter key of one claim of a slot (to give back a confirm that failed). */
  claimKey(slotId: string, channel: SlotClaim): string
  /** The channels of the slot already used, in {@link RevealSlots.channels} order. */
  usedChannels(slotId: string, now: number): Promise<RevealChannel[]>
  /** Removes a slot; a failure is logged, never thrown. */
  dropSlot(slotId: string): Promise<void>
  /**
   * Drops the slot once every channel is used (R-PT-3), from the store's counters read after this
   * call's own claim: of two callers winning the last two channels at once, at least one reads
   * both as used, so a spent slot never outlives its last use. A slot whose batch is `pending`
   * stays until it is confirmed (the confirm needs it) or expires.
   */
  closeSlotIfSpent(slotId: string, won: SlotClaim, now: number, pending: boolean): Promise<void>
  /** Removes the user's current slot and its pointer; a failure is logged, never thrown. */
  dropOwnerSlot(userId: string): Promise<void>
}

/** Builds the reveal-slot functions of one service. */
export function createRevealSlots(sc: ServiceContext): RevealSlots {
  const { config, store, cache, logger, labelKey, userLabel, guardStore } = sc
  const channels: readonly RevealChannel[] = Object.freeze([
    'view',
    ...availableExportFormats(config.export),
    ...(config.email.enabled && config.mailer ? (['email'] as const) : []),
  ])

  const revealGone = () =>
    new RecoveryCodesError(
      'REVEAL_UNAVAILABLE',
      'These codes are no longer available. Generate a new batch to get new codes.',
    )

  async function openSlot(userId: string, token: unknown, now: number): Promise<OpenedSlot> {
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
    const pendingBatch = content.pending
      ? {
          createdAt: content.pending.generatedAt,
          expiresAt:
            content.pending.lifetimeMs === null
              ? null
              : content.pending.generatedAt + content.pending.lifetimeMs,
        }
      : null
    if (pendingBatch && !(await isUsed(handle.slotId, 'confirm', now))) {
      return { handle, content, batch: pendingBatch, pending: true }
    }
    const active: BatchSummary | null = await guardStore(() => store.getActiveBatch(userId))
    if (pendingBatch && active?.id !== content.batchId) {
      // Its confirm is claimed but not committed yet (or failed and is about to be given back):
      // still pending, and never dropped here, or a confirm racing the winner would destroy the
      // slot the winner is activating. (A confirmed batch that ended since lost its slot then.)
      return { handle, content, batch: pendingBatch, pending: true }
    }
    if (!active || active.id !== content.batchId || isExpired(active.expiresAt, now)) {
      await dropSlot(handle.slotId)
      throw revealGone()
    }
    return { handle, content, batch: active, pending: false }
  }

  async function dropSlot(slotId: string): Promise<void> {
    try {
      await cache.removeItem(slotKey(slotId))
    } catch (error) {
      logger.warn('recovery-codes: reveal slot removal failed', { error: errorName(error) })
    }
  }

  const claimKey = (slotId: string, channel: SlotClaim) => channelClaimKey(labelKey, slotId, channel)

  async function isUsed(slotId: string, channel: SlotClaim, now: number): Promise<boolean> {
    const state = await guardStore(() => store.getAttempts(claimKey(slotId, channel)))
    return state.failures >= 1 || now < state.lockedUntil
  }

  async function claimChannel(slotId: string, channel: SlotClaim, now: number): Promise<boolean> {
    const keys = [{ key: claimKey(slotId, channel), maxAttempts: 1 }]
    // A denied reservation changes nothing; an allowed one is never settled, so it stays taken.
    return (await guardStore(() => store.reserveAttempts({ keys, now }))).allowed
  }

  async function usedChannels(slotId: string, now: number): Promise<RevealChannel[]> {
    const used = await Promise.all(channels.map((c) => isUsed(slotId, c, now)))
    return channels.filter((_, i) => used[i])
  }

  async function closeSlotIfSpent(
    slotId: string,
    won: SlotClaim,
    now: number,
    pending: boolean,
  ): Promise<void> {
    if (pending) return
    try {
      const others = channels.filter((c) => c !== won)
      const used = await Promise.all(others.map((c) => isUsed(slotId, c, now)))
      if (used.every(Boolean)) await dropSlot(slotId)
    } catch (error) {
      // The channel was used and its answer is on its way: a failed read leaves the slot to its TTL.
      logger.warn('recovery-codes: reveal slot check failed', { error: errorName(error) })
    }
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

  return {
    channels,
    openSlot,
    isUsed,
    claimChannel,
    claimKey,
    usedChannels,
    dropSlot,
    closeSlotIfSpent,
    dropOwnerSlot,
  }
}
