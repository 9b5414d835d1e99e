import { describe, expect, it } from 'vitest'
import { RecoveryCodesError } from '../errors.ts'
import {
  FIRST_CHUNK_ROWS_PER_MS,
  firstChunkLimit,
  nextChunkLimit,
  type PurgeProgress,
  type RunPurgeOptions,
  runPurge,
} from './purge.ts'

/** An in-memory store of `eligible` rows; records every limit asked for. */
function fakeStore(eligible: number, opts: { failOnCall?: number } = {}) {
  const store = {
    eligible,
    asked: [] as number[],
    deleteChunk: async (limit: number) => {
      store.asked.push(limit)
      if (store.asked.length === opts.failOnCall) throw new Error('connection reset')
      const n = Math.min(limit, store.eligible)
      store.eligible -= n
      return n
    },
  }
  return store
}

const run = (store: ReturnType<typeof fakeStore>, rest: Omit<RunPurgeOptions, 'deleteChunk'>) =>
  runPurge({ deleteChunk: store.deleteChunk, ...rest })

describe('runPurge', () => {
  it('asks for at most chunkSize per call and finishes when a chunk comes back short', async () => {
    const store = fakeStore(1_050)
    const result = await run(store, { chunkSize: 100, maxDeletionsPerRun: null })
    expect(result).toEqual({ deleted: 1_050, rounds: 11, done: true })
    expect(store.asked.every((n) => n <= 100)).toBe(true)
    expect(store.eligible).toBe(0)
  })

  it('an exact multiple ends with one empty chunk and done: true', async () => {
    const store = fakeStore(300)
    expect(await run(store, { chunkSize: 100, maxDeletionsPerRun: null })).toEqual({
      deleted: 300,
      rounds: 4,
      done: true,
    })
    expect(store.asked).toEqual([100, 100, 100, 100])
  })

  it('nothing eligible: one round, done', async () => {
    expect(await run(fakeStore(0), { chunkSize: 10, maxDeletionsPerRun: 5 })).toEqual({
      deleted: 0,
      rounds: 1,
      done: true,
    })
  })

  it('respects the per-run cap, asking only for what the cap leaves', async () => {
    const store = fakeStore(1_000)
    const result = await run(store, { chunkSize: 100, maxDeletionsPerRun: 250 })
    expect(result).toEqual({ deleted: 250, rounds: 3, done: false })
    expect(store.asked).toEqual([100, 100, 50])
    expect(store.eligible).toBe(750)
  })

  it('resumes on the next runs until nothing is left', async () => {
    const store = fakeStore(1_000)
    const reports = []
    for (let i = 0; i < 10; i++) {
      const report = await run(store, { chunkSize: 100, maxDeletionsPerRun: 300 })
      reports.push(report)
      if (report.done) break
    }
    expect(reports.map((r) => r.deleted)).toEqual([300, 300, 300, 100])
    expect(reports.map((r) => r.done)).toEqual([false, false, false, true])
    expect(store.eligible).toBe(0)
    expect(store.asked.every((n) => n <= 100)).toBe(true)
  })

  it('reports done when the cap is reached by a short chunk', async () => {
    const store = fakeStore(240)
    expect(await run(store, { chunkSize: 100, maxDeletionsPerRun: 250 })).toEqual({
      deleted: 240,
      rounds: 3,
      done: true,
    })
  })

  it('a failure on the 3rd chunk is reported with the count deleted so far, not thrown', async () => {
    const store = fakeStore(1_000, { failOnCall: 3 })
    const result = await run(store, { chunkSize: 100, maxDeletionsPerRun: null })
    expect(result.deleted).toBe(200)
    expect(result.rounds).toBe(2)
    expect(result.done).toBe(false)
    expect(result.error).toBeInstanceOf(Error)
    expect((result.error as Error).message).toBe('connection reset')
    expect(store.asked).toHaveLength(3)
    expect(store.eligible).toBe(800)
  })

  it('a chunk that resolves to nonsense (more than asked, NaN) is reported as an error', async () => {
    for (const bogus of [101, Number.NaN, -1, 1.5]) {
      const result = await runPurge({
        deleteChunk: async () => bogus,
        chunkSize: 100,
        maxDeletionsPerRun: null,
      })
      expect(result).toMatchObject({ deleted: 0, rounds: 0, done: false })
      expect(result.error).toBeInstanceOf(RecoveryCodesError)
    }
  })

  it('shouldStop stops after the current chunk', async () => {
    const store = fakeStore(1_000)
    let checks = 0
    const result = await run(store, {
      chunkSize: 100,
      maxDeletionsPerRun: null,
      shouldStop: () => ++checks >= 2,
    })
    expect(result).toEqual({ deleted: 200, rounds: 2, done: false })
    expect(store.asked).toHaveLength(2)
  })

  it('a throwing shouldStop or onChunk is reported like a failed chunk', async () => {
    const boom = new Error('boom')
    const a = await run(fakeStore(1_000), {
      chunkSize: 100,
      maxDeletionsPerRun: null,
      shouldStop: () => {
        throw boom
      },
    })
    expect(a).toEqual({ deleted: 100, rounds: 1, done: false, error: boom })
    const b = await run(fakeStore(1_000), {
      chunkSize: 100,
      maxDeletionsPerRun: null,
      onChunk: () => {
        throw boom
      },
    })
    expect(b).toEqual({ deleted: 100, rounds: 1, done: false, error: boom })
  })

  it('reports progress after each chunk', async () => {
    const seen: PurgeProgress[] = []
    await run(fakeStore(250), { chunkSize: 100, maxDeletionsPerRun: null, onChunk: (p) => seen.push(p) })
    expect(seen).toEqual([
      { deleted: 100, rounds: 1, lastChunk: 100 },
      { deleted: 200, rounds: 2, lastChunk: 100 },
      { deleted: 250, rounds: 3, lastChunk: 50 },
    ])
  })

  it.each([
    [0, null],
    [-1, null],
    [1.5, null],
    [Number.NaN, null],
    [10, 0],
    [10, 2.5],
    [10, Number.POSITIVE_INFINITY],
  ])('rejects chunkSize %s / cap %s with INVALID_INPUT before deleting anything', async (chunkSize, cap) => {
    const store = fakeStore(10)
    await expect(run(store, { chunkSize, maxDeletionsPerRun: cap })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    })
    expect(store.asked).toEqual([])
  })
})

