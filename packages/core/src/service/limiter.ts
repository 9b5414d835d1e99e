/**
 * The limiter around every code-addressed operation: it counts failures only and fails closed.
 * {@link Limiter.attempt} is the shared path (canonicalise, hash, reserve, look up, record);
 * `claim` is a one-slot reservation for work that must not run twice at once.
 */
import { normalize } from '../domain/code-format.ts'
import { cooldownMs } from '../domain/cooldown.ts'
import { DUMMY_USER_ID, digestCandidates } from '../domain/hash.ts'
import { type AttemptState, behindReservation, type ReservedLookup } from '../ports/store.ts'
import { systemHmacSha256 } from '../runtime.ts'
import type { CacheLayer } from './cache-layer.ts'
import type { ServiceContext } from './context.ts'
import type { CodeFailure, RequestContext } from './types.ts'

/** Longest code input looked at, before any Unicode work (R-IN-1). */
export const MAX_CODE_INPUT_LENGTH = 64

/** Whose counter an attempt spends: the signed-in user, or the identifier typed at login. */
export type Subject = { kind: 'user' | 'identifier'; value: string }

/** One limiter counter and its budget. */
export type LimiterKey = { key: string; maxAttempts: number }

/** The store work of an attempt: consume or find, behind the limiter. */
export type Lookup<T> = (
  digests: Uint8Array[],
  keys: LimiterKey[],
  reset: string[],
) => Promise<ReservedLookup<T>>

/** What {@link createLimiter} returns. */
export interface Limiter {
  /**
   * The shared path of every code-addressed operation: canonicalise, hash, reserve, look up,
   * record. `lookup` is the store work (consume or find) behind the limiter; everything else is
   * identical for known and unknown users.
   */
  attempt<T>(args: {
    subject: Subject
    userId: string
    code: unknown
    ctx: RequestContext
    now: number
    event: string
    identifier?: string
    lookup: Lookup<T>
  }): Promise<{ ok: true; value: T } | CodeFailure>
  /**
   * `lookup` of {@link Limiter.attempt} for work other than a redeem: reserve, `find`, settle, as
   * separate store calls. A store error in `find` gives the reservations back: the outcome is
   * unknown.
   */
  behindLimiter<T>(now: number, find: (digests: Uint8Array[]) => Promise<T | null>): Lookup<T>
  /** One reservation on one counter, for claims: the wait when it is closed. */
  claim(key: string, now: number): Promise<{ ok: true } | { ok: false; retryAfterMs: number }>
}

/** Builds the limiter of one service; a hard-capped batch is disabled through `cacheLayer`. */
export function createLimiter(sc: ServiceContext, cacheLayer: CacheLayer): Limiter {
  const { config, store, memoised, label, guardStore, audit, auditRecord, emit } = sc
  const { bumpVersion } = cacheLayer
  const format = config.format
  const peppers = config.peppers
  const policy = config.cooldownPolicy

  /**
   * Locks a counter that is full but not locked (after its last failure, or left full by attempts
   * in flight or a crash between reserve and settle, so no counter stays full forever); returns
   * when the counter unlocks (`lockedUntil`, unchanged when nothing was locked).
   */
  async function lockIfFull(key: LimiterKey, state: AttemptState, now: number): Promise<number> {
    if (state.lockedUntil > now || state.failures < key.maxAttempts) return state.lockedUntil
    const until = now + cooldownMs(policy, state.lockouts)
    await guardStore(() => store.lockAttempts({ key: key.key, until }))
    return until
  }

  /** The wait for a denied reservation. */
  async function denied(keys: readonly LimiterKey[], states: readonly AttemptState[], now: number) {
    let retryAfterMs = 0
    for (const [i, key] of keys.entries()) {
      retryAfterMs = Math.max(retryAfterMs, (await lockIfFull(key, states[i]!, now)) - now)
    }
    return retryAfterMs
  }

  /** After a miss: locks the counters that are now full; the subject's consecutive failures. */
  async function recordFailure(
    keys: readonly LimiterKey[],
    states: readonly AttemptState[],
    now: number,
  ): Promise<{ retryAfterMs: number; locked: boolean; consecutive: number }> {
    const retryAfterMs = await denied(keys, states, now)
    return { retryAfterMs, locked: retryAfterMs > 0, consecutive: states[0]!.consecutive }
  }

  /** The limiter counters of an attempt: the subject's first (the one a success resets). */
  function limiterKeys(subject: Subject, ctx: RequestContext): LimiterKey[] {
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

  async function attempt<T>(args: {
    subject: Subject
    userId: string
    code: unknown
    ctx: RequestContext
    now: number
    event: string
    identifier?: string
    lookup: Lookup<T>
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
        identifier: args.identifier,
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
      identifier: args.identifier,
    })
    const known = args.userId === DUMMY_USER_ID ? null : args.userId
    await emit('failed', now, known, null)
    if (f.locked) await emit('locked', now, known, null, { retryAfterMs: f.retryAfterMs })
    if (f.consecutive >= config.hardFailureCap) {
      // Same store calls for every subject: an unknown user's lookup finds no batch.
      const active = await guardStore(() => store.getActiveBatch(args.userId))
      // The batch ends with its `batch.disabled` row, in one transaction.
      const disabled = active
        ? auditRecord({
            at: now,
            event: 'batch.disabled',
            userId: args.userId,
            batchId: active.id,
            outcome: 'info',
            reason: 'hard-cap',
          })
        : undefined
      const ended = await guardStore(() =>
        store.endBatch({
          userId: args.userId,
          batchId: active?.id ?? '',
          to: 'disabled',
          now,
          ...(disabled ? { audit: disabled } : {}),
        }),
      )
      if (ended && active) {
        await bumpVersion(args.userId)
        await emit('disabled', now, args.userId, active.id, { consecutiveFailures: f.consecutive })
      }
    }
    return failure(f.retryAfterMs)
  }

  function behindLimiter<T>(now: number, find: (digests: Uint8Array[]) => Promise<T | null>): Lookup<T> {
    return (digests, keys, reset) => behindReservation(store, { keys, reset, now }, () => find(digests))
  }

  async function claim(
    key: string,
    now: number,
  ): Promise<{ ok: true } | { ok: false; retryAfterMs: number }> {
    const keys = [{ key, maxAttempts: 1 }]
    const r = await guardStore(() => store.reserveAttempts({ keys, now }))
    return r.allowed ? { ok: true } : { ok: false, retryAfterMs: await denied(keys, r.states, now) }
  }

  return { attempt, behindLimiter, claim }
}

function failure(retryAfterMs: number): CodeFailure {
  return { ok: false, reason: 'INVALID_CODE', retryAfterMs }
}
