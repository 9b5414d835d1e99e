/**
 * The reveal slot: after generation the display codes live only here, encrypted under a key that
 * exists only in the token handed to the host session. The cache holds ciphertext; the session
 * holds the key; neither alone reveals a code.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { decodeBase64urlIgnorePadding, encodeBase64urlNoPadding } from '@oslojs/encoding'
import type { RandomReader } from '../ports/random.ts'

const SLOT_ID_BYTES = 16
const KEY_BYTES = 32
const NONCE_BYTES = 24
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{64}$/

/**
 * A batch waiting for `rc.confirm` (`activation: 'confirm'`): what the store needs to write it
 * then, besides its codes. Bound into the slot's associated data, so it cannot be altered.
 */
export interface PendingBatch {
  /** When it was generated (epoch ms). */
  generatedAt: number
  /** Its lifetime once active, in ms; `null` = never expires. */
  lifetimeMs: number | null
}

/** What the cache stores for one slot. */
export interface SealedSlot {
  /** Keyed label of the owner (never the raw user id). */
  owner: string
  batchId: string
  expiresAt: number
  nonce: string
  ciphertext: string
  /** Set while the slot's batch waits for `rc.confirm`; absent for an active batch's slot. */
  pending?: PendingBatch
}

/** A decoded reveal token. */
export interface RevealHandle {
  slotId: string
  key: Uint8Array
}

/** Creates a new slot: returns the token for the session, the slot id and the sealed value. */
export function sealReveal(input: {
  random: RandomReader
  owner: string
  batchId: string
  codes: readonly string[]
  expiresAt: number
  pending?: PendingBatch
}): { token: string; slotId: string; slot: SealedSlot } {
  const bytes = new Uint8Array(SLOT_ID_BYTES + KEY_BYTES + NONCE_BYTES)
  input.random.read(bytes)
  const key = bytes.subarray(SLOT_ID_BYTES, SLOT_ID_BYTES + KEY_BYTES)
  const nonce = bytes.slice(SLOT_ID_BYTES + KEY_BYTES)
  return {
    token: encodeBase64urlNoPadding(bytes.subarray(0, SLOT_ID_BYTES + KEY_BYTES)),
    slotId: bytesToHex(bytes.subarray(0, SLOT_ID_BYTES)),
    slot: sealCodes({ ...input, key, nonce }),
  }
}

/**
 * Encrypts codes under `key` (XChaCha20-Poly1305, owner and batch bound as associated data).
 * The reveal slot uses a random key held by the session; the mail outbox a key derived from the
 * pepper, so a queued job carries only a slot id.
 */
export function sealCodes(input: {
  key: Uint8Array
  nonce: Uint8Array
  owner: string
  batchId: string
  codes: readonly string[]
  expiresAt: number
  pending?: PendingBatch
}): SealedSlot {
  const plaintext = new TextEncoder().encode(JSON.stringify(input.codes))
  const ciphertext = xchacha20poly1305(
    input.key,
    input.nonce,
    aad(input.owner, input.batchId, input.pending),
  ).encrypt(plaintext)
  return {
    owner: input.owner,
    batchId: input.batchId,
    expiresAt: input.expiresAt,
    nonce: encodeBase64urlNoPadding(input.nonce),
    ciphertext: encodeBase64urlNoPadding(ciphertext),
    ...(input.pending ? { pending: { ...input.pending } } : {}),
  }
}

/** A fresh nonce for {@link sealCodes}. */
export function newNonce(random: RandomReader): Uint8Array {
  const nonce = new Uint8Array(NONCE_BYTES)
  random.read(nonce)
  return nonce
}

/** Decodes a token; `null` when it is not one of ours. */
export function parseRevealToken(token: unknown): RevealHandle | null {
  if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) return null
  const bytes = fromBase64url(token)
  if (bytes.length !== SLOT_ID_BYTES + KEY_BYTES) return null
  return { slotId: bytesToHex(bytes.subarray(0, SLOT_ID_BYTES)), key: bytes.slice(SLOT_ID_BYTES) }
}

/** Decrypts a slot; `null` on any mismatch (owner, expiry, tampering, wrong key). */
export function openReveal(
  handle: Pick<RevealHandle, 'key'>,
  slot: unknown,
  owner: string,
  now: number,
): SealedSlotContent | null {
  if (!isSealedSlot(slot) || slot.owner !== owner || now >= slot.expiresAt) return null
  try {
    const plain = xchacha20poly1305(
      handle.key,
      fromBase64url(slot.nonce),
      aad(owner, slot.batchId, slot.pending),
    ).decrypt(fromBase64url(slot.ciphertext))
    const codes: unknown = JSON.parse(new TextDecoder().decode(plain))
    if (!Array.isArray(codes) || !codes.every((c) => typeof c === 'string')) return null
    const content: SealedSlotContent = { batchId: slot.batchId, codes, expiresAt: slot.expiresAt }
    return slot.pending ? { ...content, pending: { ...slot.pending } } : content
  } catch {
    return null
  }
}

/** The opened content of a slot. */
export interface SealedSlotContent {
  batchId: string
  codes: string[]
  expiresAt: number
  /** Set when the slot's batch was generated to wait for `rc.confirm`. */
  pending?: PendingBatch
}

function isSealedSlot(v: unknown): v is SealedSlot {
  if (typeof v !== 'object' || v === null) return false
  const s = v as Record<string, unknown>
  return (
    typeof s.owner === 'string' &&
    typeof s.batchId === 'string' &&
    typeof s.expiresAt === 'number' &&
    typeof s.nonce === 'string' &&
    typeof s.ciphertext === 'string' &&
    (s.pending === undefined || isPendingBatch(s.pending))
  )
}

function isPendingBatch(v: unknown): v is PendingBatch {
  if (typeof v !== 'object' || v === null) return false
  const p = v as Record<string, unknown>
  return (
    Number.isSafeInteger(p.generatedAt) &&
    (p.lifetimeMs === null || (Number.isSafeInteger(p.lifetimeMs) && (p.lifetimeMs as number) > 0))
  )
}

/** Owner, batch and (for a pending batch) its metadata, bound to the ciphertext. */
function aad(owner: string, batchId: string, pending?: PendingBatch): Uint8Array {
  const meta = pending ? `\0pending\0${pending.generatedAt}\0${pending.lifetimeMs ?? 'never'}` : ''
  return new TextEncoder().encode(`rc1-reveal\0${owner}\0${batchId}${meta}`)
}

function fromBase64url(s: string): Uint8Array {
  try {
    return decodeBase64urlIgnorePadding(s)
  } catch {
    return new Uint8Array(0)
  }
}
