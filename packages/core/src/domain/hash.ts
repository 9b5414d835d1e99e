/**
 * Digests at rest and keyed labels: HMAC-SHA-256 under the pepper over domain-separated,
 * length-prefixed messages. Comparison is constant-time.
 */
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { constantTimeEqual } from '@oslojs/crypto/subtle'
import { RecoveryCodesError } from '../errors.ts'

/** One pepper: `id` is stored with each row as `key_id`; `secret` is ≥ 32 random bytes. */
export interface Pepper {
  readonly id: string
  readonly secret: Uint8Array
}

/** Shortest accepted pepper secret in bytes (256 bits). */
export const MIN_PEPPER_BYTES = 32

/** Length of a {@link keyedLabel} in hex characters (128 bits). */
export const LABEL_HEX_LENGTH = 32

/**
 * The user id hashed for identifiers that match no user, so that unknown identifiers do the
 * same work and the same store query as known ones. Hosts must never issue it as a real id.
 */
export const DUMMY_USER_ID = '~recovery-codes/unknown-user'

const encoder = new TextEncoder()
const DIGEST_DOMAIN = encoder.encode('rc1\0')
const LABEL_DOMAIN = encoder.encode('rc1-label\0')

/**
 * HMAC-SHA-256 digest of a canonical code bound to its user:
 * `HMAC(pepper, "rc1\0" ‖ u32be(len(userId)) ‖ userId ‖ u32be(len(code)) ‖ code)`, UTF-8,
 * lengths in bytes.
 *
 * @throws RecoveryCodesError `CONFIG_INVALID` for a pepper shorter than {@link MIN_PEPPER_BYTES};
 *   `INVALID_INPUT` for a string with lone surrogates (two such strings could encode alike).
 * @example computeDigest(pepper.secret, 'user_42', '7K2QXM9D4RAB0CDEFGHJKMNPQ') // Uint8Array(32)
 */
export function computeDigest(
  pepper: Uint8Array,
  userId: string,
  canonicalCode: string,
  hmacSha256: HmacSha256 = nobleHmacSha256,
): Uint8Array {
  assertPepper(pepper)
  return macAndWipe(hmacSha256, pepper, framed(DIGEST_DOMAIN, userId, canonicalCode))
}

/**
 * The digest of a code under every pepper, current first, for a lookup by any of them: a code
 * made under a verify-only key still verifies; once that key is removed it no longer does.
 *
 * @throws RecoveryCodesError `CONFIG_INVALID` when `peppers` is empty.
 * @example
 * ```ts
 * const candidates = digestCandidates(peppers, userId, canonical)
 * const row = await store.consumeCode({ userId, digests: candidates.map((c) => c.digest), now })
 * ```
 */
export function digestCandidates(
  peppers: readonly Pepper[],
  userId: string,
  canonicalCode: string,
  hmacSha256: HmacSha256 = nobleHmacSha256,
): { keyId: string; digest: Uint8Array }[] {
  const digests = candidateDigests(peppers, userId, canonicalCode, hmacSha256)
  return peppers.map((p, i) => ({ keyId: p.id, digest: digests[i]! }))
}

/**
 * The digests of {@link digestCandidates} alone, in the same order: what a store lookup takes,
 * without a pair object per pepper (the redeem path).
 *
 * @throws RecoveryCodesError `CONFIG_INVALID` when `peppers` is empty.
 * @example candidateDigests(peppers, userId, canonical) // [Uint8Array(32), …]
 */
export function candidateDigests(
  peppers: readonly Pepper[],
  userId: string,
  canonicalCode: string,
  hmacSha256: HmacSha256 = nobleHmacSha256,
): Uint8Array[] {
  if (peppers.length === 0) throw new RecoveryCodesError('CONFIG_INVALID', 'no pepper configured')
  const message = framed(DIGEST_DOMAIN, userId, canonicalCode)
  try {
    const digests = new Array<Uint8Array>(peppers.length)
    for (let i = 0; i < peppers.length; i++) {
      const secret = peppers[i]!.secret
      assertPepper(secret)
      digests[i] = hmacSha256(secret, message)
    }
    return digests
  } finally {
    message.fill(0)
  }
}

/**
 * Constant-time equality of two digests; `false` (never a throw) when the lengths differ.
 *
 * @example digestEquals(row.digest, candidate.digest)
 */
export function digestEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  return constantTimeEqual(a, b)
}

/**
 * A short keyed label for an identifier, so raw identifiers never reach limiter keys, cache
 * keys or audit rows: `hex(HMAC(pepper, "rc1-label\0" ‖ u32be(len(purpose)) ‖ purpose ‖
 * u32be(len(value)) ‖ value))` truncated to {@link LABEL_HEX_LENGTH} characters. Different
 * purposes give unrelated labels for the same value.
 *
 * @example keyedLabel(pepper.secret, 'limiter:identifier', 'alice@example.com') // '3f9a…' (32 hex)
 */
