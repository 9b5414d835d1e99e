/**
 * The batch aggregate's races (`BatchStore`), real parallel calls started together: single use
 * under 64 consumers, supersede against in-flight consumes, one active batch under concurrent
 * `createBatch`, and exactly one winner of each compare-and-set.
 */
import type { BatchStore, NewCode } from '@recovery-codes/core'
import { expect, it } from 'vitest'
import { createBarrier, startTogether } from '../barrier.ts'
import { buildBatch, buildCodes } from '../fixtures.ts'
import type { StoreConformanceContext } from './context.ts'
import { batchCallsOf, FLAG_FIELD, FLAGS, tick, timeOf, user, values } from './helpers.ts'

/** Registers the batch races inside the running `concurrency` block. */
export function batchRaces(ctx: StoreConformanceContext<BatchStore>): void {
  const T = timeOf(ctx)
  const { consume, find, batchOf, seed } = batchCallsOf(ctx)

  it('64 parallel consumeCode of one code: exactly one caller gets it', async () => {
    const userId = user()
    const { codes } = await seed({ userId, createdAt: T(0), count: 3 })
    const results = values(
      await startTogether(Array.from({ length: 64 }, () => () => consume(userId, codes[1]!, T(1)))),
    )

    const winners = results.filter((r) => r !== null)
    expect(winners).toEqual([
      { codeId: codes[1]!.id, batchId: expect.any(String), keyId: 'k1', remaining: 2 },
    ])
    expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 1, unused: 2 })
  })

  it('two different codes in parallel: both succeed with distinct remaining counts', async () => {
    const userId = user()
    const { codes } = await seed({ userId, createdAt: T(0), count: 4 })
    const results = values(
      await startTogether([() => consume(userId, codes[0]!, T(1)), () => consume(userId, codes[3]!, T(1))]),
    )
    expect(results.map((r) => r?.codeId)).toEqual([codes[0]!.id, codes[3]!.id])
    expect(results.map((r) => r?.remaining).sort()).toEqual([2, 3])
    expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 2, unused: 2 })
  })

  it('createBatch racing consumes of old codes: nothing old is consumed once createBatch resolved', async () => {
    const userId = user()
    const old = await seed({ userId, createdAt: T(0), count: 30 })
    const next = buildBatch({ userId, createdAt: T(100) })
    const nextCodes = buildCodes(5)
    let resolved = false
    const barrier = createBarrier(21)
    const attempt = async (code: NewCode, delay: number) => {
      await barrier.wait()
      for (let i = 0; i < delay; i++) await tick()
      const startedAfter = resolved
      const result = await consume(userId, code, T(150))
      return { startedAfter, result }
    }
    const early = old.codes.slice(0, 20).map((code, i) => attempt(code, i % 5))
    const creating = (async () => {
      await barrier.wait()
      await ctx.store.createBatch(next, nextCodes)
      resolved = true
    })()
    await creating
    const late = await Promise.all(old.codes.slice(20).map((code) => consume(userId, code, T(150))))
    const outcomes = await Promise.all(early)

    expect(late.every((r) => r === null)).toBe(true)
    for (const { startedAfter, result } of outcomes) if (startedAfter) expect(result).toBeNull()
    const consumed = outcomes.filter((o) => o.result !== null).length
    expect(await batchOf(userId, old.batch.id)).toMatchObject({ status: 'superseded', used: consumed })
    for (const code of old.codes) expect(await find(userId, code, T(200))).toBeNull()
    expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ id: next.id, unused: 5, used: 0 })
  })

  it.each([2, 5])('%i concurrent createBatch for one user leave exactly one active batch', async (n) => {
    const userId = user()
    const previous = await seed({ userId, createdAt: T(0) })
    const attempts = Array.from({ length: n }, (_, i) => ({
      batch: buildBatch({ userId, createdAt: T(100 + i) }),
      codes: buildCodes(3),
    }))
    const settled = await startTogether(attempts.map((a) => () => ctx.store.createBatch(a.batch, a.codes)))
    const written = attempts.filter((_, i) => settled[i]!.status === 'fulfilled')
    expect(written.length).toBeGreaterThanOrEqual(1)

    const { items, total } = await ctx.store.listBatches({ userId, offset: 0, limit: 100 })
    expect(total).toBe(1 + written.length)
    const active = items.filter((b) => b.status === 'active')
    expect(active).toHaveLength(1)
    expect(written.map((w) => w.batch.id)).toContain(active[0]!.id)
    expect(items.find((b) => b.id === previous.batch.id)?.status).toBe('superseded')
    for (const w of written) {
      const usable = await find(userId, w.codes[0]!, T(200))
      if (w.batch.id === active[0]!.id) expect(usable).toMatchObject({ codeId: w.codes[0]!.id })
      else expect(usable).toBeNull()
    }
  })

  it('parallel createBatch for different users all succeed', async () => {
    const users = Array.from({ length: 10 }, () => user())
    const batches = users.map((userId) => ({
      batch: buildBatch({ userId, createdAt: T(0) }),
      codes: buildCodes(3),
    }))
    values(await startTogether(batches.map((b) => () => ctx.store.createBatch(b.batch, b.codes))))
    for (const { batch } of batches) {
      expect(await ctx.store.getActiveBatch(batch.userId)).toMatchObject({ id: batch.id, unused: 3 })
    }
  })

  it('20 concurrent setBatchFlag per flag: exactly one true each', async () => {
    const userId = user()
    const { batch } = await seed({ userId, createdAt: T(0) })
    const tasks = FLAGS.flatMap((flag) =>
      Array.from({ length: 20 }, (_, i) => async () => ({
        flag,
        set: await ctx.store.setBatchFlag({ userId, batchId: batch.id, flag, now: T(10 + i) }),
      })),
    )
    const results = values(await startTogether(tasks))
    for (const flag of FLAGS) expect(results.filter((r) => r.flag === flag && r.set)).toHaveLength(1)
    const summary = await ctx.store.getActiveBatch(userId)
    for (const flag of FLAGS) expect(summary?.[FLAG_FIELD[flag]]).toEqual(expect.any(Number))
  })

  it('20 concurrent setCodeState and endBatch: exactly one true each', async () => {
    const userId = user()
    const { batch, codes } = await seed({ userId, createdAt: T(0), count: 3 })
    const states = values(
      await startTogether(
        Array.from(
          { length: 20 },
          (_, i) => () =>
            ctx.store.setCodeState({
              userId,
              codeId: codes[0]!.id,
              to: i % 2 ? 'deleted' : 'invalidated',
              now: T(1),
            }),
        ),
      ),
    )
    expect(states.filter(Boolean)).toHaveLength(1)
    const summary = await ctx.store.getActiveBatch(userId)
    expect((summary?.invalidated ?? 0) + (summary?.deleted ?? 0)).toBe(1)

    const ends = values(
      await startTogether(
        Array.from(
          { length: 20 },
          (_, i) => () =>
            ctx.store.endBatch({
              userId,
              batchId: batch.id,
              to: i % 2 ? 'deleted' : 'disabled',
              now: T(2),
            }),
        ),
      ),
    )
    expect(ends.filter(Boolean)).toHaveLength(1)
  })

  it('consume racing invalidate on one code: exactly one of them wins', async () => {
    const userId = user()
    const { codes } = await seed({ userId, createdAt: T(0), count: 10 })
    for (const code of codes) {
      const tasks: (() => Promise<boolean>)[] = [
        ...Array.from({ length: 4 }, () => async () => (await consume(userId, code, T(1))) !== null),
        ...Array.from(
          { length: 4 },
          () => () => ctx.store.setCodeState({ userId, codeId: code.id, to: 'invalidated', now: T(1) }),
        ),
      ]
      expect(values(await startTogether(tasks)).filter(Boolean)).toHaveLength(1)
    }
    const summary = await ctx.store.getActiveBatch(userId)
    expect((summary?.used ?? 0) + (summary?.invalidated ?? 0)).toBe(10)
  })
}
