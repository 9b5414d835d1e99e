/**
 * Service conformance, the redeem path: single use under 64 parallel redeems, the limiter under 100
 * parallel wrong guesses on both redeem paths, the per-client budget, store errors that give the
 * reservation back, failure audit rows, and regeneration racing redeems of an old code.
 */
import { expect, it } from 'vitest'
import { startTogether } from '../barrier.ts'
import { uniqueId } from '../fixtures.ts'
import { createCountingStore } from '../store-wrappers.ts'
import { bindAll, DAY, flip, onPath, REDEEM_PATHS, type ServiceSuite } from './harness.ts'

/** Registers the redeem tests inside the running `describe` block. */
export function redeemTests(suite: ServiceSuite): void {
  const { make, batchFor } = suite

  it('64 parallel redeems of one code: exactly one success', async () => {
    const h = make({ maxLoginAttempts: 100, hardFailureCap: 100, clientMaxAttempts: 100 })
    const b = await batchFor(h)
    const results = await startTogether(
      Array.from({ length: 64 }, () => () => h.rc.redeem({ userId: b.userId, code: b.codes[0]! })),
    )
    const ok = results.filter((r) => r.status === 'fulfilled' && r.value.ok)
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true)
    expect(ok).toHaveLength(1)
    expect((await h.rc.status({ userId: b.userId })).remaining).toBe(4)
  })

  it('two different codes redeemed in parallel: both succeed', async () => {
    const h = make()
    const b = await batchFor(h)
    const [x, y] = await Promise.all([
      h.rc.redeem({ userId: b.userId, code: b.codes[0]! }),
      h.rc.redeem({ userId: b.userId, code: b.codes[1]! }),
    ])
    expect(x.ok && y.ok).toBe(true)
    expect((await h.rc.status({ userId: b.userId })).remaining).toBe(3)
  })

  // Both redeem paths: the store's own `redeemCode` (when it has one) and the composed calls.
  for (const path of REDEEM_PATHS) {
    it(`100 parallel wrong guesses with maxAttempts 5: at most 5 lookups, then locked, none lost (${path})`, async () => {
      const counting = createCountingStore(suite.store)
      let lookups = 0
      const h = make({ maxLoginAttempts: 5 }, () =>
        onPath(path, counting.store, (out) => {
          if (out.outcome !== 'denied') lookups++
        }),
      )
      const b = await batchFor(h)
      counting.reset()
      const wrong = b.codes[0]!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))
      const results = await startTogether(
        Array.from(
          { length: 100 },
          () => () => h.rc.redeem({ userId: b.userId, code: wrong, clientKey: '203.0.113.9' }),
        ),
      )
      expect(results.every((r) => r.status === 'fulfilled' && !r.value.ok)).toBe(true)
      const calls = counting.count('redeemCode') + counting.count('reserveAttempts')
      expect(calls).toBeGreaterThanOrEqual(100)
      lookups += counting.count('consumeCode')
      expect(lookups).toBe(5)
      // Locked now: even the right code fails, with a cooldown.
      const locked = await h.rc.redeem({ userId: b.userId, code: b.codes[1]! })
      expect(locked.ok).toBe(false)
      expect(!locked.ok && locked.retryAfterMs).toBeGreaterThan(0)
      // After the cooldown the right code works again.
      h.clock.advance(3_600_000)
      expect((await h.rc.redeem({ userId: b.userId, code: b.codes[1]! })).ok).toBe(true)
    })
  }

  it('successes do not use up the client budget; failures from one client across users do', async () => {
    const h = make({ clientMaxAttempts: 10 })
    const users = await Promise.all(Array.from({ length: 4 }, () => batchFor(h, uniqueId('user'), 5)))
    for (const u of users) {
      for (const code of u.codes)
        expect((await h.rc.redeem({ userId: u.userId, code, clientKey: '192.0.2.1' })).ok).toBe(true)
    }
    // A sprayer: one wrong guess per fresh user from one client, ten allowed, then locked out.
    const sprayed = await Promise.all(Array.from({ length: 3 }, () => batchFor(h, uniqueId('user'), 5)))
    const spray = async (i: number) =>
      h.rc.redeem({
        userId: sprayed[i % 3]!.userId,
        code: flip(sprayed[i % 3]!.codes[0]!),
        clientKey: '192.0.2.66',
      })
    for (let i = 0; i < 10; i++) await spray(i)
    const victim = sprayed[0]!
    const blocked = await h.rc.redeem({
      userId: victim.userId,
      code: victim.codes[1]!,
      clientKey: '192.0.2.66',
    })
    expect(blocked).toMatchObject({ ok: false })
    // Another client is not affected by the sprayer's lockout (the user's own budget of 5 is not spent).
    expect(
      (
        await h.rc.redeem({
          userId: sprayed[2]!.userId,
          code: sprayed[2]!.codes[1]!,
          clientKey: '192.0.2.2',
        })
      ).ok,
    ).toBe(true)
  })

  it('a store error during the lookup gives the reservation back; a stranded counter heals', async () => {
    let failConsume = 0
    let failSettle = 0
    const h = make({ maxLoginAttempts: 5 }, (s) => ({
      ...bindAll(s),
      async consumeCode(input) {
        if (failConsume > 0) {
          failConsume--
          throw new Error('ECONNRESET')
        }
        return s.consumeCode(input)
      },
      async settleAttempts(input) {
        if (failSettle > 0) {
          failSettle--
          throw new Error('ECONNRESET')
        }
        return s.settleAttempts(input)
      },
    }))
    const b = await batchFor(h)
    for (let i = 0; i < 4; i++) await h.rc.redeem({ userId: b.userId, code: flip(b.codes[0]!) })
    failConsume = 1
    await expect(h.rc.redeem({ userId: b.userId, code: b.codes[0]! })).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
    })
    // The errored attempt was not counted: the right code works at once.
    expect((await h.rc.redeem({ userId: b.userId, code: b.codes[0]! })).ok).toBe(true)

    // A crash between reserve and settle (simulated: the give-back fails too) strands a full counter.
    for (let i = 0; i < 4; i++) await h.rc.redeem({ userId: b.userId, code: flip(b.codes[1]!) })
    failConsume = 1
    failSettle = 1
    await expect(h.rc.redeem({ userId: b.userId, code: b.codes[1]! })).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
    })
    const stuck = await h.rc.redeem({ userId: b.userId, code: b.codes[1]! })
    expect(stuck.ok).toBe(false)
    expect(!stuck.ok && stuck.retryAfterMs).toBeGreaterThan(0) // turned into an ordinary lockout
    h.clock.advance(h.rc.config.cooldownPolicy.cutoffMs)
    expect((await h.rc.redeem({ userId: b.userId, code: b.codes[1]! })).ok).toBe(true)
  })

  it('second-factor failures are audited against the user; identifier failures are not', async () => {
    const h = make()
    const b = await batchFor(h)
    await h.rc.redeem({ userId: b.userId, code: flip(b.codes[0]!) })
    const rows = await h.store.listAudit({ limit: 10, event: 'login.failure' })
    expect(rows.find((r) => r.userId === b.userId)).toBeDefined()
  })

  it('regeneration racing 20 redeems of an old code: no success after the new batch commits', async () => {
    let committed = false
    let lateSuccesses = 0
    const h = make({ maxLoginAttempts: 100, hardFailureCap: 100, clientMaxAttempts: 100 }, (s) => ({
      ...bindAll(s),
      async createBatch(batch, codes) {
        await s.createBatch(batch, codes)
        committed = true
      },
      async consumeCode(input) {
        const startedAfter = committed
        const r = await s.consumeCode(input)
        if (r && startedAfter) lateSuccesses++
        return r
      },
    }))
    const b = await batchFor(h)
    committed = false // only the regeneration below counts
    h.clock.advance(DAY) // past the regeneration cooldown
    const tasks = [
      () => h.rc.generate({ userId: b.userId, count: 5 }),
      ...Array.from({ length: 20 }, () => () => h.rc.redeem({ userId: b.userId, code: b.codes[0]! })),
    ]
    const results = await startTogether<unknown>(tasks)
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true)
    expect(committed).toBe(true)
    expect(lateSuccesses).toBe(0)
    const successes = results
      .slice(1)
      .filter((r) => r.status === 'fulfilled' && (r.value as { ok: boolean }).ok)
    expect(successes.length).toBeLessThanOrEqual(1)
    expect(await h.rc.redeem({ userId: b.userId, code: b.codes[1]! })).toMatchObject({ ok: false })
  })
}
