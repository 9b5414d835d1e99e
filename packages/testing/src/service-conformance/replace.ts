/**
 * Service conformance, replacement on use (`replaceOnUse`, NIST SP 800-63B-4 §4.2.1.1; issue 16
 * acceptance 2): after each successful redeem the batch again holds its count of unused codes,
 * the replacement is revealed once through a reveal slot of its own, never in the result; and
 * the recovery-login result says how the user signed in, with the source in the audit row.
 */
import type { RedeemResult } from '@recovery-codes/core'
import { expect, it } from 'vitest'
import { uniqueId } from '../fixtures.ts'
import type { ServiceSuite } from './harness.ts'

type Redeemed = RedeemResult & { ok: true }

/** Registers the replacement and recovery-login tests inside the running `describe` block. */
export function replaceTests(suite: ServiceSuite): void {
  const { make, batchFor } = suite

  const outcome = async (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: { code?: string }) => e.code ?? 'thrown',
    )

  async function redeemed(p: Promise<RedeemResult>): Promise<Redeemed> {
    const r = await p
    if (!r.ok) throw new Error('expected a successful redeem')
    return r
  }

  it('replaceOnUse: after each redeem the batch holds its count again; each replacement shows once', async () => {
    const h = make({ replaceOnUse: true })
    const b = await batchFor(h, uniqueId('user'), 4)
    const { userId } = b
    const replacements: string[] = []
    let codes = [...b.codes]
    // Every original code, then every replacement: each redeem is replaced.
    for (let round = 0; round < 2; round++) {
      const next: string[] = []
      for (const code of codes) {
        const r = await redeemed(h.rc.redeem({ userId, code }))
        expect(r.remaining).toBe(4)
        expect(r.lowCodes).toBe(false)
        expect(r.replacement).toBeDefined()
        // The result carries a reveal token, never the code.
        const json = JSON.stringify(r)
        const view = await h.rc.viewCodes({ userId, reveal: r.replacement!.reveal })
        expect(view.batchId).toBe(b.batchId)
        expect(view.codes).toHaveLength(1)
        const replacement = view.codes[0]!
        expect(json).not.toContain(replacement)
        expect(json).not.toContain(replacement.replace(/-/g, ''))
        // A replayed reveal is refused.
        expect(await outcome(h.rc.viewCodes({ userId, reveal: r.replacement!.reveal }))).toBe('ALREADY_DONE')
        const status = await h.rc.status({ userId })
        expect(status.remaining).toBe(4)
        expect(status.active).toMatchObject({ id: b.batchId, unused: 4 })
        next.push(replacement)
        replacements.push(replacement)
      }
      codes = next
    }
    expect(new Set(replacements).size).toBe(8)
    const active = (await h.store.getActiveBatch(userId))!
    expect(active).toMatchObject({ issued: 12, used: 8, unused: 4 })
    const rows = await h.store.listAudit({ limit: 100, userId, event: 'code.replaced' })
    expect(rows).toHaveLength(8)
    for (const row of rows) expect(row.batchId).toBe(b.batchId)
  })

  it('replaceOnUse: concurrent redeems each get their own replacement; the count holds', async () => {
    const h = make({ replaceOnUse: true, clientMaxAttempts: 100 })
    const b = await batchFor(h, uniqueId('user'), 10)
    const results = await Promise.all(
      b.codes.slice(0, 6).map((code) => h.rc.redeem({ userId: b.userId, code })),
    )
    expect(results.every((r) => r.ok && r.replacement)).toBe(true)
    const shown = await Promise.all(
      results.map((r) => h.rc.viewCodes({ userId: b.userId, reveal: (r as Redeemed).replacement!.reveal })),
    )
    expect(new Set(shown.map((s) => s.codes[0])).size).toBe(6)
    expect((await h.rc.status({ userId: b.userId })).remaining).toBe(10)
    for (const s of shown) expect((await h.rc.redeem({ userId: b.userId, code: s.codes[0]! })).ok).toBe(true)
  })

  it('replaceOnUse off (the default): no replacement, and the batch runs down', async () => {
    const h = make()
    expect(h.rc.config.replaceOnUse).toBe(false)
    const b = await batchFor(h, uniqueId('user'), 3)
    const r = await redeemed(h.rc.redeem({ userId: b.userId, code: b.codes[0]! }))
    expect(r.replacement).toBeUndefined()
    expect(r.remaining).toBe(2)
    expect((await h.store.listAudit({ limit: 10, userId: b.userId, event: 'code.replaced' })).length).toBe(0)
  })

  it("a recovery login says method 'recovery_code', asks mustBindFactor, and audits its source", async () => {
    const asked: unknown[] = []
    const answers = [true, false]
    const h = make({
      mustBindFactor: async (login) => {
        asked.push(login)
        const next = answers.shift()
        if (next === undefined) throw new Error('host hook failed')
        return next
      },
    })
    const b = await batchFor(h, uniqueId('user'), 5)
    const ctx = { clientKey: '203.0.113.9', userAgent: 'Mozilla/5.0 (X11; Linux) \u0007Test' }
    const first = await redeemed(h.rc.redeem({ userId: b.userId, code: b.codes[0]!, ...ctx }))
    expect(first).toMatchObject({ method: 'recovery_code', mustBindFactor: true, remaining: 4 })
    const second = await redeemed(h.rc.redeem({ userId: b.userId, code: b.codes[1]!, ...ctx }))
    expect(second.mustBindFactor).toBe(false)
    // A failing hook fails closed: the user binds a new factor first.
    const third = await redeemed(h.rc.redeem({ userId: b.userId, code: b.codes[2]!, ...ctx }))
    expect(third.mustBindFactor).toBe(true)
    expect(asked[0]).toEqual({ userId: b.userId, batchId: b.batchId, remaining: 4 })
    const rows = await h.store.listAudit({ limit: 10, userId: b.userId, event: 'login.success' })
    expect(rows).toHaveLength(3)
    for (const row of rows) {
      // The client key as a keyed hash, never as sent; the user agent printable and as sent.
      expect(row.clientHash).toMatch(/^[0-9a-f]+$/)
      expect(JSON.stringify(row)).not.toContain('203.0.113.9')
      expect(row.data).toMatchObject({ userAgent: 'Mozilla/5.0 (X11; Linux) Test' })
    }
    const plain = make()
    const p = await batchFor(plain, uniqueId('user'), 2)
    expect(await redeemed(plain.rc.redeem({ userId: p.userId, code: p.codes[0]! }))).toMatchObject({
      method: 'recovery_code',
      mustBindFactor: false,
    })
  })

  it('a deleted batch reports its codes as deleted, not as unused', async () => {
    const h = make()
    const b = await batchFor(h, uniqueId('user'), 5)
    await h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
    await h.rc.deleteBatch({ userId: b.userId })
    const history = await h.rc.history({ userId: b.userId })
    expect(history.items[0]).toMatchObject({
      id: b.batchId,
      status: 'deleted',
      unused: 0,
      used: 1,
      deleted: 4,
    })
  })
}
