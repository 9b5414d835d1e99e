/**
 * The attempt aggregate of the store port (see `store.ts`): {@link AttemptStore}, its records, and
 * {@link behindReservation}, a lookup behind the limiter built from its methods.
 */

/** State of one attempt counter. */
export interface AttemptState {
  /** Failures (and in-flight reservations) since the last lock or reset. */
  failures: number
  /** Consecutive failures since the last reset, across locks (the hard cap counts these). */
  consecutive: number
  /** How many locks were applied since the last reset (the cooldown exponent). */
  lockouts: number
  /** Locked while `now < lockedUntil`; 0 when never locked. */
  lockedUntil: number
}

/** One counter of a `reserveAttempts` call. */
export interface AttemptKey {
  key: string
  /** Attempts the counter allows before it is full (an integer >= 0; `0` always denies). */
  maxAttempts: number
}

/** The outcome of `reserveAttempts`. */
export interface AttemptReservation {
  /** `true` when one attempt was reserved on every key; `false` when none was. */
  allowed: boolean
  /** The counters after the call (unchanged when denied), in input order. */
  states: AttemptState[]
}

/**
 * The limiter's counters, one per key (a subject, a client): reserve before a lookup, settle after
 * a success, lock after too many failures.
 *
 * Concurrency: `reserveAttempts` is all or nothing across its keys and never takes a key past its
 * `maxAttempts`, however many callers race; `settleAttempts` and `lockAttempts` are each one atomic
 * read-modify-write, so concurrent calls on one key lose no update; `getAttempts` only reads.
 */
export interface AttemptStore {
  /**
   * Reserves one attempt on every key at once, all or nothing. A key is open when it is not locked
   * (`now >= lockedUntil`) and has fewer than its `maxAttempts` failures. When every key is open,
   * increments `failures` and `consecutive` of each (creating missing counters) and returns
   * `allowed: true`; when any key is locked or full, no key changes and `allowed` is `false`.
   * `states` are the counters after the call (unchanged when denied), in input order.
   * Keys must be distinct (a repeated key throws `INVALID_INPUT`); no keys is allowed and changes
   * nothing.
   *
   * Concurrency: under N concurrent calls on fresh keys at most `maxAttempts` calls are allowed per
   * key, and N concurrent calls with the same fresh keys are allowed exactly
   * `min(N, smallest maxAttempts)` times, leaving each counter at that number: nothing a denied
   * call touched stays reserved. A store may reach all-or-nothing by giving back, before the call
   * returns, reservations it took before it found a closed key (`kyselyStore` on PostgreSQL does):
   * a concurrent observer (`getAttempts`, or a concurrent call sharing that key, which is then
   * denied) can briefly see such a reservation. Only a denied call does this, and only while some
   * key is already closed; an allowed call never takes a key past its `maxAttempts`.
   */
  reserveAttempts(input: { keys: readonly AttemptKey[]; now: number }): Promise<AttemptReservation>

  /**
   * Settles an attempt that did not fail, atomically: deletes the `reset` counters (a success resets
   * the subject) and gives back one reservation on each `release` counter (a counter that a success
   * must not reset, e.g. the per-client key): decrements `failures` and `consecutive` when
   * `failures > 0`, never below 0. A key in both lists is deleted; a key repeated within a list
   * counts once; missing keys are ignored.
   *
   * Concurrency: one atomic change per call; N concurrent releases after N reservations leave the
   * counter as before.
   */
  settleAttempts(input: { reset: readonly string[]; release: readonly string[] }): Promise<void>

  /** Reads a counter; a missing key reads as all zeros. */
  getAttempts(key: string): Promise<AttemptState>

  /**
   * Locks the counter until `until`: sets `lockedUntil = until`, `failures = 0`, `lockouts += 1`
   * (keeps `consecutive`). Returns the new state.
   */
  lockAttempts(input: { key: string; until: number }): Promise<AttemptState>
}

/** What a lookup behind the limiter found: see {@link behindReservation}. */
export type ReservedLookup<T> =
  | { outcome: 'denied' | 'missed'; states: AttemptState[] }
  | { outcome: 'found'; value: T }

/**
 * How a success settles its reservations: the `reset` keys (among `keys`) are deleted, every other
 * key of `keys` gets its reservation back.
 *
 * @example settlement([{ key: 'id:a', maxAttempts: 5 }, { key: 'ip:b', maxAttempts: 20 }], ['id:a'])
 * // { reset: ['id:a'], release: ['ip:b'] }
 */
export function settlement(
  keys: readonly AttemptKey[],
  reset: readonly string[],
): { reset: string[]; release: string[] } {
  const out = { reset: [] as string[], release: [] as string[] }
  for (const { key } of keys) (reset.includes(key) ? out.reset : out.release).push(key)
  return out
}

/**
 * A lookup behind the limiter, as separate store calls: reserve every key (all or nothing), run
 * `lookup`, and on a hit settle the reservations ({@link settlement}). A miss keeps them as
 * failures. A lookup error gives every reservation back (the outcome is unknown) and rethrows.
 *
 * @example
 * ```ts
 * const r = await behindReservation(store, { keys, reset, now }, () => store.findCode(input))
 * ```
 */
export async function behindReservation<T>(
  store: AttemptStore,
  input: { keys: readonly AttemptKey[]; reset: readonly string[]; now: number },
  lookup: () => Promise<T | null>,
): Promise<ReservedLookup<T>> {
  const { keys, reset, now } = input
  const reserved = await store.reserveAttempts({ keys, now })
  if (!reserved.allowed) return { outcome: 'denied', states: reserved.states }
  let value: T | null
  try {
    value = await lookup()
  } catch (error) {
    await store.settleAttempts({ reset: [], release: keys.map((k) => k.key) }).catch(() => {})
    throw error
  }
  if (value === null) return { outcome: 'missed', states: reserved.states }
  await store.settleAttempts(settlement(keys, reset))
  return { outcome: 'found', value }
}
