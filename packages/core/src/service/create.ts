/**
 * `createRecoveryCodes(config)`: the one entry point. It resolves the config once, wires the ports
 * and returns the service. Every method reads the clock once and passes `now` down.
 */
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { createStorage } from 'unstorage'
import lruCacheDriver from 'unstorage/drivers/lru-cache'
import { type RecoveryCodesConfig, type ResolvedConfig, resolveConfig } from '../config.ts'
import { isExpired } from '../domain/batch-state.ts'
import { formatCode, normalize } from '../domain/code-format.ts'
import { cooldownMs } from '../domain/cooldown.ts'
import { generateCodes } from '../domain/generate.ts'
import { DUMMY_USER_ID, digestCandidates, keyedLabel } from '../domain/hash.ts'
import { normalizeIdentifier } from '../domain/identifier.ts'
import { runPurge } from '../domain/purge.ts'
import { RecoveryCodesError } from '../errors.ts'
import type { Cache } from '../ports/cache.ts'
import type { RecoveryEvent, RecoveryEventName } from '../ports/events.ts'
import type { LogFields, Logger } from '../ports/logger.ts'
import { type AttemptState, type AuditRecord, type BatchSummary, composeRedeemCode } from '../ports/store.ts'
import { systemHmacSha256 } from '../runtime.ts'
import { EXPORT_FORMATS, renderExport } from './export.ts'
import { newNonce, openReveal, parseRevealToken, sealCodes, sealReveal } from './reveal.ts'
import type {
  BatchView,
  CodeActionResult,
  CodeFailure,
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
  RevealToken,
  StatusResult,
} from './types.ts'

/** Longest code input looked at, before any Unicode work (R-IN-1). */
export const MAX_CODE_INPUT_LENGTH = 64

const DAY_MS = 86_400_000
const OUTBOX_TTL_MS = 86_400_000
const LABEL_MEMO_SIZE = 10_000
const DEFAULT_CACHE_ENTRIES = 50_000

/** Job names the service handles when a queue is configured. Payloads carry ids, never codes. */
export const EMAIL_JOB = 'recovery-codes.email-codes'
export const PURGE_JOB = 'recovery-codes.purge'
export const PURGE_AUDIT_JOB = 'recovery-codes.purge-audit'

/**
 * Per-run overrides of the `purge` config (a schedule's options), plus progress hooks. Omitted
 * values come from the config.
 */
export interface PurgeRunInput {
  retentionDays?: number
  chunkSize?: number
  /** `null` = unlimited. */
  maxDeletionsPerRun?: number | null
  deleteEmptyBatches?: boolean
  /** Only takes effect with a mailer and `email.adminEmail` configured. */
  reportToAdmin?: boolean
  /** Asked after each chunk; `true` stops the run (Ctrl-C in the CLI). */
  shouldStop?: () => boolean
  onChunk?: (p: { deleted: number; rounds: number }) => void
}

/** The service returned by {@link createRecoveryCodes}. */
export interface RecoveryCodes {
  /** The resolved, frozen configuration (secrets redacted from every serialisation). */
  readonly config: ResolvedConfig
  /**
   * Generates a batch, superseding the active one atomically. Regenerating inside the cooldown
   * returns `COOLDOWN_ACTIVE` and grows the penalty.
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
  /** Soft-deletes the active batch. Throws `NOT_FOUND` when there is none. */
  deleteBatch(input: { userId: string } & RequestContext): Promise<{ batchId: string }>
  /** A page of the user's batch history (1-based), read through the cache. */
  history(input: { userId: string; page?: number }): Promise<HistoryPage>
  /** Shows the codes of the reveal slot once (sets `viewed`). */
  viewCodes(input: { userId: string; reveal: RevealToken }): Promise<{ batchId: string; codes: string[] }>
  /** The one-time download. Throws `ALREADY_DONE` the second time, `REVEAL_UNAVAILABLE` when the slot is gone. */
  exportCodes(
    input: { userId: string; reveal: RevealToken; format?: ExportFormat } & RequestContext,
  ): Promise<ExportFile>
  /** The one-time email to the user's stored address (opt-in). */
  emailCodes(
    input: { userId: string; reveal: RevealToken } & RequestContext,
  ): Promise<{ sentTo: string; queued: boolean }>
  /** Destroys a reveal slot (call on logout and session regeneration). */
  discardReveal(input: { reveal: RevealToken | null | undefined }): Promise<void>
  /** Purges codes past retention in chunks; one audit record per run. */
  purge(input?: PurgeRunInput): Promise<PurgeReport>
  /** Purges audit records past retention. */
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
  const config = resolveConfig(input)
  const store = config.store
  const clock = config.clock
  const random = config.random
  const logger = config.logger ?? silentLogger
  // The default cache is a bounded in-process LRU: entries under superseded versions age out
  // instead of growing the heap. Several instances need a shared driver (Redis).
  const cache: Cache =
    config.cache ?? createStorage({ driver: lruCacheDriver({ max: DEFAULT_CACHE_ENTRIES, ttl: 3_600_000 }) })
  const format = config.format
  const peppers = config.peppers
  const labelKey = peppers[0]!.secret
  const policy = config.cooldownPolicy
  const cacheTtlMs = config.cacheTtlSeconds * 1000
  const revealTtlMs = config.revealTtlMs

