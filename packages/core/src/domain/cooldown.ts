/**
 * Capped exponential cooldowns, for the redeem lockout and the regeneration penalty alike:
 * `min(cutoff, base × multiplier^k)` in integer milliseconds.
 */
import { RecoveryCodesError, type RecoveryCodesIssue } from '../errors.ts'

/** A capped exponential cooldown. */
export interface CooldownPolicy {
  /** The first cooldown, in ms (k = 0). */
  baseMs: number
  /** Growth per step; ≥ 1. */
  multiplier: number
  /** The cap, in ms. */
  cutoffMs: number
}

/**
 * Problems with a policy, as `{ path, message }` pairs relative to the policy; empty when valid.
 * Valid: finite non-negative `baseMs ≤ cutoffMs` and a finite `multiplier ≥ 1`.
 */
export function validateCooldownPolicy(policy: CooldownPolicy): RecoveryCodesIssue[] {
  const issues = numberIssues(policy)
  if (issues.length === 0 && policy.baseMs > policy.cutoffMs) {
    issues.push({ path: 'baseMs', message: 'must not exceed cutoffMs' })
  }
  return issues
}

function numberIssues(policy: CooldownPolicy): RecoveryCodesIssue[] {
  const issues: RecoveryCodesIssue[] = []
  for (const key of ['baseMs', 'cutoffMs'] as const) {
    if (!Number.isFinite(policy[key]) || policy[key] < 0) {
      issues.push({ path: key, message: 'must be a finite number ≥ 0' })
    }
  }
  if (!Number.isFinite(policy.multiplier) || policy.multiplier < 1) {
    issues.push({ path: 'multiplier', message: 'must be a finite number ≥ 1' })
  }
  return issues
}

/**
 * The cooldown after `k` prior steps: `min(cutoff, base × multiplier^k)`, floored to an integer.
 * Always a finite integer in `[0, floor(cutoff)]` and non-decreasing in `k`. `k` is clamped to
 * a non-negative integer (`NaN` and negatives count as 0). The cap is checked before each
 * multiplication, so nothing overflows; the work is O(min(k, log_multiplier(cutoff / base))).
 *
 * @throws RecoveryCodesError `CONFIG_INVALID` for a policy with a non-finite or negative number
 *   or a multiplier below 1 (a `baseMs` above `cutoffMs` is simply capped).
 * @example
 * ```ts
 * const p = { baseMs: 30_000, multiplier: 2, cutoffMs: 300_000 }
 * [0, 1, 2, 3, 4, 5].map((k) => cooldownMs(p, k)) // [30000, 60000, 120000, 240000, 300000, 300000]
 * ```
 */
export function cooldownMs(policy: CooldownPolicy, k: number): number {
  const issues = numberIssues(policy)
  if (issues.length > 0) {
    throw new RecoveryCodesError('CONFIG_INVALID', 'invalid cooldown policy', { issues })
  }
  const { baseMs: base, multiplier, cutoffMs: cutoff } = policy
  const steps = k > 0 ? Math.floor(k) : 0
  let value = base
  if (multiplier > 1 && base > 0) {
    for (let i = 0; i < steps && value < cutoff; i++) value *= multiplier
  }
  return Math.floor(Math.min(cutoff, value))
}

/**
 * When a lockout that starts `now` ends, given how many lockouts came before it.
 *
 * @example lockoutUntil(policy, now, 0) // now + 30000 for base 30 s
 */
export function lockoutUntil(policy: CooldownPolicy, now: number, lockouts: number): number {
  return now + cooldownMs(policy, lockouts)
}

/**
 * Milliseconds left until `until` (a lockout or regeneration window end), as a non-negative
 * integer rounded up; 0 when `until` is null or past. Suitable for `Retry-After`.
 *
 * @example retryAfterMs(1_000, 31_000) // 30000
 */
export function retryAfterMs(now: number, until: number | null): number {
  if (until === null || !(until > now)) return 0
  return Math.ceil(until - now)
}
