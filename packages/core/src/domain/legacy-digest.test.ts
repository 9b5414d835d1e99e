import { describe, expect, it } from 'vitest'
import { platformHmacSha3_512 } from '../runtime.ts'
import {
  djangoLookupHashDigest,
  type LegacyDigestKey,
  legacyDigest,
  legacyNormalize,
  nobleHmacSha3_512,
} from './legacy-digest.ts'

// Computed with the seed's own recipe (utils/security/hash.py `make_lookup_hash` after
// `code.replace("-", "").strip()`), in python3:
//   python3 -c "import hmac,hashlib; print(hmac.new(b'django-insecure-recovery-key-for-vectors',
//     'Ab3dEf-GHjk2m-NPqrS7-tuVW8x-YZ2345-abcdef'.replace('-','').strip().encode(), hashlib.sha3_512).hexdigest())"
const VECTOR = {
  key: 'django-insecure-recovery-key-for-vectors',
  code: 'Ab3dEf-GHjk2m-NPqrS7-tuVW8x-YZ2345-abcdef',
  lookUpHash:
    'a4e38952f2e971df0557d3952fd92e1fdd3073fcd986f877a7a68c05e40dc7cf2b4b43abcec9a07bed99a69407e34cbc399badb9e855d2a4d914d9f5fd14accf',
}
const key: LegacyDigestKey = {
  id: 'seed1',
  scheme: 'django-auth-recovery-codes',
  secret: new TextEncoder().encode(VECTOR.key),
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

describe('legacy digests: django-auth-recovery-codes', () => {
  it('matches the seed’s look_up_hash (first 32 bytes), with the JS and the platform HMAC alike', () => {
    expect(hex(legacyDigest(key, VECTOR.code)!)).toBe(VECTOR.lookUpHash.slice(0, 64))
    expect(hex(legacyDigest(key, VECTOR.code, platformHmacSha3_512())!)).toBe(VECTOR.lookUpHash.slice(0, 64))
    expect(hex(nobleHmacSha3_512(key.secret, new TextEncoder().encode('x')))).toHaveLength(128)
    expect(hex(djangoLookupHashDigest(VECTOR.lookUpHash)!)).toBe(VECTOR.lookUpHash.slice(0, 64))
    expect(hex(djangoLookupHashDigest(VECTOR.lookUpHash.toUpperCase())!)).toBe(VECTOR.lookUpHash.slice(0, 64))
  })

  it('accepts the code typed as printed, without dashes, with spaces, en dashes or surrounding whitespace', () => {
    const want = VECTOR.lookUpHash.slice(0, 64)
    for (const typed of [
      VECTOR.code,
      VECTOR.code.replaceAll('-', ''),
      VECTOR.code.replaceAll('-', ' '),
      VECTOR.code.replaceAll('-', '\u2013'),
      `  ${VECTOR.code}\n`,
    ]) {
      expect(hex(legacyDigest(key, typed)!), JSON.stringify(typed)).toBe(want)
    }
  })

  it('keeps case (the seed is case-sensitive) and refuses input that cannot be a code', () => {
    expect(hex(legacyDigest(key, VECTOR.code.toLowerCase())!)).not.toBe(VECTOR.lookUpHash.slice(0, 64))
    for (const bad of ['', '   ', '---', 'x'.repeat(129), 'é'.repeat(10), 'a\u0000b']) {
      expect(legacyNormalize('django-auth-recovery-codes', bad), JSON.stringify(bad)).toBeNull()
      expect(legacyDigest(key, bad)).toBeNull()
    }
    expect(legacyNormalize('django-auth-recovery-codes', 42 as never)).toBeNull()
  })

  it('refuses a look_up_hash of another shape', () => {
    for (const bad of ['', 'zz'.repeat(64), VECTOR.lookUpHash.slice(1), `${VECTOR.lookUpHash}00`, null]) {
      expect(djangoLookupHashDigest(bad as never)).toBeNull()
    }
  })
})
