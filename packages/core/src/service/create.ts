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
import { availableExportFormats } from './export.ts'
import { createImportCodes, type ImportReport, type ImportRunOptions } from './import.ts'
import { context, invalidInput, requireUserId } from './inputs.ts'
import { createLimiter } from './limiter.ts'
import { NOTIFY_JOB, withNotifications } from './notify.ts'
import { createOutbox, EMAIL_JOB } from './outbox.ts'
import { createPurgeRuns, PURGE_AUDIT_JOB, PURGE_JOB, type PurgeRunInput } from './purge-run.ts'
import { createRedeem } from './redeem.ts'
import { createRepudiation, type RepudiationInspection, type RepudiationResult } from './repudiate.ts'
import { type PendingBatch, sealReveal } from './reveal.ts'
import { createRevealMethods } from './reveal-methods.ts'
import { createRevealSlots } from './reveal-slot.ts'
import type {
  BatchView,
  CodeActionResult,
  CodeInput,
  ConfirmResult,
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
export { EMAIL_JOB, NOTIFY_JOB, PURGE_AUDIT_JOB, PURGE_JOB }

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
   * Generates a batch. Under `activation: 'confirm'` (the default) the batch waits, sealed in its
   * reveal slot, and the current batch keeps working until {@link RecoveryCodes.confirm}; a batch
   * never confirmed dies with its slot (`reveal.ttlSeconds`) and changes nothing. Under
   * `'immediate'` it supersedes the active one atomically. Regenerating inside the cooldown
   * returns `COOLDOWN_ACTIVE` and grows the penalty. A thrown error means nothing changed: once the
   * batch is committed (or, pending, sealed in the cache) the codes are returned, and what follows
   * (cooldown, cache, audit, events) is best-effort, logged by error name only.
   *
   * @throws RecoveryCodesError `STORE_UNAVAILABLE` under `'confirm'` when the cache cannot keep
   *   the pending batch (nothing changed; the current batch still works).
   */
  generate(input: GenerateInput): Promise<GenerateResult>
  /**
   * Activates a pending batch (`activation: 'confirm'`) once its user confirms having saved the
   * codes: it supersedes the current batch atomically (no code of that batch is consumed after
   * this resolves) and commits with its `batch.generated` audit row. Under concurrent calls with
   * one token exactly one succeeds.
   *
   * @throws RecoveryCodesError `REVEAL_UNAVAILABLE` (410) when the slot is gone (it expired, a
   *   newer batch, `discardReveal`): the pending batch never activates; `ALREADY_DONE` (409) when
   *   it was confirmed already or was never pending (`'immediate'`).
   */
  confirm(input: { userId: string; reveal: RevealToken } & RequestContext): Promise<ConfirmResult>
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
  const base = withBoundedCache(createServiceContext(resolveConfig(input)))
  // Built before the other parts: the notifications mint its links, and every part's events go
  // through `withNotifications`.
  const repudiation = createRepudiation(base, async (userId) => {
    await dropOwnerSlot(userId)
    await bumpVersion(userId)
  })
  const sc = withNotifications(base, repudiation)
  const { config, store, clock, random, logger, label, userLabel, newId, guardStore } = sc
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
  const { dropOwnerSlot } = revealSlots
  const outbox = createOutbox(sc)
  const purgeRuns = createPurgeRuns(sc)
  const exportFormats = availableExportFormats(config.export)
  const reveal = createRevealMethods(sc, { cacheLayer, revealSlots, outbox, exportFormats })
  const { writeSlot } = reveal

  async function activeBatchOrThrow(userId: string): Promise<BatchSummary> {
    const active = await guardStore(() => store.getActiveBatch(userId))
    if (!active) throw new RecoveryCodesError('NOT_FOUND', 'There is no active batch of recovery codes.')
    return active
  }

  function viewOf(b: BatchSummary, now: number): BatchView {
    // A deleted batch's codes are deleted with it, whatever state the store left each row in.
    const gone = b.status === 'deleted' ? b.unused : 0
    return {
      id: b.id,
      status: b.status === 'active' && isExpired(b.expiresAt, now) ? 'expired' : b.status,
      createdAt: b.createdAt,
      expiresAt: b.expiresAt,
      endedAt: b.endedAt,
      issued: b.issued,
      unused: b.unused - gone,
      used: b.used,
      invalidated: b.invalidated,
      deleted: b.deleted + gone,
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

  /** Starts the regeneration cooldown: best-effort (a failure only lets the next one in early). */
  async function startCooldown(key: string, now: number): Promise<void> {
    try {
      await store.settleAttempts({ reset: [key], release: [] })
      await store.lockAttempts({ key, until: now + cooldownMs(policy, 0) })
    } catch (error) {
      logger.warn('recovery-codes: regeneration cooldown not recorded', { error: errorName(error) })
    }
  }

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
        const lifetimeMs = days === null ? null : days * DAY_MS
        const expiresAt = lifetimeMs === null ? null : now + lifetimeMs
        const codes = canonical.map((c) => formatCode(c, format))
        const owner = userLabel(userId)
        const revealExpiresAt = now + revealTtlMs
        /** The answer of a generation that went through; `pending` until confirmed ('confirm'). */
        const answer = (reveal: string, pending: boolean) =>
          ({ ok: true, batchId, codes, createdAt: now, expiresAt, reveal, revealExpiresAt, pending }) as const
        if (config.activation === 'confirm') {
          const pending: PendingBatch = { generatedAt: now, lifetimeMs }
          const sealed = sealReveal({ random, owner, batchId, codes, expiresAt: revealExpiresAt, pending })
          await writeSlot(owner, sealed)
          await startCooldown(key, now)
          await audit({
            at: now,
            event: 'batch.pending',
            userId,
            batchId,
            outcome: 'info',
            ctx: context(inp),
            data: { count, expires: expiresAt !== null },
          })
          return answer(sealed.token, true)
        }
        const sealed = sealReveal({ random, owner, batchId, codes, expiresAt: revealExpiresAt })
        const current = peppers[0]!
        // Everything that can fail without changing anything runs before the commit; after it,
        // the caller gets the codes whatever else fails, so an error always means "nothing changed".
        const rows = canonical.map((c) => ({
          id: newId(now),
          digest: digestCandidates([current], userId, c, systemHmacSha256)[0]!.digest,
        }))
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
        await startCooldown(key, now)
        try {
          await writeSlot(owner, sealed)
        } catch {
          // Logged by writeSlot: the codes are in this answer, only the slot's channels are lost.
        }
        await bumpVersion(userId)
        await emit('generated', now, userId, batchId, { count })
        return answer(sealed.token, false)
      } finally {
        // Never thrown: an error here would turn a committed batch into a failed call.
        try {
          await store.settleAttempts({ reset: [claimKey], release: [] })
        } catch (error) {
          logger.warn('recovery-codes: regeneration claim release failed', { error: errorName(error) })
        }
      }
    },

    confirm: reveal.confirm,

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

    viewCodes: reveal.viewCodes,
    exportCodes: reveal.exportCodes,
    emailCodes: reveal.emailCodes,
    revealStatus: reveal.revealStatus,
    discardReveal: reveal.discardReveal,

    importCodes: createImportCodes(sc, cacheLayer),
    purge: purgeRuns.purge,
    purgeAudit: purgeRuns.purgeAudit,
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

export type { LogFields }
