/**
 * The one-call redeem (`redeemCode`), equal in result to `composeRedeemCode`. PostgreSQL: one
 * statement, one round trip (`rc_redeem`); SQLite: one `BEGIN IMMEDIATE` transaction. Both are all
 * or nothing, and a successful redeem writes the code row and the audit row only (a reset counter
 * that exists is deleted; no limiter row is written otherwise).
 */
import {
  type AttemptReservation,
  type ConsumedCode,
  composeRedeemCode,
  consumedAudit,
  type RecoveryCodeStore,
  RecoveryCodesError,
  type RedeemCodeInput,
  type RedeemCodeOutcome,
  settlement,
} from '@recovery-codes/core'
import { type CompiledQuery, sql } from 'kysely'
import { attemptKeys, auditRecord, byteOrder, time, unreadable } from '../checks.ts'
import { REDEEM_AUDIT_FIELDS, type RedeemQueryInput } from '../queries/index.ts'
import { statesOf } from '../rows.ts'
import {
  bytes,
  type Compiled,
  constant,
  positionalTemplate,
  slotNames,
  slotValues,
  template,
} from '../sql/template.ts'
import type { StoreContext } from './context.ts'
import type { LimiterStatements } from './limiter-statements.ts'
import type { Steps } from './steps.ts'

/** How long a measured offset between the app's and PostgreSQL's clocks is trusted. */
const SERVER_OFFSET_TTL_MS = 600_000
/** Redeem statements with more slots than this are compiled per call, not cached. */
const MAX_CACHED_SLOTS = 32

type Row = Record<string, unknown> & { key: string }
type Keys = readonly { key: string; maxAttempts: number }[]
type RedeemRow = {
  outcome: string
  key: string | null
  failures: number | null
  code_id: string
  batch_id: string
  key_id: string
  remaining: number | string | null
}

/** The audit parameters of a PostgreSQL redeem without a lookup (never written; `at` is its `now`). */
const NO_AUDIT: Readonly<RedeemQueryInput['audit']> = Object.freeze({
  id: '',
  at: 0,
  event: '',
  userId: null,
  identifierHash: null,
  clientHash: null,
  outcome: 'info',
  reason: null,
  data: null,
})
/** Per-count redeem shapes are cached under `(keys * SHAPE + reset) * SHAPE + digests`. */
const SHAPE = MAX_CACHED_SLOTS + 1

/**
 * The redeem of one store. `startDeadlineMs` (PostgreSQL): see `KyselyStoreOptions`; `store` is
 * the whole store, for the composition on a database without `rc_redeem`.
 */
