/**
 * The only impure module of the core: the real clock and the platform CSPRNG.
 * `scripts/check-core-purity.mjs` fails CI on time or randomness anywhere else in `core/src`.
 */
import type { Clock } from './ports/clock.ts'
import type { RandomReader } from './ports/random.ts'

/** `Date.now()`. */
export const systemClock: Clock = Object.freeze({ now: () => Date.now() })

/** `crypto.getRandomValues`, chunked to its 65,536-byte limit. */
export const systemRandom: RandomReader = Object.freeze({
  read(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i += 65_536) {
      globalThis.crypto.getRandomValues(bytes.subarray(i, Math.min(bytes.length, i + 65_536)))
    }
  },
})