  // Labels of hot identifiers (user ids, client keys) are memoised in process; the map holds
  // identifiers, never codes, and is cleared when full rather than grown.
  // One map per purpose, keyed by the caller's own string (whose hash the engine caches).
  const labels = new Map<string, Map<string, string>>()
  const memoised = (name: string, value: string, compute: () => string) => {
    let memo = labels.get(name)
    if (memo === undefined) {
      memo = new Map()
      labels.set(name, memo)
    }
    let out = memo.get(value)
    if (out === undefined) {
      out = compute()
      if (memo.size >= LABEL_MEMO_SIZE) memo.clear()
      memo.set(value, out)
    }
    return out
  }
  const label = (purpose: string, value: string) =>
    memoised(purpose, value, () => keyedLabel(labelKey, purpose, value, systemHmacSha256))
  const userLabel = (userId: string) => label('user', userId)

  /**
   * A 128-bit id: with `now`, the first 48 bits are the time in ms (like UUIDv7), so rows written
   * together (a batch's codes, an audit trail) sit together in a primary-key index and a purge
   * chunk dirties few pages; the other 80 bits are random.
   */
  function newId(now?: number): string {
    const b = new Uint8Array(16)
    random.read(b)
    if (now !== undefined) {
      let t = Math.max(0, Math.min(now, 2 ** 48 - 1))
      for (let i = 5; i >= 0; i--) {
        b[i] = t % 256
        t = Math.floor(t / 256)
      }
    }
    return bytesToHex(b)
  }

  async function emit(
    name: RecoveryEventName,
    at: number,
    userId: string | null,
    batchId: string | null,
    data?: RecoveryEvent['data'],
  ) {
    if (!config.events) return
    try {
      await config.events.emit({ name, at, userId, batchId, ...(data ? { data } : {}) })
    } catch (error) {
      logger.error('recovery-codes: event sink failed', { event: name, error: errorName(error) })
    }
  }

  interface AuditInput {
    at: number
    event: string
    outcome: AuditRecord['outcome']
    userId?: string | null
    batchId?: string | null
    reason?: string | null
    data?: AuditRecord['data']
    ctx?: RequestContext
    identifier?: string
  }

  function auditRecord(input: AuditInput): AuditRecord {
    return {
      id: newId(input.at),
      at: input.at,
      event: input.event,
      userId: input.userId ?? null,
      batchId: input.batchId ?? null,
      identifierHash: input.identifier === undefined ? null : label('audit-identifier', input.identifier),
      clientHash: input.ctx?.clientKey ? label('audit-client', input.ctx.clientKey) : null,
      outcome: input.outcome,
      reason: input.reason ?? null,
      data: input.data ?? null,
    }
  }

  async function audit(input: AuditInput): Promise<void> {
    const row = auditRecord(input)
    try {
      await store.appendAudit(row)
    } catch (error) {
      logger.error('recovery-codes: audit append failed', { event: row.event, error: errorName(error) })
    }
  }

  // ---- cache (history and status), keyed by a per-user version that every write bumps ----

  const versionKey = (owner: string) => `rc:ver:${owner}`
  // A version only needs to differ from every earlier one of the user, across instances sharing
  // the cache: a random instance prefix and a counter, with no CSPRNG read per write.
  const versionPrefix = newId()
  let versionCounter = 0
  const nextVersion = () => `${versionPrefix}.${(++versionCounter).toString(36)}`

  async function bumpVersion(userId: string): Promise<void> {
    try {
      await cache.setItem(
        memoised('version-key', userId, () => versionKey(userLabel(userId))),
        nextVersion(),
      )
    } catch (error) {
      // Pages already cached may then be served until their TTL runs out (≤ cacheTtl.maxSeconds).
      logger.warn('recovery-codes: cache version bump failed', { error: errorName(error) })
    }
  }

