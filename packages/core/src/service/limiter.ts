/**
 * The limiter around every code-addressed operation: it counts failures only and fails closed.
 * {@link Limiter.attempt} is the shared path (canonicalise, hash, reserve, look up, record);
 * `claim` is a one-slot reservation for work that must not run twice at once.
 */
import { normalize } from '../domain/code-format.ts'
import { cooldownMs } from '../domain/cooldown.ts'
import { candidateDigests, DUMMY_USER_ID } from '../domain/hash.ts'
import { appendImportedDigests } from '../domain/imported-digests.ts'
import { type AttemptState, behindReservation, type ReservedLookup } from '../ports/store.ts'
import { systemHmacSha3_512, systemHmacSha256 } from '../runtime.ts'
import type { CacheLayer } from './cache-layer.ts'
import type { ServiceContext } from './context.ts'
import type { CodeFailure, RequestContext } from './types.ts'

/** Longest code input looked at, before any Unicode work (R-IN-1). */
export const MAX_CODE_INPUT_LENGTH = 64

/** Whose counter an attempt spends: the signed-in user, or the identifier typed at login. */
export type Subject = { kind: 'user' | 'identifier'; value: string }

/** One limiter counter and its budget. */
export type LimiterKey = { key: string; maxAttempts: number }

/** What an attempt hands the store: the input's digests under every pepper and its counters. */
export interface PreparedAttempt {
  digests: Uint8Array[]
  keys: LimiterKey[]
  /** The subject's counter: a success resets it (R-RL-7). Frozen, shared by the subject's attempts. */
  reset: readonly string[]
}

/** Who attempts what: the input of {@link Limiter.attempt} without its store work. */
export interface AttemptArgs {
  subject: Subject
  userId: string
  code: unknown
  ctx: RequestContext
  now: number
  /** The audit event of a failure. */
  event: string
  identifier?: string
}

/** The store work of an attempt: consume or find, behind the limiter. */
export type Lookup<T> = (
  digests: Uint8Array[],
  keys: LimiterKey[],
  reset: readonly string[],
) => Promise<ReservedLookup<T>>

/** What {@link createLimiter} returns. */
export interface Limiter {
  /**
   * The shared path of every code-addressed operation: canonicalise, hash, reserve, look up,
   * record. `lookup` is the store work (consume or find) behind the limiter; everything else is
   * identical for known and unknown users. {@link Limiter.prepare} and {@link Limiter.failed} are
   * its two halves, for a caller that runs the store work itself (the redeem path).
   */
  attempt<T>(args: AttemptArgs & { lookup: Lookup<T> }): Promise<{ ok: true; value: T } | CodeFailure>
  /**
   * The first half of an attempt, synchronous: the input bounded, canonicalised and hashed under
   * every pepper (one digest is paid for whatever the input, so malformed input, a locked account
   * and a wrong code cost the same), and the counters it spends.
   */
  prepare(args: AttemptArgs): PreparedAttempt
  /**
   * {@link Limiter.prepare} from the parts of its arguments, for a caller that builds the
   * {@link AttemptArgs} only when the attempt fails (the redeem path).
   */
  prepareCode(
    kind: Subject['kind'],
    subject: string,
    userId: string,
    code: unknown,
    clientKey: string | undefined,
  ): PreparedAttempt
  /**
   * The second half of an attempt whose store work was denied or found nothing: the audit row,
   * locks on full counters, events and the hard cap. Returns the failure to hand back.
   */
  failed(
    args: AttemptArgs,
    prepared: PreparedAttempt,
    result: { outcome: 'denied' | 'missed'; states: readonly AttemptState[] },
  ): Promise<CodeFailure>
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
  const { config, store, memo, label, guardStore, storeFailure, audit, auditRecord, emit } = sc
  const { bumpVersion } = cacheLayer
  const format = config.format
  const peppers = config.peppers
  const imported = config.import
  const importing = imported.formats.length > 0 || imported.legacyDigests.length > 0
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

  // One frozen counter per identifier, memoised by the caller's string: an attempt allocates only
  // the arrays it hands the store. A subject's counter comes with the `reset` list of a success.
  const counterOf =
    (prefix: string, purpose: string, kind: string, maxAttempts: number) =>
    (value: string): LimiterKey =>
      Object.freeze({ key: `${prefix}:${label(purpose, `${kind}${value}`)}`, maxAttempts })
  const subjectCounterOf = (kind: string) => {
    const counter = counterOf('id', 'limiter-id', kind, config.maxLoginAttempts)
    return memo((value) => {
      const key = counter(value)
      return Object.freeze({ key, reset: Object.freeze([key.key]) })
    })
  }
  const userCounter = subjectCounterOf('user:')
  const identifierCounter = subjectCounterOf('identifier:')
  const clientCounter = memo(counterOf('ip', 'limiter-ip', '', config.clientMaxAttempts))

  function prepare(args: AttemptArgs): PreparedAttempt {
    return prepareCode(args.subject.kind, args.subject.value, args.userId, args.code, args.ctx.clientKey)
  }

  function prepareCode(
    kind: Subject['kind'],
    subject: string,
    userId: string,
    code: unknown,
    clientKey: string | undefined,
  ): PreparedAttempt {
    const raw = typeof code === 'string' && code.length <= MAX_CODE_INPUT_LENGTH ? code : ''
    const canonical = normalize(raw, format)
    const digests = candidateDigests(peppers, userId, canonical ?? '', systemHmacSha256)
    if (importing) {
      appendImportedDigests(
        digests,
        imported,
        peppers,
        userId,
        raw,
        canonical,
        systemHmacSha256,
        systemHmacSha3_512,
      )
    }
    // The subject's counter first: a success resets it (R-RL-7) but only gives back its own
    // reservation on the client counter, which keeps counting that client's failures.
    const id = (kind === 'user' ? userCounter : identifierCounter)(subject)
    const keys = clientKey ? [id.key, clientCounter(clientKey)] : [id.key]
    return { digests, keys, reset: id.reset }
  }

  async function attempt<T>(
    args: AttemptArgs & { lookup: Lookup<T> },
  ): Promise<{ ok: true; value: T } | CodeFailure> {
    const prepared = prepare(args)
    let result: ReservedLookup<T>
    try {
      result = await args.lookup(prepared.digests, prepared.keys, prepared.reset)
    } catch (error) {
      throw storeFailure(error)
    }
    if (result.outcome === 'found') return { ok: true, value: result.value }
    return failed(args, prepared, result)
  }

  async function failed(
    args: AttemptArgs,
    prepared: PreparedAttempt,
    result: { outcome: 'denied' | 'missed'; states: readonly AttemptState[] },
  ): Promise<CodeFailure> {
    const { now, ctx } = args
    const { keys } = prepared
    // In second-factor mode the user already passed the first factor: naming them leaks nothing.
    const auditUserId = args.subject.kind === 'user' ? args.userId : null
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

  return { attempt, prepare, prepareCode, failed, behindLimiter, claim }
}

function failure(retryAfterMs: number): CodeFailure {
  return { ok: false, reason: 'INVALID_CODE', retryAfterMs }
}
