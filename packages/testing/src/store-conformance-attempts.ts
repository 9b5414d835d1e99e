/**
 * The store contract of `purgeAttempts`: it deletes exactly the limiter counters nobody depends on
 * (last reserved before `before`, lock over before `before`), up to `limit`, and a deleted key
 * starts again from zero.
 */
import { describe, expect, it } from 'vitest'
import { uniqueId } from './fixtures.ts'
import type { StoreConformanceContext } from './store-conformance.ts'

const ZERO = { failures: 0, consecutive: 0, lockouts: 0, lockedUntil: 0 }

/** Registers the `purgeAttempts` tests inside the running `describe` block. */
export function purgeAttemptsTests(ctx: StoreConformanceContext): void {
  const T = (offset: number): number => ctx.t0 + offset
  const reserve = (key: string, now: number, maxAttempts = 5) =>
    ctx.store.reserveAttempts({ keys: [{ key, maxAttempts }], now })

  describe('purgeAttempts', () => {
    it('deletes counters untouched and unlocked before `before`, and only those', async () => {
      const old = Array.from({ length: 5 }, () => uniqueId('att-old'))
      for (const key of old) await reserve(key, T(10))
      const recent = uniqueId('att-recent')
      await reserve(recent, T(10))
      await reserve(recent, T(100))
      const locked = uniqueId('att-locked')
      await reserve(locked, T(10))
      await ctx.store.lockAttempts({ key: locked, until: T(200) })
      const unlockedLongAgo = uniqueId('att-unlocked')
      await reserve(unlockedLongAgo, T(10))
      await ctx.store.lockAttempts({ key: unlockedLongAgo, until: T(20) })
      const before = T(50)

      expect(await ctx.store.purgeAttempts({ before, limit: 1_000 })).toBe(old.length + 1)
      expect(await ctx.store.purgeAttempts({ before, limit: 1_000 })).toBe(0)
      for (const key of [...old, unlockedLongAgo]) expect(await ctx.store.getAttempts(key)).toEqual(ZERO)
      expect(await ctx.store.getAttempts(recent)).toMatchObject({ failures: 2, consecutive: 2 })
      expect(await ctx.store.getAttempts(locked)).toMatchObject({ lockouts: 1, lockedUntil: T(200) })

      // Boundaries are strict: touched at `before` stays; the lock ending at `before` stays.
      expect(await ctx.store.purgeAttempts({ before: T(100), limit: 1_000 })).toBe(0)
      expect(await ctx.store.purgeAttempts({ before: T(101), limit: 1_000 })).toBe(1)
      expect(await ctx.store.purgeAttempts({ before: T(200), limit: 1_000 })).toBe(0)
      expect(await ctx.store.purgeAttempts({ before: T(201), limit: 1_000 })).toBe(1)
    })

    it('respects limit, and a purged key starts from zero', async () => {
      const keys = Array.from({ length: 7 }, () => uniqueId('att-limit'))
      for (const key of keys) {
        await reserve(key, T(1))
        await reserve(key, T(2))
      }
      const runs: number[] = []
      for (let n = -1; n !== 0; ) {
        n = await ctx.store.purgeAttempts({ before: T(10), limit: 3 })
        runs.push(n)
        expect(runs.length).toBeLessThan(6)
      }
      expect(runs).toEqual([3, 3, 1, 0])
      expect(await ctx.store.purgeAttempts({ before: T(10), limit: 0 })).toBe(0)
      expect(await reserve(keys[0]!, T(20))).toEqual({
        allowed: true,
        states: [{ failures: 1, consecutive: 1, lockouts: 0, lockedUntil: 0 }],
      })
    })

    it('rejects a bad before or limit', async () => {
      for (const input of [
        { before: Number.NaN, limit: 1 },
        { before: T(1), limit: -1 },
        { before: T(1), limit: 1.5 },
      ]) {
        await expect(ctx.store.purgeAttempts(input)).rejects.toMatchObject({ code: 'INVALID_INPUT' })
      }
    })
  })
}
