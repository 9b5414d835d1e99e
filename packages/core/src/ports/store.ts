/**
 * The store port: domain-level atomic operations, not CRUD.
 *
 * Every implementation runs `runStoreConformance()` from `@recovery-codes/testing`, which
 * checks each contract below, including the concurrency races.
 *
 * Conventions for every method:
 * - Time is UTC epoch milliseconds supplied by the caller (`now`); a store never reads its own clock.
 * - Every read or write is scoped by `userId`; an id that belongs to another user is "not found".
 * - Digests are raw 32-byte HMAC outputs; stores compare them by value and never log them.
 */

/** Lifecycle of a batch. `expired` is derived from `expiresAt`, never stored. */
export type BatchStatus = 'active' | 'superseded' | 'disabled' | 'deleted'

/** Lifecycle of one code. `deleted` is a soft delete; purge removes the row. */
export type CodeState = 'active' | 'used' | 'invalidated' | 'deleted'

/** The once-only flags of a batch; each can be set once. */
export type BatchFlag = 'viewed' | 'downloaded' | 'emailed' | 'verified'

/** A batch as written by `createBatch`. */
export interface NewBatch {
  id: string
  userId: string
  /** Pepper id the codes were hashed with. */
  keyId: string
  createdAt: number
  /** `null` = never expires. Valid iff `now < expiresAt`. */
  expiresAt: number | null
}

/** One code as written by `createBatch`: never the plaintext. */
export interface NewCode {
  id: string
  digest: Uint8Array
}

/** A batch with its counts, as history and status read it. */
export interface BatchSummary {
  id: string
  userId: string
  keyId: string
  status: BatchStatus
  createdAt: number
  expiresAt: number | null
  /** When the batch left `active` (superseded, disabled or deleted). */
  endedAt: number | null
  /** Total codes issued. */
  issued: number
  /** Codes still `active` (expiry not applied: callers compare `expiresAt`). */
  unused: number
  used: number
  invalidated: number
  deleted: number
  viewedAt: number | null
  downloadedAt: number | null
  emailedAt: number | null
  verifiedAt: number | null
  /** Last successful redeem in this batch. */
  lastUsedAt: number | null
}

/** A code that matched a digest and is currently usable. */
export interface CodeMatch {
  codeId: string
  batchId: string
  keyId: string
}

/** The result of a successful consume. */
export interface ConsumedCode extends CodeMatch {
  /** Active codes left in the batch after this consume. */
  remaining: number
}

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
 * Where a store keeps its state. A store whose state lives in one process only (`memoryStore()`)
 * sets this symbol to `'process'` on itself; `deployment: 'multi'` then refuses it, because
 * several processes would each keep their own codes and limiter counters, and single use and
 * lockout would no longer hold. Stores shared through a database set nothing.
 */
export const STORE_SCOPE: unique symbol = Symbol.for('recovery-codes.store-scope')

/** The input of {@link RecoveryCodeStore.redeemCode}. */
export interface RedeemCodeInput {
  userId: string
  digests: readonly Uint8Array[]
  now: number
  /** The limiter counters, reserved all or nothing exactly as by `reserveAttempts`. */
  keys: readonly AttemptKey[]
  /** On a consume these counters are deleted; every other key gets its reservation back. */
  reset: readonly string[]
  /**
   * Appended when a code is consumed, with `batchId` set to the code's batch and
   * `data.remaining` to the active codes left in it.
   */
  audit: AuditRecord
}

/** The outcome of {@link RecoveryCodeStore.redeemCode}. */
export type RedeemCodeOutcome =
  /** Some key was locked or full: nothing changed; `states` as `reserveAttempts` returns them. */
  | { outcome: 'denied'; states: AttemptState[] }
  /** Reserved, looked up, nothing usable: the reservations stay as failures; `states` after the call. */
  | { outcome: 'missed'; states: AttemptState[] }
  /**
   * Reserved and consumed; counters settled and the audit row appended. `auditFailed` is set by
   * {@link composeRedeemCode} when only the audit append failed: the code stays consumed.
   */
  | { outcome: 'consumed'; code: ConsumedCode; auditFailed?: unknown }

