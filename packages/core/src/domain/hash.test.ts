import { createHmac } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  computeDigest,
  DUMMY_USER_ID,
  digestCandidates,
  digestEquals,
  keyedLabel,
  LABEL_HEX_LENGTH,
  type Pepper,
} from './hash.ts'

const key = (fill: number) => new Uint8Array(32).fill(fill)
const K1: Pepper = { id: 'k1', secret: key(1) }
const K2: Pepper = { id: 'k2', secret: key(2) }
const CODE = '7K2QXM9D4RAB0CDEFGHJKMNPQ'

/** The spec, written independently with node:crypto: "rc1\0" ‖ u32be(len) ‖ userId ‖ u32be(len) ‖ code. */
function referenceDigest(pepper: Uint8Array, userId: string, code: string): Buffer {
  const lp = (s: string) => {
    const bytes = Buffer.from(s, 'utf8')
    const len = Buffer.alloc(4)
    len.writeUInt32BE(bytes.length)
    return Buffer.concat([len, bytes])
  }
  return createHmac('sha256', pepper)
    .update(Buffer.concat([Buffer.from('rc1\0', 'utf8'), lp(userId), lp(code)]))
    .digest()
}

function verifies(peppers: readonly Pepper[], stored: Uint8Array, userId: string, code: string): boolean {
  return digestCandidates(peppers, userId, code).some((c) => digestEquals(c.digest, stored))
}

describe('computeDigest', () => {
  it('matches a known answer computed with node:crypto', () => {
    const secret = Uint8Array.from({ length: 32 }, (_, i) => i)
    for (const [userId, code] of [
      ['user_42', CODE],
      ['ünïcødé-用户', 'abcDEF234xyz'],
      ['', ''],
    ] as const) {
      expect(Buffer.from(computeDigest(secret, userId, code))).toEqual(referenceDigest(secret, userId, code))
    }
  })

  it('property: equals the node:crypto reference for arbitrary well-formed strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (userId, code) => {
        expect(Buffer.from(computeDigest(K1.secret, userId, code))).toEqual(
          referenceDigest(K1.secret, userId, code),
        )
      }),
    )
  })

  it("binds the code to its user: user A's digest never equals user B's", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        fc.pre(a !== b && !/[\uD800-\uDFFF]/.test(a + b))
        expect(digestEquals(computeDigest(K1.secret, a, CODE), computeDigest(K1.secret, b, CODE))).toBe(false)
      }),
    )
  })

  it("length prefixes prevent ('ab','c') vs ('a','bc') collisions", () => {
    expect(digestEquals(computeDigest(K1.secret, 'ab', 'c'), computeDigest(K1.secret, 'a', 'bc'))).toBe(false)
    expect(digestEquals(computeDigest(K1.secret, 'a\0', 'b'), computeDigest(K1.secret, 'a', '\0b'))).toBe(
      false,
    )
  })

  it('depends on the pepper', () => {
    expect(digestEquals(computeDigest(K1.secret, 'u', CODE), computeDigest(K2.secret, 'u', CODE))).toBe(false)
  })

  it('rejects a short pepper and lone surrogates', () => {
    expect(() => computeDigest(new Uint8Array(31), 'u', CODE)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    )
    expect(() => computeDigest(K1.secret, 'u\uD800', CODE)).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT' }),
    )
    // A valid surrogate pair is fine.
    expect(computeDigest(K1.secret, 'u😀', CODE)).toHaveLength(32)
  })
})