export function keyedLabel(
  pepper: Uint8Array,
  purpose: string,
  value: string,
  hmacSha256: HmacSha256 = nobleHmacSha256,
): string {
  assertPepper(pepper)
  return bytesToHex(macAndWipe(hmacSha256, pepper, framed(LABEL_DOMAIN, purpose, value))).slice(
    0,
    LABEL_HEX_LENGTH,
  )
}

/**
 * One HMAC-SHA-256: `(key, message) → 32-byte tag`. Any conforming implementation gives the same
 * bytes; {@link nobleHmacSha256} is the portable default and `runtime.ts` picks the platform's
 * native one where there is one.
 */
export type HmacSha256 = (key: Uint8Array, message: Uint8Array) => Uint8Array

// The key schedule (inner and outer pad blocks) is computed once per pepper object and cloned
// per message: two SHA-256 compressions fewer on every digest. Keyed by object identity, so a
// caller that mutates a pepper in place gets stale state: resolved peppers are frozen copies.
const keyed = new WeakMap<Uint8Array, ReturnType<typeof hmac.create>>()

/**
 * HMAC-SHA-256 in JavaScript with `@noble/hashes`: runs on every runtime.
 *
 * @example nobleHmacSha256(pepper, new TextEncoder().encode('message')) // Uint8Array(32)
 */
export const nobleHmacSha256: HmacSha256 = (key, message) => {
  let base = keyed.get(key)
  if (base === undefined) {
    base = hmac.create(sha256, key)
    keyed.set(key, base)
  }
  return base.clone().update(message).digest()
}

function assertPepper(pepper: Uint8Array): void {
  if (!(pepper instanceof Uint8Array) || pepper.length < MIN_PEPPER_BYTES) {
    throw new RecoveryCodesError('CONFIG_INVALID', `pepper must be at least ${MIN_PEPPER_BYTES} bytes`)
  }
}

// Unpaired surrogates: with the `u` flag a valid pair is one code point and does not match.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u

/** One HMAC of a framed message, then the message is zeroed: the reused frame keeps no code. */
function macAndWipe(hmacSha256: HmacSha256, key: Uint8Array, message: Uint8Array): Uint8Array {
  try {
    return hmacSha256(key, message)
  } finally {
    message.fill(0)
  }
}

/** The buffer {@link framed} writes into; larger messages get their own. */
const frame = new Uint8Array(1024)
/** `frame.subarray(0, n)` by `n`, made once each: a message of a known length allocates no view. */
const frameViews: (Uint8Array | undefined)[] = []

/**
 * `domain ‖ u32be(len(a)) ‖ utf8(a) ‖ u32be(len(b)) ‖ utf8(b)`, lengths in bytes (a UTF-8
 * character is at most 3 bytes per UTF-16 unit). Written into one reused buffer: the result is
 * valid until the next call: every caller hands it straight to a synchronous HMAC, then zeroes it.
 */
function framed(domain: Uint8Array, a: string, b: string): Uint8Array {
  const size = domain.length + 8 + 3 * (a.length + b.length)
  const out = size <= frame.length ? frame : new Uint8Array(size)
  out.set(domain, 0)
  const offset = writePrefixed(out, domain.length, a)
  const end = writePrefixed(out, offset, b)
  if (out !== frame) return out.subarray(0, end)
  let view = frameViews[end]
  if (view === undefined) {
    view = frame.subarray(0, end)
    frameViews[end] = view
  }
  return view
}

/**
 * Writes `u32be(len(utf8(value))) ‖ utf8(value)` at `offset`; returns the end offset. ASCII (user
 * ids and canonical codes, as a rule) is copied byte by byte; anything else goes through the
 * encoder, after the well-formedness check (ASCII has no surrogates).
 */
function writePrefixed(out: Uint8Array, offset: number, value: string): number {
  const start = offset + 4
  let written = 0
  for (; written < value.length; written++) {
    const c = value.charCodeAt(written)
    if (c > 0x7f) break
    out[start + written] = c
  }
  if (written < value.length) {
    if (LONE_SURROGATE.test(value)) {
      throw new RecoveryCodesError('INVALID_INPUT', 'string is not well-formed Unicode')
    }
    written = encoder.encodeInto(value, out.subarray(start)).written
  }
  out[offset] = written >>> 24
  out[offset + 1] = (written >>> 16) & 0xff
  out[offset + 2] = (written >>> 8) & 0xff
  out[offset + 3] = written & 0xff
  return start + written
}