describe('chunk sizing by a time budget', () => {
  const sizing = { budgetMs: 10, maxLimit: 5_000 }

  it('starts at 100 rows per ms of budget, within 1 and the ceiling', () => {
    expect(firstChunkLimit(sizing)).toBe(FIRST_CHUNK_ROWS_PER_MS * 10)
    expect(firstChunkLimit({ budgetMs: 10, maxLimit: 50 })).toBe(50)
    expect(firstChunkLimit({ budgetMs: 1, maxLimit: 100_000 })).toBe(100)
  })

  it('grows ×2 while chunks finish in under half the budget, up to the ceiling', () => {
    expect(nextChunkLimit({ limit: 1_000, ms: 0 }, sizing)).toBe(2_000)
    expect(nextChunkLimit({ limit: 1_000, ms: 4.9 }, sizing)).toBe(2_000)
    expect(nextChunkLimit({ limit: 4_000, ms: 1 }, sizing)).toBe(5_000)
    expect(nextChunkLimit({ limit: 5_000, ms: 1 }, sizing)).toBe(5_000)
  })

  it('keeps the limit while a chunk takes between half the budget and the budget', () => {
    for (const ms of [5, 7.5, 10]) expect(nextChunkLimit({ limit: 1_000, ms }, sizing)).toBe(1_000)
  })

  it('shrinks a chunk that ran over by budget / duration, at most halving, never below 1', () => {
    expect(nextChunkLimit({ limit: 1_000, ms: 12.5 }, sizing)).toBe(800)
    expect(nextChunkLimit({ limit: 1_000, ms: 10.001 }, sizing)).toBe(999)
    expect(nextChunkLimit({ limit: 1_000, ms: 40 }, sizing)).toBe(500)
    expect(nextChunkLimit({ limit: 1_000, ms: 60_000 }, sizing)).toBe(500)
    expect(nextChunkLimit({ limit: 3, ms: 11 }, sizing)).toBe(2)
    expect(nextChunkLimit({ limit: 1, ms: 1_000 }, sizing)).toBe(1)
  })

  it('converges on the size that fits the budget when cost is proportional to rows', () => {
    // 1/16 ms per row: 160 rows fill the 10 ms budget.
    let limit = firstChunkLimit(sizing)
    const seen: number[] = []
    for (let i = 0; i < 12; i++) {
      seen.push(limit)
      limit = nextChunkLimit({ limit, ms: limit / 16 }, sizing)
    }
    expect(seen.slice(0, 4)).toEqual([1_000, 500, 250, 160])
    expect(seen.slice(3).every((n) => n === 160)).toBe(true)
    // A fast store grows to the ceiling instead.
    limit = firstChunkLimit(sizing)
    for (let i = 0; i < 5; i++) limit = nextChunkLimit({ limit, ms: limit * 0.0001 }, sizing)
    expect(limit).toBe(5_000)
  })

  it.each([
    [{ budgetMs: 0, maxLimit: 10 }, 'chunkBudgetMs'],
    [{ budgetMs: 1.5, maxLimit: 10 }, 'chunkBudgetMs'],
    [{ budgetMs: Number.NaN, maxLimit: 10 }, 'chunkBudgetMs'],
    [{ budgetMs: '10' as unknown as number, maxLimit: 10 }, 'chunkBudgetMs'],
    [{ budgetMs: 10, maxLimit: 0 }, 'chunkSize'],
    [{ budgetMs: 10, maxLimit: Number.POSITIVE_INFINITY }, 'chunkSize'],
  ])('rejects sizing %o with INVALID_INPUT naming %s, as runPurge does', (bad, path) => {
    for (const call of [() => firstChunkLimit(bad), () => nextChunkLimit({ limit: 1, ms: 1 }, bad)]) {
      expect(call).toThrow(RecoveryCodesError)
      try {
        call()
      } catch (error) {
        expect(error).toMatchObject({ code: 'INVALID_INPUT', issues: [{ path }] })
      }
    }
  })

  it.each([
    [{ limit: 0, ms: 1 }],
    [{ limit: 1.5, ms: 1 }],
    [{ limit: 10, ms: -1 }],
    [{ limit: 10, ms: Number.NaN }],
    [{ limit: 10, ms: Number.POSITIVE_INFINITY }],
  ])('rejects a chunk %o with INVALID_INPUT', (chunk) => {
    expect(() => nextChunkLimit(chunk, sizing)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }))
  })
})

