/**
 * The limiter and the one-call redeem on MySQL (see `store/mysql.ts`). Every key of a call is
 * locked first, in byte order (a missing key through a placeholder row, `queries/mysql.ts`); with
 * every counter locked the app decides, exactly as SQLite's serialised transaction does: any key
 * closed → roll back (`denied`, nothing changed, strictly all or nothing); otherwise reserve (one
 * UPDATE), or, for a redeem that consumed a code, delete the reset counters and the placeholders
 * and leave every other counter as it was. So a successful redeem writes no limiter row but the
 * reset keys it deletes, as on the other dialects.
 */
import {
  type AttemptReservation,
  type AttemptState,
  consumedAudit,
  type RecoveryCodeStore,
  RecoveryCodesError,
  type RedeemCodeOutcome,
  settlement,
} from '@recovery-codes/core'
import type { Compilable } from 'kysely'
import { attemptKeys, auditRecord, byteOrder, time, unreadable, writeText } from '../checks.ts'
import type { Db } from '../queries/index.ts'
import { attempts } from '../rows.ts'
import { bytes, slotNames, slotValues } from '../sql/template.ts'
import { Rollback } from './context.ts'
import type { MysqlContext } from './mysql.ts'
import { mysqlConsume } from './mysql-batches.ts'

type Keys = readonly { key: string; maxAttempts: number }[]
type Row = Record<string, unknown> & { key: string; placeholder?: unknown }

/** `keys` in byte order (the order of the primary key every limiter statement locks along). */
const sorted = (keys: readonly string[]): string[] =>
  byteOrder([...new Set(keys)].map((key) => ({ key }))).map((x) => x.key)

/** Open: not locked (`now >= lockedUntil`) and fewer failures than `maxAttempts`. */
const closed = (st: AttemptState, maxAttempts: number, now: number) =>
  now < st.lockedUntil || st.failures >= maxAttempts

const reserved = (st: AttemptState): AttemptState => ({
  ...st,
  failures: st.failures + 1,
  consecutive: st.consecutive + 1,
})

type LimiterMethods = Pick<RecoveryCodeStore, 'reserveAttempts' | 'settleAttempts' | 'lockAttempts'> &
  Required<Pick<RecoveryCodeStore, 'redeemCode'>>

