/**
 * The only impure module of the core: the real clock, the platform CSPRNG and the platform HMAC.
 * `scripts/check-core-purity.mjs` fails CI on time, randomness or platform modules anywhere else
 * in `core/src`.
 */
import { type HmacSha256, nobleHmacSha256 } from './domain/hash.ts'
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

interface NativeCrypto {
  createHmac(algorithm: 'sha256', key: Uint8Array): { update(data: Uint8Array): { digest(): Uint8Array } }
  /** One-shot digest (Node ≥ 20.12, Deno, Bun). */
  hash?(algorithm: 'sha256', data: Uint8Array, outputEncoding: 'buffer'): Uint8Array
}

/** `node:crypto` where the runtime has it (Node ≥ 20.16, Deno, Bun), without a static import. */
function nativeCrypto(): NativeCrypto | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
  const mod = typeof proc?.getBuiltinModule === 'function' ? proc.getBuiltinModule('node:crypto') : undefined
  return typeof (mod as NativeCrypto | undefined)?.createHmac === 'function'
    ? (mod as NativeCrypto)
    : undefined
}

/** SHA-256 block size in bytes. */
const BLOCK = 64
/** Messages up to this size are framed in one reused buffer; longer ones get their own. */
const SCRATCH_BYTES = 1024

/**
 * RFC 2104 HMAC over a one-shot SHA-256: `H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m))`. The padded key
 * blocks are computed once per key object (keyed by identity, like `nobleHmacSha256`'s key
 * schedule) and the message is copied behind the inner block in one reused buffer, so a digest is
 * two native calls and no `Hmac` object: about a fifth cheaper than `createHmac` per call on Node 20.
 */
function paddedHmac(hash: NonNullable<NativeCrypto['hash']>): HmacSha256 {
  const pads = new WeakMap<Uint8Array, { inner: Uint8Array; outer: Uint8Array }>()
  const scratch = new Uint8Array(BLOCK + SCRATCH_BYTES)
  return (key, message) => {
    let pad = pads.get(key)
    if (pad === undefined) {
      // A key longer than a block is hashed first; a shorter one is zero-padded.
      const k = key.length > BLOCK ? hash('sha256', key, 'buffer') : key
      const inner = new Uint8Array(BLOCK).fill(0x36)
      const outer = new Uint8Array(BLOCK + 32).fill(0x5c, 0, BLOCK)
      for (let i = 0; i < k.length; i++) {
        inner[i]! ^= k[i]!
        outer[i]! ^= k[i]!
      }
      pad = { inner, outer }
      pads.set(key, pad)
    }
    const size = BLOCK + message.length
    const buf = size <= scratch.length ? scratch : new Uint8Array(size)
    buf.set(pad.inner, 0)
    buf.set(message, BLOCK)
    pad.outer.set(hash('sha256', buf.subarray(0, size), 'buffer'), BLOCK)
    // The reused buffer keeps neither the keyed block nor the message (a code) after the call.
    buf.fill(0, 0, size)
    const tag = hash('sha256', pad.outer, 'buffer')
    pad.outer.fill(0, BLOCK)
    return tag
  }
}

/**
 * Picks the HMAC-SHA-256 implementation: the platform's (OpenSSL through `node:crypto`: its
 * one-shot hash where present, else `createHmac`), else {@link nobleHmacSha256}. All give the same
 * bytes (a test checks them against each other and against RFC 4231); the native one is about 2×
 * faster on Node, which matters on the redeem path.
 */
export function platformHmacSha256(crypto: NativeCrypto | null = nativeCrypto() ?? null): HmacSha256 {
  if (crypto === null) return nobleHmacSha256
  if (typeof crypto.hash === 'function') return paddedHmac(crypto.hash.bind(crypto))
  // A Buffer is a Uint8Array: returned as is, without a copy.
  return (key, message) => crypto.createHmac('sha256', key).update(message).digest()
}

/** The HMAC the service uses: {@link platformHmacSha256} resolved once at load. */
export const systemHmacSha256: HmacSha256 = platformHmacSha256()

/** A monotonic clock in milliseconds (`performance.now()`): for timings that must not follow `clock`. */
export const monotonicNow = (): number => globalThis.performance.now()

/**
 * `work`, or a rejection named `TimeoutError` once `ms` have passed (an unref'd `setTimeout`,
 * cleared when `work` settles). A late rejection of `work` is handled, never unhandled.
 */
export function settleWithin<T>(work: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      const error = new Error(`No answer within ${ms} ms.`)
      error.name = 'TimeoutError'
      reject(error)
    }, ms)
    ;(timer as { unref?: () => void }).unref?.()
    work.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}
