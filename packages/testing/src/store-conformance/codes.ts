/**
 * The code methods of the batch aggregate (`BatchStore`): `consumeCode` (the usable predicate,
 * single use, first match), `findCode` (the same predicate, no change) and `setCodeState`
 * (compare-and-set from `active`).
 */
import type { BatchStore, ConsumedCode } from '@recovery-codes/core'
import { describe, expect, it } from 'vitest'
import { randomDigest, uniqueId } from '../fixtures.ts'
import type { StoreConformanceContext } from './context.ts'
import { batchCallsOf, timeOf, user } from './helpers.ts'

/** Registers the `consumeCode`, `findCode` and `setCodeState` tests. */
export function codeTests(ctx: StoreConformanceContext<BatchStore>): void {
  const T = timeOf(ctx)
  const { consume, find, batchOf, seed } = batchCallsOf(ctx)

  describe('consumeCode', () => {
    it('consumes an active code once and returns it with the remaining count', async () => {
      const userId = user()
      const { batch, codes } = await seed({
        userId,
        createdAt: T(0),
        keyId: 'k2',
        count: 4,
      })

      expect(await consume(userId, codes[2]!, T(100))).toEqual<ConsumedCode>({
        codeId: codes[2]!.id,
        batchId: batch.id,
        keyId: 'k2',
        remaining: 3,
      })
      expect(await consume(userId, codes[2]!, T(101))).toBeNull()
      expect(await find(userId, codes[2]!, T(102))).toBeNull()

      const summary = await ctx.store.getActiveBatch(userId)
      expect(summary).toMatchObject({ issued: 4, unused: 3, used: 1, lastUsedAt: T(100) })
    })

    it('counts remaining down to zero', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), count: 3 })
      const remaining: number[] = []
      for (const [i, code] of codes.entries())
        remaining.push((await consume(userId, code, T(10 + i)))!.remaining)
      expect(remaining).toEqual([2, 1, 0])
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({
        unused: 0,
        used: 3,
        lastUsedAt: T(12),
      })
    })

    it('returns null for an unknown digest, no digests, or a user without codes', async () => {
      const userId = user()
      await seed({ userId, createdAt: T(0) })
      expect(await ctx.store.consumeCode({ userId, digests: [randomDigest()], now: T(1) })).toBeNull()
      expect(await ctx.store.consumeCode({ userId, digests: [], now: T(1) })).toBeNull()
      expect(await ctx.store.consumeCode({ userId: user(), digests: [randomDigest()], now: T(1) })).toBeNull()
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ unused: 5, used: 0 })
    })

    it('refuses codes that are used, invalidated or deleted', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), count: 4 })
      await consume(userId, codes[0]!, T(1))
      expect(
        await ctx.store.setCodeState({ userId, codeId: codes[1]!.id, to: 'invalidated', now: T(2) }),
      ).toBe(true)
      expect(await ctx.store.setCodeState({ userId, codeId: codes[2]!.id, to: 'deleted', now: T(3) })).toBe(
        true,
      )

      for (const code of codes.slice(0, 3)) expect(await consume(userId, code, T(10))).toBeNull()
      expect(await consume(userId, codes[3]!, T(10))).toMatchObject({ codeId: codes[3]!.id, remaining: 0 })
    })

    it.each(['disabled', 'deleted'] as const)('refuses codes of a %s batch', async (to) => {
      const userId = user()
      const { batch, codes } = await seed({ userId, createdAt: T(0) })
      expect(await ctx.store.endBatch({ userId, batchId: batch.id, to, now: T(5) })).toBe(true)
      expect(await consume(userId, codes[0]!, T(6))).toBeNull()
      expect(await find(userId, codes[0]!, T(6))).toBeNull()
      expect(await batchOf(userId, batch.id)).toMatchObject({ status: to, unused: 5, used: 0 })
    })

    it('refuses codes of a superseded batch', async () => {
      const userId = user()
      const old = await seed({ userId, createdAt: T(0) })
      await seed({ userId, createdAt: T(1) })
      expect(await consume(userId, old.codes[0]!, T(2))).toBeNull()
      expect(await batchOf(userId, old.batch.id)).toMatchObject({ status: 'superseded', used: 0 })
    })

    it('enforces expiry: valid at expiresAt - 1, invalid at expiresAt', async () => {
      const userId = user()
      const expiresAt = T(60_000)
      const { codes } = await seed({ userId, createdAt: T(0), expiresAt, count: 3 })

      expect(await find(userId, codes[0]!, expiresAt)).toBeNull()
      expect(await consume(userId, codes[0]!, expiresAt)).toBeNull()
      expect(await consume(userId, codes[0]!, expiresAt + 1)).toBeNull()
      expect(await find(userId, codes[0]!, expiresAt - 1)).toMatchObject({ codeId: codes[0]!.id })
      expect(await consume(userId, codes[0]!, expiresAt - 1)).toMatchObject({ codeId: codes[0]!.id })
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 1, unused: 2 })
    })

    it('never expires a batch with expiresAt null', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), expiresAt: null })
      expect(await consume(userId, codes[0]!, Number.MAX_SAFE_INTEGER)).not.toBeNull()
    })

    it("is scoped by userId: another user's id never matches", async () => {
      const owner = user()
      const other = user()
      const { codes } = await seed({ userId: owner, createdAt: T(0) })
      await seed({ userId: other, createdAt: T(0) })

      expect(await consume(other, codes[0]!, T(1))).toBeNull()
      expect(await find(other, codes[0]!, T(1))).toBeNull()
      expect(await consume(owner, codes[0]!, T(2))).toMatchObject({ codeId: codes[0]!.id })
      expect(await ctx.store.getActiveBatch(other)).toMatchObject({ used: 0, unused: 5 })
    })

    it('takes the first usable digest in order and consumes only that one', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), count: 4 })
      await consume(userId, codes[0]!, T(1))

      const result = await ctx.store.consumeCode({
        userId,
        digests: [randomDigest(), codes[0]!.digest, codes[2]!.digest, codes[1]!.digest],
        now: T(2),
      })
      expect(result).toMatchObject({ codeId: codes[2]!.id, remaining: 2 })
      expect(await find(userId, codes[1]!, T(3))).toMatchObject({ codeId: codes[1]!.id })
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 2, unused: 2 })
    })
  })

  describe('findCode', () => {
    it('finds a usable code without changing anything', async () => {
      const userId = user()
      const { batch, codes } = await seed({
        userId,
        createdAt: T(0),
        keyId: 'k3',
        count: 2,
      })
      const before = await ctx.store.getActiveBatch(userId)

      expect(await find(userId, codes[1]!, T(1))).toEqual({
        codeId: codes[1]!.id,
        batchId: batch.id,
        keyId: 'k3',
      })
      expect(await find(userId, codes[1]!, T(2))).toEqual({
        codeId: codes[1]!.id,
        batchId: batch.id,
        keyId: 'k3',
      })
      expect(await ctx.store.getActiveBatch(userId)).toEqual(before)
      expect(await consume(userId, codes[1]!, T(3))).toMatchObject({ codeId: codes[1]!.id, remaining: 1 })
    })

    it('uses the consume predicate: state, batch, expiry, user, first match', async () => {
      const userId = user()
      const { batch, codes } = await seed({
        userId,
        createdAt: T(0),
        expiresAt: T(100),
        count: 4,
      })
      await consume(userId, codes[0]!, T(1))
      await ctx.store.setCodeState({ userId, codeId: codes[1]!.id, to: 'invalidated', now: T(1) })

      expect(await find(userId, codes[0]!, T(2))).toBeNull()
      expect(await find(userId, codes[1]!, T(2))).toBeNull()
      expect(await find(userId, codes[2]!, T(100))).toBeNull()
      expect(await find(user(), codes[2]!, T(2))).toBeNull()
      expect(
        await ctx.store.findCode({
          userId,
          digests: [codes[0]!.digest, codes[3]!.digest, codes[2]!.digest],
          now: T(2),
        }),
      ).toMatchObject({ codeId: codes[3]!.id })

      await ctx.store.endBatch({ userId, batchId: batch.id, to: 'disabled', now: T(3) })
      expect(await find(userId, codes[2]!, T(4))).toBeNull()
    })
  })

  describe('setCodeState', () => {
    it('moves an active code to invalidated exactly once and updates the counts', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), count: 3 })
      const input = { userId, codeId: codes[0]!.id, to: 'invalidated', now: T(1) } as const

      expect(await ctx.store.setCodeState(input)).toBe(true)
      expect(await ctx.store.setCodeState(input)).toBe(false)
      expect(await ctx.store.setCodeState({ ...input, to: 'deleted' })).toBe(false)
      expect(await consume(userId, codes[0]!, T(2))).toBeNull()
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({
        unused: 2,
        invalidated: 1,
        deleted: 0,
      })
    })

    it('soft-deletes an active code', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), count: 3 })
      expect(await ctx.store.setCodeState({ userId, codeId: codes[2]!.id, to: 'deleted', now: T(1) })).toBe(
        true,
      )
      expect(await find(userId, codes[2]!, T(2))).toBeNull()
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({
        unused: 2,
        invalidated: 0,
        deleted: 1,
      })
    })

    it('refuses a used code, an unknown id and a code of another user', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), count: 2 })
      await consume(userId, codes[0]!, T(1))

      expect(
        await ctx.store.setCodeState({ userId, codeId: codes[0]!.id, to: 'invalidated', now: T(2) }),
      ).toBe(false)
      expect(
        await ctx.store.setCodeState({ userId, codeId: uniqueId('code'), to: 'deleted', now: T(2) }),
      ).toBe(false)
      expect(
        await ctx.store.setCodeState({ userId: user(), codeId: codes[1]!.id, to: 'deleted', now: T(2) }),
      ).toBe(false)
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({
        used: 1,
        unused: 1,
        invalidated: 0,
        deleted: 0,
      })
      expect(await consume(userId, codes[1]!, T(3))).not.toBeNull()
    })
  })
}
