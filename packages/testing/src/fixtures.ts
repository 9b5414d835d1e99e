import type { AuditRecord, EmailLogRecord, NewBatch, NewCode, RecoveryCodeStore } from '@recovery-codes/core'

/**
 * Data builders for store tests: realistic shapes (32-byte random digests, UUID-based ids) and ids
 * unique across tests and processes, so suites also work on a database shared between tests.
 */

let counter = 0

/** A fresh id: `prefix-<counter>-<uuid>`; unique across tests, files and processes. */
export function uniqueId(prefix = 'id'): string {
  counter += 1
  return `${prefix}-${counter}-${crypto.randomUUID()}`
}

/** 32 random bytes: the shape of an HMAC-SHA-256 digest. */
export function randomDigest(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32))
}

/** `count` codes with unique ids and random 32-byte digests. */
export function buildCodes(count: number): NewCode[] {
  return Array.from({ length: count }, () => ({ id: uniqueId('code'), digest: randomDigest() }))
}

/** A {@link NewBatch}; `userId` and `createdAt` are required, the rest default. */
export function buildBatch(input: Pick<NewBatch, 'userId' | 'createdAt'> & Partial<NewBatch>): NewBatch {
  return { id: uniqueId('batch'), keyId: 'k1', expiresAt: null, ...input }
}

/** An {@link AuditRecord}; only `at` is required. */
export function buildAudit(input: Pick<AuditRecord, 'at'> & Partial<AuditRecord>): AuditRecord {
  return {
    id: uniqueId('audit'),
    event: 'login.failure',
    userId: null,
    batchId: null,
    identifierHash: null,
    clientHash: null,
    outcome: 'info',
    reason: null,
    data: null,
    ...input,
  }
}

/** An {@link EmailLogRecord}; `at`, `userId` and `batchId` are required. */
export function buildEmailLog(
  input: Pick<EmailLogRecord, 'at' | 'userId' | 'batchId'> & Partial<EmailLogRecord>,
): EmailLogRecord {
  return { id: uniqueId('mail'), kind: 'codes', recipient: 'user@example.test', outcome: 'sent', ...input }
}

/** A batch written to a store by {@link seedBatch}. */
export interface SeededBatch {
  batch: NewBatch
  codes: NewCode[]
}

/**
 * Writes a batch of `count` codes (default 5) for `userId` through `store.createBatch` and returns
 * what was written (so tests can submit the digests).
 */
export async function seedBatch(
  store: RecoveryCodeStore,
  input: Pick<NewBatch, 'userId' | 'createdAt'> & Partial<NewBatch> & { count?: number },
): Promise<SeededBatch> {
  const { count = 5, ...rest } = input
  const batch = buildBatch(rest)
  const codes = buildCodes(count)
  await store.createBatch(batch, codes)
  return { batch, codes }
}

/**
 * Width of the time window each conformance test writes in. Tests take windows counting *down*
 * from {@link FIRST_TIME_BASE}, so on a database shared between tests the rows of earlier tests
 * are always newer than anything a later test purges (`before` stays inside its own window).
 */
export const TEST_TIME_WINDOW = 1_000_000_000

/** Base time of the first conformance test (2030-01-01T00:00:00Z). */
export const FIRST_TIME_BASE = 1_893_456_000_000

let windows = 0

/** The base time of a fresh window, lower than every earlier one in this process. */
export function nextTimeBase(): number {
  windows += 1
  return FIRST_TIME_BASE - windows * TEST_TIME_WINDOW
}

/**
 * Hooks for adapter tests that need a signed-in, freshly authenticated user and nothing else:
 * user `userId`, no pending user, no reveal token, client `192.0.2.1`.
 */
export function signedInHooks(userId = 'u1') {
  return {
    getUserId: () => userId,
    getPendingUserId: () => null,
    getRevealToken: () => null,
    setRevealToken: () => {},
    regenerateSession: () => {},
    logIn: () => {},
    isFreshlyAuthenticated: () => true,
    getClientKey: () => '192.0.2.1',
  }
}

/** A random 32-byte pepper secret (base64), for a throwaway service in a test. */
export function randomPepperSecret(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))
}
