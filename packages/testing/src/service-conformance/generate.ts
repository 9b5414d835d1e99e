/**
 * Service conformance, generation and expiry: one batch from two concurrent generates, expiry
 * defaults and boundaries, and a code that fails like a wrong code whatever retired it.
 */
import { expect, it } from 'vitest'
import { uniqueId } from '../fixtures.ts'
import { DAY, flip, type ServiceSuite } from './harness.ts'

/** Registers the generation and expiry tests inside the running `describe` block. */
export function generateTests(suite: ServiceSuite): void {
  const { make, batchFor } = suite

  it('two concurrent generates for one user: one batch, and the codes returned are the live ones', async () => {
    const h = make()
    const userId = uniqueId('user')
    const results = await Promise.all([
      h.rc.generate({ userId, count: 5 }),
      h.rc.generate({ userId, count: 5 }),
    ])
    const ok = results.filter((r) => r.ok)
    expect(ok).toHaveLength(1)
    expect(results.find((r) => !r.ok)).toMatchObject({ ok: false, reason: 'COOLDOWN_ACTIVE' })
    expect((await h.rc.history({ userId })).total).toBe(1)
    const live = ok[0]!
    expect(live.ok && (await h.rc.redeem({ userId, code: live.codes[0]! })).ok).toBe(true)
    // The claim is released: after the cooldown a new batch can be generated.
    h.clock.advance(h.rc.config.cooldownPolicy.cutoffMs)
    expect((await h.rc.generate({ userId, count: 5 })).ok).toBe(true)
  })

  it('expiry: omitted takes the configured default, null never expires, bad values are rejected', async () => {
    const h = make({ defaultExpiryDays: 7 })
    const userId = uniqueId('user')
    const a = await h.rc.generate({ userId })
    expect(a.ok && a.expiresAt).toBe(h.clock.now() + 7 * DAY)
    h.clock.advance(DAY)
    const b = await h.rc.generate({ userId, expiresInDays: null })
    expect(b.ok && b.expiresAt).toBeNull()
    h.clock.advance(DAY)
    for (const bad of [0, -1, 1.5, 3651, '7']) {
      await expect(h.rc.generate({ userId, expiresInDays: bad as never })).rejects.toMatchObject({
        code: 'INVALID_INPUT',
      })
    }
  })

  it('expiry boundary: valid at expiresAt − 1, invalid at expiresAt', async () => {
    const h = make()
    const b = await batchFor(h, uniqueId('user'), 5, 1)
    h.clock.set(b.expiresAt! - 1)
    expect((await h.rc.redeem({ userId: b.userId, code: b.codes[0]! })).ok).toBe(true)
    h.clock.set(b.expiresAt!)
    const late = await h.rc.redeem({ userId: b.userId, code: b.codes[1]! })
    expect(late).toEqual({ ok: false, reason: 'INVALID_CODE', retryAfterMs: 0 })
  })

  it('a code reused after use, invalidation, delete, batch delete, supersede, disable, purge or expiry fails like a wrong code', async () => {
    const h = make({ maxLoginAttempts: 50, hardFailureCap: 50, clientMaxAttempts: 50 })
    const wrongCode = async () => {
      const w = await batchFor(h)
      return h.rc.redeem({ userId: w.userId, code: flip(w.codes[0]!) })
    }
    const expected = await wrongCode()
    expect(expected).toEqual({ ok: false, reason: 'INVALID_CODE', retryAfterMs: 0 })
    const cases: Record<string, () => Promise<unknown>> = {
      used: async () => {
        const b = await batchFor(h)
        await h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
        return h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
      },
      invalidated: async () => {
        const b = await batchFor(h)
        expect((await h.rc.invalidateCode({ userId: b.userId, code: b.codes[0]! })).ok).toBe(true)
        return h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
      },
      deleted: async () => {
        const b = await batchFor(h)
        expect((await h.rc.deleteCode({ userId: b.userId, code: b.codes[0]! })).ok).toBe(true)
        return h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
      },
      batchDeleted: async () => {
        const b = await batchFor(h)
        await h.rc.deleteBatch({ userId: b.userId })
        return h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
      },
      superseded: async () => {
        const b = await batchFor(h)
        h.clock.advance(DAY)
        await batchFor(h, b.userId)
        return h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
      },
      disabled: async () => {
        const b = await batchFor(h)
        const d = make({ maxLoginAttempts: 3, hardFailureCap: 3 })
        for (let i = 0; i < 3; i++) await d.rc.redeem({ userId: b.userId, code: flip(b.codes[0]!) })
        expect((await d.rc.status({ userId: b.userId })).active).toBeNull()
        expect((await d.rc.history({ userId: b.userId })).items[0]?.status).toBe('disabled')
        h.clock.advance(DAY) // past the lockout those three failures started
        return h.rc.redeem({ userId: b.userId, code: b.codes[1]! })
      },
      purged: async () => {
        const p = make({
          maxLoginAttempts: 50,
          hardFailureCap: 50,
          clientMaxAttempts: 50,
          purge: { retentionDays: 1 },
        })
        const b = await batchFor(p)
        await p.rc.redeem({ userId: b.userId, code: b.codes[0]! })
        p.clock.advance(2 * DAY)
        await p.rc.purge()
        return p.rc.redeem({ userId: b.userId, code: b.codes[0]! })
      },
      expired: async () => {
        const b = await batchFor(h, uniqueId('user'), 5, 1)
        const e = make({ maxLoginAttempts: 50, hardFailureCap: 50, clientMaxAttempts: 50 })
        e.clock.set(b.expiresAt!)
        return e.rc.redeem({ userId: b.userId, code: b.codes[0]! })
      },
    }
    for (const [name, run] of Object.entries(cases)) {
      expect({ name, result: await run() }).toEqual({ name, result: expected })
    }
  })
}