describe('digestCandidates and pepper rotation', () => {
  it('returns one candidate per pepper, current first', () => {
    const candidates = digestCandidates([K2, K1], 'u', CODE)
    expect(candidates.map((c) => c.keyId)).toEqual(['k2', 'k1'])
    expect(candidates[0]!.digest).toEqual(computeDigest(K2.secret, 'u', CODE))
    expect(candidates[1]!.digest).toEqual(computeDigest(K1.secret, 'u', CODE))
  })

  it('a code hashed under k1 verifies with [k2, k1] and no longer once k1 is removed', () => {
    const stored = computeDigest(K1.secret, 'u', CODE)
    expect(verifies([K1], stored, 'u', CODE)).toBe(true)
    expect(verifies([K2, K1], stored, 'u', CODE)).toBe(true)
    expect(verifies([K2], stored, 'u', CODE)).toBe(false)
    expect(verifies([K2, K1], stored, 'other-user', CODE)).toBe(false)
  })

  it('throws CONFIG_INVALID for no peppers', () => {
    expect(() => digestCandidates([], 'u', CODE)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
  })
})

describe('digestEquals', () => {
  it('compares contents', () => {
    expect(digestEquals(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3))).toBe(true)
    expect(digestEquals(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4))).toBe(false)
    expect(digestEquals(new Uint8Array(0), new Uint8Array(0))).toBe(true)
  })

  it('returns false on length mismatch without throwing', () => {
    expect(() => digestEquals(new Uint8Array(32), new Uint8Array(31))).not.toThrow()
    expect(digestEquals(new Uint8Array(32), new Uint8Array(31))).toBe(false)
    expect(digestEquals(new Uint8Array(32), new Uint8Array(0))).toBe(false)
  })
})

describe('keyedLabel', () => {
  it('is 32 lower-case hex characters and deterministic', () => {
    const label = keyedLabel(K1.secret, 'limiter:identifier', 'alice@example.com')
    expect(label).toMatch(new RegExp(`^[0-9a-f]{${LABEL_HEX_LENGTH}}$`))
    expect(keyedLabel(K1.secret, 'limiter:identifier', 'alice@example.com')).toBe(label)
  })

  it('matches a node:crypto reference and never contains the raw value', () => {
    const lp = (s: string) => {
      const len = Buffer.alloc(4)
      len.writeUInt32BE(Buffer.byteLength(s))
      return Buffer.concat([len, Buffer.from(s)])
    }
    const expected = createHmac('sha256', K1.secret)
      .update(Buffer.concat([Buffer.from('rc1-label\0'), lp('cache'), lp('alice')]))
      .digest('hex')
      .slice(0, 32)
    expect(keyedLabel(K1.secret, 'cache', 'alice')).toBe(expected)
    expect(keyedLabel(K1.secret, 'cache', 'alice')).not.toContain('alice')
  })

  it('separates purposes, values, peppers and the digest domain', () => {
    const base = keyedLabel(K1.secret, 'a', 'bc')
    expect(keyedLabel(K1.secret, 'ab', 'c')).not.toBe(base)
    expect(keyedLabel(K1.secret, 'a', 'bd')).not.toBe(base)
    expect(keyedLabel(K2.secret, 'a', 'bc')).not.toBe(base)
    const digestHex = Buffer.from(computeDigest(K1.secret, 'a', 'bc'))
      .toString('hex')
      .slice(0, 32)
    expect(digestHex).not.toBe(base)
  })
})

describe('DUMMY_USER_ID', () => {
  it('is a non-empty constant without NUL (PostgreSQL text rejects NUL)', () => {
    expect(DUMMY_USER_ID.length).toBeGreaterThan(0)
    expect(DUMMY_USER_ID).not.toContain('\0')
    expect(computeDigest(K1.secret, DUMMY_USER_ID, CODE)).toHaveLength(32)
  })
})

describe('the reused frame', () => {
  it('holds no code or identifier once a digest or label is computed, and digests stay right', () => {
    const seen: Uint8Array[] = []
    const spy = (k: Uint8Array, m: Uint8Array) => {
      seen.push(m)
      return new Uint8Array(createHmac('sha256', k).update(m).digest())
    }
    const d = computeDigest(K1.secret, 'user-é', CODE, spy)
    const c = digestCandidates([K1, K2], 'user-1', CODE, spy)
    keyedLabel(K1.secret, 'limiter:identifier', 'alice@example.com', spy)
    expect(Buffer.from(d).equals(referenceDigest(K1.secret, 'user-é', CODE))).toBe(true)
    expect(Buffer.from(c[1]!.digest).equals(referenceDigest(K2.secret, 'user-1', CODE))).toBe(true)
    expect(seen).toHaveLength(4)
    for (const m of seen) expect(m.every((b) => b === 0)).toBe(true)
  })
})
