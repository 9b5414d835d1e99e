/**
 * The retention aggregate's contract (`RetentionStore`): each purge deletes exactly the eligible
 * rows, at most `limit` per call, with strict time boundaries, never a code that can still verify,
 * and stays exact beside concurrent purges and consumes. `purgeAudit` is checked with the audit
 * trail, and the audit row of a purge chunk with the audited changes (both in `audit.ts`).
 */
import type {
  AttemptStore,
  BatchStore,
  BatchSummary,
  ConsumedCode,
  NewCode,
  RetentionStore,
} from '@recovery-codes/core'
import { describe, expect, it } from 'vitest'
import { startTogether } from '../barrier.ts'
import { uniqueId } from '../fixtures.ts'
import type { AggregateSuite, StoreConformanceContext } from './context.ts'
import { batchCallsOf, reserverOf, tick, timeOf, user, values, ZERO_ATTEMPTS } from './helpers.ts'

type Store = BatchStore & AttemptStore & RetentionStore

/** `RetentionStore` (seeding through `BatchStore` and `AttemptStore`): its contract, then its race. */
export const retentionSuite: AggregateSuite<Store> = { tests: retentionTests, races: retentionRaces }

/**
 * One user per class of row; times relative to `before = T(1000)`. Returns the eligible count
 * and the codes that must survive any purge because they can still verify.
 */
async function seedPurgeScenario(ctx: StoreConformanceContext<BatchStore>) {
  const T = timeOf(ctx)
  const { consume, seed } = batchCallsOf(ctx)
  const store = ctx.store
  const before = T(1_000)

  // u1: active batch; used/invalidated/deleted codes on both sides of `before`. A used code's row
  // stays while its batch is active (the batch's counts are derived from it): never eligible here.
  const u1 = user()
  const b1 = await seed({ userId: u1, createdAt: T(0), count: 6 })
  await consume(u1, b1.codes[0]!, T(100)) // not: its batch is active
  await consume(u1, b1.codes[1]!, before) // not: its batch is active
  await store.setCodeState({ userId: u1, codeId: b1.codes[2]!.id, to: 'invalidated', now: T(200) }) // eligible
  await store.setCodeState({ userId: u1, codeId: b1.codes[3]!.id, to: 'deleted', now: before - 1 }) // eligible
  await store.setCodeState({ userId: u1, codeId: b1.codes[4]!.id, to: 'invalidated', now: before + 1 }) // not
  // b1.codes[5] stays active: never eligible.

  // u2: A superseded at T(500) (eligible, one of them used), B superseded at `before` (not), C active.
  const u2 = user()
  const a2 = await seed({ userId: u2, createdAt: T(0), count: 3 })
  await consume(u2, a2.codes[0]!, T(10))
  await seed({ userId: u2, createdAt: T(500), count: 3 })
  const c2 = await seed({ userId: u2, createdAt: before, count: 8 })

  // u3: disabled at T(700): eligible. u4: deleted at T(1200): not.
  const u3 = user()
  const b3 = await seed({ userId: u3, createdAt: T(0), count: 2 })
  await store.endBatch({ userId: u3, batchId: b3.batch.id, to: 'disabled', now: T(700) })
  const u4 = user()
  const b4 = await seed({ userId: u4, createdAt: T(0), count: 2 })
  await store.endBatch({ userId: u4, batchId: b4.batch.id, to: 'deleted', now: T(1_200) })

  // u5: active, expired at before - 1: eligible. u6: active, expires at `before`: not.
  const u5 = user()
  await seed({ userId: u5, createdAt: T(0), expiresAt: before - 1, count: 2 })
  const u6 = user()
  const b6 = await seed({ userId: u6, createdAt: T(0), expiresAt: before, count: 2 })

  return {
    before,
    eligible: 2 + 3 + 2 + 2,
    /** Used rows of active batches: kept whatever `before` is. */
    keptUsed: 2,
    /** Rows in the scenario. */
    total: 6 + (3 + 3 + 8) + 2 + 2 + 2 + 2,
    users: { u1, u2, u6 },
    /** Codes that verify forever (no expiry, active batch). */
    live: [{ userId: u1, code: b1.codes[5]! }, ...c2.codes.map((code) => ({ userId: u2, code }))],
    /** Codes that verify until `before` (exclusive). */
    expiring: b6.codes.map((code) => ({ userId: u6, code })),
  }
}

