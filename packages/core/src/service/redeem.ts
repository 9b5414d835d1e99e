/**
 * `redeem()`: one recovery code, exactly once, as a second factor or (opt-in) with an identifier.
 * The hot path of the service. It runs the limiter's two halves ({@link Limiter.prepare},
 * {@link Limiter.failed}) around one store call (`redeemCode`: reserve, consume, settle and the
 * audit row, in one step) awaited in place: a successful redeem on the default cache and without
 * an event sink is one async frame of the service and one await.
 */
import { DUMMY_USER_ID } from '../domain/hash.ts'
import { normalizeIdentifier } from '../domain/identifier.ts'
import { RecoveryCodesError } from '../errors.ts'
import {
  type ConsumedCode,
  composeRedeemCode,
  type RedeemCodeInput,
  type RedeemCodeOutcome,
} from '../ports/store.ts'
import type { CacheLayer } from './cache-layer.ts'
import { errorName, type ServiceContext } from './context.ts'
import type { AttemptArgs, Limiter } from './limiter.ts'
import type { RedeemInput, RedeemResult, RequestContext } from './types.ts'

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
  const { prepare, failed } = limiter
  const { requireUserId, context } = checks
  const events = config.events !== null

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
    }
    const bumped = bumpVersion(userId)
    return bumped === undefined && !events ? result : notify(bumped, result, now)
  }

  /** The bump of a configured cache, then the events: each awaited, none thrown. */
  async function notify(
    bumped: Promise<void> | undefined,
    result: RedeemResult & { ok: true },
    now: number,
  ): Promise<RedeemResult> {
    await bumped
    const { userId, batchId, remaining } = result
    await emit('used', now, userId, batchId, { remaining })
    if (remaining === 0) await emit('exhausted', now, userId, batchId)
    else if (result.lowCodes) await emit('low', now, userId, batchId, { remaining })
    return result
  }

  return async function redeem(inp) {
    const now = clock.now()
    const ctx = context(inp)
    const args = inp?.userId !== undefined ? asUser(inp, ctx, now) : await asIdentifier(inp, ctx, now)
    const prepared = prepare(args)
    // One store call where the store has it: reserve, consume, settle and the audit row.
    const input: RedeemCodeInput = {
      userId: args.userId,
      digests: prepared.digests,
      now,
      keys: prepared.keys,
      reset: prepared.reset,
      audit: auditRecord({
        at: now,
        event: 'login.success',
        userId: args.userId,
        outcome: 'success',
        ctx,
        identifier: args.identifier,
      }),
    }
    let out: RedeemCodeOutcome
    try {
      out = await (store.redeemCode ? store.redeemCode(input) : composeRedeemCode(store, input))
    } catch (error) {
      throw storeFailure(error)
    }
    return out.outcome === 'consumed' ? succeeded(args.userId, now, out) : failed(args, prepared, out)
  }
}
