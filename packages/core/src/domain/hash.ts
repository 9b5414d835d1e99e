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
export function computeDigest(pepper: Uint8Array, userId: string, canonicalCode: string): Uint8Array {
  return mac(pepper, concat([DIGEST_DOMAIN, lengthPrefixed(userId), lengthPrefixed(canonicalCode)]))
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
): { keyId: string; digest: Uint8Array }[] {
  if (peppers.length === 0) throw new RecoveryCodesError('CONFIG_INVALID', 'no pepper configured')
  return peppers.map((p) => ({ keyId: p.id, digest: computeDigest(p.secret, userId, canonicalCode) }))
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
export function keyedLabel(pepper: Uint8Array, purpose: string, value: string): string {
  const tag = mac(pepper, concat([LABEL_DOMAIN, lengthPrefixed(purpose), lengthPrefixed(value)]))
  return bytesToHex(tag).slice(0, LABEL_HEX_LENGTH)
}

// HMAC with the key schedule (inner and outer pad blocks) computed once per pepper object and
// cloned per message: two SHA-256 compressions fewer on every digest. Keyed by object identity,
// so a caller that mutates a pepper in place gets stale state: resolved peppers are frozen copies.
const keyed = new WeakMap<Uint8Array, ReturnType<typeof hmac.create>>()

function mac(pepper: Uint8Array, message: Uint8Array): Uint8Array {
  let base = keyed.get(pepper)
  if (base === undefined) {
    assertPepper(pepper)
    base = hmac.create(sha256, pepper)
    keyed.set(pepper, base)
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

/** `u32be(byteLength) ‖ utf8(value)`. */
function lengthPrefixed(value: string): Uint8Array {
  if (LONE_SURROGATE.test(value)) {
    throw new RecoveryCodesError('INVALID_INPUT', 'string is not well-formed Unicode')
  }
  const bytes = encoder.encode(value)
  const out = new Uint8Array(4 + bytes.length)
  new DataView(out.buffer).setUint32(0, bytes.length, false)
  out.set(bytes, 4)
  return out
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0
  for (const p of parts) length += p.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}