  async function readThrough<T>(
    userId: string,
    name: string,
    load: () => Promise<T>,
    now: number,
  ): Promise<T> {
    const owner = userLabel(userId)
    let version: string | null = null
    try {
      version = (await cache.getItem<string>(versionKey(owner))) ?? null
      if (version === null) {
        version = nextVersion()
        await cache.setItem(versionKey(owner), version)
      }
      const hit = await cache.getItem<{ e: number; v: T }>(`rc:data:${owner}:${version}:${name}`)
      if (hit && typeof hit === 'object' && now < hit.e) return hit.v
    } catch (error) {
      logger.warn('recovery-codes: cache read failed', { error: errorName(error) })
      return load()
    }
    const value = await load()
    try {
      await cache.setItem(
        `rc:data:${owner}:${version}:${name}`,
        { e: now + cacheTtlMs, v: value },
        {
          ttl: config.cacheTtlSeconds,
        },
      )
    } catch (error) {
      logger.warn('recovery-codes: cache write failed', { error: errorName(error) })
    }
    return value
  }

  // ---- limiter: failures only, fail closed ----

  /**
   * The wait for a denied reservation. A key that is full but not locked (attempts in flight, or
   * left behind by a crash between reserve and settle) is locked now, so no counter can stay
   * full forever: it unlocks after the cooldown like any lockout.
   */
  async function denied(
    keys: readonly { key: string; maxAttempts: number }[],
    states: readonly AttemptState[],
    now: number,
  ) {
    let retryAfterMs = 0
    for (const [i, state] of states.entries()) {
      let until = state.lockedUntil
      if (until <= now && state.failures >= keys[i]!.maxAttempts) {
        until = now + cooldownMs(policy, state.lockouts)
        await guardStore(() => store.lockAttempts({ key: keys[i]!.key, until }))
      }
      retryAfterMs = Math.max(retryAfterMs, until - now)
    }
    return retryAfterMs
  }

  async function recordFailure(
    keys: readonly { key: string; maxAttempts: number }[],
    states: readonly AttemptState[],
    now: number,
  ): Promise<{ retryAfterMs: number; locked: boolean; consecutive: number }> {
    let retryAfterMs = 0
    let locked = false
    let consecutive = 0
    for (const [i, { key, maxAttempts }] of keys.entries()) {
      const state = states[i]!
      if (key.startsWith('id:')) consecutive = state.consecutive
      if (state.failures >= maxAttempts) {
        const until = now + cooldownMs(policy, state.lockouts)
        await guardStore(() => store.lockAttempts({ key, until }))
        retryAfterMs = Math.max(retryAfterMs, until - now)
        locked = true
      }
    }
    return { retryAfterMs, locked, consecutive }
  }

