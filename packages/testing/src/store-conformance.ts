import {
  type AttemptState,
  type BatchFlag,
  type BatchSummary,
  type ConsumedCode,
  composeRedeemCode,
  type NewCode,
  type RecoveryCodeStore,
  type RedeemCodeInput,
} from '@recovery-codes/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createBarrier, startTogether } from './barrier.ts'
import {
  buildAudit,
  buildBatch,
  buildCodes,
  buildEmailLog,
  nextTimeBase,
  randomDigest,
  seedBatch,
  uniqueId,
} from './fixtures.ts'
import { purgeAttemptsTests } from './store-conformance-attempts.ts'
import { auditedChangeTests } from './store-conformance-audit.ts'

/** What {@link runStoreConformance} hands to `additionalTests`. Read its fields inside tests only. */
export interface StoreConformanceContext {
  /** The store of the running test, from `setup()`. */
  readonly store: RecoveryCodeStore
  /**
   * Base time of the running test: the suite writes only times in `[t0, t0 + TEST_TIME_WINDOW)`, and
   * each test's window lies below every earlier one, so purges never reach rows of earlier tests.
   */
  readonly t0: number
}

/** Options of {@link runStoreConformance}. */
export interface StoreConformanceOptions {
  /** Name of the `describe` block, e.g. `'memory'` or `'kysely (postgres)'`. */
  name: string
  /**
   * Called before each test. Return a fresh store, or a store on a database shared between tests:
   * the suite uses unique ids and per-test time windows, so leftovers of earlier tests do not
   * interfere. Use one database (or schema) per test file and per run.
   */
  setup: () => Promise<RecoveryCodeStore> | RecoveryCodeStore
  /** Called after each test with the store from `setup()`. */
  teardown?: (store: RecoveryCodeStore) => Promise<void> | void
  /** Registers store-specific tests inside the same `describe` block. */
  additionalTests?: (ctx: StoreConformanceContext) => void
}

const FLAGS: readonly BatchFlag[] = ['viewed', 'downloaded', 'emailed', 'verified']
const FLAG_FIELD = {
  viewed: 'viewedAt',
  downloaded: 'downloadedAt',
  emailed: 'emailedAt',
  verified: 'verifiedAt',
} as const satisfies Record<BatchFlag, keyof BatchSummary>

