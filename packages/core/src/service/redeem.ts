/**
 * `redeem()`: one recovery code, exactly once, as a second factor or (opt-in) with an identifier.
 * The hot path of the service. It runs the limiter's two halves ({@link Limiter.prepareCode},
 * {@link Limiter.failed}) around one store call (`redeemCode`: reserve, consume, settle and the
 * audit row, in one step): a second-factor redeem is synchronous up to that call, and a successful
 * one on the default cache and without an event sink is one reaction on the store's promise.
 */
import { formatCode } from '../domain/code-format.ts'
import { generateCodes } from '../domain/generate.ts'
import { DUMMY_USER_ID, digestCandidates } from '../domain/hash.ts'
import { normalizeIdentifier } from '../domain/identifier.ts'
import { RecoveryCodesError } from '../errors.ts'
import {
  type ConsumedCode,
  composeRedeemCode,
  type RedeemCodeInput,
  type RedeemCodeOutcome,
} from '../ports/store.ts'
import { systemHmacSha256 } from '../runtime.ts'
import type { CacheLayer } from './cache-layer.ts'
import { errorName, type ServiceContext } from './context.ts'
import type { AttemptArgs, Limiter, PreparedAttempt } from './limiter.ts'
import { sealReveal } from './reveal.ts'
import { slotKey } from './reveal-slot.ts'
import type { RedeemInput, RedeemResult, ReplacementReveal, RequestContext } from './types.ts'

/** The input checks `redeem` shares with the other methods of the service. */
export interface RedeemChecks {
  /** The user id, or a thrown `INVALID_INPUT`. */
  requireUserId(userId: unknown): string
  /** The request context kept for limiter keys and audit. */
  context(inp: RequestContext | undefined): RequestContext
}

