/**
 * The "This wasn't me" link token (issue 16, NIST SP 800-63B-4 §4.2.3/§4.6): a payload
 * `{ v, p, u, k, b, e, n }` (version, pepper id, user id, notification kind, batch id or null,
 * expiry in epoch ms, random nonce) and an HMAC-SHA-256 tag under a pepper with its own
 * domain-separation label. Pure: time and randomness come from the caller.
 *
 * Format: `rcr1.<hex(utf8(JSON payload))>.<hex(tag)>`, tag =
 * `HMAC(pepper, "rc1-repudiate\0" ‖ payloadBytes)`. Hex keeps it URL-safe without `Buffer`.
 * The token carries no code and no secret; single use is enforced by the caller claiming a
 * store counter keyed by a keyed label of the nonce.
 */
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import { digestEquals, type HmacSha256, nobleHmacSha256, type Pepper } from '../domain/hash.ts'

/** Notification kinds that carry a "This wasn't me" link. */
export const NOTIFICATION_KINDS = [
  'recovery-login',
  'codes-generated',
  'low-codes',
  'exhausted',
  'locked',
  'disabled',
] as const
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number]

/** What a verified token says. */
export interface RepudiationClaims {
  readonly userId: string
  readonly kind: NotificationKind
  readonly batchId: string | null
  readonly expiresAt: number
  readonly nonce: string
}

export type RepudiationVerification =
  | { readonly ok: true; readonly claims: RepudiationClaims }
  | { readonly ok: false; readonly reason: 'malformed' | 'forged' | 'expired' }

const PREFIX = 'rcr1'
/** Longest token accepted before any parsing: bounds the work an attacker can ask for. */
export const MAX_REPUDIATION_TOKEN_LENGTH = 4096
const NONCE_BYTES = 16
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })
const DOMAIN = encoder.encode('rc1-repudiate\0')
const HEX = /^(?:[0-9a-f]{2})+$/

function tagOf(secret: Uint8Array, payload: Uint8Array, hmacSha256: HmacSha256): Uint8Array {
  const message = new Uint8Array(DOMAIN.length + payload.length)
  message.set(DOMAIN, 0)
  message.set(payload, DOMAIN.length)
  return hmacSha256(secret, message)
}

/**
 * Mint a token under `pepper` (the current one). `nonce` must be {@link NONCE_BYTES} random bytes.
 *
 * @example mintRepudiationToken(peppers[0], { userId, kind: 'recovery-login', batchId, expiresAt: now + ttl }, random(16))
 */
export function mintRepudiationToken(
  pepper: Pepper,
  claims: Omit<RepudiationClaims, 'nonce'>,
  nonce: Uint8Array,
  hmacSha256: HmacSha256 = nobleHmacSha256,
): string {
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`nonce must be ${NONCE_BYTES} bytes`)
  const payload = encoder.encode(
    JSON.stringify({
      v: 1,
      p: pepper.id,
      u: claims.userId,
      k: claims.kind,
      b: claims.batchId,
      e: claims.expiresAt,
      n: bytesToHex(nonce),
    }),
  )
  return `${PREFIX}.${bytesToHex(payload)}.${bytesToHex(tagOf(pepper.secret, payload, hmacSha256))}`
}

/**
 * Verify a token: shape, then the tag in constant time under the pepper it names (current or
 * verify-only), then the payload fields, then `now < expiresAt`. Never throws on input.
 *
 * @example verifyRepudiationToken(peppers, token, now) // { ok: true, claims } | { ok: false, reason }
 */
export function verifyRepudiationToken(
  peppers: readonly Pepper[],
  token: unknown,
  now: number,
  hmacSha256: HmacSha256 = nobleHmacSha256,
): RepudiationVerification {
  if (typeof token !== 'string' || token.length > MAX_REPUDIATION_TOKEN_LENGTH) {
    return { ok: false, reason: 'malformed' }
  }
  const parts = token.split('.')
  if (parts.length !== 3 || parts[0] !== PREFIX) return { ok: false, reason: 'malformed' }
  const [, payloadHex, tagHex] = parts as [string, string, string]
  if (!HEX.test(payloadHex) || !HEX.test(tagHex) || tagHex.length !== 64) {
    return { ok: false, reason: 'malformed' }
  }
  const payload = hexToBytes(payloadHex)
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(payload))
  } catch {
    return { ok: false, reason: 'malformed' }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, reason: 'malformed' }
  }
  const p = parsed as Record<string, unknown>
  const pepper = peppers.find((k) => k.id === p.p)
  // An unknown key id is a forgery (or a removed key): same answer as a bad tag.
  if (pepper === undefined) return { ok: false, reason: 'forged' }
  if (!digestEquals(tagOf(pepper.secret, payload, hmacSha256), hexToBytes(tagHex))) {
    return { ok: false, reason: 'forged' }
  }
  const kind = p.k
  if (
    p.v !== 1 ||
    typeof p.u !== 'string' ||
    p.u.length === 0 ||
    typeof kind !== 'string' ||
    !(NOTIFICATION_KINDS as readonly string[]).includes(kind) ||
    !(p.b === null || typeof p.b === 'string') ||
    typeof p.e !== 'number' ||
    !Number.isSafeInteger(p.e) ||
    typeof p.n !== 'string' ||
    !HEX.test(p.n) ||
    p.n.length !== NONCE_BYTES * 2
  ) {
    return { ok: false, reason: 'malformed' }
  }
  if (!(now < p.e)) return { ok: false, reason: 'expired' }
  return {
    ok: true,
    claims: { userId: p.u, kind: kind as NotificationKind, batchId: p.b, expiresAt: p.e, nonce: p.n },
  }
}
