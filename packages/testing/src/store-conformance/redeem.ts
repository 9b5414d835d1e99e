/**
 * The redeem aggregate's contract (`RedeemStore`): the store's own `redeemCode`, or
 * `composeRedeemCode` over the other aggregates when it has none, gives the outcome of reserve →
 * consume → settle → audit: consumed, missed or denied, with the races of single use and of the
 * limiter.
 */
import {
  type AttemptStore,
  type AuditStore,
  type BatchStore,
  composeRedeemCode,
  type RedeemCodeInput,
  type RedeemStore,
} from '@recovery-codes/core'
import { describe, expect, it } from 'vitest'
import { startTogether } from '../barrier.ts'
import { buildAudit, randomDigest, uniqueId } from '../fixtures.ts'
import type { AggregateSuite, StoreConformanceContext } from './context.ts'
import { batchCallsOf, timeOf, user, values, ZERO_ATTEMPTS } from './helpers.ts'

type Store = BatchStore & AttemptStore & AuditStore & RedeemStore

/** `RedeemStore`: outcomes and races of one redeem (composed when the store has no `redeemCode`). */
export const redeemSuite: AggregateSuite<Store> = { tests: redeemTests }

function redeemTests(ctx: StoreConformanceContext<Store>): void {
  const T = timeOf(ctx)
  const { seed } = batchCallsOf(ctx)

  describe(`redeemCode${'' /* the store's own, or the composition when it has none */}`, () => {
    const redeem = (input: RedeemCodeInput) =>
      ctx.store.redeemCode ? ctx.store.redeemCode(input) : composeRedeemCode(ctx.store, input)
    const inputFor = (
      userId: string,
      digest: Uint8Array,
      now: number,
      over: Partial<RedeemCodeInput> = {},
    ) => {
      const id = uniqueId('id')
      const ip = uniqueId('ip')
      return {
        id,
        ip,
        input: {
          userId,
          digests: [digest],
          now,
          keys: [
            { key: id, maxAttempts: 5 },
            { key: ip, maxAttempts: 20 },
          ],
          reset: [id],
          audit: buildAudit({
            at: now,
            userId,
            event: 'login.success',
            outcome: 'success',
            data: { mode: 'x' },
          }),
          ...over,
        } satisfies RedeemCodeInput,
      }
    }

    it('consumes: the code is used, the reset key deleted, the other key given back, the audit row written', async () => {
      const userId = user()
      const { batch, codes } = await seed({ userId, createdAt: T(0), count: 3 })
      const { id, ip, input } = inputFor(userId, codes[0]!.digest, T(5))
      // Earlier failures on both keys: the reset key forgets them, the other keeps them.
      await ctx.store.reserveAttempts({ keys: input.keys, now: T(1) })
      await ctx.store.reserveAttempts({ keys: input.keys, now: T(2) })
      const out = await redeem(input)
      expect(out).toMatchObject({
        outcome: 'consumed',
        code: { codeId: codes[0]!.id, batchId: batch.id, keyId: 'k1', remaining: 2 },
      })
      expect(await ctx.store.getAttempts(id)).toEqual(ZERO_ATTEMPTS)
      expect(await ctx.store.getAttempts(ip)).toMatchObject({ failures: 2, consecutive: 2 })
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 1, unused: 2, lastUsedAt: T(5) })
      const rows = await ctx.store.listAudit({ limit: 10, userId })
      expect(rows).toEqual([{ ...input.audit, batchId: batch.id, data: { mode: 'x', remaining: 2 } }])
      // Spent: the same code again is a miss, and counts.
      expect(await redeem(inputFor(userId, codes[0]!.digest, T(6)).input)).toMatchObject({
        outcome: 'missed',
      })
    })

    it('misses: a wrong, expired or dead code counts one failure on every key and writes nothing else', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), expiresAt: T(100), count: 2 })
      for (const [digest, now] of [
        [randomDigest(), T(5)],
        [codes[0]!.digest, T(100)],
      ] as const) {
        const { id, ip, input } = inputFor(userId, digest, now)
        const out = await redeem(input)
        const one = { ...ZERO_ATTEMPTS, failures: 1, consecutive: 1 }
        expect(out).toEqual({ outcome: 'missed', states: [one, one] })
        expect(await ctx.store.getAttempts(id)).toEqual(one)
        expect(await ctx.store.getAttempts(ip)).toEqual(one)
      }
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 0, unused: 2 })
      expect(await ctx.store.listAudit({ limit: 10, userId })).toEqual([])
    })

    it('denies without a lookup when any key is locked or full, and changes nothing', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), count: 2 })
      const locked = inputFor(userId, codes[0]!.digest, T(10))
      await ctx.store.lockAttempts({ key: locked.ip, until: T(11) })
      const out = await redeem(locked.input)
      expect(out).toEqual({
        outcome: 'denied',
        states: [ZERO_ATTEMPTS, { failures: 0, consecutive: 0, lockouts: 1, lockedUntil: T(11) }],
      })
      expect(await ctx.store.getAttempts(locked.id)).toEqual(ZERO_ATTEMPTS)

      const full = inputFor(userId, codes[0]!.digest, T(10))
      const keys = [{ key: full.id, maxAttempts: 2 }, full.input.keys[1]!]
      for (let i = 0; i < 2; i++) await ctx.store.reserveAttempts({ keys, now: T(10) })
      expect(await redeem({ ...full.input, keys })).toMatchObject({ outcome: 'denied' })
      expect(await ctx.store.getAttempts(full.ip)).toMatchObject({ failures: 2 })
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 0, unused: 2 })
      // Unlocked, the right code works.
      expect(await redeem({ ...locked.input, now: T(11) })).toMatchObject({ outcome: 'consumed' })
    })

    it('64 parallel redeems of one code: exactly one consumed', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), count: 3 })
      const { input } = inputFor(userId, codes[1]!.digest, T(1))
      const keys = input.keys.map((k) => ({ ...k, maxAttempts: 100 }))
      const results = values(
        await startTogether(
          Array.from(
            { length: 64 },
            (_, i) => () =>
              redeem({ ...input, keys, audit: buildAudit({ at: T(1), userId, event: `e${i}` }) }),
          ),
        ),
      )
      expect(results.filter((r) => r.outcome === 'consumed')).toHaveLength(1)
      expect(results.filter((r) => r.outcome === 'missed')).toHaveLength(63)
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 1, unused: 2 })
      expect(await ctx.store.listAudit({ limit: 100, userId })).toHaveLength(1)
    })

    it('100 parallel wrong guesses with maxAttempts 5: exactly 5 missed, 95 denied, counter at 5', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), count: 3 })
      const { id, input } = inputFor(userId, randomDigest(), T(1))
      const results = values(await startTogether(Array.from({ length: 100 }, () => () => redeem(input))))
      expect(results.filter((r) => r.outcome === 'missed')).toHaveLength(5)
      expect(results.filter((r) => r.outcome === 'denied')).toHaveLength(95)
      expect(await ctx.store.getAttempts(id)).toEqual({ ...ZERO_ATTEMPTS, failures: 5, consecutive: 5 })
      // The right code is refused too: the key is full.
      expect(await redeem({ ...input, digests: [codes[0]!.digest] })).toMatchObject({ outcome: 'denied' })
    })

    it('rejects malformed input like consumeCode and reserveAttempts, changing nothing', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), count: 1 })
      const { id, input } = inputFor(userId, codes[0]!.digest, T(1))
      const dup = [input.keys[0]!, input.keys[0]!]
      await expect(redeem({ ...input, keys: dup })).rejects.toMatchObject({ code: 'INVALID_INPUT' })
      await expect(redeem({ ...input, now: Number.NaN })).rejects.toMatchObject({ code: 'INVALID_INPUT' })
      expect(await ctx.store.getAttempts(id)).toEqual(ZERO_ATTEMPTS)
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 0, unused: 1 })
    })
  })
}
