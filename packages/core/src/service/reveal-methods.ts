/**
 * The reveal-slot methods of the service: activating a pending batch (`confirm`), and the
 * channels of a slot, each usable once (`viewCodes`, `exportCodes`, `emailCodes`), with
 * `revealStatus` and `discardReveal`. `generate` writes slots through {@link RevealMethods.writeSlot}.
 */
import { normalize } from '../domain/code-format.ts'
import { digestCandidates } from '../domain/hash.ts'
import { RecoveryCodesError } from '../errors.ts'
import { systemHmacSha256 } from '../runtime.ts'
import type { CacheLayer } from './cache-layer.ts'
import { errorName, type ServiceContext } from './context.ts'
import type { RecoveryCodes } from './create.ts'
import { EXPORT_FORMATS, pdfRendererMissing, renderExport } from './export.ts'
import { context, invalidInput, isoDate, requireUserId } from './inputs.ts'
import type { Outbox } from './outbox.ts'
import { parseRevealToken, type sealReveal } from './reveal.ts'
import { type RevealSlots, slotKey, slotPointerKey } from './reveal-slot.ts'

/** What {@link createRevealMethods} returns: the service's reveal methods and the slot writer. */
export interface RevealMethods
  extends Pick<
    RecoveryCodes,
    'confirm' | 'viewCodes' | 'exportCodes' | 'emailCodes' | 'revealStatus' | 'discardReveal'
  > {
  /**
   * Makes `sealed` the owner's reveal slot, then drops the one it replaces. Throws
   * `STORE_UNAVAILABLE` (logged) when the cache cannot keep it: the previous slot then stays.
   */
  writeSlot(owner: string, sealed: ReturnType<typeof sealReveal>): Promise<void>
}