/** One audit record. Never a code, digest, pepper, session id or raw identifier. */
export interface AuditRecord {
  id: string
  at: number
  /** e.g. `batch.generated`, `login.failure`, `purge.run`. */
  event: string
  userId: string | null
  batchId: string | null
  /** Keyed hash of the normalised identifier, when one was submitted. */
  identifierHash: string | null
  /** Keyed hash of the client key (IP), when known. */
  clientHash: string | null
  outcome: 'success' | 'failure' | 'info'
  reason: string | null
  /** Small, JSON-serialisable, secret-free details (counts, formats). */
  data: Record<string, string | number | boolean | null> | null
}

/** One sent-email log row: who and when, never the body. */
export interface EmailLogRecord {
  id: string
  at: number
  userId: string
  batchId: string
  kind: string
  /** The recipient address as resolved by the host. */
  recipient: string
  outcome: 'sent' | 'failed'
}

/**
 * Where recovery codes live. Implementations: `memoryStore()`, `kyselyStore(db)`.
 */
export interface RecoveryCodeStore {
  /**
   * Writes a batch and its codes, and supersedes the user's previous `active` batch
   * (`status = 'superseded'`, `endedAt = batch.createdAt`), all or nothing.
   *
   * `audit`, when given, is appended in the same transaction: the batch never exists without its
   * audit row, nor the row without the batch.
   *
   * Concurrency: after this resolves no code of any earlier batch can be consumed; two concurrent
   * calls for one user leave exactly one `active` batch. A failure leaves no trace.
   * Rejects when a digest repeats within the user's rows (unique `(user_id, digest)`).
   */
  createBatch(batch: NewBatch, codes: readonly NewCode[], audit?: AuditRecord): Promise<void>

  /**
   * Consumes one code: the first of `digests` that matches a code that is `active`, in the user's
   * `active` batch, and unexpired (`expiresAt === null || now < expiresAt`). Sets it `used` with
   * `usedAt = now` and returns it; `null` when nothing matches.
   *
   * Concurrency: one conditional write. Under N concurrent calls for the same code exactly one
   * caller receives it.
   */
  consumeCode(input: {
    userId: string
    digests: readonly Uint8Array[]
    now: number
  }): Promise<ConsumedCode | null>

  /**
   * Finds a usable code (same predicate as `consumeCode`) without changing it.
   */
  findCode(input: { userId: string; digests: readonly Uint8Array[]; now: number }): Promise<CodeMatch | null>

  /**
   * Compare-and-set on one code: moves it from `active` to `to` only if it is still `active`.
   * Returns `true` when this call made the change; `audit`, when given, is appended with the change
   * in one transaction (and not at all when nothing changed).
   */
  setCodeState(input: {
    userId: string
    codeId: string
    to: 'invalidated' | 'deleted'
    now: number
    audit?: AuditRecord
  }): Promise<boolean>

  /**
   * Compare-and-set on a batch's status: moves an `active` batch to `to`, setting `endedAt = now`.
   * Returns `true` when this call made the change. Codes keep their own state; verification
   * checks the batch status in the same statement. `audit`, when given, is appended with the change
   * in one transaction (and not at all when nothing changed).
   */
  endBatch(input: {
    userId: string
    batchId: string
    to: 'disabled' | 'deleted'
    now: number
    audit?: AuditRecord
  }): Promise<boolean>

  /**
   * Sets a once-only flag (`viewedAt`, …) if it is unset. Returns `true` for exactly one caller
   * under concurrency. Works on a batch of any status.
   */
  setBatchFlag(input: { userId: string; batchId: string; flag: BatchFlag; now: number }): Promise<boolean>

  /** The user's `active` batch with counts, or `null`. */
  getActiveBatch(userId: string): Promise<BatchSummary | null>

  /**
   * The user's batches, newest first (`createdAt` desc, then `id` desc), `offset`/`limit` applied
   * in the store; `total` counts all the user's batches.
   */
  listBatches(input: {
    userId: string
    offset: number
    limit: number
  }): Promise<{ items: BatchSummary[]; total: number }>

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

