/**
 * Purge runs sized by `purge.chunkBudgetMs`: behind a store whose deletes take time proportional
 * to the rows asked for, the chunks shrink until one fits the budget, for codes, empty batches,
 * limiter counters and audit rows alike, and every eligible row is still purged. No chunk asks for
 * more than the configured ceiling (no one-shot delete).
 */
import { performance } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import { inspectMemoryStore, memoryStore } from '../../../store-memory/src/index.ts'
import { createManualClock } from '../../../testing/src/clock.ts'
import { buildAudit, randomPepperSecret } from '../../../testing/src/fixtures.ts'
import type { RecoveryCodeStore } from '../ports/store.ts'
import { createRecoveryCodes } from './create.ts'

const DAY_MS = 86_400_000
/** Each row a slow delete is asked for costs this long: 200 rows fill a 10 ms budget. */
const MS_PER_ROW = 0.05
const BUDGET_MS = 10
const CEILING = 5_000

type PurgeMethod = 'purgeCodes' | 'purgeEmptyBatches' | 'purgeAttempts' | 'purgeAudit'

/** `inner` with every purge method slowed by {@link MS_PER_ROW} per row of its `limit`, recorded. */
function slowDeletes(inner: RecoveryCodeStore) {
  const asked: Record<PurgeMethod, number[]> = {
    purgeCodes: [],
    purgeEmptyBatches: [],
    purgeAttempts: [],
    purgeAudit: [],
  }
  const store = Object.create(inner) as RecoveryCodeStore
  for (const method of Object.keys(asked) as PurgeMethod[]) {
    const original = inner[method].bind(inner) as (input: { limit: number }) => Promise<number>
    ;(store as unknown as Record<PurgeMethod, typeof original>)[method] = async (input) => {
      asked[method].push(input.limit)
      // A busy wait: the chunk really takes this long on the monotonic clock the service reads.
      const until = performance.now() + input.limit * MS_PER_ROW
      while (performance.now() < until) {}
      return original(input)
    }
  }
  return { store, asked }
}

function setup() {
  const inner = memoryStore()
  const { store, asked } = slowDeletes(inner)
  const clock = createManualClock()
  const rc = createRecoveryCodes({
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    activation: 'immediate',
    store,
    clock,
    purge: {
      retentionDays: 1,
      batchSize: CEILING,
      chunkBudgetMs: BUDGET_MS,
      maxDeletionsPerRun: null,
      deleteEmptyBatches: true,
    },
  })
  return { rc, inner, asked, clock }
}

/** The limits a slowed phase asked for shrink to a chunk that fits the budget, then stay there. */
function expectShrinkToBudget(limits: readonly number[]) {
  // First 100 rows per ms of budget; a chunk of 1000 rows took 50 ms, one of 500 took 25 ms: each
  // halves the next (the most one step shrinks); 250 rows (12.5 ms) shrink to the 200 that fit.
  expect(limits.slice(0, 3)).toEqual([1_000, 500, 250])
  for (const limit of limits.slice(3)) expect(limit * MS_PER_ROW).toBeLessThanOrEqual(BUDGET_MS)
  expect(Math.max(...limits)).toBeLessThanOrEqual(CEILING)
}

describe('purge chunks sized by purge.chunkBudgetMs', () => {
  it('code chunks shrink behind slow deletes to fit the budget; every eligible row is purged', async () => {
    const { rc, inner, asked, clock } = setup()
    // 5 batches of 1,000 codes, soft-deleted: 5,000 eligible rows once retention has passed.
    const now = clock.now()
    for (let b = 0; b < 5; b++) {
      const userId = `old-${b}`
      const batchId = `batch-${b}`
      await inner.createBatch(
        { id: batchId, userId, keyId: 'k1', createdAt: now, expiresAt: null },
        Array.from({ length: 1_000 }, (_, i) => ({
          id: `code-${b}-${i}`,
          digest: crypto.getRandomValues(new Uint8Array(32)),
        })),
      )
      await inner.endBatch({ userId, batchId, to: 'deleted', now })
    }
    // A limiter counter past its retention, for the counters' phase.
    await inner.reserveAttempts({ keys: [{ key: 'id:stale', maxAttempts: 5 }], now })
    clock.advance(40 * DAY_MS)
    const live = await rc.generate({ userId: 'alive' })
    if (!live.ok) throw new Error('generate refused')

    const report = await rc.purge()

    expect(report).toMatchObject({ deleted: 5_000, batchesDeleted: 5, attemptsDeleted: 1, done: true })
    expectShrinkToBudget(asked.purgeCodes)
    expect(asked.purgeCodes.reduce((n, l) => n + l, 0)).toBeGreaterThanOrEqual(5_000)
    // The other phases start the same way (one short chunk each here), under the same ceiling.
    expect(asked.purgeEmptyBatches).toEqual([1_000])
    expect(asked.purgeAttempts).toEqual([1_000])
    expect(report.chunks).toMatchObject({ budgetMs: BUDGET_MS, count: report.rounds + 2 })
    expect(report.chunks!.overBudget).toBeGreaterThanOrEqual(3)
    expect(report.chunks!.slowestMs).toBeGreaterThanOrEqual(1_000 * MS_PER_ROW)
    // Nothing eligible is left; the live batch is untouched.
    const dump = inspectMemoryStore(inner)
    expect(dump.codes.map((c) => c.batchId)).toEqual(Array(10).fill(live.batchId))
    expect((await rc.status({ userId: 'alive' })).remaining).toBe(10)
    for (const code of live.codes.slice(0, 2))
      expect((await rc.redeem({ userId: 'alive', code })).ok).toBe(true)
  })

  it('audit chunks shrink the same way; every audit row past retention is purged', async () => {
    const { rc, inner, asked, clock } = setup()
    const old = clock.now()
    for (let i = 0; i < 3_000; i++) await inner.appendAudit(buildAudit({ at: old + i }))
    clock.advance(40 * DAY_MS)
    await inner.appendAudit(buildAudit({ at: clock.now() }))

    const report = await rc.purgeAudit()

    expect(report).toMatchObject({ deleted: 3_000, done: true })
    expectShrinkToBudget(asked.purgeAudit)
    expect(report.chunks).toMatchObject({ budgetMs: BUDGET_MS, count: report.rounds })
    const left = await inner.listAudit({ limit: 10_000 })
    expect(left.every((r) => r.at >= clock.now() - 30 * DAY_MS)).toBe(true)
    expect(left.filter((r) => r.event === 'audit.purged')).toHaveLength(1)
  })

  it('with nothing eligible, runs one bounded chunk per phase and reports them', async () => {
    const { rc, asked } = setup()
    const report = await rc.purge()
    expect(report).toMatchObject({
      deleted: 0,
      rounds: 1,
      done: true,
      chunks: { budgetMs: BUDGET_MS, count: 3 },
    })
    expect([asked.purgeCodes, asked.purgeEmptyBatches, asked.purgeAttempts]).toEqual([
      [1_000],
      [1_000],
      [1_000],
    ])
  })
})
