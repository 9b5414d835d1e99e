/**
 * The attempt aggregate's contract (`AttemptStore`): all-or-nothing reservations over several keys,
 * locks, settles that reset or give back, and the races of `reserveAttempts`.
 */
import type { AttemptState, AttemptStore } from '@recovery-codes/core'
import { describe, expect, it } from 'vitest'
import { startTogether } from '../barrier.ts'
import { uniqueId } from '../fixtures.ts'
import type { AggregateSuite, StoreConformanceContext } from './context.ts'
import { reserverOf, timeOf, values, ZERO_ATTEMPTS } from './helpers.ts'

/** `AttemptStore`: every method's contract, then its races. */
export const attemptSuite: AggregateSuite<AttemptStore> = { tests: attemptTests, races: attemptRaces }

function attemptTests(ctx: StoreConformanceContext<AttemptStore>): void {
  const T = timeOf(ctx)
  const reserve = reserverOf(ctx)

  describe('attempt counters', () => {
    it('reads a missing key as zeros', async () => {
      expect(await ctx.store.getAttempts(uniqueId('key'))).toEqual(ZERO_ATTEMPTS)
    })

    const counter = (failures: number, extra: Partial<AttemptState> = {}): AttemptState => ({
      ...ZERO_ATTEMPTS,
      failures,
      consecutive: failures,
      ...extra,
    })

    it('single key: reserves up to maxAttempts, then denies without changing the counter', async () => {
      const key = uniqueId('key')
      for (let i = 1; i <= 3; i++) {
        expect(await reserve(key, T(i), 3)).toEqual({ allowed: true, states: [counter(i)] })
      }
      expect(await reserve(key, T(4), 3)).toEqual({ allowed: false, states: [counter(3)] })
      expect(await ctx.store.getAttempts(key)).toEqual(counter(3))
      expect(await reserve(key, T(5), 4)).toEqual({ allowed: true, states: [counter(4)] })
    })

    it('no keys: allowed, nothing changes', async () => {
      expect(await ctx.store.reserveAttempts({ keys: [], now: T(1) })).toEqual({
        allowed: true,
        states: [],
      })
    })

    it('maxAttempts 0 always denies, and creates nothing', async () => {
      const a = uniqueId('key')
      const b = uniqueId('key')
      expect(
        await ctx.store.reserveAttempts({
          keys: [
            { key: a, maxAttempts: 5 },
            { key: b, maxAttempts: 0 },
          ],
          now: T(1),
        }),
      ).toEqual({ allowed: false, states: [ZERO_ATTEMPTS, ZERO_ATTEMPTS] })
      expect(await ctx.store.getAttempts(a)).toEqual(ZERO_ATTEMPTS)
    })

    it('two keys: each counter is reserved, states come back in input order', async () => {
      const a = uniqueId('key')
      const b = uniqueId('key')
      await reserve(b, T(1), 5)
      await reserve(b, T(1), 5)
      // States follow the input order, whatever order the store works in.
      expect(
        await ctx.store.reserveAttempts({
          keys: [
            { key: b, maxAttempts: 5 },
            { key: a, maxAttempts: 2 },
          ],
          now: T(2),
        }),
      ).toEqual({ allowed: true, states: [counter(3), counter(1)] })
      expect(
        await ctx.store.reserveAttempts({
          keys: [
            { key: a, maxAttempts: 2 },
            { key: b, maxAttempts: 5 },
          ],
          now: T(3),
        }),
      ).toEqual({ allowed: true, states: [counter(2), counter(4)] })
      expect(await ctx.store.getAttempts(a)).toEqual(counter(2))
      expect(await ctx.store.getAttempts(b)).toEqual(counter(4))
    })

    it('all or nothing: a key at its maxAttempts denies the call, no key changes', async () => {
      const open = uniqueId('key')
      const full = uniqueId('key')
      for (let i = 0; i < 2; i++) await reserve(full, T(1), 2)
      await reserve(open, T(1), 5)
      for (const keys of [
        [
          { key: open, maxAttempts: 5 },
          { key: full, maxAttempts: 2 },
        ],
        [
          { key: full, maxAttempts: 2 },
          { key: open, maxAttempts: 5 },
        ],
      ]) {
        const r = await ctx.store.reserveAttempts({ keys, now: T(2) })
        expect(r.allowed).toBe(false)
        expect(r.states).toEqual(keys.map((k) => (k.key === open ? counter(1) : counter(2))))
      }
      // A fresh key beside a full one is not created either.
      const fresh = uniqueId('key')
      expect(
        await ctx.store.reserveAttempts({
          keys: [
            { key: fresh, maxAttempts: 5 },
            { key: full, maxAttempts: 2 },
          ],
          now: T(2),
        }),
      ).toEqual({ allowed: false, states: [ZERO_ATTEMPTS, counter(2)] })
      expect(await ctx.store.getAttempts(open)).toEqual(counter(1))
      expect(await ctx.store.getAttempts(full)).toEqual(counter(2))
      expect(await ctx.store.getAttempts(fresh)).toEqual(ZERO_ATTEMPTS)
    })

    it('all or nothing: a locked key denies the call until lockedUntil, no key changes', async () => {
      const open = uniqueId('key')
      const locked = uniqueId('key')
      await reserve(open, T(1), 5)
      const lockedState = await ctx.store.lockAttempts({ key: locked, until: T(100) })
      const keys = [
        { key: open, maxAttempts: 5 },
        { key: locked, maxAttempts: 5 },
      ]
      expect(await ctx.store.reserveAttempts({ keys, now: T(99) })).toEqual({
        allowed: false,
        states: [counter(1), lockedState],
      })
      expect(await ctx.store.getAttempts(open)).toEqual(counter(1))
      expect(await ctx.store.reserveAttempts({ keys, now: T(100) })).toEqual({
        allowed: true,
        states: [counter(2), { ...lockedState, failures: 1, consecutive: 1 }],
      })
    })

    it('rejects repeated keys with INVALID_INPUT and changes nothing', async () => {
      const key = uniqueId('key')
      await expect(
        ctx.store.reserveAttempts({
          keys: [
            { key, maxAttempts: 5 },
            { key, maxAttempts: 5 },
          ],
          now: T(1),
        }),
      ).rejects.toMatchObject({ code: 'INVALID_INPUT' })
      expect(await ctx.store.getAttempts(key)).toEqual(ZERO_ATTEMPTS)
    })

    it('locks: failures reset, lockouts + 1, consecutive kept; denied until lockedUntil, allowed at it', async () => {
      const key = uniqueId('key')
      await reserve(key, T(1), 5)
      await reserve(key, T(2), 5)

      const locked = { failures: 0, consecutive: 2, lockouts: 1, lockedUntil: T(1_000) }
      expect(await ctx.store.lockAttempts({ key, until: T(1_000) })).toEqual(locked)
      expect(await ctx.store.getAttempts(key)).toEqual(locked)
      expect(await reserve(key, T(999), 5)).toEqual({ allowed: false, states: [locked] })
      expect(await reserve(key, T(1_000), 5)).toEqual({
        allowed: true,
        states: [{ failures: 1, consecutive: 3, lockouts: 1, lockedUntil: T(1_000) }],
      })

      expect(await ctx.store.lockAttempts({ key, until: T(5_000) })).toEqual({
        failures: 0,
        consecutive: 3,
        lockouts: 2,
        lockedUntil: T(5_000),
      })
    })

    it('lockAttempts creates a missing counter', async () => {
      const key = uniqueId('key')
      expect(await ctx.store.lockAttempts({ key, until: T(50) })).toEqual({
        ...ZERO_ATTEMPTS,
        lockouts: 1,
        lockedUntil: T(50),
      })
    })

    it('settleAttempts resets and releases in one call, touching no other key', async () => {
      const subject = uniqueId('key')
      const client = uniqueId('key')
      const other = uniqueId('key')
      for (let i = 0; i < 3; i++) await reserve(client, T(1), 5)
      await reserve(subject, T(1), 5)
      await ctx.store.lockAttempts({ key: subject, until: T(100) })
      await reserve(other, T(1), 5)

      await ctx.store.settleAttempts({ reset: [subject], release: [client] })
      expect(await ctx.store.getAttempts(subject)).toEqual(ZERO_ATTEMPTS)
      expect(await ctx.store.getAttempts(client)).toEqual(counter(2))
      expect(await ctx.store.getAttempts(other)).toEqual(counter(1))
      // The reset counter is gone, lock and all: a new reservation starts from scratch.
      expect(await reserve(subject, T(2), 5)).toEqual({ allowed: true, states: [counter(1)] })

      await ctx.store.settleAttempts({ reset: [], release: [client] })
      expect(await ctx.store.getAttempts(client)).toEqual(counter(1))
      await ctx.store.settleAttempts({ reset: [client], release: [] })
      expect(await ctx.store.getAttempts(client)).toEqual(ZERO_ATTEMPTS)
      await ctx.store.settleAttempts({ reset: [], release: [] })
      expect(await ctx.store.getAttempts(other)).toEqual(counter(1))
    })

    it('settleAttempts: several keys per list, a repeated key counts once', async () => {
      const a = uniqueId('key')
      const b = uniqueId('key')
      const c = uniqueId('key')
      const d = uniqueId('key')
      for (const key of [a, b, c, d]) for (let i = 0; i < 3; i++) await reserve(key, T(1), 5)
      await ctx.store.settleAttempts({ reset: [a, b, a], release: [c, d, c] })
      expect(await ctx.store.getAttempts(a)).toEqual(ZERO_ATTEMPTS)
      expect(await ctx.store.getAttempts(b)).toEqual(ZERO_ATTEMPTS)
      expect(await ctx.store.getAttempts(c)).toEqual(counter(2))
      expect(await ctx.store.getAttempts(d)).toEqual(counter(2))
    })

    it('settleAttempts: a key in both lists is deleted', async () => {
      const key = uniqueId('key')
      const other = uniqueId('key')
      for (let i = 0; i < 3; i++) await reserve(key, T(1), 5)
      await reserve(other, T(1), 5)
      await ctx.store.settleAttempts({ reset: [key], release: [other, key] })
      expect(await ctx.store.getAttempts(key)).toEqual(ZERO_ATTEMPTS)
      expect(await ctx.store.getAttempts(other)).toEqual(ZERO_ATTEMPTS)
      expect(await reserve(key, T(2), 5)).toEqual({ allowed: true, states: [counter(1)] })
    })

    it('settleAttempts ignores missing keys and creates nothing', async () => {
      const key = uniqueId('key')
      const missing = [uniqueId('key'), uniqueId('key')]
      await reserve(key, T(1), 5)
      await ctx.store.settleAttempts({ reset: [missing[0]!], release: [missing[1]!, key] })
      expect(await ctx.store.getAttempts(key)).toEqual(ZERO_ATTEMPTS)
      for (const m of missing) expect(await ctx.store.getAttempts(m)).toEqual(ZERO_ATTEMPTS)
    })

    it('a release never goes below zero, and gives nothing back after a lock', async () => {
      const key = uniqueId('key')
      await reserve(key, T(1), 5)
      await ctx.store.settleAttempts({ reset: [], release: [key] })
      await ctx.store.settleAttempts({ reset: [], release: [key] })
      expect(await ctx.store.getAttempts(key)).toEqual(ZERO_ATTEMPTS)
      for (let i = 0; i < 2; i++) await reserve(key, T(1), 5)
      const locked = await ctx.store.lockAttempts({ key, until: T(50) })
      expect(locked).toEqual({ failures: 0, consecutive: 2, lockouts: 1, lockedUntil: T(50) })
      await ctx.store.settleAttempts({ reset: [], release: [key] })
      expect(await ctx.store.getAttempts(key)).toEqual(locked)
    })

    it('20 parallel settles after 20 reservations leave the counter at zero', async () => {
      const key = uniqueId('key')
      await Promise.all(Array.from({ length: 20 }, () => reserve(key, T(1), 50)))
      expect(await ctx.store.getAttempts(key)).toEqual(counter(20))
      await startTogether(
        Array.from({ length: 20 }, () => () => ctx.store.settleAttempts({ reset: [], release: [key] })),
      )
      expect(await ctx.store.getAttempts(key)).toEqual(ZERO_ATTEMPTS)
    })
  })
}