describe('runPurge with a time budget', () => {
  /**
   * A 10 ms budgeted run over `eligible` rows whose chunks take `msPerRow` per row asked for, on a
   * timer the chunks advance.
   */
  async function budgetedRun(eligible: number, msPerRow: number, chunkSize: number, cap: number | null) {
    let t = 0
    const store = fakeStore(eligible)
    const result = await runPurge({
      deleteChunk: async (limit) => {
        t += limit * msPerRow
        return store.deleteChunk(limit)
      },
      chunkSize,
      maxDeletionsPerRun: cap,
      chunkBudgetMs: 10,
      timer: () => t,
    })
    return { store, result }
  }

  it('sizes each chunk from the last one, never above chunkSize, and still deletes everything', async () => {
    // 1/16 ms per row (exact in binary): 160 rows fill the 10 ms budget.
    const slow = await budgetedRun(10_000, 1 / 16, 2_000, null)
    expect(slow.store.eligible).toBe(0)
    expect(slow.result).toMatchObject({ deleted: 10_000, done: true })
    expect(slow.store.asked.slice(0, 4)).toEqual([1_000, 500, 250, 160])
    expect(slow.store.asked.slice(3).every((n) => n <= 160)).toBe(true)
    expect(slow.result.chunks).toEqual({
      count: slow.result.rounds,
      slowestMs: 62.5,
      overBudget: 3,
      lastLimit: slow.store.asked.at(-1),
    })

    const fast = await budgetedRun(100_000, 1 / 8192, 8_000, null)
    expect(fast.result.deleted).toBe(100_000)
    expect(fast.store.asked.slice(0, 5)).toEqual([1_000, 2_000, 4_000, 8_000, 8_000])
  })

  it('an overrun, the first chunk included, shrinks the next one (at most halving)', async () => {
    // 1000 rows take 25 ms: 2.5× the budget.
    const { store } = await budgetedRun(5_000, 1 / 40, 2_000, null)
    expect(store.asked.slice(0, 3)).toEqual([1_000, 500, 400])
  })

  it('still honours the per-run cap and stops on a short chunk', async () => {
    const { store, result } = await budgetedRun(10_000, 1 / 1024, 5_000, 2_500)
    expect(result).toMatchObject({ deleted: 2_500, done: false })
    expect(store.asked).toEqual([1_000, 1_500])
  })

  it('rejects a bad budget, or a budget without a timer, before deleting anything', async () => {
    const store = fakeStore(10)
    for (const [chunkBudgetMs, timer] of [
      [0, () => 0],
      [2.5, () => 0],
      [10, undefined],
    ] as const) {
      await expect(
        runPurge({
          deleteChunk: store.deleteChunk,
          chunkSize: 10,
          maxDeletionsPerRun: null,
          chunkBudgetMs,
          timer,
        }),
      ).rejects.toMatchObject({ code: 'INVALID_INPUT' })
    }
    expect(store.asked).toEqual([])
  })
})