  async function guardStore<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      if (error instanceof RecoveryCodesError) throw error
      logger.error('recovery-codes: store failed', { error: errorName(error) })
      throw new RecoveryCodesError(
        'STORE_UNAVAILABLE',
        'The recovery-code store is unavailable; the request was denied.',
        {
          cause: error,
        },
      )
    }
  }

  /** Whose counter an attempt spends: the signed-in user, or the identifier typed at login. */
  type Subject = { kind: 'user' | 'identifier'; value: string }

  /** The limiter counters of an attempt: the subject's first (the one a success resets). */
  function limiterKeys(subject: Subject, ctx: RequestContext): { key: string; maxAttempts: number }[] {
    const memo = subject.kind === 'user' ? 'limiter-key-user' : 'limiter-key-identifier'
    const id = memoised(
      memo,
      subject.value,
      () => `id:${label('limiter-id', `${subject.kind}:${subject.value}`)}`,
    )
    const keys = [{ key: id, maxAttempts: config.maxLoginAttempts }]
    if (ctx.clientKey) {
      const client = ctx.clientKey
      const ip = memoised('limiter-key-ip', client, () => `ip:${label('limiter-ip', client)}`)
      keys.push({ key: ip, maxAttempts: config.clientMaxAttempts })
    }
    return keys
  }

  /**
   * The shared path of every code-addressed operation: canonicalise, hash, reserve, look up,
   * record. `lookup` is the store work (consume or find) behind the limiter; everything else is
   * identical for known and unknown users.
   */
  async function attempt<T>(args: {
    subject: Subject
    userId: string
    code: unknown
    ctx: RequestContext
    now: number
    event: string
    identifier?: string
    lookup: (
      digests: Uint8Array[],
      keys: { key: string; maxAttempts: number }[],
      reset: string[],
    ) => Promise<{ outcome: 'denied' | 'missed'; states: AttemptState[] } | { outcome: 'found'; value: T }>
  }): Promise<{ ok: true; value: T } | CodeFailure> {
    const { now, ctx } = args
    // In second-factor mode the user already passed the first factor: naming them leaks nothing.
    const auditUserId = args.subject.kind === 'user' ? args.userId : null
    const raw = typeof args.code === 'string' && args.code.length <= MAX_CODE_INPUT_LENGTH ? args.code : ''
    // Every attempt pays for one digest before the limiter, so malformed input, a locked account
    // and a wrong code cost the same.
    const canonical = normalize(raw, format) ?? ''
    const digests = digestCandidates(peppers, args.userId, canonical, systemHmacSha256).map((c) => c.digest)
    const keys = limiterKeys(args.subject, ctx)
    // A success resets the subject's counter (R-RL-7) but only gives back its own reservation on
    // the client counter, which keeps counting that client's failures.
    const reset = [keys[0]!.key]
    const result = await guardStore(() => args.lookup(digests, keys, reset))
    if (result.outcome === 'found') return { ok: true, value: result.value }
    if (result.outcome === 'denied') {
      await audit({
        at: now,
        event: args.event,
        userId: auditUserId,
        outcome: 'failure',
        reason: 'locked',
        ctx,
        ...idField(args.identifier),
      })
      return failure(await denied(keys, result.states, now))
    }
    const f = await recordFailure(keys, result.states, now)
    await audit({
      at: now,
      event: args.event,
      userId: auditUserId,
      outcome: 'failure',
      reason: f.locked ? 'locked' : 'invalid',
      ctx,
      ...idField(args.identifier),
    })
    const known = args.userId === DUMMY_USER_ID ? null : args.userId
    await emit('failed', now, known, null)
    if (f.locked) await emit('locked', now, known, null, { retryAfterMs: f.retryAfterMs })
    if (f.consecutive >= config.hardFailureCap) {
      // Same store calls for every subject: an unknown user's lookup finds no batch.
      const active = await guardStore(() => store.getActiveBatch(args.userId))
      const ended = await guardStore(() =>
        store.endBatch({ userId: args.userId, batchId: active?.id ?? '', to: 'disabled', now }),
      )
      if (ended && active) {
        await bumpVersion(args.userId)
        await audit({
          at: now,
          event: 'batch.disabled',
          userId: args.userId,
          batchId: active.id,
          outcome: 'info',
          reason: 'hard-cap',
        })
        await emit('disabled', now, args.userId, active.id, { consecutiveFailures: f.consecutive })
      }
    }
    return failure(f.retryAfterMs)
  }

  /**
   * `lookup` of {@link attempt} for work other than a redeem: reserve, `find`, settle, as separate
   * store calls. A store error in `find` gives the reservations back: the outcome is unknown.
   */
  function behindLimiter<T>(now: number, find: (digests: Uint8Array[]) => Promise<T | null>) {
    return async (
      digests: Uint8Array[],
      keys: { key: string; maxAttempts: number }[],
      reset: string[],
    ): Promise<{ outcome: 'denied' | 'missed'; states: AttemptState[] } | { outcome: 'found'; value: T }> => {
      const reserved = await store.reserveAttempts({ keys, now })
      if (!reserved.allowed) return { outcome: 'denied', states: reserved.states }
      let value: T | null
      try {
        value = await find(digests)
      } catch (error) {
        await store.settleAttempts({ reset: [], release: keys.map((k) => k.key) }).catch(() => {})
        throw error
      }
      if (value === null) return { outcome: 'missed', states: reserved.states }
      const release = keys.filter((k) => !reset.includes(k.key)).map((k) => k.key)
      await store.settleAttempts({ reset, release })
      return { outcome: 'found', value }
    }
  }

  /** One reservation on one counter, for claims: the wait when it is closed. */
  async function claim(
    key: string,
    now: number,
  ): Promise<{ ok: true } | { ok: false; retryAfterMs: number }> {
    const keys = [{ key, maxAttempts: 1 }]
    const r = await guardStore(() => store.reserveAttempts({ keys, now }))
    return r.allowed ? { ok: true } : { ok: false, retryAfterMs: await denied(keys, r.states, now) }
  }

  function idField(identifier: string | undefined): { identifier?: string } {
    return identifier === undefined ? {} : { identifier }
  }

  async function activeBatchOrThrow(userId: string): Promise<BatchSummary> {
    const active = await guardStore(() => store.getActiveBatch(userId))
    if (!active) throw new RecoveryCodesError('NOT_FOUND', 'There is no active batch of recovery codes.')
    return active
  }

  // ---- reveal slot ----

  const slotKey = (slotId: string) => `rc:reveal:${slotId}`
  const slotPointerKey = (owner: string) => `rc:reveal-owner:${owner}`
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

  /**
   * Drops the slot once every enabled channel is used, judged from the batch as `openSlot` read it
   * plus the flag this call just won: no second read. A channel won concurrently in between only
   * leaves the slot to its TTL; the store's once-flags already refuse a second use.
   */
  async function closeSlotIfSpent(
    slotId: string,
    active: BatchSummary,
    won: 'downloaded' | 'emailed',
  ): Promise<void> {
    const downloaded = won === 'downloaded' || active.downloadedAt !== null
    const emailed = won === 'emailed' || active.emailedAt !== null || !config.email.enabled
    if (downloaded && emailed) await dropSlot(slotId)
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

  const service: RecoveryCodes = {
    config,

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
        await guardStore(() =>
          store.createBatch(
            { id: batchId, userId, keyId: current.id, createdAt: now, expiresAt },
            canonical.map((c) => ({
              id: newId(now),
              digest: digestCandidates([current], userId, c, systemHmacSha256)[0]!.digest,
            })),
          ),
        )
        await guardStore(async () => {
          await store.settleAttempts({ reset: [key], release: [] })
          await store.lockAttempts({ key, until: now + cooldownMs(policy, 0) })
        })
        const codes = canonical.map((c) => formatCode(c, format))
        const owner = userLabel(userId)
        const revealExpiresAt = now + revealTtlMs
        const sealed = sealReveal({ random, owner, batchId, codes, expiresAt: revealExpiresAt })
        await dropOwnerSlot(userId)
        try {
          await cache.setItem(slotKey(sealed.slotId), sealed.slot, { ttl: config.reveal.ttlSeconds })
          await cache.setItem(slotPointerKey(owner), sealed.slotId, { ttl: config.reveal.ttlSeconds })
        } catch (error) {
          logger.warn('recovery-codes: reveal slot write failed', { error: errorName(error) })
        }
        await bumpVersion(userId)
        await audit({
          at: now,
          event: 'batch.generated',
          userId,
          batchId,
          outcome: 'success',
          ctx: inp,
          data: { count, expires: expiresAt !== null },
        })
        await emit('generated', now, userId, batchId, { count })
        return { ok: true, batchId, codes, createdAt: now, expiresAt, reveal: sealed.token, revealExpiresAt }
      } finally {
        await store.settleAttempts({ reset: [claimKey], release: [] }).catch((error: unknown) => {
          logger.warn('recovery-codes: regeneration claim release failed', { error: errorName(error) })
        })
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

    async redeem(inp) {
      const now = clock.now()
      const ctx = context(inp)
      let subject: Subject
      let userId: string
      let identifier: string | undefined
      if (inp?.userId !== undefined) {
        userId = requireUserId(inp.userId)
        subject = { kind: 'user', value: userId }
      } else {
        if (config.loginMode !== 'identifier-and-code' || !config.resolveUserId) {
          throw new RecoveryCodesError('FEATURE_DISABLED', 'Identifier + code login is not enabled.')
        }
        const normalized = normalizeIdentifier(inp?.identifier)
        // An unusable identifier is treated exactly like an unknown one.
        identifier = normalized ?? '\u0000invalid'
        subject = { kind: 'identifier', value: identifier }
        const resolved =
          normalized === null ? null : await guardStore(() => config.resolveUserId!(normalized))
        userId = typeof resolved === 'string' && resolved.length > 0 ? resolved : DUMMY_USER_ID
      }
      const result = await attempt({
        subject,
        userId,
        code: inp?.code,
        ctx,
        now,
        event: 'login.failure',
        ...idField(identifier),
        lookup: async (digests, keys, reset) => {
          // One store call where the store has it: reserve, consume, settle and the audit row.
          const input = {
            userId,
            digests,
            now,
            keys,
            reset,
            audit: auditRecord({
              at: now,
              event: 'login.success',
              userId,
              outcome: 'success',
              ctx,
              ...idField(identifier),
            }),
          }
          const out = await (store.redeemCode ? store.redeemCode(input) : composeRedeemCode(store, input))
          if (out.outcome !== 'consumed') return out
          if (out.auditFailed !== undefined) {
            logger.error('recovery-codes: audit append failed', {
              event: 'login.success',
              error: errorName(out.auditFailed),
            })
          }
          return { outcome: 'found', value: out.code }
        },
      })
      if (!result.ok) return result
      const used = result.value
      await bumpVersion(userId)
      const low = used.remaining <= config.lowCodesThreshold
      await emit('used', now, userId, used.batchId, { remaining: used.remaining })
      if (used.remaining === 0) await emit('exhausted', now, userId, used.batchId)
      else if (low) await emit('low', now, userId, used.batchId, { remaining: used.remaining })
      return {
        ok: true,
        userId,
        batchId: used.batchId,
        remaining: used.remaining,
        shouldRegenerate: true,
        lowCodes: low,
      }
    },

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
      const ended = await guardStore(() => store.endBatch({ userId, batchId: active.id, to: 'deleted', now }))
      if (!ended) throw new RecoveryCodesError('NOT_FOUND', 'There is no active batch of recovery codes.')
      await dropOwnerSlot(userId)
      await bumpVersion(userId)
      await audit({
        at: now,
        event: 'batch.deleted',
        userId,
        batchId: active.id,
        outcome: 'success',
        ctx: context(inp),
      })
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
      const { content } = await openSlot(userId, inp.reveal, now)
      const first = await guardStore(() =>
        store.setBatchFlag({ userId, batchId: content.batchId, flag: 'viewed', now }),
      )
      if (!first) throw new RecoveryCodesError('ALREADY_DONE', 'These codes have already been shown.')
      await bumpVersion(userId)
      await audit({ at: now, event: 'batch.viewed', userId, batchId: content.batchId, outcome: 'success' })
      await emit('viewed', now, userId, content.batchId)
      return { batchId: content.batchId, codes: content.codes }
    },

    async exportCodes(inp) {
      const userId = requireUserId(inp?.userId)
      const fmt = inp.format ?? config.export.defaultFormat
      if (!EXPORT_FORMATS.includes(fmt))
        throw invalidInput('format', `must be one of ${EXPORT_FORMATS.join(', ')}`)
      const now = clock.now()
      const { handle, content, active } = await openSlot(userId, inp.reveal, now)
      const first = await guardStore(() =>
        store.setBatchFlag({ userId, batchId: content.batchId, flag: 'downloaded', now }),
      )
      if (!first) throw new RecoveryCodesError('ALREADY_DONE', 'These codes have already been downloaded.')
      const file = await renderExport(fmt, {
        codes: content.codes,
        siteName: config.siteName,
        fileName: config.export.fileName,
        createdAtIso: isoDate(active.createdAt),
        expiresAtIso: active.expiresAt === null ? null : isoDate(active.expiresAt),
      })
      await closeSlotIfSpent(handle.slotId, active, 'downloaded')
      await bumpVersion(userId)
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
      const { handle, content, active } = await openSlot(userId, inp.reveal, now)
      const to = await recipientOf(userId)
      const first = await guardStore(() =>
        store.setBatchFlag({ userId, batchId: content.batchId, flag: 'emailed', now }),
      )
      if (!first) throw new RecoveryCodesError('ALREADY_DONE', 'These codes have already been emailed.')
      await closeSlotIfSpent(handle.slotId, active, 'emailed')
      await bumpVersion(userId)
      if (config.queue) {
        // The job carries an outbox id only; the codes wait in the cache, sealed under a key
        // derived from the pepper, and are deleted once sent.
        const outboxId = newId()
        const owner = userLabel(userId)
        const slot = sealCodes({
          key: outboxKey(outboxId),
          nonce: newNonce(random),
          owner,
          batchId: content.batchId,
          codes: content.codes,
          expiresAt: now + OUTBOX_TTL_MS,
        })
        await cache.setItem(outboxSlotKey(outboxId), slot, { ttl: OUTBOX_TTL_MS / 1000 })
        await config.queue.enqueue({
          name: EMAIL_JOB,
          payload: { outboxId, userId, batchId: content.batchId },
        })
        await audit({
          at: now,
          event: 'batch.email.queued',
          userId,
          batchId: content.batchId,
          outcome: 'info',
          ctx: context(inp),
        })
        return { sentTo: to, queued: true }
      }
      const sent = await deliverCodes({
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

    async discardReveal(inp) {
      const handle = parseRevealToken(inp?.reveal)
      if (handle) await dropSlot(handle.slotId)
    },

    async purge(inp = {}) {
      const opts = purgeOptions(inp)
      const now = clock.now()
      const before = now - opts.retentionDays * DAY_MS
      const run = await runPurge({
        deleteChunk: (limit) => store.purgeCodes({ before, limit }),
        chunkSize: opts.chunkSize,
        maxDeletionsPerRun: opts.maxDeletionsPerRun,
        ...(inp.shouldStop ? { shouldStop: inp.shouldStop } : {}),
        ...(inp.onChunk
          ? {
              onChunk: (p: { deleted: number; rounds: number }) =>
                inp.onChunk!({ deleted: p.deleted, rounds: p.rounds }),
            }
          : {}),
      })
      let batchesDeleted = 0
      let error = run.error
      if (opts.deleteEmptyBatches && error === undefined && !inp.shouldStop?.()) {
        const b = await runPurge({
          deleteChunk: (limit) => store.purgeEmptyBatches({ before, limit }),
          chunkSize: opts.chunkSize,
          maxDeletionsPerRun: null,
        })
        batchesDeleted = b.deleted
        error = b.error
      }
      const report: PurgeReport = {
        deleted: run.deleted,
        batchesDeleted,
        rounds: run.rounds,
        done: run.done && error === undefined,
        ...(error === undefined ? {} : { error: errorName(error) }),
      }
      await audit({
        at: now,
        event: 'purge.run',
        userId: null,
        outcome: error === undefined ? 'success' : 'failure',
        data: { deleted: report.deleted, batchesDeleted, rounds: report.rounds, done: report.done },
        ...(error === undefined ? {} : { reason: report.error ?? 'error' }),
      })
      if (error !== undefined)
        logger.error('recovery-codes: purge stopped by an error', {
          deleted: report.deleted,
          error: report.error,
        })
      await emit('purged', now, null, null, { deleted: report.deleted, batchesDeleted, done: report.done })
      if (opts.reportToAdmin && config.mailer && config.email.adminEmail) {
        try {
          await config.mailer.send({
            to: config.email.adminEmail,
            subject: `${config.siteName}: recovery-code purge report`,
            text: `Deleted ${report.deleted} codes and ${batchesDeleted} empty batches in ${report.rounds} rounds. Done: ${report.done}.${report.error ? ` Error: ${report.error}.` : ''}\n`,
          })
        } catch (e) {
          logger.error('recovery-codes: purge report mail failed', { error: errorName(e) })
        }
      }
      return report
    },

    async purgeAudit(inp = {}) {
      const opts = purgeOptions({ retentionDays: config.audit.retentionDays, ...inp })
      const now = clock.now()
      const before = now - opts.retentionDays * DAY_MS
      const run = await runPurge({
        deleteChunk: (limit) => store.purgeAudit({ before, limit }),
        chunkSize: opts.chunkSize,
        maxDeletionsPerRun: opts.maxDeletionsPerRun,
        ...(inp.shouldStop ? { shouldStop: inp.shouldStop } : {}),
        ...(inp.onChunk ? { onChunk: (p: { deleted: number; rounds: number }) => inp.onChunk!(p) } : {}),
      })
      const report: PurgeReport = {
        deleted: run.deleted,
        batchesDeleted: 0,
        rounds: run.rounds,
        done: run.done && run.error === undefined,
        ...(run.error === undefined ? {} : { error: errorName(run.error) }),
      }
      await audit({
        at: now,
        event: 'audit.purged',
        userId: null,
        outcome: run.error === undefined ? 'success' : 'failure',
        data: { deleted: report.deleted, rounds: report.rounds },
      })
      return report
    },
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

  /** Per-run overrides merged over the config, each checked against the config's bounds. */
  function purgeOptions(inp: PurgeRunInput) {
    const opts = {
      retentionDays: inp.retentionDays ?? config.purge.retentionDays,
      chunkSize: inp.chunkSize ?? config.purge.batchSize,
      maxDeletionsPerRun:
        inp.maxDeletionsPerRun === undefined ? config.purge.maxDeletionsPerRun : inp.maxDeletionsPerRun,
      deleteEmptyBatches: inp.deleteEmptyBatches ?? config.purge.deleteEmptyBatches,
      reportToAdmin: inp.reportToAdmin ?? config.purge.reportToAdmin,
    }
    const issues: { path: string; message: string }[] = []
    const int = (v: unknown, min: number, max: number) =>
      Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max
    if (!int(opts.retentionDays, 0, 3650))
      issues.push({ path: 'retentionDays', message: 'must be an integer from 0 to 3650' })
    if (!int(opts.chunkSize, 1, 100_000))
      issues.push({ path: 'chunkSize', message: 'must be an integer from 1 to 100000' })
    if (opts.maxDeletionsPerRun !== null && !int(opts.maxDeletionsPerRun, 1, 10_000_000)) {
      issues.push({ path: 'maxDeletionsPerRun', message: 'must be null or an integer from 1 to 10000000' })
    }
    if (typeof opts.deleteEmptyBatches !== 'boolean')
      issues.push({ path: 'deleteEmptyBatches', message: 'must be a boolean' })
    if (typeof opts.reportToAdmin !== 'boolean')
      issues.push({ path: 'reportToAdmin', message: 'must be a boolean' })
    if (issues.length > 0) {
      throw new RecoveryCodesError(
        'INVALID_INPUT',
        `Invalid purge options: ${issues.map((i) => i.path).join(', ')}`,
        { issues },
      )
    }
    return opts
  }

  async function recipientOf(userId: string): Promise<string> {
    const to = config.resolveEmail ? await guardStore(() => config.resolveEmail!(userId)) : null
    if (typeof to !== 'string' || to.length === 0 || to.length > 254 || /[\r\n\0]/.test(to)) {
      throw new RecoveryCodesError('NOT_FOUND', 'No email address is on file for this account.')
    }
    return to
  }

  const outboxSlotKey = (outboxId: string) => `rc:outbox:${outboxId}`
  const outboxKey = (outboxId: string) =>
    hmac(sha256, labelKey, new TextEncoder().encode(`rc1-outbox\0${outboxId}`))

  /** Sends the codes email once; records the email log, the audit row and the event. */
  async function deliverCodes(input: {
    userId: string
    to: string
    batchId: string
    codes: readonly string[]
    now: number
    ctx?: RequestContext
  }): Promise<boolean> {
    const { userId, to, batchId, now } = input
    let outcome: 'sent' | 'failed' = 'sent'
    try {
      await config.mailer!.send({
        to,
        subject: `${config.siteName}: your recovery codes`,
        text: [
          `Your ${config.siteName} recovery codes. Each works once; keep them private.`,
          '',
          ...input.codes,
          '',
        ].join('\n'),
      })
    } catch (error) {
      outcome = 'failed'
      logger.error('recovery-codes: mail failed', { error: errorName(error) })
    }
    if (config.audit.storeEmailLog) {
      // After a send nothing may throw: a retried job would email the codes a second time.
      try {
        await store.appendEmailLog({
          id: newId(now),
          at: now,
          userId,
          batchId,
          kind: 'codes',
          recipient: to,
          outcome,
        })
      } catch (error) {
        logger.error('recovery-codes: email log append failed', { error: errorName(error) })
      }
    }
    await audit({
      at: now,
      event: 'batch.emailed',
      userId,
      batchId,
      outcome: outcome === 'sent' ? 'success' : 'failure',
      ...(input.ctx ? { ctx: input.ctx } : {}),
    })
    if (outcome === 'sent') await emit('emailed', now, userId, batchId)
    return outcome === 'sent'
  }

  if (config.queue) {
    const queue = config.queue
    queue.handle(EMAIL_JOB, async (payload) => {
      const { outboxId, userId, batchId } = payload
      if (typeof outboxId !== 'string' || typeof userId !== 'string' || typeof batchId !== 'string') return
      const now = clock.now()
      const raw = await cache.getItem(outboxSlotKey(outboxId))
      const content = openReveal({ key: outboxKey(outboxId) }, raw, userLabel(userId), now)
      if (!content || content.batchId !== batchId) {
        logger.warn('recovery-codes: queued email expired before delivery', { batchId })
        return
      }
      const sent = await deliverCodes({
        userId,
        to: await recipientOf(userId),
        batchId,
        codes: content.codes,
        now,
      })
      // A failure throws so the queue retries with backoff; the outbox expires on its own.
      if (!sent) throw new RecoveryCodesError('MAIL_FAILED', 'The email could not be sent.')
      try {
        await cache.removeItem(outboxSlotKey(outboxId))
      } catch (error) {
        // Sent already: a failed removal must not fail the job (a retry would send again); the
        // outbox entry expires on its own.
        logger.warn('recovery-codes: outbox removal failed', { error: errorName(error) })
      }
    })
    // A schedule's options travel in the payload; only known keys are read, and a failed run
    // throws so the queue retries it.
    queue.handle(PURGE_JOB, async (payload) => {
      const report = await service.purge(pickPurgeOptions(payload))
      if (report.error) throw new RecoveryCodesError('STORE_UNAVAILABLE', `purge stopped: ${report.error}`)
    })
    queue.handle(PURGE_AUDIT_JOB, async (payload) => {
      const { retentionDays, chunkSize, maxDeletionsPerRun } = pickPurgeOptions(payload)
      const report = await service.purgeAudit({
        ...(retentionDays === undefined ? {} : { retentionDays }),
        ...(chunkSize === undefined ? {} : { chunkSize }),
        ...(maxDeletionsPerRun === undefined ? {} : { maxDeletionsPerRun }),
      })
      if (report.error)
        throw new RecoveryCodesError('STORE_UNAVAILABLE', `audit purge stopped: ${report.error}`)
    })
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
        return (await store.setCodeState({ userId, codeId: match.codeId, to, now })) ? match : null
      }),
    })
    if (!r.ok) return r
    await bumpVersion(userId)
    await audit({
      at: now,
      event: to === 'invalidated' ? 'code.invalidated' : 'code.deleted',
      userId,
      batchId: r.value.batchId,
      outcome: 'success',
      ctx,
    })
    await emit(to, now, userId, r.value.batchId)
    return { ok: true, batchId: r.value.batchId }
  }

  return Object.freeze(service)
}

function pickPurgeOptions(payload: Record<string, unknown> | undefined): PurgeRunInput {
  const out: PurgeRunInput = {}
  if (!payload) return out
  for (const key of [
    'retentionDays',
    'chunkSize',
    'maxDeletionsPerRun',
    'deleteEmptyBatches',
    'reportToAdmin',
  ] as const) {
    if (payload[key] !== undefined) (out as Record<string, unknown>)[key] = payload[key]
  }
  return out
}

function failure(retryAfterMs: number): CodeFailure {
  return { ok: false, reason: 'INVALID_CODE', retryAfterMs }
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

function errorName(error: unknown): string {
  if (error instanceof RecoveryCodesError) return error.code
  return error instanceof Error ? error.name : 'unknown'
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString()
}

const noop = () => {}
const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop }

export type { LogFields }
