/**
 * Strict parsers for flag values. Each throws commander's `InvalidArgumentError`, which the CLI
 * reports as `error: option '--x <n>' argument 'abc' is invalid. <reason>` with exit code 2.
 */
import { InvalidArgumentError } from 'commander'

/** Frequencies a schedule accepts (the reference app's). */
export const FREQUENCIES = ['once', 'hourly', 'daily', 'weekly', 'monthly', 'quarterly', 'yearly'] as const
/** Jobs a schedule can run. */
export const JOBS = ['purge', 'purge-audit'] as const

const DIGITS = /^\d+$/
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
// ISO 8601 with a date, a time and an explicit zone (Z or ±hh:mm), so the instant is unambiguous.
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})$/

/**
 * A parser for an integer flag within `[min, max]`: digits only (no sign, unit, exponent or
 * spaces).
 *
 * @example
 * ```ts
 * new Option('--chunk-size <n>').argParser(integerIn(1, 100_000))
 * ```
 */
export function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!DIGITS.test(value)) throw new InvalidArgumentError(`Expected an integer from ${min} to ${max}.`)
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`Expected an integer from ${min} to ${max}.`)
    }
    return n
  }
}

/**
 * `--max-deletions`: an integer from 1 to 10,000,000, or `'unlimited'` (kept as the word: commander
 * replaces a parser's `null` with the raw text; {@link maxDeletionsValue} turns it into `null`).
 */
export function parseMaxDeletions(value: string): number | 'unlimited' {
  if (value === 'unlimited') return 'unlimited'
  try {
    return integerIn(1, 10_000_000)(value)
  } catch {
    throw new InvalidArgumentError("Expected an integer from 1 to 10000000, or 'unlimited'.")
  }
}

/** The `maxDeletionsPerRun` value of a parsed `--max-deletions` (`null` = unlimited). */
export function maxDeletionsValue(v: number | 'unlimited' | undefined): number | null | undefined {
  return v === 'unlimited' ? null : v
}

/** `--at`: an ISO 8601 instant with a zone, such as `2030-01-01T03:00:00Z`; returns epoch ms. */
export function parseInstant(value: string): number {
  const ms = ISO_INSTANT.test(value) ? Date.parse(value) : Number.NaN
  if (!Number.isFinite(ms)) {
    throw new InvalidArgumentError(
      'Expected an ISO 8601 date and time with a zone, e.g. 2030-01-01T03:00:00Z.',
    )
  }
  return ms
}

/** A PostgreSQL schema name: letters, digits and `_`, not starting with a digit, at most 63 characters. */
export function parseIdentifier(value: string): string {
  if (!IDENTIFIER.test(value)) {
    throw new InvalidArgumentError(
      'Expected a schema name of letters, digits and _ (not starting with a digit).',
    )
  }
  return value
}

/** A schedule name: 1–64 characters of letters, digits, `.`, `_` and `-`. */
export function parseScheduleName(value: string): string {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(value)) {
    throw new InvalidArgumentError('Expected 1-64 characters of letters, digits, ".", "_" and "-".')
  }
  return value
}
