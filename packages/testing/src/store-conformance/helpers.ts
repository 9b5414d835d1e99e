/**
 * Helpers the aggregate suites share: settled results, a tick, the zero counter, the batch flags,
 * and short forms of the calls most tests make.
 */
import type {
  AttemptState,
  AttemptStore,
  BatchFlag,
  BatchStore,
  BatchSummary,
  NewCode,
  RecoveryCodeStore,
} from '@recovery-codes/core'
import { type SeededBatch, seedBatch, uniqueId } from '../fixtures.ts'
import type { StoreConformanceContext } from './context.ts'

/** A counter that was never touched (what `getAttempts` reads for a missing key). */
export const ZERO_ATTEMPTS: Readonly<AttemptState> = Object.freeze({
  failures: 0,
  consecutive: 0,
  lockouts: 0,
  lockedUntil: 0,
})

export const FLAGS: readonly BatchFlag[] = ['viewed', 'downloaded', 'emailed', 'verified']
export const FLAG_FIELD = {
  viewed: 'viewedAt',
  downloaded: 'downloadedAt',
  emailed: 'emailedAt',
  verified: 'verifiedAt',
} as const satisfies Record<BatchFlag, keyof BatchSummary>

/** Every value of a settled list, failing the test on the first rejection. */
export function values<T>(settled: PromiseSettledResult<T>[]): T[] {
  return settled.map((s) => {
    if (s.status === 'rejected') throw s.reason
    return s.value
  })
}

/** One turn of the event loop. */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** A fresh user id. */
export const user = (): string => uniqueId('user')

/** Times of the running test: `T(offset)` is `ctx.t0 + offset`. */
export function timeOf(ctx: { readonly t0: number }): (offset: number) => number {
  return (offset) => ctx.t0 + offset
}

/** One-key reservations (`maxAttempts` default 5), as most counter tests make them. */
export function reserverOf(ctx: StoreConformanceContext<AttemptStore>) {
  return (key: string, now: number, maxAttempts = 5) =>
    ctx.store.reserveAttempts({ keys: [{ key, maxAttempts }], now })
}

/** Short forms of the batch calls: one-digest consume and find, a batch by id, a seeded batch. */
export function batchCallsOf(ctx: StoreConformanceContext<BatchStore>) {
  return {
    consume: (userId: string, code: NewCode, now: number) =>
      ctx.store.consumeCode({ userId, digests: [code.digest], now }),
    find: (userId: string, code: NewCode, now: number) =>
      ctx.store.findCode({ userId, digests: [code.digest], now }),
    batchOf: async (userId: string, batchId: string): Promise<BatchSummary | undefined> => {
      const { items } = await ctx.store.listBatches({ userId, offset: 0, limit: 1000 })
      return items.find((b) => b.id === batchId)
    },
    /** {@link seedBatch} on the running store (it calls `createBatch` only). */
    seed: (input: Parameters<typeof seedBatch>[1]): Promise<SeededBatch> =>
      seedBatch(ctx.store as RecoveryCodeStore, input),
  }
}
