/**
 * Service conformance, the read cache: history and status read through it, with the default cache
 * and with a configured one, and a write is never followed by a stale page.
 */
import { createStorage } from 'unstorage'
import { expect, it } from 'vitest'
import { createCountingStore } from '../store-wrappers.ts'
import { DAY, type ServiceSuite } from './harness.ts'

/** Registers the cache tests inside the running `describe` block. */
export function cacheTests(suite: ServiceSuite): void {
  const { make, batchFor } = suite

  // The default cache is private to the service (its versions stay in process); a configured
  // cache may be shared (its versions live in it). Both must read through and never serve stale.
  const cacheSetups = [
    ['the default cache', () => ({})],
    ['a configured cache', () => ({ cache: createStorage() })],
  ] as const

  it.each(cacheSetups)('history and status read through %s; the next write misses it', async (_, cache) => {
    const counting = createCountingStore(suite.store)
    const h = make({ ...cache(), history: { perPage: 2, maxVisible: 5 } }, () => counting.store)
    const b = await batchFor(h)
    const reads = () => counting.count('listBatches') + counting.count('getActiveBatch')
    const first = await h.rc.history({ userId: b.userId })
    await h.rc.status({ userId: b.userId })
    const after = reads()
    expect(after).toBeGreaterThan(0)
    expect(await h.rc.history({ userId: b.userId })).toEqual(first)
    await h.rc.status({ userId: b.userId })
    expect(reads()).toBe(after) // both served from the cache
    await h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
    const before = reads()
    expect((await h.rc.history({ userId: b.userId })).items[0]).toMatchObject({ used: 1 })
    expect(reads()).toBeGreaterThan(before)
    // Another user's write leaves this user's pages cached.
    await batchFor(h)
    const still = reads()
    await h.rc.history({ userId: b.userId })
    expect(reads()).toBe(still)
  })

  it.each(cacheSetups)('history pages are never stale with %s', async (_, cache) => {
    const h = make({ ...cache(), history: { perPage: 2, maxVisible: 5 } })
    const b = await batchFor(h)
    const page = async () => (await h.rc.history({ userId: b.userId })).items[0]!
    expect(await page()).toMatchObject({ used: 0, unused: 5 })
    await h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
    expect(await page()).toMatchObject({ used: 1, unused: 4 })
    await h.rc.invalidateCode({ userId: b.userId, code: b.codes[1]! })
    expect(await page()).toMatchObject({ invalidated: 1, unused: 3 })
    await h.rc.deleteCode({ userId: b.userId, code: b.codes[2]! })
    expect(await page()).toMatchObject({ deleted: 1, unused: 2 })
    await h.rc.verifySetup({ userId: b.userId, code: b.codes[3]! })
    expect(await page()).toMatchObject({ verified: true })
    await h.rc.exportCodes({ userId: b.userId, reveal: b.reveal, format: 'csv' })
    expect(await page()).toMatchObject({ downloaded: true })
    await h.rc.deleteBatch({ userId: b.userId })
    expect(await page()).toMatchObject({ status: 'deleted' })
    for (let i = 0; i < 6; i++) {
      h.clock.advance(DAY)
      await batchFor(h, b.userId)
    }
    const p1 = await h.rc.history({ userId: b.userId, page: 1 })
    const p3 = await h.rc.history({ userId: b.userId, page: 3 })
    expect(p1.total).toBe(5)
    expect(p1.totalPages).toBe(3)
    expect(p1.items[0]!.status).toBe('active')
    expect(p3.items).toHaveLength(1)
    expect((await h.rc.history({ userId: b.userId, page: 4 })).items).toHaveLength(0)
  })
}