/** Every value of a settled list, failing the test on the first rejection. */
function values<T>(settled: PromiseSettledResult<T>[]): T[] {
  return settled.map((s) => {
    if (s.status === 'rejected') throw s.reason
    return s.value
  })
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/**
 * Registers the shared conformance suite for a {@link RecoveryCodeStore}: every method's contract,
 * including the concurrency races (real parallel calls started together behind a barrier).
 * Every store package calls it in one line from its own `test/`.
 *
 * @example
 * ```ts
 * // packages/store-memory/test/conformance.test.ts
 * runStoreConformance({ name: 'memory', setup: () => memoryStore() })
 * ```
 */
export function runStoreConformance(options: StoreConformanceOptions): void {
  const { name, setup, teardown, additionalTests } = options
  const state = { store: undefined as RecoveryCodeStore | undefined, t0: 0 }
  const ctx: StoreConformanceContext = {
    get store() {
      if (!state.store) throw new Error('ctx.store is only available inside a test')
      return state.store
    },
    get t0() {
      return state.t0
    },
  }

  describe(name, () => {
    beforeEach(async () => {
      state.t0 = nextTimeBase()
      state.store = await setup()
    })
    afterEach(async () => {
      const store = state.store
      state.store = undefined
      if (store && teardown) await teardown(store)
    })

    const T = (offset: number): number => ctx.t0 + offset
    const user = (): string => uniqueId('user')
    const consume = (userId: string, code: NewCode, now: number, store = ctx.store) =>
      store.consumeCode({ userId, digests: [code.digest], now })
    const find = (userId: string, code: NewCode, now: number) =>
      ctx.store.findCode({ userId, digests: [code.digest], now })
    const batchOf = async (userId: string, batchId: string): Promise<BatchSummary | undefined> => {
      const { items } = await ctx.store.listBatches({ userId, offset: 0, limit: 1000 })
      return items.find((b) => b.id === batchId)
    }

    describe('createBatch', () => {
      it('writes an active batch with its counts', async () => {
        const userId = user()
        const { batch } = await seedBatch(ctx.store, {
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
        const old = await seedBatch(ctx.store, { userId, createdAt: T(0) })
        const next = await seedBatch(ctx.store, { userId, createdAt: T(5_000) })

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
        const old = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 3 })
        const codes = buildCodes(3)
        codes[2] = { id: uniqueId('code'), digest: codes[0]!.digest.slice() }

        await expect(
          ctx.store.createBatch(buildBatch({ userId, createdAt: T(100) }), codes),
        ).rejects.toThrow()

        const active = await ctx.store.getActiveBatch(userId)
        expect(active?.id).toBe(old.batch.id)
        expect(active?.endedAt).toBeNull()
        expect((await ctx.store.listBatches({ userId, offset: 0, limit: 10 })).total).toBe(1)
        expect(await consume(userId, old.codes[0]!, T(200))).toMatchObject({ batchId: old.batch.id })
      })

      it("rejects a digest that repeats one of the user's existing rows, even in a superseded batch", async () => {
        const userId = user()
        const first = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 2 })
        const second = await seedBatch(ctx.store, { userId, createdAt: T(10), count: 2 })
        const codes = [...buildCodes(2), { id: uniqueId('code'), digest: first.codes[0]!.digest.slice() }]

        await expect(ctx.store.createBatch(buildBatch({ userId, createdAt: T(20) }), codes)).rejects.toThrow()

        expect((await ctx.store.getActiveBatch(userId))?.id).toBe(second.batch.id)
        expect((await ctx.store.listBatches({ userId, offset: 0, limit: 10 })).total).toBe(2)
        expect(await find(userId, codes[0]!, T(30))).toBeNull()
      })

      it('scopes digest uniqueness and supersession to the user', async () => {
        const alice = user()
        const bob = user()
        const a = await seedBatch(ctx.store, { userId: alice, createdAt: T(0), count: 2 })
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

    describe('consumeCode', () => {
      it('consumes an active code once and returns it with the remaining count', async () => {
        const userId = user()
        const { batch, codes } = await seedBatch(ctx.store, {
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
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 3 })
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
        await seedBatch(ctx.store, { userId, createdAt: T(0) })
        expect(await ctx.store.consumeCode({ userId, digests: [randomDigest()], now: T(1) })).toBeNull()
        expect(await ctx.store.consumeCode({ userId, digests: [], now: T(1) })).toBeNull()
        expect(
          await ctx.store.consumeCode({ userId: user(), digests: [randomDigest()], now: T(1) }),
        ).toBeNull()
        expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ unused: 5, used: 0 })
      })

      it('refuses codes that are used, invalidated or deleted', async () => {
        const userId = user()
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 4 })
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
        const { batch, codes } = await seedBatch(ctx.store, { userId, createdAt: T(0) })
        expect(await ctx.store.endBatch({ userId, batchId: batch.id, to, now: T(5) })).toBe(true)
        expect(await consume(userId, codes[0]!, T(6))).toBeNull()
        expect(await find(userId, codes[0]!, T(6))).toBeNull()
        expect(await batchOf(userId, batch.id)).toMatchObject({ status: to, unused: 5, used: 0 })
      })

      it('refuses codes of a superseded batch', async () => {
        const userId = user()
        const old = await seedBatch(ctx.store, { userId, createdAt: T(0) })
        await seedBatch(ctx.store, { userId, createdAt: T(1) })
        expect(await consume(userId, old.codes[0]!, T(2))).toBeNull()
        expect(await batchOf(userId, old.batch.id)).toMatchObject({ status: 'superseded', used: 0 })
      })

      it('enforces expiry: valid at expiresAt - 1, invalid at expiresAt', async () => {
        const userId = user()
        const expiresAt = T(60_000)
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), expiresAt, count: 3 })

        expect(await find(userId, codes[0]!, expiresAt)).toBeNull()
        expect(await consume(userId, codes[0]!, expiresAt)).toBeNull()
        expect(await consume(userId, codes[0]!, expiresAt + 1)).toBeNull()
        expect(await find(userId, codes[0]!, expiresAt - 1)).toMatchObject({ codeId: codes[0]!.id })
        expect(await consume(userId, codes[0]!, expiresAt - 1)).toMatchObject({ codeId: codes[0]!.id })
        expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 1, unused: 2 })
      })

      it('never expires a batch with expiresAt null', async () => {
        const userId = user()
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), expiresAt: null })
        expect(await consume(userId, codes[0]!, Number.MAX_SAFE_INTEGER)).not.toBeNull()
      })

      it("is scoped by userId: another user's id never matches", async () => {
        const owner = user()
        const other = user()
        const { codes } = await seedBatch(ctx.store, { userId: owner, createdAt: T(0) })
        await seedBatch(ctx.store, { userId: other, createdAt: T(0) })

        expect(await consume(other, codes[0]!, T(1))).toBeNull()
        expect(await find(other, codes[0]!, T(1))).toBeNull()
        expect(await consume(owner, codes[0]!, T(2))).toMatchObject({ codeId: codes[0]!.id })
        expect(await ctx.store.getActiveBatch(other)).toMatchObject({ used: 0, unused: 5 })
      })

      it('takes the first usable digest in order and consumes only that one', async () => {
        const userId = user()
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 4 })
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
        const { batch, codes } = await seedBatch(ctx.store, {
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
        const { batch, codes } = await seedBatch(ctx.store, {
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
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 3 })
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
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 3 })
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
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 2 })
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

    describe('endBatch', () => {
      it('ends an active batch once, with endedAt = now', async () => {
        const userId = user()
        const { batch } = await seedBatch(ctx.store, { userId, createdAt: T(0) })

        expect(await ctx.store.endBatch({ userId, batchId: batch.id, to: 'disabled', now: T(7) })).toBe(true)
        expect(await ctx.store.endBatch({ userId, batchId: batch.id, to: 'disabled', now: T(8) })).toBe(false)
        expect(await ctx.store.endBatch({ userId, batchId: batch.id, to: 'deleted', now: T(9) })).toBe(false)
        expect(await ctx.store.getActiveBatch(userId)).toBeNull()
        expect(await batchOf(userId, batch.id)).toMatchObject({ status: 'disabled', endedAt: T(7) })
      })

      it('refuses a superseded batch, an unknown id and a batch of another user', async () => {
        const userId = user()
        const old = await seedBatch(ctx.store, { userId, createdAt: T(0) })
        const current = await seedBatch(ctx.store, { userId, createdAt: T(1) })

        expect(await ctx.store.endBatch({ userId, batchId: old.batch.id, to: 'deleted', now: T(2) })).toBe(
          false,
        )
        expect(
          await ctx.store.endBatch({ userId, batchId: uniqueId('batch'), to: 'deleted', now: T(2) }),
        ).toBe(false)
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
        const first = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 3 })
        await consume(userId, first.codes[0]!, T(1))
        await ctx.store.endBatch({ userId, batchId: first.batch.id, to: 'deleted', now: T(2) })
        expect(await batchOf(userId, first.batch.id)).toMatchObject({ status: 'deleted', used: 1, unused: 2 })

        const second = await seedBatch(ctx.store, { userId, createdAt: T(3) })
        expect(await batchOf(userId, first.batch.id)).toMatchObject({ status: 'deleted', endedAt: T(2) })
        expect(await consume(userId, second.codes[0]!, T(4))).toMatchObject({ batchId: second.batch.id })
      })
    })

    describe('setBatchFlag', () => {
      it.each(FLAGS)('sets %s once and keeps the first time', async (flag) => {
        const userId = user()
        const { batch } = await seedBatch(ctx.store, { userId, createdAt: T(0) })

        expect(await ctx.store.setBatchFlag({ userId, batchId: batch.id, flag, now: T(10) })).toBe(true)
        expect(await ctx.store.setBatchFlag({ userId, batchId: batch.id, flag, now: T(20) })).toBe(false)
        const summary = await ctx.store.getActiveBatch(userId)
        expect(summary?.[FLAG_FIELD[flag]]).toBe(T(10))
        for (const other of FLAGS.filter((f) => f !== flag)) expect(summary?.[FLAG_FIELD[other]]).toBeNull()
      })

      it('works on a batch of any status', async () => {
        const userId = user()
        const old = await seedBatch(ctx.store, { userId, createdAt: T(0) })
        const current = await seedBatch(ctx.store, { userId, createdAt: T(1) })
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
        const { batch } = await seedBatch(ctx.store, { userId, createdAt: T(0) })
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
        const { batch } = await seedBatch(ctx.store, { userId, createdAt: T(0) })
        await ctx.store.endBatch({ userId, batchId: batch.id, to: 'deleted', now: T(1) })
        expect(await ctx.store.getActiveBatch(userId)).toBeNull()
      })

      it('counts used, invalidated, deleted and unused codes', async () => {
        const userId = user()
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 6 })
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
        await seedBatch(ctx.store, { userId: user(), createdAt: T(25) })

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

    describe('attempt counters', () => {
      const zero = { failures: 0, consecutive: 0, lockouts: 0, lockedUntil: 0 }

      it('reads a missing key as zeros', async () => {
        expect(await ctx.store.getAttempts(uniqueId('key'))).toEqual(zero)
      })

      /** One key, as the single-key calls of the old port did. */
      const reserve = (key: string, now: number, maxAttempts: number) =>
        ctx.store.reserveAttempts({ keys: [{ key, maxAttempts }], now })
      const counter = (failures: number, extra: Partial<AttemptState> = {}): AttemptState => ({
        ...zero,
        failures,
        consecutive: failures,
        ...extra,
      })

      it('single key: reserves up to maxAttempts, then denies without changing the counter', async () => {
        const key = uniqueId('key')
        for (let i = 1; i <= 3; i++) {
          expect(await reserve(key, T(i), 3)).toEqual({ allowed: true, states: [counter(i)] })
        }
        expect(await reserve(key, T(4), 3)).toEqual({ allowed: false, states: [counter(3)] })
        expect(await ctx.store.getAttempts(key)).toEqual(counter(3))
        expect(await reserve(key, T(5), 4)).toEqual({ allowed: true, states: [counter(4)] })
      })

      it('no keys: allowed, nothing changes', async () => {
        expect(await ctx.store.reserveAttempts({ keys: [], now: T(1) })).toEqual({
          allowed: true,
          states: [],
        })
      })

      it('maxAttempts 0 always denies, and creates nothing', async () => {
        const a = uniqueId('key')
        const b = uniqueId('key')
        expect(
          await ctx.store.reserveAttempts({
            keys: [
              { key: a, maxAttempts: 5 },
              { key: b, maxAttempts: 0 },
            ],
            now: T(1),
          }),
        ).toEqual({ allowed: false, states: [zero, zero] })
        expect(await ctx.store.getAttempts(a)).toEqual(zero)
      })

      it('two keys: each counter is reserved, states come back in input order', async () => {
        const a = uniqueId('key')
        const b = uniqueId('key')
        await reserve(b, T(1), 5)
        await reserve(b, T(1), 5)
        // States follow the input order, whatever order the store works in.
        expect(
          await ctx.store.reserveAttempts({
            keys: [
              { key: b, maxAttempts: 5 },
              { key: a, maxAttempts: 2 },
            ],
            now: T(2),
          }),
        ).toEqual({ allowed: true, states: [counter(3), counter(1)] })
        expect(
          await ctx.store.reserveAttempts({
            keys: [
              { key: a, maxAttempts: 2 },
              { key: b, maxAttempts: 5 },
            ],
            now: T(3),
          }),
        ).toEqual({ allowed: true, states: [counter(2), counter(4)] })
        expect(await ctx.store.getAttempts(a)).toEqual(counter(2))
        expect(await ctx.store.getAttempts(b)).toEqual(counter(4))
      })

      it('all or nothing: a key at its maxAttempts denies the call, no key changes', async () => {
        const open = uniqueId('key')
        const full = uniqueId('key')
        for (let i = 0; i < 2; i++) await reserve(full, T(1), 2)
        await reserve(open, T(1), 5)
        for (const keys of [
          [
            { key: open, maxAttempts: 5 },
            { key: full, maxAttempts: 2 },
          ],
          [
            { key: full, maxAttempts: 2 },
            { key: open, maxAttempts: 5 },
          ],
        ]) {
          const r = await ctx.store.reserveAttempts({ keys, now: T(2) })
          expect(r.allowed).toBe(false)
          expect(r.states).toEqual(keys.map((k) => (k.key === open ? counter(1) : counter(2))))
        }
        // A fresh key beside a full one is not created either.
        const fresh = uniqueId('key')
        expect(
          await ctx.store.reserveAttempts({
            keys: [
              { key: fresh, maxAttempts: 5 },
              { key: full, maxAttempts: 2 },
            ],
            now: T(2),
          }),
        ).toEqual({ allowed: false, states: [zero, counter(2)] })
        expect(await ctx.store.getAttempts(open)).toEqual(counter(1))
        expect(await ctx.store.getAttempts(full)).toEqual(counter(2))
        expect(await ctx.store.getAttempts(fresh)).toEqual(zero)
      })

      it('all or nothing: a locked key denies the call until lockedUntil, no key changes', async () => {
        const open = uniqueId('key')
        const locked = uniqueId('key')
        await reserve(open, T(1), 5)
        const lockedState = await ctx.store.lockAttempts({ key: locked, until: T(100) })
        const keys = [
          { key: open, maxAttempts: 5 },
          { key: locked, maxAttempts: 5 },
        ]
        expect(await ctx.store.reserveAttempts({ keys, now: T(99) })).toEqual({
          allowed: false,
          states: [counter(1), lockedState],
        })
        expect(await ctx.store.getAttempts(open)).toEqual(counter(1))
        expect(await ctx.store.reserveAttempts({ keys, now: T(100) })).toEqual({
          allowed: true,
          states: [counter(2), { ...lockedState, failures: 1, consecutive: 1 }],
        })
      })

      it('rejects repeated keys with INVALID_INPUT and changes nothing', async () => {
        const key = uniqueId('key')
        await expect(
          ctx.store.reserveAttempts({
            keys: [
              { key, maxAttempts: 5 },
              { key, maxAttempts: 5 },
            ],
            now: T(1),
          }),
        ).rejects.toMatchObject({ code: 'INVALID_INPUT' })
        expect(await ctx.store.getAttempts(key)).toEqual(zero)
      })

      it('locks: failures reset, lockouts + 1, consecutive kept; denied until lockedUntil, allowed at it', async () => {
        const key = uniqueId('key')
        await reserve(key, T(1), 5)
        await reserve(key, T(2), 5)

        const locked = { failures: 0, consecutive: 2, lockouts: 1, lockedUntil: T(1_000) }
        expect(await ctx.store.lockAttempts({ key, until: T(1_000) })).toEqual(locked)
        expect(await ctx.store.getAttempts(key)).toEqual(locked)
        expect(await reserve(key, T(999), 5)).toEqual({ allowed: false, states: [locked] })
        expect(await reserve(key, T(1_000), 5)).toEqual({
          allowed: true,
          states: [{ failures: 1, consecutive: 3, lockouts: 1, lockedUntil: T(1_000) }],
        })

        expect(await ctx.store.lockAttempts({ key, until: T(5_000) })).toEqual({
          failures: 0,
          consecutive: 3,
          lockouts: 2,
          lockedUntil: T(5_000),
        })
      })

      it('lockAttempts creates a missing counter', async () => {
        const key = uniqueId('key')
        expect(await ctx.store.lockAttempts({ key, until: T(50) })).toEqual({
          ...zero,
          lockouts: 1,
          lockedUntil: T(50),
        })
      })

      it('settleAttempts resets and releases in one call, touching no other key', async () => {
        const subject = uniqueId('key')
        const client = uniqueId('key')
        const other = uniqueId('key')
        for (let i = 0; i < 3; i++) await reserve(client, T(1), 5)
        await reserve(subject, T(1), 5)
        await ctx.store.lockAttempts({ key: subject, until: T(100) })
        await reserve(other, T(1), 5)

        await ctx.store.settleAttempts({ reset: [subject], release: [client] })
        expect(await ctx.store.getAttempts(subject)).toEqual(zero)
        expect(await ctx.store.getAttempts(client)).toEqual(counter(2))
        expect(await ctx.store.getAttempts(other)).toEqual(counter(1))
        // The reset counter is gone, lock and all: a new reservation starts from scratch.
        expect(await reserve(subject, T(2), 5)).toEqual({ allowed: true, states: [counter(1)] })

        await ctx.store.settleAttempts({ reset: [], release: [client] })
        expect(await ctx.store.getAttempts(client)).toEqual(counter(1))
        await ctx.store.settleAttempts({ reset: [client], release: [] })
        expect(await ctx.store.getAttempts(client)).toEqual(zero)
        await ctx.store.settleAttempts({ reset: [], release: [] })
        expect(await ctx.store.getAttempts(other)).toEqual(counter(1))
      })

      it('settleAttempts: several keys per list, a repeated key counts once', async () => {
        const a = uniqueId('key')
        const b = uniqueId('key')
        const c = uniqueId('key')
        const d = uniqueId('key')
        for (const key of [a, b, c, d]) for (let i = 0; i < 3; i++) await reserve(key, T(1), 5)
        await ctx.store.settleAttempts({ reset: [a, b, a], release: [c, d, c] })
        expect(await ctx.store.getAttempts(a)).toEqual(zero)
        expect(await ctx.store.getAttempts(b)).toEqual(zero)
        expect(await ctx.store.getAttempts(c)).toEqual(counter(2))
        expect(await ctx.store.getAttempts(d)).toEqual(counter(2))
      })

      it('settleAttempts: a key in both lists is deleted', async () => {
        const key = uniqueId('key')
        const other = uniqueId('key')
        for (let i = 0; i < 3; i++) await reserve(key, T(1), 5)
        await reserve(other, T(1), 5)
        await ctx.store.settleAttempts({ reset: [key], release: [other, key] })
        expect(await ctx.store.getAttempts(key)).toEqual(zero)
        expect(await ctx.store.getAttempts(other)).toEqual(zero)
        expect(await reserve(key, T(2), 5)).toEqual({ allowed: true, states: [counter(1)] })
      })

      it('settleAttempts ignores missing keys and creates nothing', async () => {
        const key = uniqueId('key')
        const missing = [uniqueId('key'), uniqueId('key')]
        await reserve(key, T(1), 5)
        await ctx.store.settleAttempts({ reset: [missing[0]!], release: [missing[1]!, key] })
        expect(await ctx.store.getAttempts(key)).toEqual(zero)
        for (const m of missing) expect(await ctx.store.getAttempts(m)).toEqual(zero)
      })

      it('a release never goes below zero, and gives nothing back after a lock', async () => {
        const key = uniqueId('key')
        await reserve(key, T(1), 5)
        await ctx.store.settleAttempts({ reset: [], release: [key] })
        await ctx.store.settleAttempts({ reset: [], release: [key] })
        expect(await ctx.store.getAttempts(key)).toEqual(zero)
        for (let i = 0; i < 2; i++) await reserve(key, T(1), 5)
        const locked = await ctx.store.lockAttempts({ key, until: T(50) })
        expect(locked).toEqual({ failures: 0, consecutive: 2, lockouts: 1, lockedUntil: T(50) })
        await ctx.store.settleAttempts({ reset: [], release: [key] })
        expect(await ctx.store.getAttempts(key)).toEqual(locked)
      })

      it('20 parallel settles after 20 reservations leave the counter at zero', async () => {
        const key = uniqueId('key')
        await Promise.all(Array.from({ length: 20 }, () => reserve(key, T(1), 50)))
        expect(await ctx.store.getAttempts(key)).toEqual(counter(20))
        await startTogether(
          Array.from({ length: 20 }, () => () => ctx.store.settleAttempts({ reset: [], release: [key] })),
        )
        expect(await ctx.store.getAttempts(key)).toEqual(zero)
      })
    })

    /**
     * One user per class of row; times relative to `before = T(1000)`. Returns the eligible count
     * and the codes that must survive any purge because they can still verify.
     */
    async function seedPurgeScenario() {
      const store = ctx.store
      const before = T(1_000)

      // u1: active batch; used/invalidated/deleted codes on both sides of `before`.
      const u1 = user()
      const b1 = await seedBatch(store, { userId: u1, createdAt: T(0), count: 6 })
      await consume(u1, b1.codes[0]!, T(100)) // eligible
      await consume(u1, b1.codes[1]!, before) // not: changed at `before`
      await store.setCodeState({ userId: u1, codeId: b1.codes[2]!.id, to: 'invalidated', now: T(200) }) // eligible
      await store.setCodeState({ userId: u1, codeId: b1.codes[3]!.id, to: 'deleted', now: before - 1 }) // eligible
      await store.setCodeState({ userId: u1, codeId: b1.codes[4]!.id, to: 'invalidated', now: before + 1 }) // not
      // b1.codes[5] stays active: never eligible.

      // u2: A superseded at T(500) (eligible, one of them used), B superseded at `before` (not), C active.
      const u2 = user()
      const a2 = await seedBatch(store, { userId: u2, createdAt: T(0), count: 3 })
      await consume(u2, a2.codes[0]!, T(10))
      await seedBatch(store, { userId: u2, createdAt: T(500), count: 3 })
      const c2 = await seedBatch(store, { userId: u2, createdAt: before, count: 8 })

      // u3: disabled at T(700): eligible. u4: deleted at T(1200): not.
      const u3 = user()
      const b3 = await seedBatch(store, { userId: u3, createdAt: T(0), count: 2 })
      await store.endBatch({ userId: u3, batchId: b3.batch.id, to: 'disabled', now: T(700) })
      const u4 = user()
      const b4 = await seedBatch(store, { userId: u4, createdAt: T(0), count: 2 })
      await store.endBatch({ userId: u4, batchId: b4.batch.id, to: 'deleted', now: T(1_200) })

      // u5: active, expired at before - 1: eligible. u6: active, expires at `before`: not.
      const u5 = user()
      await seedBatch(store, { userId: u5, createdAt: T(0), expiresAt: before - 1, count: 2 })
      const u6 = user()
      const b6 = await seedBatch(store, { userId: u6, createdAt: T(0), expiresAt: before, count: 2 })

      return {
        before,
        eligible: 3 + 3 + 2 + 2,
        /** Rows in the scenario. */
        total: 6 + (3 + 3 + 8) + 2 + 2 + 2 + 2,
        users: { u1, u2, u6 },
        /** Codes that verify forever (no expiry, active batch). */
        live: [{ userId: u1, code: b1.codes[5]! }, ...c2.codes.map((code) => ({ userId: u2, code }))],
        /** Codes that verify until `before` (exclusive). */
        expiring: b6.codes.map((code) => ({ userId: u6, code })),
      }
    }

    describe('purgeCodes', () => {
      it('deletes exactly the rows that can never verify and whose end is older than before', async () => {
        const scenario = await seedPurgeScenario()
        expect(await ctx.store.purgeCodes({ before: scenario.before, limit: 1_000 })).toBe(scenario.eligible)
        expect(await ctx.store.purgeCodes({ before: scenario.before, limit: 1_000 })).toBe(0)
        for (const { userId, code } of [...scenario.live, ...scenario.expiring]) {
          expect(await find(userId, code, scenario.before - 1)).toMatchObject({ codeId: code.id })
        }
      })

      it('respects limit and is idempotent across runs', async () => {
        const scenario = await seedPurgeScenario()
        const runs: number[] = []
        for (;;) {
          const n = await ctx.store.purgeCodes({ before: scenario.before, limit: 3 })
          runs.push(n)
          if (n === 0) break
          expect(runs.length).toBeLessThan(10)
        }
        expect(runs).toEqual([3, 3, 3, 1, 0])
      })

      it('a later run takes the rows that became eligible since (boundaries are strict)', async () => {
        const scenario = await seedPurgeScenario()
        expect(await ctx.store.purgeCodes({ before: scenario.before, limit: 1_000 })).toBe(scenario.eligible)
        // At `before + 1`: u1's code used at `before`, u2's batch superseded at `before` (3), u6's codes
        // expired at `before` (2). At `before + 2`: u1's code invalidated at `before + 1`.
        expect(await ctx.store.purgeCodes({ before: scenario.before + 1, limit: 1_000 })).toBe(1 + 3 + 2)
        expect(await ctx.store.purgeCodes({ before: scenario.before + 2, limit: 1_000 })).toBe(1)
        expect(await ctx.store.purgeCodes({ before: scenario.before + 2, limit: 1_000 })).toBe(0)
      })

      it('never deletes a code that can still verify, whatever before is', async () => {
        const scenario = await seedPurgeScenario()
        // Far past every row's time in this test's window: every non-live row is eligible.
        const deleted = await ctx.store.purgeCodes({ before: T(900_000_000), limit: 1_000 })
        expect(deleted).toBe(scenario.total - scenario.live.length)
        for (const { userId, code } of scenario.live) {
          expect(await consume(userId, code, T(2_000))).toMatchObject({ codeId: code.id })
        }
      })

      it('keeps batch metadata and counts when code rows are purged (R-LC-5)', async () => {
        const scenario = await seedPurgeScenario()
        const before = await ctx.store.listBatches({ userId: scenario.users.u1, offset: 0, limit: 10 })
        const beforeU2 = await ctx.store.listBatches({ userId: scenario.users.u2, offset: 0, limit: 10 })
        await ctx.store.purgeCodes({ before: scenario.before, limit: 1_000 })

        const pick = ({
          id,
          status,
          issued,
          used,
          invalidated,
          deleted,
          createdAt,
          endedAt,
        }: BatchSummary) => ({
          id,
          status,
          issued,
          used,
          invalidated,
          deleted,
          createdAt,
          endedAt,
        })
        const after = await ctx.store.listBatches({ userId: scenario.users.u1, offset: 0, limit: 10 })
        const afterU2 = await ctx.store.listBatches({ userId: scenario.users.u2, offset: 0, limit: 10 })
        expect(after.items.map(pick)).toEqual(before.items.map(pick))
        expect(afterU2.items.map(pick)).toEqual(beforeU2.items.map(pick))
      })
    })

    describe('purgeEmptyBatches', () => {
      it('deletes non-active batches without code rows and endedAt < before, up to limit', async () => {
        const u1 = user()
        const a = await seedBatch(ctx.store, { userId: u1, createdAt: T(0), count: 2 })
        const b = await seedBatch(ctx.store, { userId: u1, createdAt: T(100), expiresAt: T(200), count: 2 })
        const u2 = user()
        const d = await seedBatch(ctx.store, { userId: u2, createdAt: T(0), count: 2 })
        await ctx.store.endBatch({ userId: u2, batchId: d.batch.id, to: 'disabled', now: T(300) })
        const u3 = user()
        const e = await seedBatch(ctx.store, { userId: u3, createdAt: T(0), count: 2 })
        await ctx.store.endBatch({ userId: u3, batchId: e.batch.id, to: 'deleted', now: T(5_000) })
        // u4: every code used early (rows purged), but the batch ended after `before`: it stays.
        const u4 = user()
        const g = await seedBatch(ctx.store, { userId: u4, createdAt: T(0), count: 2 })
        for (const code of g.codes) await consume(u4, code, T(50))
        await ctx.store.endBatch({ userId: u4, batchId: g.batch.id, to: 'disabled', now: T(5_000) })
        const before = T(1_000)

        expect(await ctx.store.purgeEmptyBatches({ before, limit: 100 })).toBe(0)
        expect(await ctx.store.purgeCodes({ before, limit: 100 })).toBe(8)

        expect(await ctx.store.purgeEmptyBatches({ before, limit: 1 })).toBe(1)
        expect(await ctx.store.purgeEmptyBatches({ before, limit: 100 })).toBe(1)
        expect(await ctx.store.purgeEmptyBatches({ before, limit: 100 })).toBe(0)

        // The active batch stays even when empty; a batch ended after `before` stays.
        expect(await ctx.store.listBatches({ userId: u1, offset: 0, limit: 10 })).toMatchObject({
          total: 1,
          items: [{ id: b.batch.id, status: 'active' }],
        })
        expect(await ctx.store.getActiveBatch(u1)).toMatchObject({ id: b.batch.id })
        expect(await ctx.store.listBatches({ userId: u2, offset: 0, limit: 10 })).toEqual({
          items: [],
          total: 0,
        })
        expect((await ctx.store.listBatches({ userId: u3, offset: 0, limit: 10 })).total).toBe(1)
        expect(await ctx.store.listBatches({ userId: u4, offset: 0, limit: 10 })).toMatchObject({
          total: 1,
          items: [{ id: g.batch.id, status: 'disabled', issued: 2, used: 2 }],
        })
        expect(await ctx.store.purgeEmptyBatches({ before: T(5_001), limit: 100 })).toBe(1)
        expect((await ctx.store.listBatches({ userId: u4, offset: 0, limit: 10 })).total).toBe(0)
        expect(await batchOf(u1, a.batch.id)).toBeUndefined()
        expect(
          await ctx.store.setBatchFlag({ userId: u2, batchId: d.batch.id, flag: 'viewed', now: T(2) }),
        ).toBe(false)
      })
    })

    describe('audit and email log', () => {
      it('appends, lists newest first with filters and limit, and purges by age up to limit', async () => {
        const alice = user()
        const bob = user()
        const e1 = `conformance.${uniqueId('e')}.one`
        const e2 = `conformance.${uniqueId('e')}.two`
        const records = [
          buildAudit({ at: T(10), userId: alice, event: e1, outcome: 'failure', reason: 'INVALID_CODE' }),
          buildAudit({
            at: T(30),
            userId: alice,
            event: e2,
            outcome: 'success',
            batchId: uniqueId('batch'),
            identifierHash: 'aa11',
            clientHash: 'bb22',
            data: { count: 3, format: 'txt', ok: true, none: null },
          }),
          buildAudit({ at: T(20), userId: alice, event: e1 }),
          buildAudit({ at: T(25), userId: bob, event: e1 }),
        ]
        for (const record of records) await ctx.store.appendAudit(record)
        const [a10, a30, a20, b25] = records as [
          (typeof records)[0],
          (typeof records)[0],
          (typeof records)[0],
          (typeof records)[0],
        ]

        expect(await ctx.store.listAudit({ limit: 10, userId: alice })).toEqual([a30, a20, a10])
        expect(await ctx.store.listAudit({ limit: 2, userId: alice })).toEqual([a30, a20])
        expect(await ctx.store.listAudit({ limit: 10, event: e1 })).toEqual([b25, a20, a10])
        expect(await ctx.store.listAudit({ limit: 10, event: e1, userId: bob })).toEqual([b25])
        const latest = await ctx.store.listAudit({ limit: 3 })
        expect(latest.length).toBeGreaterThan(0)
        expect(latest.length).toBeLessThanOrEqual(3)
        expect(latest.map((r) => r.at)).toEqual([...latest.map((r) => r.at)].sort((x, y) => y - x))

        expect(await ctx.store.purgeAudit({ before: T(25), limit: 1 })).toBe(1)
        expect(await ctx.store.purgeAudit({ before: T(25), limit: 10 })).toBe(1)
        expect(await ctx.store.purgeAudit({ before: T(25), limit: 10 })).toBe(0)
        expect(await ctx.store.listAudit({ limit: 10, event: e1 })).toEqual([b25])
        expect(await ctx.store.listAudit({ limit: 10, userId: alice })).toEqual([a30])
      })

      it('appendEmailLog accepts sent and failed rows and writes no audit record', async () => {
        const userId = user()
        const batchId = uniqueId('batch')
        await expect(
          ctx.store.appendEmailLog(buildEmailLog({ at: T(1), userId, batchId })),
        ).resolves.toBeUndefined()
        await expect(
          ctx.store.appendEmailLog(buildEmailLog({ at: T(2), userId, batchId, outcome: 'failed' })),
        ).resolves.toBeUndefined()
        expect(await ctx.store.listAudit({ limit: 10, userId })).toEqual([])
      })
    })

    auditedChangeTests(ctx)
    purgeAttemptsTests(ctx)

    describe(`redeemCode${'' /* the store's own, or the composition when it has none */}`, () => {
      const ZERO: AttemptState = { failures: 0, consecutive: 0, lockouts: 0, lockedUntil: 0 }
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
        const { batch, codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 3 })
        const { id, ip, input } = inputFor(userId, codes[0]!.digest, T(5))
        // Earlier failures on both keys: the reset key forgets them, the other keeps them.
        await ctx.store.reserveAttempts({ keys: input.keys, now: T(1) })
        await ctx.store.reserveAttempts({ keys: input.keys, now: T(2) })
        const out = await redeem(input)
        expect(out).toMatchObject({
          outcome: 'consumed',
          code: { codeId: codes[0]!.id, batchId: batch.id, keyId: 'k1', remaining: 2 },
        })
        expect(await ctx.store.getAttempts(id)).toEqual(ZERO)
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
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), expiresAt: T(100), count: 2 })
        for (const [digest, now] of [
          [randomDigest(), T(5)],
          [codes[0]!.digest, T(100)],
        ] as const) {
          const { id, ip, input } = inputFor(userId, digest, now)
          const out = await redeem(input)
          const one = { ...ZERO, failures: 1, consecutive: 1 }
          expect(out).toEqual({ outcome: 'missed', states: [one, one] })
          expect(await ctx.store.getAttempts(id)).toEqual(one)
          expect(await ctx.store.getAttempts(ip)).toEqual(one)
        }
        expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 0, unused: 2 })
        expect(await ctx.store.listAudit({ limit: 10, userId })).toEqual([])
      })

      it('denies without a lookup when any key is locked or full, and changes nothing', async () => {
        const userId = user()
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 2 })
        const locked = inputFor(userId, codes[0]!.digest, T(10))
        await ctx.store.lockAttempts({ key: locked.ip, until: T(11) })
        const out = await redeem(locked.input)
        expect(out).toEqual({
          outcome: 'denied',
          states: [ZERO, { failures: 0, consecutive: 0, lockouts: 1, lockedUntil: T(11) }],
        })
        expect(await ctx.store.getAttempts(locked.id)).toEqual(ZERO)

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
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 3 })
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
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 3 })
        const { id, input } = inputFor(userId, randomDigest(), T(1))
        const results = values(await startTogether(Array.from({ length: 100 }, () => () => redeem(input))))
        expect(results.filter((r) => r.outcome === 'missed')).toHaveLength(5)
        expect(results.filter((r) => r.outcome === 'denied')).toHaveLength(95)
        expect(await ctx.store.getAttempts(id)).toEqual({ ...ZERO, failures: 5, consecutive: 5 })
        // The right code is refused too: the key is full.
        expect(await redeem({ ...input, digests: [codes[0]!.digest] })).toMatchObject({ outcome: 'denied' })
      })

      it('rejects malformed input like consumeCode and reserveAttempts, changing nothing', async () => {
        const userId = user()
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 1 })
        const { id, input } = inputFor(userId, codes[0]!.digest, T(1))
        const dup = [input.keys[0]!, input.keys[0]!]
        await expect(redeem({ ...input, keys: dup })).rejects.toMatchObject({ code: 'INVALID_INPUT' })
        await expect(redeem({ ...input, now: Number.NaN })).rejects.toMatchObject({ code: 'INVALID_INPUT' })
        expect(await ctx.store.getAttempts(id)).toEqual(ZERO)
        expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 0, unused: 1 })
      })
    })

    describe('concurrency', () => {
      it('64 parallel consumeCode of one code: exactly one caller gets it', async () => {
        const userId = user()
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 3 })
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
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 4 })
        const results = values(
          await startTogether([
            () => consume(userId, codes[0]!, T(1)),
            () => consume(userId, codes[3]!, T(1)),
          ]),
        )
        expect(results.map((r) => r?.codeId)).toEqual([codes[0]!.id, codes[3]!.id])
        expect(results.map((r) => r?.remaining).sort()).toEqual([2, 3])
        expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 2, unused: 2 })
      })

      it('100 parallel reserveAttempts with maxAttempts 5: exactly 5 allowed', async () => {
        const key = uniqueId('key')
        const results = values(
          await startTogether(
            Array.from(
              { length: 100 },
              () => () => ctx.store.reserveAttempts({ keys: [{ key, maxAttempts: 5 }], now: T(1) }),
            ),
          ),
        )
        expect(results.filter((r) => r.allowed)).toHaveLength(5)
        expect(
          results
            .filter((r) => r.allowed)
            .map((r) => r.states[0]!.failures)
            .sort(),
        ).toEqual([1, 2, 3, 4, 5])
        expect(await ctx.store.getAttempts(key)).toEqual({
          failures: 5,
          consecutive: 5,
          lockouts: 0,
          lockedUntil: 0,
        })
      })

      it('100 parallel reserveAttempts on two keys, the second with max 3: exactly 3 allowed, nothing leaked', async () => {
        const first = uniqueId('key')
        const second = uniqueId('key')
        const keys = [
          { key: first, maxAttempts: 5 },
          { key: second, maxAttempts: 3 },
        ]
        const results = values(
          await startTogether(
            Array.from({ length: 100 }, () => () => ctx.store.reserveAttempts({ keys, now: T(1) })),
          ),
        )
        const allowed = results.filter((r) => r.allowed)
        expect(allowed).toHaveLength(3)
        expect(allowed.map((r) => r.states.map((s) => s.failures)).sort()).toEqual([
          [1, 1],
          [2, 2],
          [3, 3],
        ])
        const three = { failures: 3, consecutive: 3, lockouts: 0, lockedUntil: 0 }
        expect(await ctx.store.getAttempts(first)).toEqual(three)
        expect(await ctx.store.getAttempts(second)).toEqual(three)
      })

      it('createBatch racing consumes of old codes: nothing old is consumed once createBatch resolved', async () => {
        const userId = user()
        const old = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 30 })
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
        const previous = await seedBatch(ctx.store, { userId, createdAt: T(0) })
        const attempts = Array.from({ length: n }, (_, i) => ({
          batch: buildBatch({ userId, createdAt: T(100 + i) }),
          codes: buildCodes(3),
        }))
        const settled = await startTogether(
          attempts.map((a) => () => ctx.store.createBatch(a.batch, a.codes)),
        )
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
        const { batch } = await seedBatch(ctx.store, { userId, createdAt: T(0) })
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
        const { batch, codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 3 })
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
        const { codes } = await seedBatch(ctx.store, { userId, createdAt: T(0), count: 10 })
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

      it('purgeCodes beside itself (4 parallel) and beside consumes: each live code consumed once, purged = eligible', async () => {
        const scenario = await seedPurgeScenario()
        // Consumed at or after `before`, so the race adds no eligible rows: the total is exact.
        const now = scenario.before + 500
        const consumeTasks = scenario.live.flatMap(({ userId, code }) =>
          Array.from({ length: 2 }, () => async () => ({ code, result: await consume(userId, code, now) })),
        )
        let purged = 0
        const purgeTasks = Array.from({ length: 4 }, () => async () => {
          for (;;) {
            const n = await ctx.store.purgeCodes({ before: scenario.before, limit: 3 })
            purged += n
            if (n === 0) return null
            await tick()
          }
        })
        const results = values(await startTogether<unknown>([...purgeTasks, ...consumeTasks]))
        const consumed = results.filter(
          (r): r is { code: NewCode; result: ConsumedCode } =>
            typeof r === 'object' && r !== null && 'result' in r && r.result !== null,
        )
        expect(consumed.map((c) => c.code.id).sort()).toEqual(scenario.live.map((l) => l.code.id).sort())
        expect(purged).toBe(scenario.eligible)
        expect(await ctx.store.purgeCodes({ before: scenario.before, limit: 1_000 })).toBe(0)
        for (const { userId, code } of scenario.expiring) {
          expect(await find(userId, code, scenario.before - 1)).toMatchObject({ codeId: code.id })
        }
      })
    })

    additionalTests?.(ctx)
  })
}
