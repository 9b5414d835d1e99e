import type {
  AddCodesInput,
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
  ImportBatchOutcome,
  ImportedBatch,
  RecoveryCodeStore,
  RedeemCodeInput,
  RedeemCodeOutcome,
} from '@recovery-codes/core'
import { freshBatchSummary, purgedAudit, RecoveryCodesError, STORE_SCOPE } from '@recovery-codes/core'
import { checkImportedBatch } from './import-check.ts'

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
  /** The digest's bytes, one character per byte (see {@link digestKey}). */
  digest: string
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

/** Lower-case hex of a {@link digestKey}'s bytes. */
function keyToHex(key: string): string {
  let out = ''
  for (let i = 0; i < key.length; i++) out += HEX[key.charCodeAt(i)]
  return out
}

/**
 * A stored digest: its bytes as a one-byte string, one character per byte. One small heap object
 * (48 bytes for 32) read in place, where a `Uint8Array` copy is a view, a buffer and the bytes
 * (about 200): a lookup touches one cache line for it instead of two or three, and 120,000 codes
 * hold 20 MB less.
 */
function digestKey(d: Uint8Array): string {
  let out = ''
  for (let i = 0; i < d.length; i += 4096) {
    out += String.fromCharCode.apply(null, d.subarray(i, i + 4096) as unknown as number[])
  }
  return out
}

/** Frozen `{ remaining: n }` audit data by `n`: consume rows share them (data is copied on read). */
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

/** {@link prefixOf} of a {@link digestKey} (a missing byte counts as 0, as there). */
function keyPrefixOf(key: string): number {
  const byte = (i: number) => (i < key.length ? key.charCodeAt(i) : 0)
  return (byte(0) << 22) | (byte(1) << 14) | (byte(2) << 6) | (byte(3) >> 2)
}

/** Whether `key` is the {@link digestKey} of `d`. */
function isKeyOf(key: string, d: Uint8Array): boolean {
  if (key.length !== d.length) return false
  for (let i = 0; i < d.length; i++) if (key.charCodeAt(i) !== d[i]) return false
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

/**
 * The audit trail, sorted by `at` (ties keep insertion order), one array per field: appending a
 * row writes its fields where a row object would be one more object per append for the
 * collector to copy and promote, and `at` sits unboxed in an array of doubles. Rows are built on
 * read. Rows before `head` are purged (their slots are cleared), dropped in bulk once they are
 * the larger part.
 */
function createAuditLog() {
  const id: string[] = []
  const at: number[] = []
  const event: string[] = []
  const userId: (string | null)[] = []
  const batchId: (string | null)[] = []
  const identifierHash: (string | null)[] = []
  const clientHash: (string | null)[] = []
  const outcome: AuditRecord['outcome'][] = []
  const reason: (string | null)[] = []
  const data: AuditRecord['data'][] = []
  const referenceColumns = [id, event, userId, batchId, identifierHash, clientHash, outcome, reason, data]
  let head = 0
  return {
    /** Index of the oldest row kept. */
    get head() {
      return head
    },
    /** One past the newest row. */
    get end() {
      return at.length
    },
    at: (i: number): number => at[i]!,
    /** Row `i` as a record of its own (`data` copied). */
    row: (i: number): AuditRecord => ({
      id: id[i]!,
      at: at[i]!,
      event: event[i]!,
      userId: userId[i]!,
      batchId: batchId[i]!,
      identifierHash: identifierHash[i]!,
      clientHash: clientHash[i]!,
      outcome: outcome[i]!,
      reason: reason[i]!,
      data: data[i] === null ? null : { ...data[i] },
    }),
    /** Whether a row kept has this id (a scan: for the rare confirmation of {@link createIdIndex}). */
    holds: (value: string): boolean => id.indexOf(value, head) !== -1,
    matches: (i: number, user: string | undefined, name: string | undefined): boolean =>
      (user === undefined || userId[i] === user) && (name === undefined || event[i] === name),
    /** Stores `record`'s fields with `batch` and `rowData` (owned by the log from now on). */
    insert(record: AuditRecord, batch: string | null, rowData: AuditRecord['data']): void {
      // Upper bound: after every row with the same `at`, so ties keep insertion order.
      let lo = head
      let hi = at.length
      if (hi === head || at[hi - 1]! <= record.at) lo = hi
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (at[mid]! <= record.at) lo = mid + 1
        else hi = mid
      }
      if (lo === at.length) {
        id.push(record.id)
        at.push(record.at)
        event.push(record.event)
        userId.push(record.userId)
        batchId.push(batch)
        identifierHash.push(record.identifierHash)
        clientHash.push(record.clientHash)
        outcome.push(record.outcome)
        reason.push(record.reason)
        data.push(rowData)
        return
      }
      id.splice(lo, 0, record.id)
      at.splice(lo, 0, record.at)
      event.splice(lo, 0, record.event)
      userId.splice(lo, 0, record.userId)
      batchId.splice(lo, 0, batch)
      identifierHash.splice(lo, 0, record.identifierHash)
      clientHash.splice(lo, 0, record.clientHash)
      outcome.splice(lo, 0, record.outcome)
      reason.splice(lo, 0, record.reason)
      data.splice(lo, 0, rowData)
    },
    /** Drops the `n` oldest rows; returns their ids. */
    dropOldest(n: number): string[] {
      const dropped = id.slice(head, head + n)
      for (const column of referenceColumns) (column as unknown[]).fill(null, head, head + n)
      head += n
      if (head === at.length || (head >= 1024 && 2 * head >= at.length)) {
        for (const column of referenceColumns) column.splice(0, head)
        at.splice(0, head)
        head = 0
      }
      return dropped
    },
  }
}

