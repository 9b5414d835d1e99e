/**
 * `createRecoveryCodes(config)`: the one entry point. It resolves the config once, wires the parts
 * of the service (context, cache layer, limiter, reveal slots, outbox, purge runs) and returns the
 * public methods. Every method reads the clock once and passes `now` down.
 */
import { type RecoveryCodesConfig, type ResolvedConfig, resolveConfig } from '../config.ts'
import { isExpired } from '../domain/batch-state.ts'
import { formatCode } from '../domain/code-format.ts'
import { cooldownMs } from '../domain/cooldown.ts'
import { generateCodes } from '../domain/generate.ts'
import { digestCandidates } from '../domain/hash.ts'
import { RecoveryCodesError } from '../errors.ts'
import type { ImportSource } from '../ports/import-source.ts'
import type { LogFields } from '../ports/logger.ts'
import type { AttemptState, BatchSummary } from '../ports/store.ts'
import { systemHmacSha256 } from '../runtime.ts'
import { createCacheLayer, withBoundedCache } from './cache-layer.ts'
import { createServiceContext, errorName } from './context.ts'
import { availableExportFormats, EXPORT_FORMATS, pdfRendererMissing, renderExport } from './export.ts'
import { createImportCodes, type ImportReport, type ImportRunOptions } from './import.ts'
import { createLimiter } from './limiter.ts'
import { createOutbox, EMAIL_JOB } from './outbox.ts'
import { createPurgeRuns, PURGE_AUDIT_JOB, PURGE_JOB, type PurgeRunInput } from './purge-run.ts'
import { createRedeem } from './redeem.ts'
import { createRepudiation, type RepudiationInspection, type RepudiationResult } from './repudiate.ts'
import { parseRevealToken, sealReveal } from './reveal.ts'
import { createRevealSlots, slotKey, slotPointerKey } from './reveal-slot.ts'
import type {
  BatchView,
  CodeActionResult,
  CodeInput,
  ExportFile,
  ExportFormat,
  GenerateInput,
  GenerateResult,
  HistoryPage,
  PurgeReport,
  RedeemInput,
  RedeemResult,
  RequestContext,
  RevealStatus,
  RevealToken,
  StatusResult,
} from './types.ts'

export { MAX_CODE_INPUT_LENGTH } from './limiter.ts'
export type { PurgeRunInput }
/** Job names the service handles when a queue is configured. Payloads carry ids, never codes. */
export { EMAIL_JOB, PURGE_AUDIT_JOB, PURGE_JOB }

const DAY_MS = 86_400_000

