import type {
  AttemptKey,
  AttemptReservation,
  AttemptState,
  AuditRecord,
  BatchFlag,
  BatchStatus,
  BatchSummary,
  CodeMatch,
  CodeState,
  ConsumedCode,
  EmailLogRecord,
  RecoveryCodeStore,
  RedeemCodeInput,
  RedeemCodeOutcome,
} from '@recovery-codes/core'
import { freshBatchSummary, purgedAudit, RecoveryCodesError, STORE_SCOPE } from '@recovery-codes/core'

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Byte length every digest must have; a digest of another length or type is a caller bug and
   * throws `INVALID_INPUT`. `0` accepts any length.
   * @default 32 (HMAC-SHA-256)
   */
  digestLength?: number
}

/** Everything a memory store holds, as plain JSON-serialisable data (see {@link inspectMemoryStore}). */
export interface MemoryStoreDump {
  batches: BatchSummary[]
  codes: {
    id: string
    userId: string
    batchId: string
    /** Hex of the stored digest. */
    digest: string
    state: CodeState
    /** When the code left `active`, else `null`. */
    changedAt: number | null
  }[]
  /** Keys of the `(userId, digest)` unique index, shown as `userId + '\0' + hex(digest)`. */
  digestIndex: string[]
  attempts: ({ key: string } & AttemptState)[]
  audit: AuditRecord[]
  emailLog: EmailLogRecord[]
}

interface CodeRow {
  id: string
  userId: string
  /** The batch row itself (rows and batches are purged together, batch last). */
  batch: BatchRow
  digest: Uint8Array
  state: CodeState
  changedAt: number | null
  /** The next row of the digest index with the same digest prefix (any user), else `null`. */
  samePrefix: CodeRow | null
}

/** Batch metadata; the counters survive code purges (R-LC-5), so summaries never rescan codes. */
interface BatchRow extends BatchSummary {
  /** Ids of the code rows still stored. */
  codes: Set<string>
}

const FLAG_FIELD = {
  viewed: 'viewedAt',
  downloaded: 'downloadedAt',
  emailed: 'emailedAt',
  verified: 'verifiedAt',
} as const satisfies Record<BatchFlag, keyof BatchRow>

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

function toHex(bytes: Uint8Array): string {
  let out = ''
  for (const byte of bytes) out += HEX[byte]
  return out
}

/**
 * A new audit row with `record`'s fields, `batchId` and `data`: the object the store keeps (one
 * literal of a fixed shape, not a spread that grows its properties out of line).
 */
function ownAudit(record: AuditRecord, batchId: string | null, data: AuditRecord['data']): AuditRecord {
  return {
    id: record.id,
    at: record.at,
    event: record.event,
    userId: record.userId,
    batchId,
    identifierHash: record.identifierHash,
    clientHash: record.clientHash,
    outcome: record.outcome,
    reason: record.reason,
    data,
  }
}

/** Frozen `{ remaining: n }` audit data by `n`: consume rows share them (rows are copied on read). */
const REMAINING_DATA: Readonly<{ remaining: number }>[] = []

function remainingData(remaining: number): AuditRecord['data'] {
  if (remaining >= 1024) return { remaining }
  let data = REMAINING_DATA[remaining]
  if (data === undefined) {
    data = Object.freeze({ remaining })
    REMAINING_DATA[remaining] = data
  }
  return data as AuditRecord['data']
}

/**
 * The first 30 bits of a digest: a small integer (an unboxed key in a `Map`). Digests are uniform
 * (HMAC output), so rows rarely share one.
 */
