/**
 * Service conformance, purge: chunked deletes that survive a failure mid-run and finish on the
 * next run without losing an active code, and per-run overrides checked before anything is deleted.
 */
import { expect, it } from 'vitest'
import { uniqueId } from '../fixtures.ts'
import { bindAll, DAY, type ServiceSuite } from './harness.ts'

/** Registers the purge tests inside the running `describe` block. */
export function purgeTests(suite: ServiceSuite): void {
  const { make, batchFor } = suite

  it('purge: eligible rows go in chunks, a failure mid-run is reported, a re-run finishes; no active code lost', async () => {
    const scale = suite.options.purgeScale ?? { eligible: 10_000, active: 500 }
    let calls = 0
    let failOn = 3
    /** The limit each chunk asked for: the service sizes chunks by its time budget. */
    const asked: number[] = []
    const h = make({ purge: { retentionDays: 1, batchSize: 1000, maxDeletionsPerRun: null } }, (s) => ({
      ...bindAll(s),
      async purgeCodes(input) {
        calls++
        asked.push(input.limit)
        if (calls === failOn) throw new Error('database went away')
        return s.purgeCodes(input)
      },
    }))
    // Eligible: whole batches soft-deleted long ago (written through the store for speed).
    const perBatch = 1000
    for (let i = 0; i < scale.eligible / perBatch; i++) {
      const userId = uniqueId('old')
      const batchId = uniqueId('batch')
      const now = h.clock.now()
      await h.store.createBatch(
        { id: batchId, userId, keyId: 'k1', createdAt: now, expiresAt: null },
        Array.from({ length: perBatch }, () => ({
          id: uniqueId('code'),
          digest: crypto.getRandomValues(new Uint8Array(32)),
        })),
      )
      await h.store.endBatch({ userId, batchId, to: 'deleted', now })
    }
    h.clock.advance(2 * DAY)
    const active: { userId: string; codes: string[] }[] = []
    for (let i = 0; i < scale.active / 50; i++) active.push(await batchFor(h, uniqueId('user'), 50))

    const first = await h.rc.purge()
    expect(first.error).toBeDefined()
    expect(first.done).toBe(false)
    // Two chunks done, the third failed; no chunk asked for more than the ceiling.
    expect(first.deleted).toBe(asked[0]! + asked[1]!)
    expect(Math.max(...asked)).toBeLessThanOrEqual(1000)
    failOn = -1
    const second = await h.rc.purge()
    expect(second.error).toBeUndefined()
    expect(second.done).toBe(true)
    expect(first.deleted + second.deleted).toBe(scale.eligible)
    const third = await h.rc.purge()
    expect(third.deleted).toBe(0)
    for (const a of active) expect((await h.rc.status({ userId: a.userId })).remaining).toBe(50)
    const runs = await h.store.listAudit({ limit: 100, event: 'purge.run' })
    expect(runs).toHaveLength(3)
    expect(runs.reduce((n, r) => n + Number(r.data?.deleted ?? 0), 0)).toBe(scale.eligible)
    // Every active code still redeems.
    const sample = active[0]!
    for (const code of sample.codes)
      expect((await h.rc.redeem({ userId: sample.userId, code })).ok).toBe(true)
  })

  it("purge takes per-run overrides (a schedule's options) and rejects bad ones before deleting", async () => {
    const h = make({ purge: { retentionDays: 30 } })
    const b = await batchFor(h)
    await h.rc.redeem({ userId: b.userId, code: b.codes[0]! }) // kept: its batch is active
    await h.rc.invalidateCode({ userId: b.userId, code: b.codes[1]! })
    h.clock.advance(DAY)
    expect((await h.rc.purge()).deleted).toBe(0) // 30-day retention keeps yesterday's invalidated code
    for (const bad of [
      { retentionDays: -1 },
      { chunkSize: 0 },
      { maxDeletionsPerRun: 1.5 },
      { retentionDays: '0' },
    ]) {
      await expect(h.rc.purge(bad as never)).rejects.toMatchObject({ code: 'INVALID_INPUT' })
    }
    expect((await h.rc.purge({ retentionDays: 0, chunkSize: 1, maxDeletionsPerRun: null })).deleted).toBe(1)
    expect((await h.rc.status({ userId: b.userId })).remaining).toBe(3)
  })
}