/** The service returned by {@link createRecoveryCodes}. */
export interface RecoveryCodes {
  /** The resolved, frozen configuration (secrets redacted from every serialisation). */
  readonly config: ResolvedConfig
  /**
   * The download formats this instance renders, frozen: `txt` and `csv`, plus `pdf` when
   * `export.pdf` is configured. Offer only these in a UI; `exportCodes` refuses the others.
   */
  readonly exportFormats: readonly ExportFormat[]
  /**
   * Generates a batch, superseding the active one atomically. Regenerating inside the cooldown
   * returns `COOLDOWN_ACTIVE` and grows the penalty. A thrown error means nothing changed: once the
   * batch is committed the codes are returned, and what follows (cooldown, reveal slot, cache,
   * audit, events) is best-effort, logged by error name only.
   */
  generate(input: GenerateInput): Promise<GenerateResult>
  /** Remaining codes, low-codes warning, `shouldRegenerate`, and when `generate` is allowed. */
  status(input: { userId: string }): Promise<StatusResult>
  /**
   * Redeems one code exactly once: as a second factor (`userId`) or, when `loginMode` is
   * `identifier-and-code`, with an identifier (single-factor; see the docs). Failures of every
   * kind look alike.
   */
  redeem(input: RedeemInput): Promise<RedeemResult>
  /** One-time, non-consuming test of one code; same limiter as `redeem`. */
  verifySetup(input: CodeInput): Promise<CodeActionResult>
  /** Invalidates one code of the active batch. */
  invalidateCode(input: CodeInput): Promise<CodeActionResult>
  /** Soft-deletes one code of the active batch. */
  deleteCode(input: CodeInput): Promise<CodeActionResult>
  /**
   * Redeems a "This wasn't me" link once: disables the active batch (audited), calls
   * `onRepudiated(userId)`, writes `account.repudiated`. Forged, tampered, expired, replayed or
   * unknown links give `{ ok: false, reason }` and change nothing. Needs `notifications`.
   */
  repudiate(input: { token: unknown } & RequestContext): Promise<RepudiationResult>
  /** Read-only check of a "This wasn't me" link for the confirm page: changes nothing. */
  inspectRepudiation(input: { token: unknown }): Promise<RepudiationInspection>
  /** Soft-deletes the active batch. Throws `NOT_FOUND` when there is none. */
  deleteBatch(input: { userId: string } & RequestContext): Promise<{ batchId: string }>
  /** A page of the user's batch history (1-based), read through the cache. */
  history(input: { userId: string; page?: number }): Promise<HistoryPage>
  /**
   * Shows the codes of the reveal slot. The reveal slot of a new batch has channels, each usable
   * once while the slot lives, in any order: the view (this method), each offered download format
   * ({@link RecoveryCodes.exportCodes}) and the email ({@link RecoveryCodes.emailCodes}). Each
   * channel's use is a compare-and-set in the store: under concurrent calls exactly one succeeds.
   * The first view sets the batch's `viewed` flag.
   *
   * @throws RecoveryCodesError `ALREADY_DONE` (409) when the view was used already;
   *   `REVEAL_UNAVAILABLE` (410) when the slot is gone: the TTL passed, `discardReveal` (logout),
   *   a newer batch, the batch deleted, or every channel used.
   */
  viewCodes(input: { userId: string; reveal: RevealToken }): Promise<{ batchId: string; codes: string[] }>
  /**
   * Downloads the codes in one format: each format of {@link RecoveryCodes.exportFormats} once per
   * reveal slot, beside the view and the email. The first download of any format sets the batch's
   * `downloaded` flag. A renderer failure leaves that format available.
   *
   * @throws RecoveryCodesError `ALREADY_DONE` (409) when this format was downloaded already;
   *   `REVEAL_UNAVAILABLE` (410) as for {@link RecoveryCodes.viewCodes}; `INVALID_INPUT` for an
   *   unknown format and `FEATURE_DISABLED` for one not offered (both before the slot is touched).
   */
  exportCodes(
    input: { userId: string; reveal: RevealToken; format?: ExportFormat } & RequestContext,
  ): Promise<ExportFile>
  /**
   * Emails the codes to the user's stored address (opt-in), once per reveal slot, beside the view
   * and the downloads; sets the batch's `emailed` flag. A failed send does not reopen the channel.
   *
   * @throws RecoveryCodesError `ALREADY_DONE` (409) when the email was sent already;
   *   `REVEAL_UNAVAILABLE` (410) as for {@link RecoveryCodes.viewCodes}; `FEATURE_DISABLED` when
   *   email is off; `NOT_FOUND` without a stored address (the channel stays open); `MAIL_FAILED`.
   */
  emailCodes(
    input: { userId: string; reveal: RevealToken } & RequestContext,
  ): Promise<{ sentTo: string; queued: boolean }>
  /**
   * What is left of a reveal slot: its batch, when it dies, and which channels are open or used.
   * Reads only; spends nothing and returns no code.
   *
   * @throws RecoveryCodesError `REVEAL_UNAVAILABLE` (410) when the slot is gone.
   */
  revealStatus(input: { userId: string; reveal: RevealToken }): Promise<RevealStatus>
  /** Destroys a reveal slot (call on logout and session regeneration): every channel then 410. */
  discardReveal(input: { reveal: RevealToken | null | undefined }): Promise<void>
  /**
   * Purges codes past retention in chunks sized by `purge.chunkBudgetMs` (each from how long the
   * previous one took, never above `purge.batchSize`; empty batches and expired limiter counters
   * alike). Each chunk commits with its own audit row (`codes.purged`, `batches.purged`, with
   * `data.deleted`); one `purge.run` row sums up the run; the report's `chunks` says how the chunks
   * went.
   */
  purge(input?: PurgeRunInput): Promise<PurgeReport>
  /**
   * Imports another system's recovery codes (see `@recovery-codes/import` for the sources), so
   * their owners keep using the codes they hold. Each batch commits all or nothing with its
   * `batch.imported` audit row, under an id derived from the source: a re-run, or a run beside
   * another, writes nothing twice and resumes where an earlier one stopped. Codes given as
   * plaintext become native codes; codes given as a legacy digest are verified by
   * `import.legacyDigests`. An active batch never supersedes one the user has already here.
   *
   * @throws RecoveryCodesError `IMPORT_INVALID` naming the row (a corrupt row, a wrong source key);
   *   `FEATURE_DISABLED` for a store without `importBatch`; the store's errors as for any call.
   */
  importCodes(source: ImportSource, options?: ImportRunOptions): Promise<ImportReport>
  /** Purges audit records past retention, in chunks sized the same way. */
  purgeAudit(
    input?: Pick<
      PurgeRunInput,
      'retentionDays' | 'chunkSize' | 'maxDeletionsPerRun' | 'shouldStop' | 'onChunk'
    >,
  ): Promise<PurgeReport>
}