  /**
   * Optional: one redeem in one call, with the result of `reserveAttempts(keys)`, then
   * `consumeCode`, then on a consume `settleAttempts({ reset, release: the other keys })` and
   * `appendAudit(audit)`, and nothing more. The service uses it when present (one round trip
   * instead of four) and composes the four calls otherwise; {@link composeRedeemCode} is that
   * composition.
   *
   * Concurrency: the guarantees of `reserveAttempts` and `consumeCode` hold (N concurrent calls
   * with one code: one `consumed`; N concurrent wrong guesses on a fresh key with `maxAttempts`
   * m: exactly m `missed`, the rest `denied`). A store that runs it as one transaction makes it
   * all or nothing: no reservation outlives a failed call.
   */
  redeemCode?(input: RedeemCodeInput): Promise<RedeemCodeOutcome>

  /** Reads a counter; a missing key reads as all zeros. */
  getAttempts(key: string): Promise<AttemptState>

  /**
   * Locks the counter until `until`: sets `lockedUntil = until`, `failures = 0`, `lockouts += 1`
   * (keeps `consecutive`). Returns the new state.
   */
  lockAttempts(input: { key: string; until: number }): Promise<AttemptState>

  /**
   * Deletes at most `limit` code rows that can never verify again and whose end is older than
   * `before`: codes `used`/`invalidated`/`deleted` with their change time `< before`, codes of a
   * non-active batch whose `endedAt < before`, and codes whose `expiresAt < before`.
   * Eligibility is re-checked inside the delete. Returns the number deleted.
   *
   * `audit`, when given, is appended in the same transaction when at least one row was deleted,
   * with `data.deleted` set to the number deleted ({@link purgedAudit}).
   *
   * Concurrency: safe beside itself and beside `consumeCode`; never deletes a code that could
   * still verify. Idempotent; holds no long transaction.
   */
  purgeCodes(input: { before: number; limit: number; audit?: AuditRecord }): Promise<number>

  /**
   * Deletes at most `limit` non-active batches with no code rows left and `endedAt < before`.
   * Returns the number deleted; `audit` as for `purgeCodes`.
   */
  purgeEmptyBatches(input: { before: number; limit: number; audit?: AuditRecord }): Promise<number>

  /**
   * Deletes at most `limit` limiter counters that nothing depends on any more: last reserved
   * before `before` and not locked at or after it (`lockedUntil < before`). A later failure on the
   * key starts from zero. Returns the number deleted; idempotent, one short statement per call.
   */
  purgeAttempts(input: { before: number; limit: number }): Promise<number>

  /** Appends an audit record. The audit API is append-only; only `purgeAudit` deletes. */
  appendAudit(record: AuditRecord): Promise<void>

  /** Newest first. */
  listAudit(input: { limit: number; userId?: string; event?: string }): Promise<AuditRecord[]>

  /** Deletes at most `limit` audit records with `at < before`. Returns the number deleted. */
  purgeAudit(input: { before: number; limit: number }): Promise<number>

  /** Appends an email log row (no body). */
  appendEmailLog(record: EmailLogRecord): Promise<void>
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
  store: RecoveryCodeStore,
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

/**
 * `redeemCode` from the store's other methods, for stores without a one-call version:
 * {@link behindReservation} around `consumeCode`, then the audit row. Not one transaction: a crash
 * between the calls can leave a reservation held, which the service heals into an ordinary
 * lockout.
 *
 * @example
 * ```ts
 * const outcome = await composeRedeemCode(store, { userId, digests, now, keys, reset, audit })
 * ```
 */
export async function composeRedeemCode(
  store: RecoveryCodeStore,
  input: RedeemCodeInput,
): Promise<RedeemCodeOutcome> {
  const { userId, digests, now, audit } = input
  const r = await behindReservation(store, input, () => store.consumeCode({ userId, digests, now }))
  if (r.outcome !== 'found') return r
  const code = r.value
  try {
    await store.appendAudit(consumedAudit(audit, code))
  } catch (error) {
    return { outcome: 'consumed', code, auditFailed: error }
  }
  return { outcome: 'consumed', code }
}

/** The audit row of a consume: `batchId` and `data.remaining` from the consumed code. */
export function consumedAudit(audit: AuditRecord, code: ConsumedCode): AuditRecord {
  return { ...audit, batchId: code.batchId, data: { ...audit.data, remaining: code.remaining } }
}

/** The audit row of a purge chunk: `data.deleted` set to the rows it deleted. */
export function purgedAudit(audit: AuditRecord, deleted: number): AuditRecord {
  return { ...audit, data: { ...audit.data, deleted } }
}
