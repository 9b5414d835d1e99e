/**
 * The audit aggregate's contract (`AuditStore`): append, list newest first with filters, purge by
 * age, the email log; and the rule that a state change commits with its audit row (`createBatch`,
 * `setCodeState`, `endBatch`, `purgeCodes`, `purgeEmptyBatches`): the row is there when the change
 * is, absent when nothing changed, and a failure leaves neither.
 */
import {
  type AuditRecord,
  type AuditStore,
  type BatchStore,
  purgedAudit,
  type RetentionStore,
} from '@recovery-codes/core'
import { describe, expect, it } from 'vitest'
import { buildAudit, buildBatch, buildCodes, buildEmailLog, uniqueId } from '../fixtures.ts'
import type { AggregateSuite, StoreConformanceContext } from './context.ts'
import { batchCallsOf, timeOf, user } from './helpers.ts'

type Store = BatchStore & RetentionStore & AuditStore

/** `AuditStore` (with `purgeAudit`), then the audit rows that state changes commit with them. */
export const auditSuite: AggregateSuite<Store> = {
  tests(ctx) {
    auditTrailTests(ctx)
    auditedChangeTests(ctx)
  },
}

function auditTrailTests(ctx: StoreConformanceContext<AuditStore & RetentionStore>): void {
  const T = timeOf(ctx)

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
}

function auditedChangeTests(ctx: StoreConformanceContext<Store>): void {
  const T = timeOf(ctx)
  const { seed } = batchCallsOf(ctx)
  const rowsOf = (userId: string | null, event: string) =>
    ctx.store.listAudit({ limit: 100, event, ...(userId === null ? {} : { userId }) })
  const auditFor = (userId: string | null, at: number, extra: Partial<AuditRecord> = {}) =>
    buildAudit({ at, userId, event: `conformance.${uniqueId('e')}`, outcome: 'success', ...extra })

  describe('state changes with their audit rows', () => {
    it('createBatch writes the batch and its audit row together', async () => {
      const userId = user()
      const batch = buildBatch({ userId, createdAt: T(1) })
      const audit = auditFor(userId, T(1), { batchId: batch.id, data: { count: 3, expires: false } })
      await ctx.store.createBatch(batch, buildCodes(3), audit)
      expect(await rowsOf(userId, audit.event)).toEqual([audit])
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ id: batch.id, issued: 3 })
    })

    it('createBatch that fails writes no audit row, and a refused audit row writes no batch', async () => {
      const userId = user()
      const { codes } = await seed({ userId, createdAt: T(0), count: 2 })
      const dup = buildBatch({ userId, createdAt: T(1) })
      const audit = auditFor(userId, T(1), { batchId: dup.id })
      // A digest the user already holds: the batch is refused, so is its row.
      await expect(
        ctx.store.createBatch(dup, [{ id: uniqueId('code'), digest: codes[0]!.digest }], audit),
      ).rejects.toThrow()
      expect(await rowsOf(userId, audit.event)).toEqual([])

      // An audit row that exists (same `at` and `id`, the audit key): the row is refused, so is
      // the batch.
      const taken = auditFor(userId, T(2))
      await ctx.store.appendAudit(taken)
      const next = buildBatch({ userId, createdAt: T(3) })
      await expect(ctx.store.createBatch(next, buildCodes(2), taken)).rejects.toThrow()
      const { items } = await ctx.store.listBatches({ userId, offset: 0, limit: 10 })
      expect(items.map((b) => b.id)).not.toContain(next.id)
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ unused: 2 })
    })

    it('setCodeState appends its row only when it made the change', async () => {
      const userId = user()
      const { batch, codes } = await seed({ userId, createdAt: T(0), count: 2 })
      const first = auditFor(userId, T(1), { batchId: batch.id })
      const input = { userId, codeId: codes[0]!.id, to: 'invalidated', now: T(1) } as const
      expect(await ctx.store.setCodeState({ ...input, audit: first })).toBe(true)
      const again = { ...auditFor(userId, T(2), { batchId: batch.id }), event: first.event }
      expect(await ctx.store.setCodeState({ ...input, now: T(2), audit: again })).toBe(false)
      expect(await rowsOf(userId, first.event)).toEqual([first])
    })

    it('endBatch appends its row only when it made the change', async () => {
      const userId = user()
      const { batch } = await seed({ userId, createdAt: T(0) })
      const ended = auditFor(userId, T(5), { batchId: batch.id, reason: 'hard-cap', outcome: 'info' })
      expect(
        await ctx.store.endBatch({ userId, batchId: batch.id, to: 'disabled', now: T(5), audit: ended }),
      ).toBe(true)
      const again = { ...auditFor(userId, T(6)), event: ended.event }
      expect(
        await ctx.store.endBatch({ userId, batchId: batch.id, to: 'deleted', now: T(6), audit: again }),
      ).toBe(false)
      expect(await rowsOf(userId, ended.event)).toEqual([ended])
      expect(await ctx.store.getActiveBatch(userId)).toBeNull()
    })

    it('purgeCodes and purgeEmptyBatches append one row per chunk that deleted, with its count', async () => {
      const userId = user()
      const { batch } = await seed({ userId, createdAt: T(0), count: 3 })
      await ctx.store.endBatch({ userId, batchId: batch.id, to: 'deleted', now: T(10) })
      const event = `conformance.${uniqueId('purge')}`
      const chunk = (at: number) => buildAudit({ at, userId: null, event, outcome: 'success' })
      const before = T(20)

      const first = chunk(T(30))
      expect(await ctx.store.purgeCodes({ before, limit: 2, audit: first })).toBe(2)
      const second = chunk(T(31))
      expect(await ctx.store.purgeCodes({ before, limit: 2, audit: second })).toBe(1)
      expect(await ctx.store.purgeCodes({ before, limit: 2, audit: chunk(T(32)) })).toBe(0)
      const emptied = chunk(T(33))
      expect(await ctx.store.purgeEmptyBatches({ before, limit: 10, audit: emptied })).toBe(1)
      expect(await ctx.store.purgeEmptyBatches({ before, limit: 10, audit: chunk(T(34)) })).toBe(0)

      expect(await rowsOf(null, event)).toEqual([
        purgedAudit(emptied, 1),
        purgedAudit(second, 1),
        purgedAudit(first, 2),
      ])
    })
  })
}