/**
 * Creates the recovery-codes service.
 *
 * @example
 * ```ts
 * import { createRecoveryCodes } from '@recovery-codes/core'
 * import { memoryStore } from '@recovery-codes/store-memory'
 *
 * const rc = createRecoveryCodes({
 *   peppers: [{ id: 'k1', secret: process.env.RECOVERY_CODES_PEPPER! }],
 *   store: memoryStore(),
 * })
 * const batch = await rc.generate({ userId: 'u1' })
 * if (batch.ok) show(batch.codes)
 * const result = await rc.redeem({ userId: 'u1', code: input, clientKey: req.ip })
 * ```
 * @throws RecoveryCodesError `CONFIG_INVALID` listing every problem.
 */
export function createRecoveryCodes(input: RecoveryCodesConfig): RecoveryCodes {
  // Every call to a configured cache runs under `cacheTimeoutMs`: a dead cache blocks nothing.
  const sc = withBoundedCache(createServiceContext(resolveConfig(input)))
  const { config, store, clock, random, logger, cache, label, userLabel, newId, guardStore } = sc
  const { auditRecord, audit, emit } = sc
  const format = config.format
  const peppers = config.peppers
  const policy = config.cooldownPolicy
  const revealTtlMs = config.revealTtlMs

  const cacheLayer = createCacheLayer(sc)
  const { bumpVersion, readThrough } = cacheLayer
  const limiter = createLimiter(sc, cacheLayer)
  const { attempt, behindLimiter, claim } = limiter
  const revealSlots = createRevealSlots(sc)
  const { openSlot, dropSlot, claimChannel, closeSlotIfSpent, dropOwnerSlot } = revealSlots
  const repudiation = createRepudiation(sc, async (userId) => {
    await dropOwnerSlot(userId)
    await bumpVersion(userId)
  })
  const outbox = createOutbox(sc)
  const purgeRuns = createPurgeRuns(sc)

  async function activeBatchOrThrow(userId: string): Promise<BatchSummary> {
    const active = await guardStore(() => store.getActiveBatch(userId))
    if (!active) throw new RecoveryCodesError('NOT_FOUND', 'There is no active batch of recovery codes.')
    return active
  }

  function viewOf(b: BatchSummary, now: number): BatchView {
    return {
      id: b.id,
      status: b.status === 'active' && isExpired(b.expiresAt, now) ? 'expired' : b.status,
      createdAt: b.createdAt,
      expiresAt: b.expiresAt,
      endedAt: b.endedAt,
      issued: b.issued,
      unused: b.unused,
      used: b.used,
      invalidated: b.invalidated,
      deleted: b.deleted,
      viewed: b.viewedAt !== null,
      downloaded: b.downloadedAt !== null,
      emailed: b.emailedAt !== null,
      verified: b.verifiedAt !== null,
      lastUsedAt: b.lastUsedAt,
    }
  }

  const regenKey = (userId: string) => `regen:${label('regen', userId)}`

  async function generateRetryAfter(
    userId: string,
    now: number,
  ): Promise<{ state: AttemptState; retryAfterMs: number }> {
    const state = await guardStore(() => store.getAttempts(regenKey(userId)))
    return { state, retryAfterMs: Math.max(0, state.lockedUntil - now) }
  }

  const exportFormats = availableExportFormats(config.export)

  const service: RecoveryCodes = {
    config,
    exportFormats,

    async generate(inp) {
      const userId = requireUserId(inp?.userId)
      const count = inp.count ?? config.batchSize
      if (!Number.isSafeInteger(count) || count < 1 || count > config.maxBatchSize) {
        throw invalidInput('count', `must be an integer from 1 to ${config.maxBatchSize}`)
      }
      // Omitted: the configured default; `null`: never expires, even when a default is configured.
      const days = inp.expiresInDays === undefined ? config.defaultExpiryDays : inp.expiresInDays
      if (days !== null && (!Number.isSafeInteger(days) || days < 1 || days > 3650)) {
        throw invalidInput('expiresInDays', 'must be an integer from 1 to 3650, or null')
      }
      const now = clock.now()
      // One generation per user at a time: a claim on a counter with a budget of one, taken
      // atomically before the cooldown check, so a double submit cannot create two batches (one of
      // them already dead) nor skip the cooldown. A crashed claim heals like any full counter.
      const claimKey = `regen-claim:${label('regen', userId)}`
      const claimed = await claim(claimKey, now)
      if (!claimed.ok)
        return { ok: false, reason: 'COOLDOWN_ACTIVE', retryAfterMs: Math.max(1, claimed.retryAfterMs) }
      try {
        const key = regenKey(userId)
        const { state, retryAfterMs } = await generateRetryAfter(userId, now)
        if (retryAfterMs > 0) {
          // Retrying inside the window grows the penalty: 30, 60, 120, 240 … capped at the cutoff.
          const until = now + cooldownMs(policy, state.lockouts)
          await guardStore(() => store.lockAttempts({ key, until }))
          return { ok: false, reason: 'COOLDOWN_ACTIVE', retryAfterMs: until - now }
        }
        const canonical = generateCodes(random, format, count)
        const batchId = newId(now)
        const expiresAt = days === null ? null : now + days * DAY_MS
        const current = peppers[0]!
        // Everything that can fail without changing anything runs before the commit; after it,
        // the caller gets the codes whatever else fails, so an error always means "nothing changed".
        const rows = canonical.map((c) => ({
          id: newId(now),
          digest: digestCandidates([current], userId, c, systemHmacSha256)[0]!.digest,
        }))
        const codes = canonical.map((c) => formatCode(c, format))
        const owner = userLabel(userId)
        const revealExpiresAt = now + revealTtlMs
        const sealed = sealReveal({ random, owner, batchId, codes, expiresAt: revealExpiresAt })
        // The batch and its `batch.generated` row commit together.
        const generated = auditRecord({
          at: now,
          event: 'batch.generated',
          userId,
          batchId,
          outcome: 'success',
          ctx: inp,
          data: { count, expires: expiresAt !== null },
        })
        await guardStore(() =>
          store.createBatch(
            { id: batchId, userId, keyId: current.id, createdAt: now, expiresAt },
            rows,
            generated,
          ),
        )
        // Committed. The cooldown is best-effort from here: a failure only lets the next
        // generation in early (the claim still keeps it from running beside this one).
        try {
          await store.settleAttempts({ reset: [key], release: [] })
          await store.lockAttempts({ key, until: now + cooldownMs(policy, 0) })
        } catch (error) {
          logger.warn('recovery-codes: regeneration cooldown not recorded', { error: errorName(error) })
        }
        await dropOwnerSlot(userId)
        try {
          await cache.setItem(slotKey(sealed.slotId), sealed.slot, { ttl: config.reveal.ttlSeconds })
          await cache.setItem(slotPointerKey(owner), sealed.slotId, { ttl: config.reveal.ttlSeconds })
        } catch (error) {
          logger.warn('recovery-codes: reveal slot write failed', { error: errorName(error) })
        }
        await bumpVersion(userId)
        await emit('generated', now, userId, batchId, { count })
        return { ok: true, batchId, codes, createdAt: now, expiresAt, reveal: sealed.token, revealExpiresAt }
      } finally {
        // Never thrown: an error here would turn a committed batch into a failed call.
        try {
          await store.settleAttempts({ reset: [claimKey], release: [] })
        } catch (error) {
          logger.warn('recovery-codes: regeneration claim release failed', { error: errorName(error) })
        }
      }
    },

    async status(inp) {
      const userId = requireUserId(inp?.userId)
      const now = clock.now()
      const active = await readThrough(
        userId,
        'active',
        () => guardStore(() => store.getActiveBatch(userId)),
        now,
      )
      const { retryAfterMs } = await generateRetryAfter(userId, now)
      const view = active ? viewOf(active, now) : null
      const usable = view !== null && view.status === 'active'
      const remaining = usable ? view.unused : 0
      return {
        active: view,
        remaining,
        lowCodes: remaining <= config.lowCodesThreshold,
        lowCodesThreshold: config.lowCodesThreshold,
        shouldRegenerate: !usable || view.used > 0 || remaining === 0,
        generateRetryAfterMs: retryAfterMs,
      }
    },

    redeem: createRedeem(sc, limiter, cacheLayer, { requireUserId, context }),

    repudiate: (inp) => repudiation.repudiate(inp),
    inspectRepudiation: (inp) => repudiation.inspect(inp),

    async verifySetup(inp) {
      const userId = requireUserId(inp?.userId)
      const now = clock.now()
      const active = await activeBatchOrThrow(userId)
      if (active.verifiedAt !== null) {
        throw new RecoveryCodesError('ALREADY_DONE', 'This batch has already been verified.')
      }
      const r = await attempt({
        subject: { kind: 'user', value: userId },
        userId,
        code: inp.code,
        ctx: context(inp),
        now,
        event: 'setup.failure',
        lookup: behindLimiter(now, (digests) => store.findCode({ userId, digests, now })),
      })
      if (!r.ok) return r
      const first = await guardStore(() =>
        store.setBatchFlag({ userId, batchId: r.value.batchId, flag: 'verified', now }),
      )
      if (!first) throw new RecoveryCodesError('ALREADY_DONE', 'This batch has already been verified.')
      await bumpVersion(userId)
      await audit({
        at: now,
        event: 'batch.verified',
        userId,
        batchId: r.value.batchId,
        outcome: 'success',
        ctx: context(inp),
      })
      await emit('verified', now, userId, r.value.batchId)
      return { ok: true, batchId: r.value.batchId }
    },

    invalidateCode: (inp) => changeCode(inp, 'invalidated'),
    deleteCode: (inp) => changeCode(inp, 'deleted'),

    async deleteBatch(inp) {
      const userId = requireUserId(inp?.userId)
      const now = clock.now()
      const active = await activeBatchOrThrow(userId)
      const deleted = auditRecord({
        at: now,
        event: 'batch.deleted',
        userId,
        batchId: active.id,
        outcome: 'success',
        ctx: context(inp),
      })
      const ended = await guardStore(() =>
        store.endBatch({ userId, batchId: active.id, to: 'deleted', now, audit: deleted }),
      )
      if (!ended) throw new RecoveryCodesError('NOT_FOUND', 'There is no active batch of recovery codes.')
      await dropOwnerSlot(userId)
      await bumpVersion(userId)
      await emit('batchDeleted', now, userId, active.id)
      return { batchId: active.id }
    },

    async history(inp) {
      const userId = requireUserId(inp?.userId)
      const page = inp.page ?? 1
      if (!Number.isSafeInteger(page) || page < 1 || page > 1_000_000)
        throw invalidInput('page', 'must be a positive integer')
      const { perPage, maxVisible } = config.history
      const now = clock.now()
      const offset = (page - 1) * perPage
      const limit = Math.max(0, Math.min(perPage, maxVisible - offset))
      const data = await readThrough(
        userId,
        `history:${page}`,
        () => guardStore(() => store.listBatches({ userId, offset, limit: Math.max(limit, 0) })),
        now,
      )
      const total = Math.min(data.total, maxVisible)
      return {
        items: (limit > 0 ? data.items.slice(0, limit) : []).map((b) => viewOf(b, now)),
        page,
        perPage,
        total,
        totalPages: Math.max(1, Math.ceil(total / perPage)),
      }
    },

    async viewCodes(inp) {
      const userId = requireUserId(inp?.userId)
      const now = clock.now()
      const { handle, content } = await openSlot(userId, inp.reveal, now)
      if (!(await claimChannel(handle.slotId, 'view', now))) {
        throw new RecoveryCodesError('ALREADY_DONE', 'These codes have already been shown.')
      }
      await recordFirst(userId, content.batchId, 'viewed', now)
      await closeSlotIfSpent(handle.slotId, 'view', now)
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
      const { handle, content, active } = await openSlot(userId, inp.reveal, now)
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
          createdAtIso: isoDate(active.createdAt),
          expiresAtIso: active.expiresAt === null ? null : isoDate(active.expiresAt),
        },
        config.export,
      )
      if (!(await claimChannel(handle.slotId, fmt, now))) throw alreadyDownloaded()
      // `downloadedAt` is the first download of any format.
      await recordFirst(userId, content.batchId, 'downloaded', now)
      await closeSlotIfSpent(handle.slotId, fmt, now)
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
      const { handle, content } = await openSlot(userId, inp.reveal, now)
      const to = await outbox.recipientOf(userId)
      if (!(await claimChannel(handle.slotId, 'email', now))) {
        throw new RecoveryCodesError('ALREADY_DONE', 'These codes have already been emailed.')
      }
      await recordFirst(userId, content.batchId, 'emailed', now)
      await closeSlotIfSpent(handle.slotId, 'email', now)
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
      const { handle, content } = await openSlot(userId, inp.reveal, now)
      const used = await revealSlots.usedChannels(handle.slotId, now)
      const open = revealSlots.channels.filter((c) => !used.includes(c))
      if (open.length === 0) {
        // Spent, and its last user's drop has not landed yet: gone, as it is about to be.
        await dropSlot(handle.slotId)
        throw new RecoveryCodesError(
          'REVEAL_UNAVAILABLE',
          'These codes are no longer available. Generate a new batch to get new codes.',
        )
      }
      return { batchId: content.batchId, expiresAt: content.expiresAt, open, used }
    },

    async discardReveal(inp) {
      const handle = parseRevealToken(inp?.reveal)
      if (handle) await dropSlot(handle.slotId)
    },

    importCodes: createImportCodes(sc, cacheLayer),
    purge: purgeRuns.purge,
    purgeAudit: purgeRuns.purgeAudit,
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

  async function changeCode(inp: CodeInput, to: 'invalidated' | 'deleted'): Promise<CodeActionResult> {
    const userId = requireUserId(inp?.userId)
    const now = clock.now()
    const ctx = context(inp)
    const r = await attempt({
      subject: { kind: 'user', value: userId },
      userId,
      code: inp.code,
      ctx,
      now,
      event: 'code.change.failure',
      lookup: behindLimiter(now, async (digests) => {
        const match = await store.findCode({ userId, digests, now })
        if (!match) return null
        // The change and its audit row commit together.
        const changed = auditRecord({
          at: now,
          event: to === 'invalidated' ? 'code.invalidated' : 'code.deleted',
          userId,
          batchId: match.batchId,
          outcome: 'success',
          ctx,
        })
        return (await store.setCodeState({ userId, codeId: match.codeId, to, now, audit: changed }))
          ? match
          : null
      }),
    })
    if (!r.ok) return r
    await bumpVersion(userId)
    await emit(to, now, userId, r.value.batchId)
    return { ok: true, batchId: r.value.batchId }
  }

  if (config.queue) {
    const queue = config.queue
    queue.handle(EMAIL_JOB, outbox.handleEmailJob)
    queue.handle(PURGE_JOB, purgeRuns.handlePurgeJob)
    queue.handle(PURGE_AUDIT_JOB, purgeRuns.handlePurgeAuditJob)
  }

  return Object.freeze(service)
}

function requireUserId(userId: unknown): string {
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > 255 || userId.includes('\0')) {
    throw invalidInput('userId', 'must be a non-empty string of at most 255 characters without NUL')
  }
  return userId
}

function invalidInput(path: string, message: string): RecoveryCodesError {
  return new RecoveryCodesError('INVALID_INPUT', `${path} ${message}`, { issues: [{ path, message }] })
}

function context(inp: RequestContext | undefined): RequestContext {
  const clientKey =
    typeof inp?.clientKey === 'string' && inp.clientKey.length > 0 ? inp.clientKey.slice(0, 256) : undefined
  return clientKey ? { clientKey } : {}
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString()
}

export type { LogFields }
