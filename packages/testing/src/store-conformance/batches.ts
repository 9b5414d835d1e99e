/**
 * The batch aggregate's contract (`BatchStore`): `createBatch` (supersede, digest uniqueness, all or
 * nothing), `endBatch`, the once-only flags and the reads behind status and history; the code
 * methods are in `codes.ts`, the races in `batch-races.ts`.
 */
import type { BatchStore, BatchSummary, NewCode } from '@recovery-codes/core'
import { describe, expect, it } from 'vitest'
import { buildBatch, buildCodes, uniqueId } from '../fixtures.ts'
import { batchRaces } from './batch-races.ts'
import { codeTests } from './codes.ts'
import type { AggregateSuite, StoreConformanceContext } from './context.ts'
import { batchCallsOf, FLAG_FIELD, FLAGS, timeOf, user } from './helpers.ts'

/** `BatchStore`: every method's contract, then its races. */
export const batchSuite: AggregateSuite<BatchStore> = {
  tests(ctx) {
    createBatchTests(ctx)
    codeTests(ctx)
    batchStateTests(ctx)
  },
  races: batchRaces,
}

function createBatchTests(ctx: StoreConformanceContext<BatchStore>): void {
  const T = timeOf(ctx)
  const { consume, find, batchOf, seed } = batchCallsOf(ctx)

  describe('createBatch', () => {
    it('writes an active batch with its counts', async () => {
      const userId = user()
      const { batch } = await seed({
        userId,
        createdAt: T(1_000),
        expiresAt: T(90_000),
        keyId: 'k7',
        count: 6,
      })
      const active = await ctx.store.getActiveBatch(userId)
      expect(active).toEqual<BatchSummary>({
        id: batch.id,
        userId,
        keyId: 'k7',
        status: 'active',
        createdAt: T(1_000),
        expiresAt: T(90_000),
        endedAt: null,
        issued: 6,
        unused: 6,
        used: 0,
        invalidated: 0,
        deleted: 0,
        viewedAt: null,
        downloadedAt: null,
        emailedAt: null,
        verifiedAt: null,
        lastUsedAt: null,
      })
    })

    it('supersedes the previous active batch (endedAt = new createdAt) and makes its codes unusable', async () => {
      const userId = user()
      const old = await seed({ userId, createdAt: T(0) })
      const next = await seed({ userId, createdAt: T(5_000) })

      expect((await ctx.store.getActiveBatch(userId))?.id).toBe(next.batch.id)
      const previous = await batchOf(userId, old.batch.id)
      expect(previous?.status).toBe('superseded')
      expect(previous?.endedAt).toBe(T(5_000))
      for (const code of old.codes) {
        expect(await find(userId, code, T(6_000))).toBeNull()
        expect(await consume(userId, code, T(6_000))).toBeNull()
      }
      expect(await consume(userId, next.codes[0]!, T(6_000))).not.toBeNull()
    })

    it('rejects a digest repeated within the new codes and leaves no trace', async () => {
      const userId = user()
      const codes = buildCodes(4)
      codes[3] = { id: uniqueId('code'), digest: codes[1]!.digest.slice() }
      const batch = buildBatch({ userId, createdAt: T(0) })

      await expect(ctx.store.createBatch(batch, codes)).rejects.toThrow()

      expect(await ctx.store.getActiveBatch(userId)).toBeNull()
      expect(await ctx.store.listBatches({ userId, offset: 0, limit: 10 })).toEqual({ items: [], total: 0 })
      for (const code of codes) expect(await find(userId, code, T(1))).toBeNull()
    })

    it('on failure keeps the previous active batch active and usable (no supersede)', async () => {
      const userId = user()
      const old = await seed({ userId, createdAt: T(0), count: 3 })
      const codes = buildCodes(3)
      codes[2] = { id: uniqueId('code'), digest: codes[0]!.digest.slice() }

      await expect(ctx.store.createBatch(buildBatch({ userId, createdAt: T(100) }), codes)).rejects.toThrow()

      const active = await ctx.store.getActiveBatch(userId)
      expect(active?.id).toBe(old.batch.id)
      expect(active?.endedAt).toBeNull()
      expect((await ctx.store.listBatches({ userId, offset: 0, limit: 10 })).total).toBe(1)
      expect(await consume(userId, old.codes[0]!, T(200))).toMatchObject({ batchId: old.batch.id })
    })

    it("rejects a digest that repeats one of the user's existing rows, even in a superseded batch", async () => {
      const userId = user()
      const first = await seed({ userId, createdAt: T(0), count: 2 })
      const second = await seed({ userId, createdAt: T(10), count: 2 })
      const codes = [...buildCodes(2), { id: uniqueId('code'), digest: first.codes[0]!.digest.slice() }]

      await expect(ctx.store.createBatch(buildBatch({ userId, createdAt: T(20) }), codes)).rejects.toThrow()

      expect((await ctx.store.getActiveBatch(userId))?.id).toBe(second.batch.id)
      expect((await ctx.store.listBatches({ userId, offset: 0, limit: 10 })).total).toBe(2)
      expect(await find(userId, codes[0]!, T(30))).toBeNull()
    })

    it('scopes digest uniqueness and supersession to the user', async () => {
      const alice = user()
      const bob = user()
      const a = await seed({ userId: alice, createdAt: T(0), count: 2 })
      const shared: NewCode[] = a.codes.map((c) => ({ id: uniqueId('code'), digest: c.digest.slice() }))
      const b = buildBatch({ userId: bob, createdAt: T(10) })
      await ctx.store.createBatch(b, shared)

      expect((await ctx.store.getActiveBatch(alice))?.id).toBe(a.batch.id)
      expect((await ctx.store.getActiveBatch(bob))?.id).toBe(b.id)
      expect(await consume(bob, shared[0]!, T(20))).toMatchObject({ codeId: shared[0]!.id, batchId: b.id })
      expect(await consume(alice, a.codes[0]!, T(20))).toMatchObject({
        codeId: a.codes[0]!.id,
        batchId: a.batch.id,
      })
    })

    it("keeps digests by value: mutating the caller's arrays afterwards changes nothing", async () => {
      const userId = user()
      const batch = buildBatch({ userId, createdAt: T(0) })
      const codes = buildCodes(2)
      const original = codes[0]!.digest.slice()
      await ctx.store.createBatch(batch, codes)
      codes[0]!.digest.fill(0)

      expect(await ctx.store.consumeCode({ userId, digests: [new Uint8Array(32)], now: T(1) })).toBeNull()
      expect(await ctx.store.consumeCode({ userId, digests: [original], now: T(1) })).toMatchObject({
        codeId: codes[0]!.id,
      })
    })
  })
}

