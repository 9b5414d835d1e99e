import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { Pepper } from '../domain/hash.ts'
import { mintRepudiationToken, verifyRepudiationToken } from './repudiation-token.ts'

const K1: Pepper = { id: 'k1', secret: new Uint8Array(32).fill(1) }
const K2: Pepper = { id: 'k2', secret: new Uint8Array(32).fill(2) }
const NONCE = Uint8Array.from({ length: 16 }, (_, i) => i)
const NOW = 1_700_000_000_000
const CLAIMS = { userId: 'user_42', kind: 'recovery-login', batchId: 'b1', expiresAt: NOW + 1000 } as const

function flipHexAt(token: string, index: number): string {
  const c = token[index]!
  return token.slice(0, index) + (c === '0' ? '1' : '0') + token.slice(index + 1)
}

describe('repudiation token', () => {
  it('round-trips and matches an independent node:crypto tag', () => {
    const token = mintRepudiationToken(K1, CLAIMS, NONCE)
    const [prefix, payloadHex, tagHex] = token.split('.')
    expect(prefix).toBe('rcr1')
    const expected = createHmac('sha256', K1.secret)
      .update(Buffer.concat([Buffer.from('rc1-repudiate\0'), Buffer.from(payloadHex!, 'hex')]))
      .digest('hex')
    expect(tagHex).toBe(expected)
    expect(verifyRepudiationToken([K1], token, NOW)).toEqual({
      ok: true,
      claims: { ...CLAIMS, nonce: '000102030405060708090a0b0c0d0e0f' },
    })
  })

  it('verifies under a verify-only key and refuses once that key is removed', () => {
    const token = mintRepudiationToken(K1, CLAIMS, NONCE)
    expect(verifyRepudiationToken([K2, K1], token, NOW).ok).toBe(true)
    expect(verifyRepudiationToken([K2], token, NOW)).toEqual({ ok: false, reason: 'forged' })
  })

  it('refuses at and after expiry (valid iff now < expiresAt)', () => {
    const token = mintRepudiationToken(K1, CLAIMS, NONCE)
    expect(verifyRepudiationToken([K1], token, CLAIMS.expiresAt - 1).ok).toBe(true)
    expect(verifyRepudiationToken([K1], token, CLAIMS.expiresAt)).toEqual({ ok: false, reason: 'expired' })
  })

  it('refuses every single-character tamper of payload or tag', () => {
    const token = mintRepudiationToken(K1, CLAIMS, NONCE)
    for (let i = 5; i < token.length; i++) {
      if (token[i] === '.') continue
      expect(verifyRepudiationToken([K1], flipHexAt(token, i), NOW).ok).toBe(false)
    }
  })

  it('refuses a payload re-signed under another key (another user, later expiry)', () => {
    const forged = mintRepudiationToken(
      { id: 'k1', secret: new Uint8Array(32).fill(9) },
      { ...CLAIMS, userId: 'victim', expiresAt: NOW * 2 },
      NONCE,
    )
    expect(verifyRepudiationToken([K1], forged, NOW)).toEqual({ ok: false, reason: 'forged' })
  })

  it('refuses malformed input without throwing', () => {
    for (const bad of [undefined, null, 42, {}, '', 'rcr1', 'rcr1..', 'rcr1.zz.zz', 'x'.repeat(5000)]) {
      expect(verifyRepudiationToken([K1], bad, NOW).ok).toBe(false)
    }
  })

  it('rejects a nonce of the wrong size at mint', () => {
    expect(() => mintRepudiationToken(K1, CLAIMS, new Uint8Array(8))).toThrow(RangeError)
  })
})