/** Builds the `redeem` method of one service. */
export function createRedeem(
  sc: ServiceContext,
  limiter: Limiter,
  cacheLayer: CacheLayer,
  checks: RedeemChecks,
): (inp: RedeemInput) => Promise<RedeemResult> {
  const { config, store, clock, logger, guardStore, storeFailure, auditRecord, emit } = sc
  const { bumpVersion } = cacheLayer
  const { prepare, prepareCode, failed } = limiter
  const { requireUserId, context } = checks
  // Work after a consume besides the cache bump: events, notifications, replacement, the hook.
  const afterWork =
    config.events !== null ||
    config.notifications !== null ||
    config.replaceOnUse ||
    config.mustBindFactor !== null

  /** Who attempts: the signed-in user (second factor). */
  function asUser(inp: RedeemInput, ctx: RequestContext, now: number): AttemptArgs {
    const userId = requireUserId(inp.userId)
    return {
      subject: { kind: 'user', value: userId },
      userId,
      code: inp.code,
      ctx,
      now,
      event: 'login.failure',
    }
  }

  /** Who attempts: whoever the identifier names, or nobody, looked up alike (single-factor login). */
  async function asIdentifier(inp: RedeemInput, ctx: RequestContext, now: number): Promise<AttemptArgs> {
    if (config.loginMode !== 'identifier-and-code' || !config.resolveUserId) {
      throw new RecoveryCodesError('FEATURE_DISABLED', 'Identifier + code login is not enabled.')
    }
    const normalized = normalizeIdentifier(inp?.identifier)
    // An unusable identifier is treated exactly like an unknown one.
    const identifier = normalized ?? '\u0000invalid'
    const resolved = normalized === null ? null : await guardStore(() => config.resolveUserId!(normalized))
    const userId = typeof resolved === 'string' && resolved.length > 0 ? resolved : DUMMY_USER_ID
    return {
      subject: { kind: 'identifier', value: identifier },
      userId,
      code: inp?.code,
      ctx,
      now,
      event: 'login.failure',
      identifier,
    }
  }

  /** After a consume: the result, with the cache bump and the events when there is work for them. */
  function succeeded(
    userId: string,
    now: number,
    out: { code: ConsumedCode; auditFailed?: unknown },
    ctx: RequestContext,
  ): RedeemResult | Promise<RedeemResult> {
    if (out.auditFailed !== undefined) {
      logger.error('recovery-codes: audit append failed', {
        event: 'login.success',
        error: errorName(out.auditFailed),
      })
    }
    const used = out.code
    const lowCodes = used.remaining <= config.lowCodesThreshold
    const result: RedeemResult & { ok: true } = {
      ok: true,
      userId,
      batchId: used.batchId,
      remaining: used.remaining,
      shouldRegenerate: true,
      lowCodes,
      method: 'recovery_code',
      mustBindFactor: false,
    }
    // With replacement the bump waits for the replacement's write: one bump for both.
    const bumped = config.replaceOnUse ? undefined : bumpVersion(userId)
    return bumped === undefined && !afterWork ? result : after(bumped, result, now, ctx)
  }

  /**
   * The bump of a configured cache, the replacement code, the host's `mustBindFactor`, then the
   * events: each awaited, none thrown (the code is consumed; the login stands).
   */
  async function after(
    bumped: Promise<void> | undefined,
    result: RedeemResult & { ok: true },
    now: number,
    ctx: RequestContext,
  ): Promise<RedeemResult> {
    await bumped
    const { userId, batchId } = result
    const replacement = config.replaceOnUse ? await replace(userId, batchId, now, ctx) : null
    if (replacement) {
      result.replacement = replacement
      result.remaining += 1
      result.lowCodes = result.remaining <= config.lowCodesThreshold
    }
    if (config.replaceOnUse) await bumpVersion(userId)
    if (config.mustBindFactor) {
      try {
        result.mustBindFactor =
          (await config.mustBindFactor({ userId, batchId, remaining: result.remaining })) !== false
      } catch (error) {
        // Fails closed: the host said nothing, so the user binds a new factor first.
        logger.error('recovery-codes: mustBindFactor failed', { error: errorName(error) })
        result.mustBindFactor = true
      }
    }
    const { remaining } = result
    await emit('used', now, userId, batchId, {
      remaining,
      method: 'recovery_code',
      ...(replacement ? { replaced: true } : {}),
    })
    if (remaining === 0) await emit('exhausted', now, userId, batchId)
    else if (result.lowCodes) await emit('low', now, userId, batchId, { remaining })
    return result
  }

  /**
   * `replaceOnUse` (NIST SP 800-63B-4 §4.2.1.1): one new code into the batch the used one came
   * from, with its `code.replaced` audit row, then sealed into a reveal slot of its own. `null`
   * when it could not be written (the batch ended meanwhile, the store failed: logged) or its
   * slot could not be kept (the code then waits unseen in the batch, like any unviewed code).
   */
  async function replace(
    userId: string,
    batchId: string,
    now: number,
    ctx: RequestContext,
  ): Promise<ReplacementReveal | null> {
    const canonical = generateCodes(sc.random, config.format, 1)[0]!
    const digest = digestCandidates([config.peppers[0]!], userId, canonical, systemHmacSha256)[0]!.digest
    const replaced = auditRecord({
      at: now,
      event: 'code.replaced',
      userId,
      batchId,
      outcome: 'success',
      ctx,
      data: { count: 1 },
    })
    try {
      const added = await store.addCodes!({
        userId,
        batchId,
        codes: [{ id: sc.newId(now), digest }],
        now,
        audit: replaced,
      })
      if (!added) return null
    } catch (error) {
      logger.error('recovery-codes: replacement code not written', { error: errorName(error) })
      return null
    }
    const revealExpiresAt = now + config.revealTtlMs
    const sealed = sealReveal({
      random: sc.random,
      owner: sc.userLabel(userId),
      batchId,
      codes: [formatCode(canonical, config.format)],
      expiresAt: revealExpiresAt,
    })
    try {
      await sc.cache.setItem(slotKey(sealed.slotId), sealed.slot, { ttl: config.reveal.ttlSeconds })
    } catch (error) {
      logger.warn('recovery-codes: replacement reveal slot write failed', { error: errorName(error) })
      return null
    }
    return { reveal: sealed.token, revealExpiresAt }
  }

  /**
   * The store call as one native promise: a synchronous throw becomes its rejection, a foreign
   * thenable is adopted (a native promise is returned as it is).
   */
  function redeemCode(input: RedeemCodeInput): Promise<RedeemCodeOutcome> {
    try {
      return Promise.resolve(store.redeemCode ? store.redeemCode(input) : composeRedeemCode(store, input))
    } catch (error) {
      return Promise.reject(error)
    }
  }

  const rejectAsStoreFailure = (error: unknown): never => {
    throw storeFailure(error)
  }

  /** One store call where the store has it: reserve, consume, settle and the audit row. */
  function storeInput(
    userId: string,
    prepared: PreparedAttempt,
    now: number,
    ctx: RequestContext,
    identifier: string | undefined,
  ): RedeemCodeInput {
    return {
      userId,
      digests: prepared.digests,
      now,
      keys: prepared.keys,
      reset: prepared.reset,
      audit: auditRecord({ at: now, event: 'login.success', userId, outcome: 'success', ctx, identifier }),
    }
  }

  /**
   * A second-factor redeem after its store call: one reaction on the store's promise (lighter than
   * an async frame); the attempt's arguments are built again from `inp` only when it failed.
   */
  function settle(
    pending: Promise<RedeemCodeOutcome>,
    inp: RedeemInput,
    userId: string,
    ctx: RequestContext,
    now: number,
    prepared: PreparedAttempt,
  ): Promise<RedeemResult> {
    return pending.then(
      (out) =>
        out.outcome === 'consumed'
          ? succeeded(userId, now, out, ctx)
          : failed(asUser(inp, ctx, now), prepared, out),
      rejectAsStoreFailure,
    )
  }

  /** A single-factor redeem: the identifier is resolved first (an await), then as above. */
  async function redeemByIdentifier(
    inp: RedeemInput,
    ctx: RequestContext,
    now: number,
  ): Promise<RedeemResult> {
    const args = await asIdentifier(inp, ctx, now)
    const prepared = prepare(args)
    let out: RedeemCodeOutcome
    try {
      out = await redeemCode(storeInput(args.userId, prepared, now, ctx, args.identifier))
    } catch (error) {
      throw storeFailure(error)
    }
    return out.outcome === 'consumed' ? succeeded(args.userId, now, out, ctx) : failed(args, prepared, out)
  }

  // Not `async`: up to the store call a second-factor redeem is synchronous, and a throw becomes
  // the rejection an async function would give; then one reaction (`settle`), no async frame.
  return function redeem(inp) {
    try {
      const now = clock.now()
      const ctx = context(inp)
      if (inp?.userId === undefined) return redeemByIdentifier(inp, ctx, now)
      const userId = requireUserId(inp.userId)
      const prepared = prepareCode('user', userId, userId, inp.code, ctx.clientKey)
      const pending = redeemCode(storeInput(userId, prepared, now, ctx, undefined))
      return settle(pending, inp, userId, ctx, now, prepared)
    } catch (error) {
      return Promise.reject(error)
    }
  }
}
