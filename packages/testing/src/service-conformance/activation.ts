/**
 * Service conformance, activation after saving (`activation: 'confirm'`, the default; issue 16
 * acceptance 1): a new batch waits in its reveal slot and the current one keeps working until the
 * user confirms; the confirm supersedes atomically under concurrent redeems, on every store; a
 * batch never confirmed expires and changes nothing.
 */
import type { GenerateResult } from '@recovery-codes/core'
import { expect, it } from 'vitest'
import { uniqueId } from '../fixtures.ts'
import { bindAll, type Harness, type ServiceSuite } from './harness.ts'

type Generated = GenerateResult & { ok: true }

/** Registers the activation tests inside the running `describe` block. */
export function activationTests(suite: ServiceSuite): void {
  const { make } = suite

  /** A service in the default activation mode, with the cooldown out of the way. */
  const confirming = (
    overrides: Parameters<ServiceSuite['make']>[0] = {},
    wrap?: Parameters<ServiceSuite['make']>[1],
  ) =>
    make(
      { activation: undefined, cooldown: { baseSeconds: 1, cutoffSeconds: 1, multiplier: 1 }, ...overrides },
      wrap,
    )

  async function generate(h: Harness, userId: string, count = 5): Promise<Generated> {
    const r = await h.rc.generate({ userId, count })
    if (!r.ok) throw new Error('unexpected cooldown')
    return r
  }

  /** An active batch under `'confirm'`: generated, then confirmed; the clock moves past the cooldown. */
  async function active(h: Harness, userId: string, count = 5): Promise<Generated> {
    const b = await generate(h, userId, count)
    await h.rc.confirm({ userId, reveal: b.reveal })
    h.clock.advance(1000)
    return b
  }

  const code = async (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: { code?: string }) => e.code ?? 'thrown',
    )

  it("activation defaults to 'confirm': a generate changes nothing in the store until its confirm", async () => {
    const h = confirming()
    expect(h.rc.config.activation).toBe('confirm')
    const userId = uniqueId('user')
    const b = await generate(h, userId)
    expect(b.pending).toBe(true)
    expect(await h.store.getActiveBatch(userId)).toBeNull()
    expect((await h.store.listBatches({ userId, offset: 0, limit: 10 })).total).toBe(0)
    // Its codes do not work before the confirm.
    expect((await h.rc.redeem({ userId, code: b.codes[0]! })).ok).toBe(false)
    expect((await h.rc.revealStatus({ userId, reveal: b.reveal })).pending).toBe(true)
    const confirmed = await h.rc.confirm({ userId, reveal: b.reveal })
    expect(confirmed).toEqual({ batchId: b.batchId, supersededBatchId: null })
    expect((await h.store.getActiveBatch(userId))?.id).toBe(b.batchId)
    expect((await h.rc.redeem({ userId, code: b.codes[1]! })).ok).toBe(true)
    const generated = await h.store.listAudit({ limit: 10, userId, event: 'batch.generated' })
    expect(generated.map((a) => a.batchId)).toEqual([b.batchId])
  })

  it('a regenerate whose response is never read leaves the old codes working', async () => {
    const h = confirming()
    const userId = uniqueId('user')
    const old = await active(h, userId, 6)
    // The answer of this generate is lost (a timeout, a crash, a closed tab).
    await generate(h, userId)
    for (const c of old.codes.slice(0, 3)) expect((await h.rc.redeem({ userId, code: c })).ok).toBe(true)
    const status = await h.rc.status({ userId })
    expect(status.active?.id).toBe(old.batchId)
    expect(status.remaining).toBe(3)
    // The pending batch dies with its slot, changing nothing.
    h.clock.advance(h.rc.config.revealTtlMs + 1)
    for (const c of old.codes.slice(3)) expect((await h.rc.redeem({ userId, code: c })).ok).toBe(true)
    expect((await h.rc.history({ userId })).total).toBe(1)
  })

  it('an unconfirmed batch expires: its confirm is refused, its codes never work, the old ones do', async () => {
    // Limits above the refusals below, so a refusal can only mean the code is dead.
    const h = confirming({ maxLoginAttempts: 50, hardFailureCap: 100, clientMaxAttempts: 100 })
    const userId = uniqueId('user')
    const old = await active(h, userId)
    const next = await generate(h, userId)
    h.clock.advance(h.rc.config.revealTtlMs)
    expect(await code(h.rc.confirm({ userId, reveal: next.reveal }))).toBe('REVEAL_UNAVAILABLE')
    expect(await code(h.rc.viewCodes({ userId, reveal: next.reveal }))).toBe('REVEAL_UNAVAILABLE')
    for (const c of next.codes) expect((await h.rc.redeem({ userId, code: c })).ok).toBe(false)
    expect((await h.store.getActiveBatch(userId))?.id).toBe(old.batchId)
    expect((await h.rc.redeem({ userId, code: old.codes[0]! })).ok).toBe(true)
    expect((await h.store.listBatches({ userId, offset: 0, limit: 10 })).total).toBe(1)
  })

  it('confirm supersedes atomically under concurrent redeems: no old code works once it resolved', async () => {
    // Two services over one store: the redeems and the confirm come from different instances.
    const h = confirming({ maxLoginAttempts: 50, hardFailureCap: 100, clientMaxAttempts: 100 })
    const other = confirming({ maxLoginAttempts: 50, hardFailureCap: 100, clientMaxAttempts: 100 })
    other.clock.set(h.clock.now())
    const userId = uniqueId('user')
    const old = await active(h, userId, 40)
    other.clock.set(h.clock.now())
    const next = await generate(h, userId, 10)
    const early = old.codes.slice(0, 20)
    const late = old.codes.slice(20)
    const redeems = early.map((c, i) => (i % 2 ? h : other).rc.redeem({ userId, code: c }))
    const confirmed = await h.rc.confirm({ userId, reveal: next.reveal })
    expect(confirmed).toEqual({ batchId: next.batchId, supersededBatchId: old.batchId })
    // Those racing the confirm went either way; every one after it fails, on both instances.
    await Promise.all(redeems)
    const after = await Promise.all(late.map((c, i) => (i % 2 ? h : other).rc.redeem({ userId, code: c })))
    expect(after.filter((r) => r.ok)).toHaveLength(0)
    const batches = await h.store.listBatches({ userId, offset: 0, limit: 10 })
    expect(batches.items.map((b) => [b.id, b.status])).toEqual([
      [next.batchId, 'active'],
      [old.batchId, 'superseded'],
    ])
    // Only codes consumed before the supersede are used; the rest of the old batch is untouched.
    const oldRow = batches.items[1]!
    expect(oldRow.used + oldRow.unused).toBe(40)
    expect(oldRow.used).toBeLessThanOrEqual(20)
    expect((await h.rc.redeem({ userId, code: next.codes[0]! })).ok).toBe(true)
  })

  it('concurrent confirms of one batch: exactly one succeeds, the others ALREADY_DONE', async () => {
    const h = confirming()
    const userId = uniqueId('user')
    await active(h, userId)
    const next = await generate(h, userId)
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, () => code(h.rc.confirm({ userId, reveal: next.reveal }))),
    )
    expect(outcomes.sort()).toEqual([
      'ALREADY_DONE',
      'ALREADY_DONE',
      'ALREADY_DONE',
      'ALREADY_DONE',
      'ALREADY_DONE',
      'ALREADY_DONE',
      'ALREADY_DONE',
      'ok',
    ])
    const batches = await h.store.listBatches({ userId, offset: 0, limit: 10 })
    expect(batches.items.filter((b) => b.status === 'active').map((b) => b.id)).toEqual([next.batchId])
    expect(batches.total).toBe(2)
  })

  it('every channel works before and after the confirm, once each; the flags follow the confirm', async () => {
    const h = confirming()
    const userId = uniqueId('user')
    const b = await generate(h, userId)
    expect(await code(h.rc.viewCodes({ userId, reveal: b.reveal }))).toBe('ok')
    expect(await code(h.rc.exportCodes({ userId, reveal: b.reveal, format: 'txt' }))).toBe('ok')
    expect(await code(h.rc.viewCodes({ userId, reveal: b.reveal }))).toBe('ALREADY_DONE')
    // Every channel but pdf used: the slot stays for the confirm.
    expect(await code(h.rc.exportCodes({ userId, reveal: b.reveal, format: 'csv' }))).toBe('ok')
    const status = await h.rc.revealStatus({ userId, reveal: b.reveal })
    expect(status).toMatchObject({ pending: true, open: ['pdf'], used: ['view', 'txt', 'csv'] })
    await h.rc.confirm({ userId, reveal: b.reveal })
    const after = await h.rc.revealStatus({ userId, reveal: b.reveal })
    expect(after).toMatchObject({ pending: false, open: ['pdf'] })
    expect(await code(h.rc.exportCodes({ userId, reveal: b.reveal, format: 'pdf' }))).toBe('ok')
    // Spent and active: gone.
    expect(await code(h.rc.revealStatus({ userId, reveal: b.reveal }))).toBe('REVEAL_UNAVAILABLE')
    const view = (await h.rc.status({ userId })).active!
    expect(view).toMatchObject({ id: b.batchId, viewed: true, downloaded: true, emailed: false })
  })

  it('a slot whose every channel was used before the confirm can still be confirmed, then it is gone', async () => {
    const h = confirming()
    const userId = uniqueId('user')
    const b = await generate(h, userId)
    for (const format of h.rc.exportFormats) await h.rc.exportCodes({ userId, reveal: b.reveal, format })
    await h.rc.viewCodes({ userId, reveal: b.reveal })
    expect((await h.rc.revealStatus({ userId, reveal: b.reveal })).open).toEqual([])
    await h.rc.confirm({ userId, reveal: b.reveal })
    expect(await code(h.rc.viewCodes({ userId, reveal: b.reveal }))).toBe('REVEAL_UNAVAILABLE')
    expect((await h.store.getActiveBatch(userId))?.id).toBe(b.batchId)
  })

  it('a newer generate replaces a pending batch: the older one can no longer be confirmed', async () => {
    const h = confirming()
    const userId = uniqueId('user')
    const first = await generate(h, userId)
    h.clock.advance(1000)
    const second = await generate(h, userId)
    expect(await code(h.rc.confirm({ userId, reveal: first.reveal }))).toBe('REVEAL_UNAVAILABLE')
    expect(await code(h.rc.confirm({ userId, reveal: second.reveal }))).toBe('ok')
    for (const c of first.codes) expect((await h.rc.redeem({ userId, code: c })).ok).toBe(false)
  })

  it('a confirm is refused for a bad, foreign, replayed or immediate token and changes nothing', async () => {
    const h = confirming()
    const userId = uniqueId('user')
    const b = await generate(h, userId)
    for (const bad of [
      undefined,
      null,
      '',
      'x',
      42,
      `${b.reveal}x`,
      b.reveal.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')),
    ]) {
      expect(await code(h.rc.confirm({ userId, reveal: bad as never }))).toBe('REVEAL_UNAVAILABLE')
    }
    expect(await code(h.rc.confirm({ userId: uniqueId('other'), reveal: b.reveal }))).toBe(
      'REVEAL_UNAVAILABLE',
    )
    await expect(h.rc.confirm({ userId: '', reveal: b.reveal })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    })
    expect(await h.store.getActiveBatch(userId)).toBeNull()
    expect(await code(h.rc.confirm({ userId, reveal: b.reveal }))).toBe('ok')
    expect(await code(h.rc.confirm({ userId, reveal: b.reveal }))).toBe('ALREADY_DONE')
    // Under 'immediate' there is nothing to confirm.
    const immediate = make({ activation: 'immediate' })
    const otherUser = uniqueId('user')
    const i = await immediate.rc.generate({ userId: otherUser })
    if (!i.ok) throw new Error('unexpected cooldown')
    expect(i.pending).toBe(false)
    expect(await code(immediate.rc.confirm({ userId: otherUser, reveal: i.reveal }))).toBe('ALREADY_DONE')
    expect((await immediate.store.getActiveBatch(otherUser))?.id).toBe(i.batchId)
  })

  it('a confirm whose write fails is given back: STORE_UNAVAILABLE, nothing changed, a retry works', async () => {
    let failNext = true
    const h = confirming({}, (s) => {
      const bound = bindAll(s)
      return {
        ...bound,
        async createBatch(batch, codes, audit) {
          if (failNext) {
            failNext = false
            throw new Error('connection reset')
          }
          return bound.createBatch(batch, codes, audit)
        },
      }
    })
    const userId = uniqueId('user')
    const b = await generate(h, userId)
    expect(await code(h.rc.confirm({ userId, reveal: b.reveal }))).toBe('STORE_UNAVAILABLE')
    expect(await h.store.getActiveBatch(userId)).toBeNull()
    expect(await code(h.rc.confirm({ userId, reveal: b.reveal }))).toBe('ok')
    expect((await h.rc.redeem({ userId, code: b.codes[0]! })).ok).toBe(true)
  })
}