function retentionTests(ctx: StoreConformanceContext<Store>): void {
  const T = timeOf(ctx)
  const { consume, find, batchOf, seed } = batchCallsOf(ctx)
  const reserve = reserverOf(ctx)

  describe('purgeCodes', () => {
    it('deletes exactly the rows that can never verify and whose end is older than before', async () => {
      const scenario = await seedPurgeScenario(ctx)
      expect(await ctx.store.purgeCodes({ before: scenario.before, limit: 1_000 })).toBe(scenario.eligible)
      expect(await ctx.store.purgeCodes({ before: scenario.before, limit: 1_000 })).toBe(0)
      for (const { userId, code } of [...scenario.live, ...scenario.expiring]) {
        expect(await find(userId, code, scenario.before - 1)).toMatchObject({ codeId: code.id })
      }
    })

    it('respects limit and is idempotent across runs', async () => {
      const scenario = await seedPurgeScenario(ctx)
      const runs: number[] = []
      for (;;) {
        const n = await ctx.store.purgeCodes({ before: scenario.before, limit: 3 })
        runs.push(n)
        if (n === 0) break
        expect(runs.length).toBeLessThan(10)
      }
      expect(runs).toEqual([3, 3, 3, 0])
    })

    it('a later run takes the rows that became eligible since (boundaries are strict)', async () => {
      const scenario = await seedPurgeScenario(ctx)
      expect(await ctx.store.purgeCodes({ before: scenario.before, limit: 1_000 })).toBe(scenario.eligible)
      // At `before + 1`: u2's batch superseded at `before` (3), u6's codes expired at `before` (2).
      // At `before + 2`: u1's code invalidated at `before + 1`.
      expect(await ctx.store.purgeCodes({ before: scenario.before + 1, limit: 1_000 })).toBe(3 + 2)
      expect(await ctx.store.purgeCodes({ before: scenario.before + 2, limit: 1_000 })).toBe(1)
      expect(await ctx.store.purgeCodes({ before: scenario.before + 2, limit: 1_000 })).toBe(0)
    })

    it('never deletes a code that can still verify, whatever before is', async () => {
      const scenario = await seedPurgeScenario(ctx)
      // Far past every row's time in this test's window: every row is eligible but the live codes
      // and the used rows of active batches.
      const deleted = await ctx.store.purgeCodes({ before: T(900_000_000), limit: 1_000 })
      expect(deleted).toBe(scenario.total - scenario.live.length - scenario.keptUsed)
      for (const { userId, code } of scenario.live) {
        expect(await consume(userId, code, T(2_000))).toMatchObject({ codeId: code.id })
      }
    })

    it('keeps batch metadata and counts when code rows are purged (R-LC-5)', async () => {
      const scenario = await seedPurgeScenario(ctx)
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
      const a = await seed({ userId: u1, createdAt: T(0), count: 2 })
      const b = await seed({ userId: u1, createdAt: T(100), expiresAt: T(200), count: 2 })
      const u2 = user()
      const d = await seed({ userId: u2, createdAt: T(0), count: 2 })
      await ctx.store.endBatch({ userId: u2, batchId: d.batch.id, to: 'disabled', now: T(300) })
      const u3 = user()
      const e = await seed({ userId: u3, createdAt: T(0), count: 2 })
      await ctx.store.endBatch({ userId: u3, batchId: e.batch.id, to: 'deleted', now: T(5_000) })
      // u4: every code used early, but the batch ended after `before`: its rows and it stay.
      const u4 = user()
      const g = await seed({ userId: u4, createdAt: T(0), count: 2 })
      for (const code of g.codes) await consume(u4, code, T(50))
      await ctx.store.endBatch({ userId: u4, batchId: g.batch.id, to: 'disabled', now: T(5_000) })
      const before = T(1_000)

      expect(await ctx.store.purgeEmptyBatches({ before, limit: 100 })).toBe(0)
      expect(await ctx.store.purgeCodes({ before, limit: 100 })).toBe(6)

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
      // Once u4's batch has ended its used rows go; the batch keeps counting them (R-LC-5).
      expect(await ctx.store.purgeEmptyBatches({ before: T(5_001), limit: 100 })).toBe(0)
      expect(await ctx.store.purgeCodes({ before: T(5_001), limit: 100 })).toBe(2 + 2)
      expect(await ctx.store.listBatches({ userId: u4, offset: 0, limit: 10 })).toMatchObject({
        items: [{ id: g.batch.id, issued: 2, used: 2, unused: 0, lastUsedAt: T(50) }],
      })
      expect(await ctx.store.purgeEmptyBatches({ before: T(5_001), limit: 100 })).toBe(2)
      expect((await ctx.store.listBatches({ userId: u4, offset: 0, limit: 10 })).total).toBe(0)
      expect(await batchOf(u1, a.batch.id)).toBeUndefined()
      expect(
        await ctx.store.setBatchFlag({ userId: u2, batchId: d.batch.id, flag: 'viewed', now: T(2) }),
      ).toBe(false)
    })
  })

  describe('purgeAttempts', () => {
    it('deletes counters untouched and unlocked before `before`, and only those', async () => {
      const old = Array.from({ length: 5 }, () => uniqueId('att-old'))
      for (const key of old) await reserve(key, T(10))
      const recent = uniqueId('att-recent')
      await reserve(recent, T(10))
      await reserve(recent, T(100))
      const locked = uniqueId('att-locked')
      await reserve(locked, T(10))
      await ctx.store.lockAttempts({ key: locked, until: T(200) })
      const unlockedLongAgo = uniqueId('att-unlocked')
      await reserve(unlockedLongAgo, T(10))
      await ctx.store.lockAttempts({ key: unlockedLongAgo, until: T(20) })
      const before = T(50)

      expect(await ctx.store.purgeAttempts({ before, limit: 1_000 })).toBe(old.length + 1)
      expect(await ctx.store.purgeAttempts({ before, limit: 1_000 })).toBe(0)
      for (const key of [...old, unlockedLongAgo])
        expect(await ctx.store.getAttempts(key)).toEqual(ZERO_ATTEMPTS)
      expect(await ctx.store.getAttempts(recent)).toMatchObject({ failures: 2, consecutive: 2 })
      expect(await ctx.store.getAttempts(locked)).toMatchObject({ lockouts: 1, lockedUntil: T(200) })

      // Boundaries are strict: touched at `before` stays; the lock ending at `before` stays.
      expect(await ctx.store.purgeAttempts({ before: T(100), limit: 1_000 })).toBe(0)
      expect(await ctx.store.purgeAttempts({ before: T(101), limit: 1_000 })).toBe(1)
      expect(await ctx.store.purgeAttempts({ before: T(200), limit: 1_000 })).toBe(0)
      expect(await ctx.store.purgeAttempts({ before: T(201), limit: 1_000 })).toBe(1)
    })

    it('respects limit, and a purged key starts from zero', async () => {
      const keys = Array.from({ length: 7 }, () => uniqueId('att-limit'))
      for (const key of keys) {
        await reserve(key, T(1))
        await reserve(key, T(2))
      }
      const runs: number[] = []
      for (let n = -1; n !== 0; ) {
        n = await ctx.store.purgeAttempts({ before: T(10), limit: 3 })
        runs.push(n)
        expect(runs.length).toBeLessThan(6)
      }
      expect(runs).toEqual([3, 3, 1, 0])
      expect(await ctx.store.purgeAttempts({ before: T(10), limit: 0 })).toBe(0)
      expect(await reserve(keys[0]!, T(20))).toEqual({
        allowed: true,
        states: [{ failures: 1, consecutive: 1, lockouts: 0, lockedUntil: 0 }],
      })
    })

    it('rejects a bad before or limit', async () => {
      for (const input of [
        { before: Number.NaN, limit: 1 },
        { before: T(1), limit: -1 },
        { before: T(1), limit: 1.5 },
      ]) {
        await expect(ctx.store.purgeAttempts(input)).rejects.toMatchObject({ code: 'INVALID_INPUT' })
      }
    })
  })
}

function retentionRaces(ctx: StoreConformanceContext<Store>): void {
  const { consume, find } = batchCallsOf(ctx)

  it('purgeCodes beside itself (4 parallel) and beside consumes: each live code consumed once, purged = eligible', async () => {
    const scenario = await seedPurgeScenario(ctx)
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
}
