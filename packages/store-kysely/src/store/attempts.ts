/**
 * The attempts aggregate (limiter counters). A reservation is all or nothing: PostgreSQL through
 * `rc_redeem` without a lookup (one statement, under the start deadline), SQLite in one
 * `BEGIN IMMEDIATE` transaction rolled back when a key is closed.
 */
import { type AttemptReservation, type RecoveryCodeStore, RecoveryCodesError } from '@recovery-codes/core'
import { attemptKeys, byteOrder, time, unreadable, writeText } from '../checks.ts'
import { attempts, statesOf } from '../rows.ts'
import { Rollback, type StoreContext } from './context.ts'
import type { LimiterStatements } from './limiter-statements.ts'

type Row = Record<string, unknown> & { key: string }
type Keys = readonly { key: string; maxAttempts: number }[]

/** The attempts aggregate; `reserveThroughRedeem` is the PostgreSQL reserve (`null`: function missing). */
export function attemptStore(
  { k, q, d, exec, run, tx }: StoreContext,
  limiter: LimiterStatements,
  reserveThroughRedeem: (keys: Keys, now: number) => Promise<AttemptReservation | null>,
): Pick<RecoveryCodeStore, 'reserveAttempts' | 'settleAttempts' | 'getAttempts' | 'lockAttempts'> {
  const read = async (keys: Keys) =>
    statesOf(keys, (await exec<Row>(k, limiter.read(keys.map((x) => x.key)))).rows)

  return {
    reserveAttempts: (input) =>
      run('reserveAttempts', async (): Promise<AttemptReservation> => {
        time('now', input.now)
        const keys = input.keys
        attemptKeys(keys)
        if (keys.length === 0) return { allowed: true, states: [] }
        if (keys.some((x) => x.maxAttempts < 1)) return { allowed: false, states: await read(keys) }
        if (d.pg) {
          const reserved = await reserveThroughRedeem(keys, input.now)
          if (reserved !== null) return reserved
          // Without `rc_redeem`: one autocommit statement. When a key is closed the others may have
          // been reserved: give them back before returning (one more statement, only when denied).
          const { rows } = await exec<Row>(k, limiter.reserve(byteOrder(keys), input.now))
          if (rows.length === keys.length) return { allowed: true, states: statesOf(keys, rows) }
          if (rows.length > 0)
            await exec(
              k,
              limiter.settle(
                [],
                rows.map((r) => r.key),
              ),
            )
          return { allowed: false, states: await read(keys) }
        }
        // SQLite: a transaction, rolled back when a key is closed (strictly all or nothing).
        const rows = await tx(async (trx) => {
          const r = await exec<Row>(trx, limiter.reserve(byteOrder(keys), input.now))
          if (r.rows.length < keys.length) throw new Rollback()
          return r.rows
        }, null)
        if (rows !== null) return { allowed: true, states: statesOf(keys, rows) }
        return { allowed: false, states: await read(keys) }
      }),

    settleAttempts: (input) =>
      run('settleAttempts', async () => {
        if (!Array.isArray(input.reset) || !Array.isArray(input.release)) {
          throw new RecoveryCodesError('INVALID_INPUT', 'reset and release must be arrays')
        }
        // A key no row can carry is missing: ignored, like any missing key.
        const reset = [...new Set(input.reset.filter((x) => !unreadable(x)))]
        const resetSet = new Set(reset)
        const release = [...new Set(input.release.filter((x) => !unreadable(x) && !resetSet.has(x)))]
        if (reset.length === 0 && release.length === 0) return
        if (d.pg) {
          await exec(k, limiter.settle(reset, release))
          return
        }
        if (release.length === 0) {
          await exec(k, limiter.delete(reset))
          return
        }
        if (reset.length === 0) {
          await exec(k, limiter.release(release))
          return
        }
        await tx(async (trx) => {
          await exec(trx, limiter.delete(reset))
          await exec(trx, limiter.release(release))
        })
      }),

    getAttempts: (key) =>
      run('getAttempts', async () => {
        if (unreadable(key)) return attempts(undefined)
        return attempts((await exec<Row>(k, limiter.get(key))).rows[0])
      }),

    lockAttempts: (input) =>
      run('lockAttempts', async () => {
        writeText('key', input.key)
        time('until', input.until)
        return attempts(await q.lockAttempts(k, input).executeTakeFirst())
      }),
  }
}
