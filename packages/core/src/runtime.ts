/**
 * The only impure module of the core: the real clock and the platform CSPRNG.
 * `scripts/check-core-purity.mjs` fails CI on time or randomness anywhere else in `core/src`.
 */
import type { Clock } from './ports/clock.ts'
import type { RandomReader } from './ports/random.ts'

/** `Date.now()`. */
export const systemClock: Clock = Object.freeze({ now: () => Date.now() })

const POOL_BYTES = 4096
const MAX_POOLED_READ = 256
const pool = new Uint8Array(POOL_BYTES)
let poolOffset = POOL_BYTES

/**
 * `crypto.getRandomValues`. Small reads (ids, nonces) are served from a 4 KiB pool refilled from
 * the CSPRNG, as Node's own `randomUUID` does: one system call per 4 KiB instead of per id. Every
 * byte is handed out once. Large reads go straight to the CSPRNG, chunked to its 65,536-byte limit.
 */
export const systemRandom: RandomReader = Object.freeze({
  read(bytes: Uint8Array): void {
    if (bytes.length <= MAX_POOLED_READ) {
      if (poolOffset + bytes.length > POOL_BYTES) {
        globalThis.crypto.getRandomValues(pool)
        poolOffset = 0
      }
      bytes.set(pool.subarray(poolOffset, poolOffset + bytes.length))
      pool.fill(0, poolOffset, poolOffset + bytes.length)
      poolOffset += bytes.length
      return
    }
    for (let i = 0; i < bytes.length; i += 65_536) {
      globalThis.crypto.getRandomValues(bytes.subarray(i, Math.min(bytes.length, i + 65_536)))
    }
  },
})
