import * as nodeCrypto from 'node:crypto'
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

  // The one-shot-hash path (Node ≥ 20.12) and the `createHmac` path of older runtimes.
  const oneShot = platformHmacSha256(nodeCrypto)
  const createHmacOnly = platformHmacSha256({ createHmac: nodeCrypto.createHmac })
  const all = [systemHmacSha256, oneShot, createHmacOnly, nobleHmacSha256]

  it('every implementation gives RFC 4231 test cases 2 and 6 (a key longer than a block)', () => {
    const case2 = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'
    const case6 = '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'
    const key6 = new Uint8Array(131).fill(0xaa)
    const msg6 = utf8('Test Using Larger Than Block-Size Key - Hash Key First')
    for (const mac of all) {
      expect(hex(mac(utf8('Jefe'), utf8('what do ya want for nothing?')))).toBe(case2)
      expect(hex(mac(key6, msg6))).toBe(case6)
    }
  })

  it('the one-shot path returns a fresh tag per call and handles messages beyond its buffer', () => {
    const key = new Uint8Array(32).fill(7)
    const a = oneShot(key, utf8('a'))
    const b = oneShot(key, utf8('b'))
    expect(hex(a)).not.toBe(hex(b))
    expect(hex(a)).toBe(hex(nobleHmacSha256(key, utf8('a'))))
    const long = new Uint8Array(5000).fill(1)
    expect(hex(oneShot(key, long))).toBe(hex(nobleHmacSha256(key, long)))
    expect(hex(oneShot(key, utf8('a')))).toBe(hex(a))
  })

  it('native and @noble agree on every key and message, subarrays included', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 150 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(10),
        (key, message, skip) => {
          const view = message.subarray(Math.min(skip, message.length))
          const expected = hex(nobleHmacSha256(key, view))
          for (const mac of [systemHmacSha256, oneShot, createHmacOnly]) {
            const native = mac(key, view)
            expect(native).toBeInstanceOf(Uint8Array)
            expect(native.length).toBe(32)
            expect(hex(native)).toBe(expected)
          }
        },
      ),
      { numRuns: 500 },
    )
  })
})
