import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { nobleHmacSha256 } from './domain/hash.ts'
import { platformHmacSha256, systemHmacSha256, systemRandom } from './runtime.ts'

describe('systemRandom', () => {
  it('never hands out the same pooled bytes twice', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 5_000; i++) {
      const b = new Uint8Array(16)
      systemRandom.read(b)
      const hex = Buffer.from(b).toString('hex')
      expect(seen.has(hex)).toBe(false)
      seen.add(hex)
    }
  })

  it('fills large reads beyond the 65,536-byte getRandomValues limit', () => {
    const b = new Uint8Array(200_000)
    systemRandom.read(b)
    // The last 64 KiB chunk is filled too (an all-zero 1 KiB tail is astronomically unlikely).
    expect(b.subarray(199_000).some((x) => x !== 0)).toBe(true)
  })

  it('serves reads that straddle the pool boundary', () => {
    for (let i = 0; i < 100; i++) {
      const b = new Uint8Array(200)
      systemRandom.read(b)
      expect(b.some((x) => x !== 0)).toBe(true)
    }
  })
})

describe('systemHmacSha256', () => {
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
  const utf8 = (s: string) => new TextEncoder().encode(s)

  it('is the native HMAC on Node, and the @noble one where there is no node:crypto', () => {
    expect(systemHmacSha256).not.toBe(nobleHmacSha256)
    expect(platformHmacSha256(null)).toBe(nobleHmacSha256)
  })

  it('both implementations give RFC 4231 test case 2', () => {
    const expected = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'
    for (const mac of [systemHmacSha256, nobleHmacSha256]) {
      expect(hex(mac(utf8('Jefe'), utf8('what do ya want for nothing?')))).toBe(expected)
    }
  })

  it('native and @noble agree on every key and message, subarrays included', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 100 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(10),
        (key, message, skip) => {
          const view = message.subarray(Math.min(skip, message.length))
          const native = systemHmacSha256(key, view)
          expect(native).toBeInstanceOf(Uint8Array)
          expect(native.length).toBe(32)
          expect(hex(native)).toBe(hex(nobleHmacSha256(key, view)))
        },
      ),
      { numRuns: 500 },
    )
  })
})