export function redeemer(
  { k, q, d, exec, run, writeSteps, appendAudit }: StoreContext,
  limiter: LimiterStatements,
  startDeadlineMs: number | null,
  store: () => RecoveryCodeStore,
) {
  const { ts } = d
  const serverClock = constant(sql`select (extract(epoch from clock_timestamp()) * 1000)::float8 as ms`, k)
  const redeemCache = new Map<number, (values: unknown[]) => CompiledQuery>()
  const consume1 = template(
    (i: any) => q.consume(k, { userId: i.userId, digests: [i.digest], now: i.now }),
    ['userId', 'digest', 'now'],
  )
  const consumeN = new Map<number, Compiled<any>>()
  const consumeIfOpen = new Map<number, (values: unknown[]) => CompiledQuery>()
  const remaining = template((i: any) => q.remaining(k, { batchId: i.batchId }), ['batchId'])
  /** The server's clock minus ours (ms) and when it was read ({@link redeemDeadline}). */
  let serverOffset: { ms: number; at: number } | null = null

  /** The consume statement for `digests` (compiled once per digest count). */
  const consumeQuery = (userId: string, digests: Buffer[], now: number): CompiledQuery => {
    if (digests.length === 1) return consume1({ userId, digest: digests[0], now: ts(now) })
    let t = consumeN.get(digests.length)
    if (t === undefined) {
      const names = slotNames('d', digests.length)
      t = template(
        (i: any) => q.consume(k, { userId: i.userId, digests: names.map((n) => i[n]), now: i.now }),
        ['userId', 'now', ...names],
      )
      consumeN.set(digests.length, t)
    }
    return t(slotValues('d', digests, { userId, now: ts(now) }))
  }

  /**
   * PostgreSQL: the server-clock time after which a redeem sent now must not start, or `null` when
   * `startDeadlineMs` is off. Wall-clock time, not the service's `now` (which a test clock may
   * drive): the deadline is about this call's real wait. The clock offset is read on first use and
   * every {@link SERVER_OFFSET_TTL_MS}, with an error of at most half a round trip.
   */
  function redeemDeadline(): number | null | Promise<number | null> {
    if (startDeadlineMs === null) return null
    const sent = Date.now()
    // Synchronous while the offset is fresh: no promise per redeem for it.
    if (serverOffset !== null && sent - serverOffset.at <= SERVER_OFFSET_TTL_MS) {
      return sent + serverOffset.ms + startDeadlineMs
    }
    return readServerOffset(sent, startDeadlineMs)
  }

  async function readServerOffset(sent: number, deadlineMs: number): Promise<number> {
    const { rows } = await exec<{ ms: number | string }>(k, serverClock({}))
    const back = Date.now()
    serverOffset = { ms: Number(rows[0]!.ms) - (sent + back) / 2, at: back }
    return sent + serverOffset.ms + deadlineMs
  }

  /**
   * PostgreSQL: the one-statement redeem, compiled once per shape (the counts of keys, reset keys
   * and digests). Its slots are listed in the order `rc_redeem(…)` binds them, so the values below,
   * pushed in the same order, are the statement's parameter array as they are.
   */
  const redeemStatement = (nk: number, nr: number, nd: number) => {
    const cached = nk + nr + nd <= MAX_CACHED_SLOTS
    const shape = (nk * SHAPE + nr) * SHAPE + nd
    let t = cached ? redeemCache.get(shape) : undefined
    if (t === undefined) {
      const [ks, ms, rs, ds] = [
        slotNames('k', nk),
        slotNames('m', nk),
        slotNames('r', nr),
        slotNames('d', nd),
      ]
      const audit = REDEEM_AUDIT_FIELDS.map((f) => `a_${f}`)
      t = positionalTemplate(
        (s: any) =>
          q.redeem(k, {
            keys: ks.map((n) => s[n]),
            max: ms.map((n) => s[n]),
            reset: rs.map((n) => s[n]),
            now: s.now,
            userId: s.userId,
            digests: ds.map((n) => s[n]),
            audit: Object.fromEntries(REDEEM_AUDIT_FIELDS.map((f, j) => [f, s[audit[j]!]])) as never,
            deadline: s.deadline,
          }),
        [...ks, ...ms, ...rs, 'now', 'userId', ...ds, ...audit, 'deadline'],
      )
      if (cached) redeemCache.set(shape, t)
    }
    return t
  }

  /**
   * The redeem statement for these inputs; `audit` `null` for a redeem without a lookup. The values
   * go in the slot order of {@link redeemStatement}: keys, maxAttempts, reset keys, now, user id,
   * digests, the audit fields ({@link REDEEM_AUDIT_FIELDS}), deadline.
   */
  const redeemQuery = (
    keys: Keys,
    reset: readonly string[],
    now: number,
    userId: string,
    digests: readonly Uint8Array[],
    audit: RedeemCodeInput['audit'] | null,
    deadline: number | null,
  ): CompiledQuery => {
    const nk = keys.length
    const nr = reset.length
    const nd = digests.length
    const at = ts(now)
    // Sized up front and filled by index: no growth, no iterator objects (this runs per redeem).
    const v = new Array<unknown>(2 * nk + nr + nd + REDEEM_AUDIT_FIELDS.length + 3)
    let j = 0
    for (let i = 0; i < nk; i++) v[j++] = keys[i]!.key
    for (let i = 0; i < nk; i++) v[j++] = keys[i]!.maxAttempts
    for (let i = 0; i < nr; i++) v[j++] = reset[i]
    v[j++] = at
    v[j++] = userId
    for (let i = 0; i < nd; i++) v[j++] = digests[i]
    const a = audit ?? NO_AUDIT
    for (let i = 0; i < REDEEM_AUDIT_FIELDS.length; i++) {
      const f = REDEEM_AUDIT_FIELDS[i]!
      if (f === 'at') v[j++] = audit === null ? at : ts(a.at)
      else if (f === 'data') v[j++] = a.data === null ? null : JSON.stringify(a.data)
      else v[j++] = a[f]
    }
    v[j] = deadline === null ? null : ts(deadline)
    return redeemStatement(nk, nr, nd)(v)
  }

  /** Whether `e` says the database has no `rc_redeem` (`42883`, before migration 0005). */
  const noRedeemFunction = (e: unknown) =>
    (e as { code?: unknown })?.code === '42883' && String(e).includes('rc_redeem')

  /**
   * PostgreSQL `reserveAttempts` as `rc_redeem` with no lookup: `missed` is "reserved", `denied`
   * "refused, nothing changed". `null` when the function does not exist.
   */
  async function reserveThroughRedeem(keys: Keys, now: number): Promise<AttemptReservation | null> {
    const deadline = await redeemDeadline()
    let rows: RedeemRow[]
    try {
      rows = (await exec<RedeemRow>(k, redeemQuery(keys, [], now, '', [], null, deadline))).rows
    } catch (e) {
      if (noRedeemFunction(e)) return null
      throw e
    }
    const outcome = rows[0]?.outcome
    if (outcome !== 'missed' && outcome !== 'denied') {
      throw new RecoveryCodesError('INTERNAL', 'store-kysely: unexpected rc_redeem result')
    }
    return { allowed: outcome === 'missed', states: statesOf(keys, counterRows(rows)) }
  }

  /** `rc_redeem`'s per-key rows; a key without a counter row comes back with null counters. */
  const counterRows = (rows: RedeemRow[]) =>
    rows.filter((r): r is RedeemRow & Row => r.key !== null && r.failures !== null)

  /** PostgreSQL: one statement. */
  async function redeemPg(
    input: RedeemCodeInput,
    lookup: boolean,
    reset: readonly string[],
  ): Promise<RedeemCodeOutcome> {
    const { keys } = input
    let deadline = redeemDeadline()
    // Awaited only when the clock offset is being read (an `await` of a value costs a step too).
    if (deadline !== null && typeof deadline !== 'number') deadline = await deadline
    const call = lookup
      ? redeemQuery(keys, reset, input.now, input.userId, input.digests, input.audit, deadline)
      : redeemQuery(keys, reset, input.now, '', [], null, deadline)
    let rows: RedeemRow[]
    try {
      rows = (await exec<RedeemRow>(k, call)).rows
    } catch (e) {
      // Without the function (`undefined_function`): the four calls, same result.
      if (noRedeemFunction(e)) return composeRedeemCode(store(), input)
      throw e
    }
    const first = rows[0]
    if (first?.outcome === 'consumed') {
      return {
        outcome: 'consumed',
        code: {
          codeId: first.code_id,
          batchId: first.batch_id,
          keyId: first.key_id,
          remaining: Number(first.remaining ?? 0),
        },
      }
    }
    if (first?.outcome !== 'denied' && first?.outcome !== 'missed') {
      throw new RecoveryCodesError('INTERNAL', 'store-kysely: unexpected rc_redeem result')
    }
    const outcome: RedeemCodeOutcome = { outcome: first.outcome, states: statesOf(keys, counterRows(rows)) }
    return outcome
  }

  /**
   * SQLite: the consume-if-every-key-is-open statement, compiled once per shape (keys, digests),
   * its inputs by position: user id, now, the digests, the keys, their maxAttempts.
   */
  const consumeIfOpenQuery = (
    userId: string,
    digests: Buffer[],
    keys: readonly { key: string; maxAttempts: number }[],
    now: number,
  ): CompiledQuery => {
    const nd = digests.length
    const nk = keys.length
    const shape = nk * SHAPE + nd
    let t = consumeIfOpen.get(shape)
    if (t === undefined) {
      const [ds, ks, ms] = [slotNames('d', nd), slotNames('k', nk), slotNames('m', nk)]
      t = positionalTemplate(
        (i: any) =>
          q.consumeIfOpen(k, {
            userId: i.userId,
            digests: ds.map((n) => i[n]),
            now: i.now,
            keys: ks.map((n, j) => ({ key: i[n], maxAttempts: i[ms[j]!] })),
          }),
        ['userId', 'now', ...ds, ...ks, ...ms],
      )
      if (nk * 2 + nd <= MAX_CACHED_SLOTS) consumeIfOpen.set(shape, t)
    }
    // Sized up front and filled by index (this runs per redeem).
    const v = new Array<unknown>(2 + nd + 2 * nk)
    v[0] = userId
    v[1] = ts(now)
    for (let i = 0; i < nd; i++) v[2 + i] = digests[i]
    for (let i = 0; i < nk; i++) {
      v[2 + nd + i] = keys[i]!.key
      v[2 + nd + nk + i] = keys[i]!.maxAttempts
    }
    return t(v)
  }

  /**
   * SQLite: the steps of one write transaction (`BEGIN IMMEDIATE`: the write lock from the start,
   * so nothing else runs until it commits; run by `writeSteps`, synchronously where it can).
   * Serialised like that, reserve → consume → settle has the same result as: consume the code if every key is open (one statement, which also returns what the
   * batch has left); consumed → delete the reset counters (a key without one deletes nothing) and
   * append the audit row; otherwise read the counters: a key closed → `denied`, nothing written;
   * else reserve every key (the upsert of `reserveAttempts`) → `missed`. Statements of a success:
   * BEGIN, the consume, the audit INSERT, COMMIT (and the reset DELETE before the INSERT only when
   * a reset key has a counter, which the consume reports); pages written: the code row's and the
   * audit row's three.
   */
  function* redeemSqlite(
    input: RedeemCodeInput,
    digests: Buffer[],
    lookup: boolean,
    reset: readonly string[],
  ): Steps<RedeemCodeOutcome> {
    const { keys, audit, now } = input
    if (lookup) {
      type CodeRow = { id: string; batch_id: string; key_id: string; remaining: number }
      const row = (yield consumeIfOpenQuery(input.userId, digests, keys, now)).rows[0]
      if (row !== undefined) {
        const { id, batch_id, key_id, remaining } = row as CodeRow
        const code: ConsumedCode = {
          codeId: id,
          batchId: batch_id,
          keyId: key_id,
          remaining: Number(remaining),
        }
        const held = resetWithCounter(keys, reset, row)
        if (held.length > 0) yield limiter.delete(held)
        yield appendAudit(consumedAudit(audit, code))
        return { outcome: 'consumed', code }
      }
    }
    if (keys.length === 0) return { outcome: 'missed', states: [] }
    const { rows } = yield limiter.read(keys.map((x) => x.key))
    const states = statesOf(keys, rows as Row[])
    // Open: not locked (`now >= lockedUntil`) and fewer failures than maxAttempts (>= 1 here).
    if (states.some((st, j) => now < st.lockedUntil || st.failures >= keys[j]!.maxAttempts)) {
      return { outcome: 'denied', states }
    }
    const r = yield limiter.reserve(byteOrder(keys), now)
    // Every key was open a moment ago under the same write lock.
    if (r.rows.length < keys.length) throw new RecoveryCodesError('INTERNAL', 'reservation lost')
    return { outcome: 'missed', states: statesOf(keys, r.rows as Row[]) }
  }

  /** The keys of `reset` that have a counter row (`held_j` of the consume is 1 for `keys[j]`). */
  const resetWithCounter = (keys: Keys, reset: readonly string[], row: Record<string, unknown>): string[] => {
    const held: string[] = []
    for (const key of reset) {
      const j = keys.findIndex((x) => x.key === key)
      if (j >= 0 && Number(row[`held_${j}`]) === 1) held.push(key)
    }
    return held
  }

  return {
    reserveThroughRedeem,
    /**
     * Malformed input (the audit record too, when there is a lookup) throws `INVALID_INPUT`
     * before any SQL runs. A failed call leaves no reservation, a denied call never shows a
     * reservation to anyone, and a failing audit insert undoes the consume.
     */
    redeemCode: (input: RedeemCodeInput) =>
      run('redeemCode', async (): Promise<RedeemCodeOutcome> => {
        const { keys, audit, now } = input
        time('now', now)
        attemptKeys(keys)
        if (!Array.isArray(input.reset))
          throw new RecoveryCodesError('INVALID_INPUT', 'reset must be an array')
        const digests = input.digests.map(bytes)
        // As `consumeCode`: nothing to look up, or a user id no row can carry, is a miss.
        const lookup = digests.length > 0 && !unreadable(input.userId)
        // The audit record is only written on a consume: checked when there is a lookup.
        if (lookup) auditRecord(audit, false)
        const { reset } = settlement(keys, input.reset)
        // As `reserveAttempts`: a key that allows no attempt denies without reserving anything.
        if (keys.some((x) => x.maxAttempts < 1)) {
          const { rows } = await exec<Row>(k, limiter.read(keys.map((x) => x.key)))
          return { outcome: 'denied', states: statesOf(keys, rows) }
        }
        if (d.pg) return redeemPg({ ...input, digests }, lookup, reset)
        if (keys.length === 0 && !lookup) return { outcome: 'missed', states: [] }
        return writeSteps(() => redeemSqlite(input, digests, lookup, reset))
      }),
    /** The consume statement, for `consumeCode` on SQLite. */
    consumeQuery,
    remaining,
  }
}
