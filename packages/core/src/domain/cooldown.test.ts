import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { RecoveryCodesError } from '../errors.ts'
import {
  type CooldownPolicy,
  cooldownMs,
  lockoutUntil,
  retryAfterMs,
  validateCooldownPolicy,
} from './cooldown.ts'

const REFERENCE: CooldownPolicy = { baseMs: 30_000, multiplier: 2, cutoffMs: 300_000 }

const policyArb = fc
  .record({
    a: fc.integer({ min: 0, max: 1e9 }),
    b: fc.integer({ min: 0, max: 1e9 }),
    multiplier: fc.oneof(
      fc.constantFrom(1, 1.5, 2, 10),
      fc.double({ min: 1, max: 1000, noNaN: true }),
      fc.double({ min: 1, max: 1 + 1e-6, noNaN: true }),
    ),
  })
  .map(({ a, b, multiplier }) => ({ baseMs: Math.min(a, b), cutoffMs: Math.max(a, b), multiplier }))

describe('cooldownMs', () => {
  it('follows the reference ladder 30, 60, 120, 240, 300, 300 s for base 30 s ×2 cutoff 300 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 100].map((k) => cooldownMs(REFERENCE, k))).toEqual([
      30_000, 60_000, 120_000, 240_000, 300_000, 300_000, 300_000, 300_000,
    ])
  })

  it('gives 0 for base 0 and base for multiplier 1, at any k', () => {
    for (const k of [0, 1, 5, 1e6]) {
      expect(cooldownMs({ ...REFERENCE, baseMs: 0 }, k)).toBe(0)
      expect(cooldownMs({ ...REFERENCE, multiplier: 1 }, k)).toBe(30_000)
    }
  })

  it('floors fractional results to integer ms', () => {
    const p = { baseMs: 1000, multiplier: 1.5, cutoffMs: 1e9 }
    expect([0, 1, 2, 3, 4].map((k) => cooldownMs(p, k))).toEqual([1000, 1500, 2250, 3375, 5062])
  })

  it('clamps k to a non-negative integer', () => {
    expect(cooldownMs(REFERENCE, -3)).toBe(30_000)
    expect(cooldownMs(REFERENCE, Number.NaN)).toBe(30_000)
    expect(cooldownMs(REFERENCE, 1.9)).toBe(60_000)
    expect(cooldownMs(REFERENCE, Number.POSITIVE_INFINITY)).toBe(300_000)
  })

  it('caps before overflow: huge multipliers and k stay at the cutoff', () => {
    expect(cooldownMs({ baseMs: 1, multiplier: 1e300, cutoffMs: 1e9 }, 1e6)).toBe(1e9)
    expect(cooldownMs({ baseMs: 1, multiplier: Number.MAX_VALUE, cutoffMs: Number.MAX_VALUE }, 3)).toBe(
      Number.MAX_VALUE,
    )
  })

  it('caps a base above the cutoff', () => {
    expect(cooldownMs({ baseMs: 500, multiplier: 2, cutoffMs: 100 }, 0)).toBe(100)
  })

  it('throws CONFIG_INVALID for non-finite, negative or sub-1 parameters', () => {
    const bad: CooldownPolicy[] = [
      { ...REFERENCE, baseMs: Number.NaN },
      { ...REFERENCE, baseMs: -1 },
      { ...REFERENCE, cutoffMs: Number.POSITIVE_INFINITY },
      { ...REFERENCE, multiplier: 0.5 },
      { ...REFERENCE, multiplier: Number.NaN },
    ]
    for (const p of bad) {
      expect(() => cooldownMs(p, 1)).toThrow(RecoveryCodesError)
      expect(validateCooldownPolicy(p)).not.toEqual([])
    }
    expect(validateCooldownPolicy({ baseMs: 500, multiplier: 2, cutoffMs: 100 })).toEqual([
      { path: 'baseMs', message: 'must not exceed cutoffMs' },
    ])
    expect(validateCooldownPolicy(REFERENCE)).toEqual([])
  })

  it('property: a finite integer in [0, cutoff], non-decreasing in k', () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 0, max: 1e6 }), (policy, k) => {
        const here = cooldownMs(policy, k)
        const next = cooldownMs(policy, k + 1)
        expect(Number.isSafeInteger(here)).toBe(true)
        expect(here).toBeGreaterThanOrEqual(0)
        expect(here).toBeLessThanOrEqual(policy.cutoffMs)
        expect(next).toBeGreaterThanOrEqual(here)
        expect(cooldownMs(policy, 0)).toBe(Math.floor(policy.baseMs))
      }),
      { numRuns: 500 },
    )
  })

  it('property: non-decreasing over any two k (not only neighbours)', () => {
    fc.assert(
      fc.property(
        policyArb,
        fc.integer({ min: 0, max: 1e6 }),
        fc.integer({ min: 0, max: 1e6 }),
        (p, a, b) => {
          const [lo, hi] = a <= b ? [a, b] : [b, a]
          expect(cooldownMs(p, hi)).toBeGreaterThanOrEqual(cooldownMs(p, lo))
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('lockoutUntil and retryAfterMs', () => {
  it('adds the k-th cooldown to now', () => {
    expect(lockoutUntil(REFERENCE, 1_000, 0)).toBe(31_000)
    expect(lockoutUntil(REFERENCE, 1_000, 2)).toBe(121_000)
    expect(lockoutUntil(REFERENCE, 1_000, 50)).toBe(301_000)
  })

  it('counts down to 0 and never goes negative', () => {
    expect(retryAfterMs(1_000, 31_000)).toBe(30_000)
    expect(retryAfterMs(30_999.5, 31_000)).toBe(1)
    expect(retryAfterMs(31_000, 31_000)).toBe(0)
    expect(retryAfterMs(40_000, 31_000)).toBe(0)
    expect(retryAfterMs(40_000, null)).toBe(0)
  })
})
