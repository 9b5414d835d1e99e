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
import { bytes, type Compiled, constant, slotNames, slotValues, template } from '../sql/template.ts'
import type { StoreContext } from './context.ts'
import type { LimiterStatements } from './limiter-statements.ts'

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

/** The audit parameters of a PostgreSQL redeem without a lookup (never written). */
const NO_AUDIT = (at: number): RedeemQueryInput['audit'] => ({
  id: '',
  at,
  event: '',
  userId: null,
  identifierHash: null,
  clientHash: null,
  outcome: 'info',
  reason: null,
  data: null,
})

/**
 * The redeem of one store. `startDeadlineMs` (PostgreSQL): see `KyselyStoreOptions`; `store` is
 * the whole store, for the composition on a database without `rc_redeem`.
 */
export function redeemer(
  { k, q, d, exec, run, writeTx, appendAudit }: StoreContext,
  limiter: LimiterStatements,
  startDeadlineMs: number | null,
  store: () => RecoveryCodeStore,
) {
  const { ts } = d
  const serverClock = constant(sql`select (extract(epoch from clock_timestamp()) * 1000)::float8 as ms`, k)
  const redeemCache = new Map<string, Compiled<any>>()
  const consume1 = template(
    (i: any) => q.consume(k, { userId: i.userId, digests: [i.digest], now: i.now }),
    ['userId', 'digest', 'now'],
  )
  const consumeN = new Map<number, Compiled<any>>()
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
  async function redeemDeadline(): Promise<number | null> {
    if (startDeadlineMs === null) return null
    const sent = Date.now()
    if (serverOffset === null || sent - serverOffset.at > SERVER_OFFSET_TTL_MS) {
      const { rows } = await exec<{ ms: number | string }>(k, serverClock({}))
      const back = Date.now()
      serverOffset = { ms: Number(rows[0]!.ms) - (sent + back) / 2, at: back }
    }
    return sent + serverOffset.ms + startDeadlineMs
  }

  /** PostgreSQL: the one-statement redeem, compiled once per shape (`keys:reset:digests` counts). */
  const redeemQuery = (i: RedeemQueryInput) => {
    const [nk, nr, nd] = [i.keys.length, i.reset.length, i.digests.length]
    const shape = `${nk}:${nr}:${nd}`
    let t = redeemCache.get(shape)
    if (t === undefined) {
      const [ks, ms, rs, ds] = [
        slotNames('k', nk),
        slotNames('m', nk),
        slotNames('r', nr),
        slotNames('d', nd),
      ]
      const audit = REDEEM_AUDIT_FIELDS.map((f) => `a_${f}`)
      t = template(
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
        [...ks, ...ms, ...rs, ...ds, 'now', 'userId', 'deadline', ...audit],
      )
      if (nk + nr + nd <= MAX_CACHED_SLOTS) redeemCache.set(shape, t)
    }
    const values: Record<string, unknown> = {
      now: ts(i.now),
      userId: i.userId,
      deadline: i.deadline === null ? null : ts(i.deadline),
    }
    slotValues('k', i.keys, values)
    slotValues('m', i.max, values)
    slotValues('r', i.reset, values)
    slotValues('d', i.digests, values)
    for (const f of REDEEM_AUDIT_FIELDS) values[`a_${f}`] = f === 'at' ? ts(i.audit.at) : i.audit[f]
    return t(values)
  }

  /** Runs an `rc_redeem` call: its rows, or `null` when the function does not exist (`42883`). */
  async function execRedeem<R>(call: CompiledQuery): Promise<R[] | null> {
    try {
      return (await exec<R>(k, call)).rows
    } catch (e) {
      if ((e as { code?: unknown })?.code === '42883' && String(e).includes('rc_redeem')) return null
      throw e
    }
  }

  /**
   * PostgreSQL `reserveAttempts` as `rc_redeem` with no lookup: `missed` is "reserved", `denied`
   * "refused, nothing changed". `null` when the function does not exist.
   */
  async function reserveThroughRedeem(keys: Keys, now: number): Promise<AttemptReservation | null> {
    const rows = await execRedeem<RedeemRow>(
      redeemQuery({
        deadline: await redeemDeadline(),
        keys: keys.map((x) => x.key),
        max: keys.map((x) => x.maxAttempts),
        reset: [],
        now,
        userId: '',
        digests: [],
        audit: NO_AUDIT(now),
      }),
    )
    if (rows === null) return null
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
    const { keys, audit, now } = input
    const rows = await execRedeem<RedeemRow>(
      redeemQuery({
        deadline: await redeemDeadline(),
        keys: keys.map((x) => x.key),
        max: keys.map((x) => x.maxAttempts),
        reset,
        now,
        userId: lookup ? input.userId : '',
        digests: lookup ? input.digests : [],
        audit: lookup
          ? { ...audit, data: audit.data === null ? null : JSON.stringify(audit.data) }
          : NO_AUDIT(now),
      }),
    )
    // Without the function (`undefined_function`): the four calls, same result.
    if (rows === null) return composeRedeemCode(store(), input)
    const first = rows[0]
    if (first?.outcome === 'consumed') {
      const code = { codeId: first.code_id, batchId: first.batch_id, keyId: first.key_id }
      const outcome: RedeemCodeOutcome = {
        outcome: 'consumed',
        code: { ...code, remaining: Number(first.remaining ?? 0) },
      }
      return outcome
    }
    if (first?.outcome !== 'denied' && first?.outcome !== 'missed') {
      throw new RecoveryCodesError('INTERNAL', 'store-kysely: unexpected rc_redeem result')
    }
    const outcome: RedeemCodeOutcome = { outcome: first.outcome, states: statesOf(keys, counterRows(rows)) }
    return outcome
  }

  /**
   * SQLite: one write transaction (`BEGIN IMMEDIATE`: the write lock from the start, so nothing
   * else runs until it commits). Serialised like that, reserve → consume → settle has the same
   * result as: read the counters; any key closed → `denied`, nothing written; no code → reserve
   * (the upsert of `reserveAttempts`) → `missed`; a code → consume, delete the reset counters that
   * exist, and leave the others as they were (a reservation given back in the same transaction is
   * no change at all), append the audit row. Pages written: the code row's, the audit row's three.
   */
  function redeemSqlite(
    input: RedeemCodeInput,
    digests: Buffer[],
    lookup: boolean,
    reset: readonly string[],
  ): Promise<RedeemCodeOutcome> {
    const { keys, audit, now } = input
    return writeTx(async (conn): Promise<RedeemCodeOutcome> => {
      const stored = new Set<string>()
      if (keys.length > 0) {
        const { rows } = await exec<Row>(conn, limiter.read(keys.map((x) => x.key)))
        for (const r of rows) stored.add(r.key)
        const states = statesOf(keys, rows)
        // Open: not locked (`now >= lockedUntil`) and fewer failures than maxAttempts (>= 1 here).
        if (states.some((st, j) => now < st.lockedUntil || st.failures >= keys[j]!.maxAttempts)) {
          return { outcome: 'denied', states }
        }
      }
      const miss = async (): Promise<RedeemCodeOutcome> => {
        if (keys.length === 0) return { outcome: 'missed', states: [] }
        const r = await exec<Row>(conn, limiter.reserve(byteOrder(keys), now))
        // Every key was open a moment ago under the same write lock.
        if (r.rows.length < keys.length) throw new RecoveryCodesError('INTERNAL', 'reservation lost')
        return { outcome: 'missed', states: statesOf(keys, r.rows) }
      }
      if (!lookup) return miss()
      const { rows } = await exec<{ id: string; batch_id: string; key_id: string }>(
        conn,
        consumeQuery(input.userId, digests, now),
      )
      const row = rows[0]
      if (row === undefined) return miss()
      const left = await exec<{ n: number }>(conn, remaining({ batchId: row.batch_id }))
      const code: ConsumedCode = {
        codeId: row.id,
        batchId: row.batch_id,
        keyId: row.key_id,
        remaining: Number(left.rows[0]?.n ?? 0),
      }
      const resetStored = reset.filter((key) => stored.has(key))
      if (resetStored.length > 0) await exec(conn, limiter.delete(resetStored))
      await exec(conn, appendAudit(consumedAudit(audit, code)))
      return { outcome: 'consumed', code }
    })
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
        return redeemSqlite(input, digests, lookup, reset)
      }),
    /** The consume statement, for `consumeCode` on SQLite. */
    consumeQuery,
    remaining,
  }
}
