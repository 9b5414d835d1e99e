import { describe, expect, it } from 'vitest'
import { systemRandom } from './runtime.ts'

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