/**
 * The ids in use, for the duplicate check of every audit append: a multiset of 32-bit hashes of
 * the ids in an open-addressed table (linear probing, at most half full), with a hash match
 * confirmed by `holds(id)`, the exact (slow) lookup. A check of a new id reads one slot of a typed
 * array; a `Set<string>` of 100,000 ids reads a bucket, an entry and the id strings chained there,
 * three or four cache misses on a large trail. Distinct ids sharing a hash (about one pair in
 * 2^32) only cost a confirmation; the hash is seeded per store.
 */
function createIdIndex(holds: (id: string) => boolean) {
  const seed = Math.floor(Math.random() * 2 ** 32) | 0
  let table = new Int32Array(1024)
  let mask = table.length - 1
  let size = 0
  let lastId = ''
  let lastHash = 0
  /** A seeded 32-bit hash, never 0 (the empty slot). */
  const hashOf = (id: string): number => {
    if (id === lastId) return lastHash
    let h = seed ^ id.length
    for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
    h ^= h >>> 13
    lastId = id
    lastHash = h === 0 ? 1 : h
    return lastHash
  }
  const place = (h: number): void => {
    let i = h & mask
    while (table[i] !== 0) i = (i + 1) & mask
    table[i] = h
  }
  return {
    has(id: string): boolean {
      const h = hashOf(id)
      for (let i = h & mask; table[i] !== 0; i = (i + 1) & mask) {
        if (table[i] === h) return holds(id)
      }
      return false
    },
    add(id: string): void {
      if (2 * (size + 1) > table.length) {
        const old = table
        table = new Int32Array(2 * old.length)
        mask = table.length - 1
        for (const h of old) if (h !== 0) place(h)
      }
      place(hashOf(id))
      size++
    },
    /** Removes one entry of `id`'s hash, closing the gap behind it (backward-shift deletion). */
    delete(id: string): void {
      const h = hashOf(id)
      let gap = h & mask
      while (table[gap] !== h) {
        if (table[gap] === 0) return
        gap = (gap + 1) & mask
      }
      for (let j = (gap + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
        // An entry may fill the gap when its home slot does not lie cyclically in (gap, j].
        const home = table[j]! & mask
        const stays = gap < j ? home > gap && home <= j : home > gap || home <= j
        if (!stays) {
          table[gap] = table[j]!
          gap = j
        }
      }
      table[gap] = 0
      size--
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
  const audit = createAuditLog()
  const auditIds = createIdIndex(audit.holds)
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
      if (isKeyOf(row.digest, digest) && row.userId === userId) return row
    }
    return undefined
  }

  const indexAdd = (row: CodeRow): void => {
    const prefix = keyPrefixOf(row.digest)
    row.samePrefix = digestIndex.get(prefix) ?? null
    digestIndex.set(prefix, row)
  }

  const indexRemove = (row: CodeRow): void => {
    const prefix = keyPrefixOf(row.digest)
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

  /** Stores `record`'s fields with `batchId` and `data` (the store's own: the caller keeps its record). */
  const insertAudit = (record: AuditRecord, batchId: string | null, data: AuditRecord['data']): void => {
    audit.insert(record, batchId, data)
    auditIds.add(record.id)
  }

  /** Stores a copy of `record`, so the caller's object stays its own. */
  const appendNow = (record: AuditRecord): void =>
    insertAudit(record, record.batchId, record.data === null ? null : { ...record.data })

  /** Inserts the row `purgedAudit` made (a new record, so its data is the store's own). */
  const insertPurged = (row: AuditRecord): void => insertAudit(row, row.batchId, row.data)

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
    // The row kept has the fields `consumedAudit` gives, written straight from the caller's record;
    // without data of its own it shares the frozen `{ remaining }` of its count.
    const data =
      record.data === null ? remainingData(code.remaining) : { ...record.data, remaining: code.remaining }
    insertAudit(record, code.batchId, data)
    return { outcome: 'consumed', code }
  }

  /** Stores a new batch row and files it in its user's history (newest first). */
  const addBatchRow = (row: BatchRow): void => {
    const { id, userId, createdAt } = row
    batches.set(id, row)
    const list = batchesByUser.get(userId) ?? []
    let at = 0
    while (
      at < list.length &&
      (list[at]!.createdAt > createdAt || (list[at]!.createdAt === createdAt && list[at]!.id > id))
    )
      at++
    list.splice(at, 0, row)
    batchesByUser.set(userId, list)
  }

  /**
   * `importBatch`, synchronously: every check (input, then `exists`, then `conflict`, then the
   * collisions) before the first write. Counters come from the codes' states; a dead code's
   * `changedAt` is its `usedAt`, else the batch's end, else (a code of an active batch) its start.
   */
  const importNow = (batch: ImportedBatch, record: AuditRecord): ImportBatchOutcome => {
    const keys = checkImportedBatch(batch, record, (d) => digestKey(checkDigest(d)))
    const { id, userId, keyId, status, createdAt, expiresAt, endedAt } = batch
    if (batches.has(id)) return 'exists'
    if (status === 'active' && activeByUser.has(userId)) return 'conflict'
    for (const code of batch.codes) {
      if (codes.has(code.id)) throw conflict('duplicate code id')
      if (indexFind(userId, code.digest)) throw conflict('duplicate digest for this user')
    }
    checkAudit(record)

    const row: BatchRow = {
      ...freshBatchSummary({ id, userId, keyId, createdAt, expiresAt }, batch.codes.length),
      status,
      endedAt,
      unused: 0,
      codes: new Set(),
    }
    const deadAt = endedAt ?? createdAt
    for (const [i, code] of batch.codes.entries()) {
      const changedAt = code.state === 'active' ? null : code.state === 'used' ? code.usedAt! : deadAt
      const stored: CodeRow = {
        id: code.id,
        userId,
        batch: row,
        digest: keys[i]!,
        state: code.state,
        changedAt,
        samePrefix: null,
      }
      codes.set(stored.id, stored)
      indexAdd(stored)
      row.codes.add(stored.id)
      if (code.state === 'active') row.unused += 1
      else row[code.state] += 1
      if (code.state === 'used') row.lastUsedAt = Math.max(row.lastUsedAt ?? changedAt!, changedAt!)
      else if (changedAt !== null) endedCodes.push(changedAt, stored.id)
    }
    addBatchRow(row)
    if (status === 'active') {
      activeByUser.set(userId, row)
      if (expiresAt !== null) deadBatches.push(expiresAt, id)
    } else {
      deadBatches.push(expiresAt === null ? deadAt : Math.min(deadAt, expiresAt), id)
    }
    appendNow(record)
    return 'imported'
  }

  /**
   * `addCodes`, synchronously: every input check, then the compare-and-set (the user's active,
   * unexpired batch), then the collisions, before the first write. The codes join the batch's
   * rows (purged with it) and raise `issued` and `unused` by their number.
   */
  const addNow = ({ userId, batchId, codes: added, now, audit: record }: AddCodesInput): boolean => {
    assertTime(now, 'now')
    if (!Array.isArray(added) || added.length === 0) throw invalidInput('codes must be a non-empty array')
    if (record !== undefined) checkAudit(record)
    const keys: string[] = []
    const ids = new Set<string>()
    for (const code of added) {
      if (typeof code !== 'object' || code === null) throw invalidInput('a code must be an object')
      if (typeof code.id !== 'string' || code.id.length === 0)
        throw invalidInput('code.id must be a non-empty string')
      const key = digestKey(checkDigest(code.digest))
      if (keys.includes(key)) throw invalidInput('digests must be distinct within the call')
      if (ids.has(code.id)) throw invalidInput('code ids must be distinct within the call')
      keys.push(key)
      ids.add(code.id)
    }
    const batch = batches.get(batchId)
    if (batch === undefined || batch.userId !== userId || activeByUser.get(userId) !== batch) return false
    if (batch.expiresAt !== null && now >= batch.expiresAt) return false
    for (const code of added) {
      if (codes.has(code.id)) throw conflict('duplicate code id')
      if (indexFind(userId, code.digest)) throw conflict('duplicate digest for this user')
    }
    for (const [i, code] of added.entries()) {
      const stored: CodeRow = {
        id: code.id,
        userId,
        batch,
        digest: keys[i]!,
        state: 'active',
        changedAt: null,
        samePrefix: null,
      }
      codes.set(stored.id, stored)
      indexAdd(stored)
      batch.codes.add(stored.id)
    }
    batch.issued += added.length
    batch.unused += added.length
    if (record !== undefined) appendNow(record)
    return true
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
      const keys: string[] = []
      for (const code of newCodes) {
        const key = digestKey(checkDigest(code.digest))
        if (seen.has(key) || indexFind(userId, code.digest)) throw conflict('duplicate digest for this user')
        if (ids.has(code.id) || codes.has(code.id)) throw conflict('duplicate code id')
        seen.add(key)
        ids.add(code.id)
        keys.push(key)
      }

      const previous = activeByUser.get(userId)
      if (previous) endBatchRow(previous, 'superseded', createdAt)
      const row: BatchRow = {
        ...freshBatchSummary({ id, userId, keyId, createdAt, expiresAt }, newCodes.length),
        codes: new Set(ids),
      }
      for (const [i, code] of newCodes.entries()) {
        const stored: CodeRow = {
          id: code.id,
          userId,
          batch: row,
          digest: keys[i]!,
          state: 'active',
          changedAt: null,
          samePrefix: null,
        }
        codes.set(stored.id, stored)
        indexAdd(stored)
      }
      activeByUser.set(userId, row)
      if (expiresAt !== null) deadBatches.push(expiresAt, id)
      addBatchRow(row)
      if (record !== undefined) appendNow(record)
    },

    async importBatch(batch, record) {
      return importNow(batch, record)
    },

    async addCodes(input: AddCodesInput) {
      return addNow(input)
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
      if (record !== undefined && deleted > 0) insertPurged(purgedAudit(record, deleted))
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
      if (record !== undefined && deleted > 0) insertPurged(purgedAudit(record, deleted))
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
      for (let i = audit.end - 1; i >= audit.head && out.length < limit; i--) {
        if (audit.matches(i, userId, event)) out.push(audit.row(i))
      }
      return out
    },

    async purgeAudit({ before, limit }) {
      assertTime(before, 'before')
      assertCount(limit, 'limit')
      let n = 0
      const { head, end } = audit
      while (n < limit && head + n < end && audit.at(head + n) < before) n++
      for (const id of audit.dropOldest(n)) auditIds.delete(id)
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
      digest: keyToHex(c.digest),
      state: c.state,
      changedAt: c.changedAt,
    })),
    digestIndex: [...digestIndex.values()].flatMap((head) => {
      const keys: string[] = []
      for (let c: CodeRow | null = head; c !== null; c = c.samePrefix)
        keys.push(`${c.userId}\0${keyToHex(c.digest)}`)
      return keys
    }),
    attempts: [...attempts].map(([key, state]) => ({ key, ...state })),
    audit: Array.from({ length: audit.end - audit.head }, (_, i) => audit.row(audit.head + i)),
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
