import type { Clock } from '@recovery-codes/core'

/** A {@link Clock} that only moves when told to. */
export interface ManualClock extends Clock {
  /** The current time in UTC epoch milliseconds. */
  now(): number
  /** Jumps to `ms` (backwards too, for skew tests). Returns the new time. */
  set(ms: number): number
  /** Moves by `ms` (may be negative). Returns the new time. */
  advance(ms: number): number
}

function assertTime(value: number, what: string): void {
  if (!Number.isSafeInteger(value)) throw new TypeError(`${what} must be a safe integer, got ${value}`)
}

/**
 * A manual clock for tests: inject it as `clock` and move time explicitly.
 *
 * @param start - Initial time in UTC epoch ms. @default 1_700_000_000_000 (2023-11-14T22:13:20Z)
 * @example
 * ```ts
 * const clock = createManualClock()
 * const rc = createRecoveryCodes({ ...config, clock })
 * clock.advance(30_000) // past the cooldown
 * ```
 */
export function createManualClock(start = 1_700_000_000_000): ManualClock {
  assertTime(start, 'start')
  let current = start
  return {
    now: () => current,
    set(ms) {
      assertTime(ms, 'ms')
      current = ms
      return current
    },
    advance(ms) {
      assertTime(ms, 'ms')
      assertTime(current + ms, 'the new time')
      current += ms
      return current
    },
  } satisfies ManualClock
}
