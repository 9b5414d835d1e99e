/**
 * The import aggregate's races (`ImportStore`), real parallel calls started together: one
 * `imported` among N calls with one batch id (one user or many), one `imported` among concurrent
 * active imports for one user, and one active batch after `createBatch` races an active import.
 */
import type { ImportBatchOutcome } from '@recovery-codes/core'
import { expect } from 'vitest'
import { startTogether } from '../barrier.ts'
import { buildBatch, buildCodes, uniqueId } from '../fixtures.ts'
import type { StoreConformanceContext } from './context.ts'
import { batchCallsOf, timeOf, user, values } from './helpers.ts'
import {
  buildImported,
  type ImportSuiteStore,
  importAudit,
  importCallsOf,
  importIt,
  STATES,
  summaryOf,
} from './import-helpers.ts'

const tally = (outcomes: readonly ImportBatchOutcome[]) => ({
  imported: outcomes.filter((o) => o === 'imported').length,
  exists: outcomes.filter((o) => o === 'exists').length,
  conflict: outcomes.filter((o) => o === 'conflict').length,
})

/** Registers the import races inside the running `concurrency` block. */
export function importRaces(ctx: StoreConformanceContext<ImportSuiteStore>): void {
  const T = timeOf(ctx)
  const test = importIt(ctx)
  const { consume, find } = batchCallsOf(ctx)
  const { importBatch, importAudits } = importCallsOf(ctx)
  const history = (userId: string) => ctx.store.listBatches({ userId, offset: 0, limit: 100 })

  test('20 parallel importBatch of one batch: exactly one imported, 19 exists; every code written once', async () => {
    const userId = user()
    const b = buildImported({ userId, createdAt: T(0), states: [...STATES, ...STATES, 'active', 'active'] })
    const outcomes = values(await startTogether(Array.from({ length: 20 }, () => () => importBatch(b))))
    expect(tally(outcomes)).toEqual({ imported: 1, exists: 19, conflict: 0 })
    expect(await history(userId)).toEqual({ items: [summaryOf(b)], total: 1 })
    expect(await importAudits(userId)).toHaveLength(1)
    const live = b.codes.filter((c) => c.state === 'active')
    for (const code of live) expect(await consume(userId, code, T(100))).toMatchObject({ codeId: code.id })
    for (const code of b.codes) expect(await consume(userId, code, T(101))).toBeNull()
  })

  test('10 parallel importBatch of one batch id for 10 users: exactly one imported, for one user', async () => {
    const id = uniqueId('imported')
    const calls = Array.from({ length: 10 }, (_, i) => ({
      ...buildImported({ userId: user(), createdAt: T(i), status: i % 2 ? 'active' : 'superseded' }),
      id,
    }))
    const outcomes = values(await startTogether(calls.map((b) => () => importBatch(b, importAudit(b)))))
    expect(tally(outcomes)).toEqual({ imported: 1, exists: 9, conflict: 0 })
    for (const [i, b] of calls.entries()) {
      const won = outcomes[i] === 'imported'
      expect(await history(b.userId)).toEqual(
        won ? { items: [summaryOf(b)], total: 1 } : { items: [], total: 0 },
      )
      expect(await importAudits(b.userId)).toHaveLength(won ? 1 : 0)
      expect(await find(b.userId, b.codes[0]!, T(100))).toEqual(
        won && b.status === 'active' ? expect.objectContaining({ batchId: id }) : null,
      )
    }
  })

  test('5 parallel active imports for one user (different ids): one imported, 4 conflict; beside them, ended ones all import', async () => {
    const userId = user()
    const active = Array.from({ length: 5 }, (_, i) => buildImported({ userId, createdAt: T(10 + i) }))
    const ended = Array.from({ length: 3 }, (_, i) =>
      buildImported({ userId, createdAt: T(i), status: 'superseded', endedAt: T(5) }),
    )
    const outcomes = values(await startTogether([...active, ...ended].map((b) => () => importBatch(b))))
    expect(tally(outcomes.slice(0, 5))).toEqual({ imported: 1, exists: 0, conflict: 4 })
    expect(outcomes.slice(5)).toEqual(['imported', 'imported', 'imported'])
    const winner = active[outcomes.indexOf('imported')]!
    expect(await ctx.store.getActiveBatch(userId)).toEqual(summaryOf(winner))
    expect((await history(userId)).total).toBe(4)
    expect(await importAudits(userId)).toHaveLength(4)
    for (const b of active) {
      const usable = await find(userId, b.codes[0]!, T(100))
      expect(usable).toEqual(b === winner ? expect.objectContaining({ batchId: b.id }) : null)
    }
  })

  test('createBatch racing an active importBatch for one user, 10 rounds: exactly one active batch, createBatch’s', async () => {
    for (let round = 0; round < 10; round++) {
      const userId = user()
      const generated = { batch: buildBatch({ userId, createdAt: T(100 + round) }), codes: buildCodes(3) }
      const incoming = buildImported({ userId, createdAt: T(round) })
      const create = () => ctx.store.createBatch(generated.batch, generated.codes).then(() => 'created')
      const incomingImport = () => importBatch(incoming)
      // Both start orders: a store that runs each call to its end at once sees both interleavings.
      const tasks = round % 2 ? [create, incomingImport] : [incomingImport, create]
      const results = values(await startTogether<string>(tasks))
      const outcome = results.find((r) => r !== 'created')
      expect(results.filter((r) => r === 'created')).toHaveLength(1)
      expect(['imported', 'conflict']).toContain(outcome)
      const { items } = await history(userId)
      expect(items.filter((b) => b.status === 'active').map((b) => b.id)).toEqual([generated.batch.id])
      const imported = items.find((b) => b.id === incoming.id)
      if (outcome === 'imported') {
        expect(imported).toMatchObject({ status: 'superseded', endedAt: T(100 + round) })
        expect(await find(userId, incoming.codes[0]!, T(200))).toBeNull()
      } else expect(imported).toBeUndefined()
      expect(await find(userId, generated.codes[0]!, T(200))).toMatchObject({ batchId: generated.batch.id })
    }
  })
}
