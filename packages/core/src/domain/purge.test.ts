import { describe, expect, it } from 'vitest'
import { RecoveryCodesError } from '../errors.ts'
import { type PurgeProgress, type RunPurgeOptions, runPurge } from './purge.ts'

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