function attemptRaces(ctx: StoreConformanceContext<AttemptStore>): void {
  const T = timeOf(ctx)

  it('100 parallel reserveAttempts with maxAttempts 5: exactly 5 allowed', async () => {
    const key = uniqueId('key')
    const results = values(
      await startTogether(
        Array.from(
          { length: 100 },
          () => () => ctx.store.reserveAttempts({ keys: [{ key, maxAttempts: 5 }], now: T(1) }),
        ),
      ),
    )
    expect(results.filter((r) => r.allowed)).toHaveLength(5)
    expect(
      results
        .filter((r) => r.allowed)
        .map((r) => r.states[0]!.failures)
        .sort(),
    ).toEqual([1, 2, 3, 4, 5])
    expect(await ctx.store.getAttempts(key)).toEqual({
      failures: 5,
      consecutive: 5,
      lockouts: 0,
      lockedUntil: 0,
    })
  })

  it('100 parallel reserveAttempts on two keys, the second with max 3: exactly 3 allowed, nothing leaked', async () => {
    const first = uniqueId('key')
    const second = uniqueId('key')
    const keys = [
      { key: first, maxAttempts: 5 },
      { key: second, maxAttempts: 3 },
    ]
    const results = values(
      await startTogether(
        Array.from({ length: 100 }, () => () => ctx.store.reserveAttempts({ keys, now: T(1) })),
      ),
    )
    const allowed = results.filter((r) => r.allowed)
    expect(allowed).toHaveLength(3)
    expect(allowed.map((r) => r.states.map((s) => s.failures)).sort()).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ])
    const three = { failures: 3, consecutive: 3, lockouts: 0, lockedUntil: 0 }
    expect(await ctx.store.getAttempts(first)).toEqual(three)
    expect(await ctx.store.getAttempts(second)).toEqual(three)
  })
}
