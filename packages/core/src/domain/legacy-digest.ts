/**
 * Legacy digest schemes: how codes imported from another system, which exist there only as that
 * system's own digest, are verified here without their plaintext. Each configured scheme has a
 * key id like a pepper's; an imported batch carries it as its `keyId`, and a redeem adds one
 * candidate digest per scheme to the lookup (same limiter, single use and expiry rules).
 */
import { hmac } from '@noble/hashes/hmac.js'
import { sha3_512 } from '@noble/hashes/sha3.js'
import { CODE_INPUT_STRIP } from './code-format.ts'

/** Supported legacy schemes. */
export type LegacyScheme = 'django-auth-recovery-codes'

/** The schemes, for validation and docs. */
export const LEGACY_SCHEMES: readonly LegacyScheme[] = Object.freeze(['django-auth-recovery-codes'])

/** One resolved legacy scheme key. `secret` is non-enumerable: never log or serialise it. */
export interface LegacyDigestKey {
  /** Key id stored as the imported batches' `keyId`; distinct from every pepper id. */
  readonly id: string
  readonly scheme: LegacyScheme
  readonly secret: Uint8Array
}

/** One HMAC-SHA3-512: `(key, message) → 64-byte tag`. */
export type HmacSha3_512 = (key: Uint8Array, message: Uint8Array) => Uint8Array

/** HMAC-SHA3-512 in JavaScript with `@noble/hashes`: runs on every runtime. */
export const nobleHmacSha3_512: HmacSha3_512 = (key, message) => hmac(sha3_512, key, message)

/** Bytes of a stored digest: the scheme's output is truncated to the store's 32 bytes. */
export const LEGACY_DIGEST_BYTES = 32

/** Longest normalised input a legacy digest is computed over. */
const MAX_LEGACY_INPUT = 128

const encoder = new TextEncoder()

/**
 * The input as a scheme hashes it. django-auth-recovery-codes removes `-` and surrounding
 * whitespace and keeps case; here NFKC, every dash and every whitespace are removed as well (a
 * superset: a code typed as printed, or with spaces or an en dash, still matches).
 *
 * @returns the normalised code, or `null` when it cannot be a code of the scheme.
 * @example legacyNormalize('django-auth-recovery-codes', ' Ab3dEf-GHjk2m ') // 'Ab3dEfGHjk2m'
 */
export function legacyNormalize(_scheme: LegacyScheme, input: string): string | null {
  if (typeof input !== 'string' || input.length > 4 * MAX_LEGACY_INPUT) return null
  // What the code canonicalisation strips, but case is kept: the seed is case-sensitive.
  const out = input.normalize('NFKC').replace(CODE_INPUT_STRIP, '')
  if (out.length === 0 || out.length > MAX_LEGACY_INPUT || !/^[\x21-\x7e]+$/.test(out)) return null
  return out
}

/**
 * The digest stored for a code of a legacy scheme: for django-auth-recovery-codes the first
 * {@link LEGACY_DIGEST_BYTES} bytes of its `look_up_hash`, `HMAC-SHA3-512(key, utf8(code))`.
 *
 * @returns 32 bytes, or `null` when the input cannot be a code of the scheme.
 * @example legacyDigest(key, 'Ab3dEf-GHjk2m-…') // Uint8Array(32)
 */
export function legacyDigest(
  key: LegacyDigestKey,
  input: string,
  hmacSha3_512: HmacSha3_512 = nobleHmacSha3_512,
): Uint8Array | null {
  const code = legacyNormalize(key.scheme, input)
  if (code === null) return null
  const message = encoder.encode(code)
  try {
    return hmacSha3_512(key.secret, message).subarray(0, LEGACY_DIGEST_BYTES)
  } finally {
    message.fill(0)
  }
}

/**
 * A django-auth-recovery-codes `look_up_hash` (128 hex digits) as the stored digest, or `null`
 * when it does not have that shape.
 *
 * @example djangoLookupHashDigest(row.look_up_hash) // Uint8Array(32)
 */
export function djangoLookupHashDigest(lookUpHash: string): Uint8Array | null {
  if (typeof lookUpHash !== 'string' || !/^[0-9a-f]{128}$/i.test(lookUpHash)) return null
  const out = new Uint8Array(LEGACY_DIGEST_BYTES)
  for (let i = 0; i < LEGACY_DIGEST_BYTES; i++) {
    out[i] = Number.parseInt(lookUpHash.slice(2 * i, 2 * i + 2), 16)
  }
  return out
}