/** The attempts aggregate's writes and the redeem, on MySQL. */
export function mysqlAttempts(ctx: MysqlContext): LimiterMethods {
  const { k, q, m, d, exec, run, tx, retry, shaped, keyBytes, tooLong, auditBytes, appendAudit } = ctx
  const consume = mysqlConsume(ctx)
  /** A statement over a list of keys, compiled once per list length. */
  const overKeys =
    (op: string, build: (keys: string[], now: unknown) => Compilable<unknown>) =>
    (keys: readonly string[], now?: number) => {
      const names = slotNames('k', keys.length)
      return shaped(`${op}:${keys.length}`, [...names, 'now'], (s) =>
        build(
          names.map((n) => s[n]),
          s.now,
        ),
      )(slotValues('k', keys, { now: now === undefined ? null : d.ts(now) }))
    }
  const lockRows = overKeys('lock', (keys) => m.lockAttemptRows(k, keys))
  const placeholders = overKeys('placeholders', (keys) => m.insertPlaceholders(k, keys))
  const increment = overKeys('increment', (keys, now) => m.incrementAttempts(k, { keys, now: now as number }))
  const lockSettle = overKeys('settle-lock', (keys) => m.lockSettleRows(k, keys))
  const remove = overKeys('delete', (keys) => q.deleteAttempts(k, keys))
  const release = overKeys('release', (keys) => q.releaseAttempts(k, keys))
  const read = overKeys('read', (keys) => q.readAttempts(k, keys))

  const statesOf = (keys: Keys, rows: ReadonlyMap<string, Row>) => keys.map((x) => attempts(rows.get(x.key)))

  /**
   * Locks the counter row of every key (byte order), inserting a placeholder for each missing one
   * (then read again under its lock). Returns the rows by key (a placeholder reads as zeros) and
   * the placeholders this transaction inserted.
   */
  async function lockKeys(trx: Db, keys: readonly string[]) {
    const rows = new Map<string, Row>()
    for (const r of (await exec<Row>(trx, lockRows(keys))).rows) rows.set(r.key, r)
    const missing = keys.filter((key) => !rows.has(key))
    const own: string[] = []
    if (missing.length > 0) {
      await exec(trx, placeholders(missing))
      for (const r of (await exec<Row>(trx, lockRows(missing))).rows) {
        rows.set(r.key, r)
        if (Number(r.placeholder) === 1) own.push(r.key)
      }
    }
    return { rows, placeholders: own }
  }

  /** The counters of `keys` as they are (a call that allows no attempt, or a denied one). */
  const current = async (keys: Keys) => {
    const { rows } = await exec<Row>(k, read(keys.map((x) => x.key)))
    return statesOf(keys, new Map(rows.map((r) => [r.key, r])))
  }

  /** Write side: every key of a reservation fits its column. */
  const storable = (keys: Keys) => {
    for (const x of keys) keyBytes('key', x.key)
  }

  return {
    reserveAttempts: (input) =>
      run('reserveAttempts', async (): Promise<AttemptReservation> => {
        time('now', input.now)
        const { keys, now } = input
        attemptKeys(keys)
        if (keys.length === 0) return { allowed: true, states: [] }
        storable(keys)
        if (keys.some((x) => x.maxAttempts < 1)) return { allowed: false, states: await current(keys) }
        const order = sorted(keys.map((x) => x.key))
        let denied: AttemptState[] = []
        const allowed = await tx(async (trx) => {
          const { rows } = await lockKeys(trx, order)
          const states = statesOf(keys, rows)
          if (states.some((st, j) => closed(st, keys[j]!.maxAttempts, now))) {
            denied = states
            throw new Rollback()
          }
          await exec(trx, increment(order, now))
          return states.map(reserved)
        }, null)
        return allowed === null ? { allowed: false, states: denied } : { allowed: true, states: allowed }
      }),

    settleAttempts: (input) =>
      run('settleAttempts', async () => {
        if (!Array.isArray(input.reset) || !Array.isArray(input.release)) {
          throw new RecoveryCodesError('INVALID_INPUT', 'reset and release must be arrays')
        }
        // A key no row can carry is missing: ignored, like any missing key.
        const storedKey = (x: unknown): x is string => !unreadable(x) && !tooLong(x)
        const reset = sorted(input.reset.filter(storedKey))
        const resetSet = new Set(reset)
        const rest = sorted(input.release.filter((x) => storedKey(x) && !resetSet.has(x)))
        if (reset.length === 0 && rest.length === 0) return
        // One statement locks its rows in key order; two lock every row first, in one statement.
        if (rest.length === 0) return void (await retry(() => exec(k, remove(reset))))
        if (reset.length === 0) return void (await retry(() => exec(k, release(rest))))
        await tx(async (trx) => {
          await exec(trx, lockSettle(sorted([...reset, ...rest])))
          await exec(trx, remove(reset))
          await exec(trx, release(rest))
        })
      }),

    lockAttempts: (input) =>
      run('lockAttempts', async () => {
        writeText('key', input.key)
        time('until', input.until)
        keyBytes('key', input.key)
        return tx(async (trx) => {
          await m.lockAttempts(trx, input).execute()
          return attempts(await q.getAttempts(trx, input.key).executeTakeFirst())
        })
      }),

    /**
     * One READ COMMITTED transaction, equal in result to `composeRedeemCode`: lock the keys; any
     * closed → `denied`, rolled back; consume (`store/mysql-batches.ts`); nothing usable → reserve
     * every key, `missed`; a code → delete the reset counters (and the placeholders: a consume
     * leaves a missing counter missing), append the audit row, `consumed`. All or nothing: a
     * failing audit insert undoes the consume.
     */
    redeemCode: (input) =>
      run('redeemCode', async (): Promise<RedeemCodeOutcome> => {
        const { keys, audit, now } = input
        time('now', now)
        attemptKeys(keys)
        if (!Array.isArray(input.reset))
          throw new RecoveryCodesError('INVALID_INPUT', 'reset must be an array')
        const digests = input.digests.map(bytes)
        // As `consumeCode`: nothing to look up, or a user id no row can carry, is a miss.
        const lookup = digests.length > 0 && !unreadable(input.userId) && !tooLong(input.userId)
        // The audit record is only written on a consume: checked when there is a lookup.
        if (lookup) {
          auditRecord(audit, false)
          auditBytes(audit)
        }
        storable(keys)
        const { reset } = settlement(keys, input.reset)
        // As `reserveAttempts`: a key that allows no attempt denies without reserving anything.
        if (keys.some((x) => x.maxAttempts < 1)) return { outcome: 'denied', states: await current(keys) }
        if (keys.length === 0 && !lookup) return { outcome: 'missed', states: [] }
        const order = sorted(keys.map((x) => x.key))
        let denied: AttemptState[] = []
        const outcome = await tx(async (trx): Promise<RedeemCodeOutcome | null> => {
          let rows = new Map<string, Row>()
          let own: string[] = []
          if (keys.length > 0) {
            ;({ rows, placeholders: own } = await lockKeys(trx, order))
            const states = statesOf(keys, rows)
            if (states.some((st, j) => closed(st, keys[j]!.maxAttempts, now))) {
              denied = states
              throw new Rollback()
            }
          }
          const code = lookup ? await consume(trx, input.userId, digests, now) : null
          if (code === null) {
            if (keys.length === 0) return { outcome: 'missed', states: [] }
            await exec(trx, increment(order, now))
            return { outcome: 'missed', states: statesOf(keys, rows).map(reserved) }
          }
          const drop = sorted([...reset, ...own])
          if (drop.length > 0) await exec(trx, remove(drop))
          await exec(trx, appendAudit(consumedAudit(audit, code)))
          return { outcome: 'consumed', code }
        }, null)
        return outcome ?? { outcome: 'denied', states: denied }
      }),
  }
}