function prefixOf(d: Uint8Array): number {
  return ((d[0] ?? 0) << 22) | ((d[1] ?? 0) << 14) | ((d[2] ?? 0) << 6) | ((d[3] ?? 0) >> 2)
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** A binary min-heap of `(at, id)`: the purge queue, so purge never scans live rows. */
function createTimeHeap() {
  const items: { at: number; id: string }[] = []
  const swap = (i: number, j: number): void => {
    const t = items[i]!
    items[i] = items[j]!
    items[j] = t
  }
  return {
    items,
    peek: () => items[0],
    push(at: number, id: string): void {
      items.push({ at, id })
      for (let i = items.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1
        if (items[parent]!.at <= items[i]!.at) break
        swap(i, parent)
        i = parent
      }
    },
    pop(): void {
      const last = items.pop()
      if (items.length === 0 || !last) return
      items[0] = last
      for (let i = 0; ; ) {
        const l = 2 * i + 1
        const r = l + 1
        let min = i
        if (l < items.length && items[l]!.at < items[min]!.at) min = l
        if (r < items.length && items[r]!.at < items[min]!.at) min = r
        if (min === i) break
        swap(i, min)
        i = min
      }
    },
  }
}

function invalidInput(message: string): RecoveryCodesError {
  return new RecoveryCodesError('INVALID_INPUT', `memoryStore: ${message}`)
}

function conflict(message: string): RecoveryCodesError {
  return new RecoveryCodesError('INTERNAL', `memoryStore: ${message}`)
}

function assertTime(value: unknown, name: string): asserts value is number {
  if (!Number.isSafeInteger(value)) throw invalidInput(`${name} must be an integer epoch ms`)
}

function assertCount(value: unknown, name: string): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < 0)
    throw invalidInput(`${name} must be a non-negative integer`)
}

const ZERO_ATTEMPTS: Readonly<AttemptState> = Object.freeze({
  failures: 0,
  consecutive: 0,
  lockouts: 0,
  lockedUntil: 0,
})

const dumps = new WeakMap<object, () => MemoryStoreDump>()

/**
 * An in-memory {@link RecoveryCodeStore} for tests, demos and single-process apps.
 *
 * Atomicity matches a database: every method does its check and its write synchronously, with no
 * `await` in between (methods are `async` only for the port), so on one event loop each call is a
 * single indivisible step and every concurrency contract of the port holds. Consumes are O(1)
 * through a `(userId, digest)` index; batch counts are kept as counters; purge pops time-ordered
 * queues instead of scanning every code.
 *
 * State lives in this process only: several processes or instances each get their own codes and
 * limiter counters, which breaks single use and lockout. Use `kyselyStore(db)` there.
 *
 * @example
 * ```ts
 * import { createRecoveryCodes } from '@recovery-codes/core'
 * import { memoryStore } from '@recovery-codes/store-memory'
 *
 * const store = memoryStore()
 * const rc = createRecoveryCodes({ peppers: [{ id: 'k1', secret }], store })
 * ```
 */