function batchStateTests(ctx: StoreConformanceContext<BatchStore>): void {
  const T = timeOf(ctx)
  const { consume, batchOf, seed } = batchCallsOf(ctx)

  describe('endBatch', () => {
    it('ends an active batch once, with endedAt = now', async () => {
      const userId = user()
      const { batch } = await seed({ userId, createdAt: T(0) })

      expect(await ctx.store.endBatch({ userId, batchId: batch.id, to: 'disabled', now: T(7) })).toBe(true)
      expect(await ctx.store.endBatch({ userId, batchId: batch.id, to: 'disabled', now: T(8) })).toBe(false)
      expect(await ctx.store.endBatch({ userId, batchId: batch.id, to: 'deleted', now: T(9) })).toBe(false)
      expect(await ctx.store.getActiveBatch(userId)).toBeNull()
      expect(await batchOf(userId, batch.id)).toMatchObject({ status: 'disabled', endedAt: T(7) })
    })

    it('refuses a superseded batch, an unknown id and a batch of another user', async () => {
      const userId = user()
      const old = await seed({ userId, createdAt: T(0) })
      const current = await seed({ userId, createdAt: T(1) })

      expect(await ctx.store.endBatch({ userId, batchId: old.batch.id, to: 'deleted', now: T(2) })).toBe(
        false,
      )
      expect(await ctx.store.endBatch({ userId, batchId: uniqueId('batch'), to: 'deleted', now: T(2) })).toBe(
        false,
      )
      expect(
        await ctx.store.endBatch({ userId: user(), batchId: current.batch.id, to: 'deleted', now: T(2) }),
      ).toBe(false)
      expect(await batchOf(userId, old.batch.id)).toMatchObject({ status: 'superseded', endedAt: T(1) })
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({
        id: current.batch.id,
        status: 'active',
      })
    })

    it('keeps code states: a later batch for the user works normally', async () => {
      const userId = user()
      const first = await seed({ userId, createdAt: T(0), count: 3 })
      await consume(userId, first.codes[0]!, T(1))
      await ctx.store.endBatch({ userId, batchId: first.batch.id, to: 'deleted', now: T(2) })
      expect(await batchOf(userId, first.batch.id)).toMatchObject({ status: 'deleted', used: 1, unused: 2 })

      const second = await seed({ userId, createdAt: T(3) })
      expect(await batchOf(userId, first.batch.id)).toMatchObject({ status: 'deleted', endedAt: T(2) })
      expect(await consume(userId, second.codes[0]!, T(4))).toMatchObject({ batchId: second.batch.id })
    })
  })

  describe('setBatchFlag', () => {
    it.each(FLAGS)('sets %s once and keeps the first time', async (flag) => {
      const userId = user()
      const { batch } = await seed({ userId, createdAt: T(0) })

      expect(await ctx.store.setBatchFlag({ userId, batchId: batch.id, flag, now: T(10) })).toBe(true)
      expect(await ctx.store.setBatchFlag({ userId, batchId: batch.id, flag, now: T(20) })).toBe(false)
      const summary = await ctx.store.getActiveBatch(userId)
      expect(summary?.[FLAG_FIELD[flag]]).toBe(T(10))
      for (const other of FLAGS.filter((f) => f !== flag)) expect(summary?.[FLAG_FIELD[other]]).toBeNull()
    })

    it('works on a batch of any status', async () => {
      const userId = user()
      const old = await seed({ userId, createdAt: T(0) })
      const current = await seed({ userId, createdAt: T(1) })
      await ctx.store.endBatch({ userId, batchId: current.batch.id, to: 'disabled', now: T(2) })

      expect(
        await ctx.store.setBatchFlag({ userId, batchId: old.batch.id, flag: 'downloaded', now: T(3) }),
      ).toBe(true)
      expect(
        await ctx.store.setBatchFlag({ userId, batchId: current.batch.id, flag: 'emailed', now: T(4) }),
      ).toBe(true)
      expect(await batchOf(userId, old.batch.id)).toMatchObject({
        downloadedAt: T(3),
        status: 'superseded',
      })
      expect(await batchOf(userId, current.batch.id)).toMatchObject({ emailedAt: T(4), status: 'disabled' })
    })

    it('refuses an unknown batch and a batch of another user', async () => {
      const userId = user()
      const { batch } = await seed({ userId, createdAt: T(0) })
      expect(
        await ctx.store.setBatchFlag({ userId: user(), batchId: batch.id, flag: 'viewed', now: T(1) }),
      ).toBe(false)
      expect(
        await ctx.store.setBatchFlag({ userId, batchId: uniqueId('batch'), flag: 'viewed', now: T(1) }),
      ).toBe(false)
      expect((await ctx.store.getActiveBatch(userId))?.viewedAt).toBeNull()
      expect(await ctx.store.setBatchFlag({ userId, batchId: batch.id, flag: 'viewed', now: T(2) })).toBe(
        true,
      )
    })
  })

  describe('getActiveBatch', () => {
    it('returns null for a user without batches or without an active one', async () => {
      expect(await ctx.store.getActiveBatch(user())).toBeNull()
      const userId = user()
      const { batch } = await seed({ userId, createdAt: T(0) })
      await ctx.store.endBatch({ userId, batchId: batch.id, to: 'deleted', now: T(1) })
      expect(await ctx.store.getActiveBatch(userId)).toBeNull()
    })

    it('counts used, invalidated, deleted and unused codes', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), count: 6 })
      await consume(userId, codes[0]!, T(10))
      await consume(userId, codes[1]!, T(30))
      await ctx.store.setCodeState({ userId, codeId: codes[2]!.id, to: 'invalidated', now: T(40) })
      await ctx.store.setCodeState({ userId, codeId: codes[3]!.id, to: 'deleted', now: T(50) })

      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({
        issued: 6,
        unused: 2,
        used: 2,
        invalidated: 1,
        deleted: 1,
        lastUsedAt: T(30),
      })
    })
  })

  describe('listBatches', () => {
    it('lists newest first (createdAt desc, then id desc) with offset, limit and total', async () => {
      const userId = user()
      const prefix = uniqueId('batch')
      const created = [
        buildBatch({ userId, createdAt: T(10) }),
        buildBatch({ userId, createdAt: T(20), id: `${prefix}-a` }),
        buildBatch({ userId, createdAt: T(20), id: `${prefix}-b` }),
        buildBatch({ userId, createdAt: T(30) }),
      ]
      for (const batch of created) await ctx.store.createBatch(batch, buildCodes(2))
      await seed({ userId: user(), createdAt: T(25) })

      const all = await ctx.store.listBatches({ userId, offset: 0, limit: 10 })
      expect(all.total).toBe(4)
      expect(all.items.map((b) => b.id)).toEqual([
        created[3]!.id,
        `${prefix}-b`,
        `${prefix}-a`,
        created[0]!.id,
      ])
      expect(all.items.map((b) => b.status)).toEqual(['active', 'superseded', 'superseded', 'superseded'])
      expect(all.items.map((b) => b.endedAt)).toEqual([null, T(30), T(20), T(20)])
      expect(all.items[0]).toEqual(await ctx.store.getActiveBatch(userId))

      const page = await ctx.store.listBatches({ userId, offset: 1, limit: 2 })
      expect(page).toEqual({ items: all.items.slice(1, 3), total: 4 })
      expect(await ctx.store.listBatches({ userId, offset: 3, limit: 5 })).toEqual({
        items: all.items.slice(3),
        total: 4,
      })
      expect(await ctx.store.listBatches({ userId, offset: 4, limit: 5 })).toEqual({ items: [], total: 4 })
    })

    it('returns an empty page for a user without batches', async () => {
      expect(await ctx.store.listBatches({ userId: user(), offset: 0, limit: 10 })).toEqual({
        items: [],
        total: 0,
      })
    })
  })
}