/** Builds the reveal methods of one service. */
export function createRevealMethods(
  sc: ServiceContext,
  parts: {
    cacheLayer: CacheLayer
    revealSlots: RevealSlots
    outbox: Outbox
    exportFormats: readonly string[]
  },
): RevealMethods {
  const { config, store, clock, logger, cache, newId, guardStore, auditRecord, audit, emit } = sc
  const { bumpVersion } = parts.cacheLayer
  const { revealSlots, outbox, exportFormats } = parts
  const { openSlot, dropSlot, claimChannel, closeSlotIfSpent } = revealSlots
  const format = config.format
  const peppers = config.peppers

  async function writeSlot(owner: string, sealed: ReturnType<typeof sealReveal>): Promise<void> {
    const ttl = { ttl: config.reveal.ttlSeconds }
    let previous: unknown = null
    try {
      previous = await cache.getItem(slotPointerKey(owner))
    } catch (error) {
      logger.warn('recovery-codes: reveal slot read failed', { error: errorName(error) })
    }
    try {
      await cache.setItem(slotKey(sealed.slotId), sealed.slot, ttl)
      await cache.setItem(slotPointerKey(owner), sealed.slotId, ttl)
    } catch (error) {
      logger.warn('recovery-codes: reveal slot write failed', { error: errorName(error) })
      throw new RecoveryCodesError(
        'STORE_UNAVAILABLE',
        'The new codes could not be kept until they are saved; nothing changed and the current codes still work.',
        { cause: error },
      )
    }
    if (typeof previous === 'string' && previous !== sealed.slotId) await dropSlot(previous)
  }

  const alreadyConfirmed = () => new RecoveryCodesError('ALREADY_DONE', 'These codes are already active.')

  /** The once-only flags of the channels a pending batch used before it was written. */
  async function recordUsedChannels(userId: string, slotId: string, batchId: string, now: number) {
    const used = await revealSlots.usedChannels(slotId, now)
    if (used.includes('view')) await recordFirst(userId, batchId, 'viewed', now)
    if (used.some((c) => c !== 'view' && c !== 'email')) await recordFirst(userId, batchId, 'downloaded', now)
    if (used.includes('email')) await recordFirst(userId, batchId, 'emailed', now)
  }

  /**
   * Sets a batch's once-only flag on the first use of a channel (`viewedAt`, `downloadedAt` on the
   * first format, `emailedAt`). The channel's claim decided already; the flag is the record the
   * history shows, so a lost compare-and-set (a second format) changes nothing and bumps nothing,
   * and a failed write is logged, never thrown: the channel is used, its codes must still go out.
   */
  async function recordFirst(
    userId: string,
    batchId: string,
    flag: 'viewed' | 'downloaded' | 'emailed',
    now: number,
  ): Promise<void> {
    let first: boolean
    try {
      first = await store.setBatchFlag({ userId, batchId, flag, now })
    } catch (error) {
      logger.warn('recovery-codes: batch flag not recorded', { flag, error: errorName(error) })
      return
    }
    if (first) await bumpVersion(userId)
  }

  return {
    writeSlot,

    async confirm(inp) {
      const userId = requireUserId(inp?.userId)
      const now = clock.now()
      const { handle, content, pending } = await openSlot(userId, inp.reveal, now)
      if (!pending || !content.pending) throw alreadyConfirmed()
      const canonical = content.codes.map((c) => normalize(c, format))
      if (canonical.some((c) => c === null)) {
        // Sealed by this service in another code format: it can never be written as it is.
        await dropSlot(handle.slotId)
        throw new RecoveryCodesError('REVEAL_UNAVAILABLE', 'These codes can no longer be activated.')
      }
      const claim = revealSlots.claimKey(handle.slotId, 'confirm')
      if (!(await claimChannel(handle.slotId, 'confirm', now))) throw alreadyConfirmed()
      const { lifetimeMs, generatedAt } = content.pending
      const current = peppers[0]!
      const rows = canonical.map((c) => ({
        id: newId(now),
        digest: digestCandidates([current], userId, c!, systemHmacSha256)[0]!.digest,
      }))
      const ctx = context(inp)
      const expiresAt = lifetimeMs === null ? null : now + lifetimeMs
      let superseded: string | null = null
      try {
        superseded = (await guardStore(() => store.getActiveBatch(userId)))?.id ?? null
        const generated = auditRecord({
          at: now,
          event: 'batch.generated',
          userId,
          batchId: content.batchId,
          outcome: 'success',
          ctx,
          data: { count: rows.length, expires: expiresAt !== null, confirmed: true, generatedAt },
        })
        await guardStore(() =>
          store.createBatch(
            { id: content.batchId, userId, keyId: current.id, createdAt: now, expiresAt },
            rows,
            generated,
          ),
        )
      } catch (error) {
        // Nothing was written: the confirm is given back, so the user can try again.
        try {
          await store.settleAttempts({ reset: [claim], release: [] })
        } catch (releaseError) {
          logger.warn('recovery-codes: confirm claim release failed', { error: errorName(releaseError) })
        }
        throw error
      }
      await recordUsedChannels(userId, handle.slotId, content.batchId, now)
      await bumpVersion(userId)
      await closeSlotIfSpent(handle.slotId, 'confirm', now, false)
      await emit('generated', now, userId, content.batchId, { count: rows.length })
      return { batchId: content.batchId, supersededBatchId: superseded }
    },

    async viewCodes(inp) {
      const userId = requireUserId(inp?.userId)
      const now = clock.now()
      const { handle, content, pending } = await openSlot(userId, inp.reveal, now)
      if (!(await claimChannel(handle.slotId, 'view', now))) {
        throw new RecoveryCodesError('ALREADY_DONE', 'These codes have already been shown.')
      }
      if (!pending) await recordFirst(userId, content.batchId, 'viewed', now)
      await closeSlotIfSpent(handle.slotId, 'view', now, pending)
      await audit({ at: now, event: 'batch.viewed', userId, batchId: content.batchId, outcome: 'success' })
      await emit('viewed', now, userId, content.batchId)
      return { batchId: content.batchId, codes: content.codes }
    },

    async exportCodes(inp) {
      const userId = requireUserId(inp?.userId)
      const fmt = inp.format ?? config.export.defaultFormat
      if (!EXPORT_FORMATS.includes(fmt))
        throw invalidInput('format', `must be one of ${EXPORT_FORMATS.join(', ')}`)
      // Refused before the slot and the once-only claim are touched, so the download stays available.
      if (!exportFormats.includes(fmt)) throw pdfRendererMissing()
      const now = clock.now()
      const { handle, content, batch, pending } = await openSlot(userId, inp.reveal, now)
      const alreadyDownloaded = () =>
        new RecoveryCodesError('ALREADY_DONE', `These codes have already been downloaded as .${fmt}.`)
      // Rendered before the claim, so a failing renderer does not use up the format; a read of the
      // claim spares a repeat the rendering, the claim itself still decides a race.
      if (await revealSlots.isUsed(handle.slotId, fmt, now)) throw alreadyDownloaded()
      const file = await renderExport(
        fmt,
        {
          codes: content.codes,
          siteName: config.siteName,
          fileName: config.export.fileName,
          createdAtIso: isoDate(batch.createdAt),
          expiresAtIso: batch.expiresAt === null ? null : isoDate(batch.expiresAt),
        },
        config.export,
      )
      if (!(await claimChannel(handle.slotId, fmt, now))) throw alreadyDownloaded()
      // `downloadedAt` is the first download of any format (of a pending batch: set by its confirm).
      if (!pending) await recordFirst(userId, content.batchId, 'downloaded', now)
      await closeSlotIfSpent(handle.slotId, fmt, now, pending)
      await audit({
        at: now,
        event: 'batch.downloaded',
        userId,
        batchId: content.batchId,
        outcome: 'success',
        ctx: context(inp),
        data: { format: fmt },
      })
      await emit('downloaded', now, userId, content.batchId, { format: fmt })
      return file
    },

    async emailCodes(inp) {
      const userId = requireUserId(inp?.userId)
      if (!config.email.enabled || !config.mailer) {
        throw new RecoveryCodesError('FEATURE_DISABLED', 'Emailing recovery codes is not enabled.')
      }
      const now = clock.now()
      const { handle, content, pending } = await openSlot(userId, inp.reveal, now)
      const to = await outbox.recipientOf(userId)
      if (!(await claimChannel(handle.slotId, 'email', now))) {
        throw new RecoveryCodesError('ALREADY_DONE', 'These codes have already been emailed.')
      }
      if (!pending) await recordFirst(userId, content.batchId, 'emailed', now)
      await closeSlotIfSpent(handle.slotId, 'email', now, pending)
      if (config.queue) {
        await outbox.queueCodes({
          userId,
          batchId: content.batchId,
          codes: content.codes,
          now,
          ctx: context(inp),
        })
        return { sentTo: to, queued: true }
      }
      const sent = await outbox.deliverCodes({
        userId,
        to,
        batchId: content.batchId,
        codes: content.codes,
        now,
        ctx: context(inp),
      })
      if (!sent) throw new RecoveryCodesError('MAIL_FAILED', 'The email could not be sent.')
      return { sentTo: to, queued: false }
    },

    async revealStatus(inp) {
      const userId = requireUserId(inp?.userId)
      const now = clock.now()
      const { handle, content, pending } = await openSlot(userId, inp.reveal, now)
      const used = await revealSlots.usedChannels(handle.slotId, now)
      const open = revealSlots.channels.filter((c) => !used.includes(c))
      if (open.length === 0 && !pending) {
        // Spent, and its last user's drop has not landed yet: gone, as it is about to be.
        await dropSlot(handle.slotId)
        throw new RecoveryCodesError(
          'REVEAL_UNAVAILABLE',
          'These codes are no longer available. Generate a new batch to get new codes.',
        )
      }
      return { batchId: content.batchId, expiresAt: content.expiresAt, open, used, pending }
    },

    async discardReveal(inp) {
      const handle = parseRevealToken(inp?.reveal)
      if (handle) await dropSlot(handle.slotId)
    },
  }
}