export function memoryStore(options: MemoryStoreOptions = {}) {
  const digestLength = options.digestLength ?? 32
  assertCount(digestLength, 'digestLength')

  const codes = new Map<string, CodeRow>()
  /**
   * The `(userId, digest)` unique index: a 30-bit digest prefix (a small integer, cheap to hash) →
   * a chain of the rows with that prefix (`samePrefix`); the user and the full digest decide. One
   * flat map: a lookup touches the map, the row and its digest, nothing else.
   */
  const digestIndex = new Map<number, CodeRow>()
  const batches = new Map<string, BatchRow>()
  const activeByUser = new Map<string, BatchRow>()
  /** Per user, sorted newest first (`createdAt` desc, then `id` desc by UTF-16 order). */
  const batchesByUser = new Map<string, BatchRow[]>()
  const attempts = new Map<string, AttemptState>()
  /**
   * When each counter was last reserved (for `purgeAttempts`); absent = never reserved. Its keys
   * are a subset of `attempts`': a reservation writes both, only `forget` deletes, and it deletes both.
   */
  const touched = new Map<string, number>()
  /** Sorted by `at` ascending; equal times keep insertion order. */
  const audit: AuditRecord[] = []
  const auditIds = new Set<string>()
  const emailLog: EmailLogRecord[] = []
  const emailLogIds = new Set<string>()
  /** Codes that left `active`, keyed by their change time. */
  const endedCodes = createTimeHeap()
  /** Batches keyed by the earliest of `endedAt` and `expiresAt`: from then on all their codes are dead. */
  const deadBatches = createTimeHeap()
  /** Non-active batches with no code rows left: the only candidates of `purgeEmptyBatches`. */
  const emptyEnded = new Set<string>()

  const checkDigest = (digest: unknown): Uint8Array => {
    if (!(digest instanceof Uint8Array)) throw invalidInput('a digest must be a Uint8Array')
    if (digestLength !== 0 && digest.length !== digestLength) {
      throw invalidInput(`a digest must be ${digestLength} bytes`)
    }
    return digest
  }

  const indexFind = (userId: string, digest: Uint8Array): CodeRow | undefined => {
    for (let row = digestIndex.get(prefixOf(digest)) ?? null; row !== null; row = row.samePrefix) {
      if (row.userId === userId && sameBytes(row.digest, digest)) return row
    }
    return undefined
  }

  const indexAdd = (row: CodeRow): void => {
    const prefix = prefixOf(row.digest)
    row.samePrefix = digestIndex.get(prefix) ?? null
    digestIndex.set(prefix, row)
  }

  const indexRemove = (row: CodeRow): void => {
    const prefix = prefixOf(row.digest)
    const head = digestIndex.get(prefix)
    if (head === row) {
      if (row.samePrefix === null) digestIndex.delete(prefix)
      else digestIndex.set(prefix, row.samePrefix)
    } else {
      for (let prev = head ?? null; prev !== null; prev = prev.samePrefix) {
        if (prev.samePrefix === row) {
          prev.samePrefix = row.samePrefix
          break
        }
      }
    }
    row.samePrefix = null
  }

  const summary = ({ codes: _, ...b }: BatchRow): BatchSummary => b

  const endBatchRow = (b: BatchRow, to: Exclude<BatchStatus, 'active'>, at: number): void => {
    b.status = to
    b.endedAt = at
    if (activeByUser.get(b.userId) === b) activeByUser.delete(b.userId)
    deadBatches.push(b.expiresAt === null ? at : Math.min(at, b.expiresAt), b.id)
    if (b.codes.size === 0) emptyEnded.add(b.id)
  }

  /** The consume predicate: code active, batch active, `now < expiresAt`. */
  const usable = (userId: string, digests: readonly Uint8Array[], now: number) => {
    assertTime(now, 'now')
    return usableAt(userId, checkDigests(digests), now)
  }

  /** Throws `INVALID_INPUT` on a malformed digest list, before any write. */
  const checkDigests = (digests: readonly Uint8Array[]): readonly Uint8Array[] => {
    if (!Array.isArray(digests)) throw invalidInput('digests must be an array')
    for (let i = 0; i < digests.length; i++) checkDigest(digests[i])
    return digests
  }

  /** The first of `digests` naming a usable code of the user (its batch is `code.batch`). */
  const usableAt = (userId: string, digests: readonly Uint8Array[], now: number): CodeRow | undefined => {
    for (let i = 0; i < digests.length; i++) {
      const code = indexFind(userId, digests[i]!)
      if (code?.state !== 'active') continue
      const batch = code.batch
      if (batch.status !== 'active' || (batch.expiresAt !== null && now >= batch.expiresAt)) continue
      return code
    }
    return undefined
  }

  const moveCode = (code: CodeRow, batch: BatchRow, to: Exclude<CodeState, 'active'>, now: number): void => {
    code.state = to
    code.changedAt = now
    batch.unused -= 1
    batch[to] += 1
    // A used code's row stays while its batch is active (as in store-kysely, whose batch counts
    // are derived from it): it is purged with its batch, once that ends or expires.
    if (to !== 'used') endedCodes.push(now, code.id)
  }

  const removeCode = (code: CodeRow): void => {
    codes.delete(code.id)
    indexRemove(code)
    const batch = code.batch
    batch.codes.delete(code.id)
    if (batch.status !== 'active' && batch.codes.size === 0) emptyEnded.add(batch.id)
  }

  const batchDeadBefore = (b: BatchRow, before: number): boolean =>
    (b.status !== 'active' && b.endedAt !== null && b.endedAt < before) ||
    (b.expiresAt !== null && b.expiresAt < before)

  const consumeNow = (code: CodeRow, now: number): ConsumedCode => {
    const batch = code.batch
    moveCode(code, batch, 'used', now)
    batch.lastUsedAt = now
    return { codeId: code.id, batchId: batch.id, keyId: batch.keyId, remaining: batch.unused }
  }

  const checkKeys = (keys: readonly AttemptKey[]): void => {
    if (!Array.isArray(keys)) throw invalidInput('keys must be an array')
    // A call names a handful of keys: pairwise comparison finds a repeat without building a set.
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]
      if (typeof k?.key !== 'string') throw invalidInput('key must be a string')
      assertCount(k.maxAttempts, 'maxAttempts')
      for (let j = 0; j < i; j++) if (keys[j]!.key === k.key) throw invalidInput('keys must be distinct')
    }
  }

  /** Every key open: not locked at `now` and under its budget. */
  const allOpen = (keys: readonly AttemptKey[], now: number): boolean => {
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!
      const c = attempts.get(k.key) ?? ZERO_ATTEMPTS
      if (now < c.lockedUntil || c.failures >= k.maxAttempts) return false
    }
    return true
  }

  /** Checks every key, then sets every key: synchronous, so no other call interleaves. */
  const reserveNow = (keys: readonly AttemptKey[], now: number): AttemptReservation => {
    const current = keys.map((k) => attempts.get(k.key) ?? ZERO_ATTEMPTS)
    const open = keys.every((k, i) => now >= current[i]!.lockedUntil && current[i]!.failures < k.maxAttempts)
    if (!open) return { allowed: false, states: current.map((c) => ({ ...c })) }
    const states: AttemptState[] = []
    for (let i = 0; i < keys.length; i++) {
      const c = current[i]!
      const next = {
        failures: c.failures + 1,
        consecutive: c.consecutive + 1,
        lockouts: c.lockouts,
        lockedUntil: c.lockedUntil,
      }
      attempts.set(keys[i]!.key, next)
      touched.set(keys[i]!.key, now)
      states.push({ ...next })
    }
    return { allowed: true, states }
  }

  /** Drops a counter and its reservation time (only a stored counter has one). */
  const forget = (key: string): void => {
    if (attempts.delete(key)) touched.delete(key)
  }

  /** Deletes `reset`, gives one reservation back on each other key of `release`. */
  const settleNow = (reset: readonly string[], release: readonly string[]): void => {
    for (const key of reset) forget(key)
    for (const key of new Set<string>(release)) {
      if (reset.includes(key)) continue
      const current = attempts.get(key)
      if (!current || current.failures <= 0) continue
      attempts.set(key, {
        ...current,
        failures: current.failures - 1,
        consecutive: Math.max(0, current.consecutive - 1),
      })
    }
  }

  const checkAudit = (record: AuditRecord): void => {
    assertTime(record?.at, 'at')
    if (auditIds.has(record.id)) throw conflict('duplicate audit id')
  }

  /** Stores a copy of `record`, so the caller's object stays its own. */
  const appendNow = (record: AuditRecord): void =>
    insertAudit(ownAudit(record, record.batchId, record.data === null ? null : { ...record.data }))

  /** Inserts a record the store owns (nobody else holds it). */
  const insertAudit = (copy: AuditRecord): void => {
    // Upper bound: after every record with the same `at`, so ties keep insertion order.
    let lo = 0
    let hi = audit.length
    if (hi === 0 || audit[hi - 1]!.at <= copy.at) lo = hi
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (audit[mid]!.at <= copy.at) lo = mid + 1
      else hi = mid
    }
    if (lo === audit.length) audit.push(copy)
    else audit.splice(lo, 0, copy)
    auditIds.add(copy.id)
  }

  /** `redeemCode`, synchronously. */
  const redeemNow = ({
    userId,
    digests,
    now,
    keys,
    reset,
    audit: record,
  }: RedeemCodeInput): RedeemCodeOutcome => {
    // Every check before the first write: a rejected call changes nothing.
    assertTime(now, 'now')
    checkKeys(keys)
    checkDigests(digests)
    if (!Array.isArray(reset)) throw invalidInput('reset must be an array')
    checkAudit(record)
    // One synchronous step, so reserve → consume → settle has the same result as: any key closed
    // → `denied`, nothing written; no code → the reservations, kept as failures → `missed`; a
    // code → consume, delete the `reset` counters, leave the others as they were (a reservation
    // given back in the same step is no change at all).
    if (!allOpen(keys, now)) return { outcome: 'denied', states: reserveNow(keys, now).states }
    const match = usableAt(userId, digests, now)
    if (!match) return { outcome: 'missed', states: reserveNow(keys, now).states }
    const code = consumeNow(match, now)
    for (let i = 0; i < keys.length; i++) if (reset.includes(keys[i]!.key)) forget(keys[i]!.key)
    // The row kept is built once from the caller's record (what `consumedAudit` gives, without a
    // second copy); without data of its own it shares the frozen `{ remaining }` of its count.
    const data =
      record.data === null ? remainingData(code.remaining) : { ...record.data, remaining: code.remaining }
    insertAudit(ownAudit(record, code.batchId, data))
    return { outcome: 'consumed', code }
  }

  const store = {
    async createBatch(batch, newCodes, record?: AuditRecord) {
      const { id, userId, keyId, createdAt, expiresAt } = batch
      assertTime(createdAt, 'createdAt')
      if (expiresAt !== null) assertTime(expiresAt, 'expiresAt')
      if (batches.has(id)) throw conflict('duplicate batch id')
      if (record !== undefined) checkAudit(record)
      // Check everything before the first write: all or nothing.
      const seen = new Set<string>()
      const ids = new Set<string>()
      for (const code of newCodes) {
        const hex = toHex(checkDigest(code.digest))
        if (seen.has(hex) || indexFind(userId, code.digest)) throw conflict('duplicate digest for this user')
        if (ids.has(code.id) || codes.has(code.id)) throw conflict('duplicate code id')
        seen.add(hex)
        ids.add(code.id)
      }

      const previous = activeByUser.get(userId)
      if (previous) endBatchRow(previous, 'superseded', createdAt)
      const row: BatchRow = {
        ...freshBatchSummary({ id, userId, keyId, createdAt, expiresAt }, newCodes.length),
        codes: new Set(ids),
      }
      for (const code of newCodes) {
        const stored: CodeRow = {
          id: code.id,
          userId,
          batch: row,
          digest: code.digest.slice(),
          state: 'active',
          changedAt: null,
          samePrefix: null,
        }
        codes.set(stored.id, stored)
        indexAdd(stored)
      }
      batches.set(id, row)
      activeByUser.set(userId, row)
      if (expiresAt !== null) deadBatches.push(expiresAt, id)
      const list = batchesByUser.get(userId) ?? []
      let at = 0
      while (
        at < list.length &&
        (list[at]!.createdAt > createdAt || (list[at]!.createdAt === createdAt && list[at]!.id > id))
      )
        at++
      list.splice(at, 0, row)
      batchesByUser.set(userId, list)
      if (record !== undefined) appendNow(record)
    },

    async consumeCode({ userId, digests, now }) {
      const code = usable(userId, digests, now)
      return code ? consumeNow(code, now) : null
    },

    async findCode({ userId, digests, now }): Promise<CodeMatch | null> {
      const code = usable(userId, digests, now)
      return code ? { codeId: code.id, batchId: code.batch.id, keyId: code.batch.keyId } : null
    },

    async setCodeState({ userId, codeId, to, now, audit: record }) {
      assertTime(now, 'now')
      if (record !== undefined) checkAudit(record)
      const code = codes.get(codeId)
      if (!code || code.userId !== userId || code.state !== 'active') return false
      moveCode(code, code.batch, to, now)
      if (record !== undefined) appendNow(record)
      return true
    },

    async endBatch({ userId, batchId, to, now, audit: record }) {
      assertTime(now, 'now')
      if (record !== undefined) checkAudit(record)
      const batch = batches.get(batchId)
      if (!batch || batch.userId !== userId || batch.status !== 'active') return false
      endBatchRow(batch, to, now)
      if (record !== undefined) appendNow(record)
      return true
    },

    async setBatchFlag({ userId, batchId, flag, now }) {
      assertTime(now, 'now')
      const batch = batches.get(batchId)
      const field = FLAG_FIELD[flag]
      if (!batch || batch.userId !== userId || batch[field] !== null) return false
      batch[field] = now
      return true
    },

    async getActiveBatch(userId) {
      const batch = activeByUser.get(userId)
      return batch ? summary(batch) : null
    },

    async listBatches({ userId, offset, limit }) {
      assertCount(offset, 'offset')
      assertCount(limit, 'limit')
      const list = batchesByUser.get(userId) ?? []
      return { items: list.slice(offset, offset + limit).map(summary), total: list.length }
    },

    async reserveAttempts({ keys, now }) {
      assertTime(now, 'now')
      checkKeys(keys)
      return reserveNow(keys, now)
    },

    // Not `async`: the whole call is one synchronous step, returned settled (a throw becomes the
    // rejection an async method would give), without an async frame of its own on the hot path.
    redeemCode(input: RedeemCodeInput): Promise<RedeemCodeOutcome> {
      try {
        return Promise.resolve(redeemNow(input))
      } catch (error) {
        return Promise.reject(error)
      }
    },

    async getAttempts(key) {
      const current = attempts.get(key)
      return current ? { ...current } : { ...ZERO_ATTEMPTS }
    },

    async lockAttempts({ key, until }) {
      assertTime(until, 'until')
      const current = attempts.get(key) ?? { ...ZERO_ATTEMPTS }
      const next = {
        failures: 0,
        consecutive: current.consecutive,
        lockouts: current.lockouts + 1,
        lockedUntil: until,
      }
      attempts.set(key, next)
      return { ...next }
    },

    async settleAttempts({ reset, release }) {
      if (!Array.isArray(reset) || !Array.isArray(release))
        throw invalidInput('reset and release must be arrays')
      settleNow(reset, release)
    },

    async purgeCodes({ before, limit, audit: record }) {
      assertTime(before, 'before')
      assertCount(limit, 'limit')
      if (record !== undefined) checkAudit(record)
      let deleted = 0
      // Codes that left `active` before `before`; stale entries (already purged) are dropped.
      for (let top = endedCodes.peek(); deleted < limit && top && top.at < before; top = endedCodes.peek()) {
        endedCodes.pop()
        const code = codes.get(top.id)
        if (code && code.state !== 'active' && code.changedAt !== null && code.changedAt < before) {
          removeCode(code)
          deleted++
        }
      }
      // Every code of a batch that ended or expired before `before`. Eligibility is re-checked.
      for (
        let top = deadBatches.peek();
        deleted < limit && top && top.at < before;
        top = deadBatches.peek()
      ) {
        const batch = batches.get(top.id)
        if (batch && batchDeadBefore(batch, before)) {
          for (const codeId of batch.codes) {
            if (deleted >= limit) break
            removeCode(codes.get(codeId)!)
            deleted++
          }
          if (batch.codes.size > 0) break
        }
        deadBatches.pop()
      }
      if (record !== undefined && deleted > 0) insertAudit(purgedAudit(record, deleted))
      return deleted
    },

    async purgeEmptyBatches({ before, limit, audit: record }) {
      assertTime(before, 'before')
      assertCount(limit, 'limit')
      if (record !== undefined) checkAudit(record)
      let deleted = 0
      for (const id of emptyEnded) {
        if (deleted >= limit) break
        const batch = batches.get(id)
        if (!batch) {
          emptyEnded.delete(id)
          continue
        }
        if (
          batch.status === 'active' ||
          batch.codes.size > 0 ||
          batch.endedAt === null ||
          batch.endedAt >= before
        )
          continue
        batches.delete(id)
        emptyEnded.delete(id)
        const list = batchesByUser.get(batch.userId)!
        list.splice(list.indexOf(batch), 1)
        if (list.length === 0) batchesByUser.delete(batch.userId)
        deleted++
      }
      if (record !== undefined && deleted > 0) insertAudit(purgedAudit(record, deleted))
      return deleted
    },

    async purgeAttempts({ before, limit }) {
      assertTime(before, 'before')
      assertCount(limit, 'limit')
      let deleted = 0
      for (const [key, state] of attempts) {
        if (deleted >= limit) break
        if ((touched.get(key) ?? 0) >= before || state.lockedUntil >= before) continue
        forget(key)
        deleted++
      }
      return deleted
    },

    async appendAudit(record) {
      checkAudit(record)
      appendNow(record)
    },

    async listAudit({ limit, userId, event }) {
      assertCount(limit, 'limit')
      const out: AuditRecord[] = []
      for (let i = audit.length - 1; i >= 0 && out.length < limit; i--) {
        const record = audit[i]!
        if (userId !== undefined && record.userId !== userId) continue
        if (event !== undefined && record.event !== event) continue
        out.push({ ...record, data: record.data === null ? null : { ...record.data } })
      }
      return out
    },

    async purgeAudit({ before, limit }) {
      assertTime(before, 'before')
      assertCount(limit, 'limit')
      let n = 0
      while (n < limit && n < audit.length && audit[n]!.at < before) n++
      for (const record of audit.splice(0, n)) auditIds.delete(record.id)
      return n
    },

    async appendEmailLog(record) {
      assertTime(record.at, 'at')
      if (emailLogIds.has(record.id)) throw conflict('duplicate email log id')
      emailLog.push({ ...record })
      emailLogIds.add(record.id)
    },
  } satisfies RecoveryCodeStore
  // State in this process only: `deployment: 'multi'` refuses this store (not enumerable, so the
  // store's own keys stay exactly the port).
  Object.defineProperty(store, STORE_SCOPE, { value: 'process' })

  dumps.set(store, () => ({
    batches: [...batches.values()].map(summary),
    codes: [...codes.values()].map((c) => ({
      id: c.id,
      userId: c.userId,
      batchId: c.batch.id,
      digest: toHex(c.digest),
      state: c.state,
      changedAt: c.changedAt,
    })),
    digestIndex: [...digestIndex.values()].flatMap((head) => {
      const keys: string[] = []
      for (let c: CodeRow | null = head; c !== null; c = c.samePrefix)
        keys.push(`${c.userId}\0${toHex(c.digest)}`)
      return keys
    }),
    attempts: [...attempts].map(([key, state]) => ({ key, ...state })),
    audit: audit.map((r) => ({ ...r, data: r.data === null ? null : { ...r.data } })),
    emailLog: emailLog.map((r) => ({ ...r })),
  }))
  return store
}

/**
 * Every row, index key and counter of a {@link memoryStore}, as plain data: for debugging and for
 * the no-plaintext tests, which scan `JSON.stringify(inspectMemoryStore(store))` for generated codes.
 * A debug helper kept off the store object, so the store stays exactly the port.
 *
 * @throws TypeError when `store` did not come from `memoryStore()` (wrappers such as
 * `createSlowStore()` included: pass the inner store).
 * @example
 * ```ts
 * const store = memoryStore()
 * // … run a scenario …
 * expect(JSON.stringify(inspectMemoryStore(store))).not.toMatch(plaintextCodes)
 * ```
 */
export function inspectMemoryStore(store: RecoveryCodeStore): MemoryStoreDump {
  const dump = dumps.get(store)
  if (!dump) throw new TypeError('inspectMemoryStore: not a store created by memoryStore()')
  return dump()
}

/** The store returned by {@link memoryStore}. */
export type MemoryStore = ReturnType<typeof memoryStore>
