/**
 * The service context: what every part of the service shares, built once per
 * `createRecoveryCodes` call. The resolved config and its ports, keyed labels, ids, the store
 * guard, audit and events. A plain object; the parts destructure it once when they are built.
 */
import { createStorage } from 'unstorage'
import lruCacheDriver from 'unstorage/drivers/lru-cache'
import type { ResolvedConfig } from '../config.ts'
import { keyedLabel } from '../domain/hash.ts'
import { RecoveryCodesError } from '../errors.ts'
import type { Cache } from '../ports/cache.ts'
import type { RecoveryEvent, RecoveryEventName } from '../ports/events.ts'
import type { Logger } from '../ports/logger.ts'
import type { AuditRecord } from '../ports/store.ts'
import { systemHmacSha256 } from '../runtime.ts'
import type { RequestContext } from './types.ts'

const LABEL_MEMO_SIZE = 10_000
const DEFAULT_CACHE_ENTRIES = 50_000
/** The bytes of the id {@link ServiceContext.newId} is making, reused (ids are not secret). */
const idBytes = new Uint8Array(16)
/** The character codes of the id's hex, reused: one flat string per id, no concatenation. */
const idChars: number[] = Array.from({ length: 32 }, () => 0)
const HEX_DIGITS = '0123456789abcdef'

/** Lower-case hex of 16 bytes (as `bytesToHex`), built as one flat string. */
function hexOf(bytes: Uint8Array): string {
  for (let i = 0; i < 16; i++) {
    const b = bytes[i]!
    idChars[2 * i] = HEX_DIGITS.charCodeAt(b >> 4)
    idChars[2 * i + 1] = HEX_DIGITS.charCodeAt(b & 15)
  }
  return String.fromCharCode.apply(null, idChars)
}

/** One audit row to write, before ids and keyed hashes are filled in. */
export interface AuditInput {
  at: number
  event: string
  outcome: AuditRecord['outcome']
  userId?: string | null
  batchId?: string | null
  reason?: string | null
  data?: AuditRecord['data']
  ctx?: RequestContext
  identifier?: string
}

/** What the parts of the service share; see {@link createServiceContext}. */
export interface ServiceContext {
  readonly config: ResolvedConfig
  readonly store: ResolvedConfig['store']
  readonly clock: ResolvedConfig['clock']
  readonly random: ResolvedConfig['random']
  readonly logger: Logger
  /** The configured cache, or a bounded in-process LRU. */
  readonly cache: Cache
  /** `true` for the default cache: created here, so no other instance reads or writes it. */
  readonly cacheIsPrivate: boolean
  /** The secret of the current pepper: keys the labels and the outbox. */
  readonly labelKey: Uint8Array
  /**
   * A memo of `compute(value)` per identifier string (a user id, a client key): a map of its own,
   * cleared when full rather than grown, holding identifiers and what is derived from them, never
   * codes. `compute` takes the value, so a hit allocates nothing (no closure per call).
   */
  memo<T>(compute: (value: string) => T): (value: string) => T
  /** Keyed label of `value` for `purpose`, memoised. */
  label(purpose: string, value: string): string
  /** Keyed label of a user id: the owner of cache entries and slots. */
  userLabel(userId: string): string
  /** A random 128-bit hex id; with `now`, time-ordered (the first 48 bits are the time in ms). */
  newId(now?: number): string
  /** Runs store work; a failure other than a `RecoveryCodesError` becomes `STORE_UNAVAILABLE`. */
  guardStore<T>(fn: () => Promise<T>): Promise<T>
  /**
   * What {@link ServiceContext.guardStore} throws for `error`: a `RecoveryCodesError` as it is,
   * anything else logged by name and wrapped as `STORE_UNAVAILABLE`. For a hot path that awaits
   * the store in its own `try` instead of through another async frame.
   */
  storeFailure(error: unknown): RecoveryCodesError
  /** The audit row for `input`, with its id and keyed hashes. */
  auditRecord(input: AuditInput): AuditRecord
  /** Appends an audit row; a failure is logged, never thrown. */
  audit(input: AuditInput): Promise<void>
  /** Emits an event when a sink is configured; a failure is logged, never thrown. */
  emit(
    name: RecoveryEventName,
    at: number,
    userId: string | null,
    batchId: string | null,
    data?: RecoveryEvent['data'],
  ): Promise<void>
}

/** Builds the {@link ServiceContext} of one service from its resolved config. */
export function createServiceContext(config: ResolvedConfig): ServiceContext {
  const store = config.store
  const random = config.random
  const logger = config.logger ?? silentLogger
  // The default cache is a bounded in-process LRU: entries under superseded versions age out
  // instead of growing the heap. Several instances need a shared driver (Redis).
  const cache: Cache =
    config.cache ?? createStorage({ driver: lruCacheDriver({ max: DEFAULT_CACHE_ENTRIES, ttl: 3_600_000 }) })
  const labelKey = config.peppers[0]!.secret

  // Labels of hot identifiers (user ids, client keys) are memoised in process, one map per
  // purpose, keyed by the caller's own string (whose hash the engine caches).
  function memo<T>(compute: (value: string) => T): (value: string) => T {
    const map = new Map<string, T>()
    return (value) => {
      let out = map.get(value)
      if (out === undefined) {
        out = compute(value)
        if (map.size >= LABEL_MEMO_SIZE) map.clear()
        map.set(value, out)
      }
      return out
    }
  }
  const labelMemos = new Map<string, (value: string) => string>()
  const labelOf = (purpose: string): ((value: string) => string) => {
    let of = labelMemos.get(purpose)
    if (of === undefined) {
      of = memo((value) => keyedLabel(labelKey, purpose, value, systemHmacSha256))
      labelMemos.set(purpose, of)
    }
    return of
  }
  const label = (purpose: string, value: string) => labelOf(purpose)(value)
  const userLabel = labelOf('user')
  const identifierHash = labelOf('audit-identifier')
  const clientHash = labelOf('audit-client')

  /**
   * A 128-bit id: with `now`, the first 48 bits are the time in ms (like UUIDv7), so rows written
   * together (a batch's codes, an audit trail) sit together in a primary-key index and a purge
   * chunk dirties few pages; the other 80 bits are random.
   */
  function newId(now?: number): string {
    random.read(idBytes)
    if (now !== undefined) {
      let t = Math.max(0, Math.min(now, 2 ** 48 - 1))
      for (let i = 5; i >= 0; i--) {
        idBytes[i] = t % 256
        t = Math.floor(t / 256)
      }
    }
    return hexOf(idBytes)
  }

  const events = config.events
  // Without a sink an emit is no work at all: one shared settled promise, no async frame.
  function emit(
    name: RecoveryEventName,
    at: number,
    userId: string | null,
    batchId: string | null,
    data?: RecoveryEvent['data'],
  ): Promise<void> {
    return events ? emitTo(events, { name, at, userId, batchId, ...(data ? { data } : {}) }) : SETTLED
  }

  async function emitTo(sink: NonNullable<typeof events>, event: RecoveryEvent): Promise<void> {
    try {
      await sink.emit(event)
    } catch (error) {
      logger.error('recovery-codes: event sink failed', { event: event.name, error: errorName(error) })
    }
  }

  function auditRecord(input: AuditInput): AuditRecord {
    return {
      id: newId(input.at),
      at: input.at,
      event: input.event,
      userId: input.userId ?? null,
      batchId: input.batchId ?? null,
      identifierHash: input.identifier === undefined ? null : identifierHash(input.identifier),
      clientHash: input.ctx?.clientKey ? clientHash(input.ctx.clientKey) : null,
      outcome: input.outcome,
      reason: input.reason ?? null,
      // The source of the event (NIST SP 800-63B-4 §4.1): the client key as a keyed hash above,
      // the user agent as sent (printable, truncated by the service).
      data: input.ctx?.userAgent ? { ...input.data, userAgent: input.ctx.userAgent } : (input.data ?? null),
    }
  }

  async function audit(input: AuditInput): Promise<void> {
    const row = auditRecord(input)
    try {
      await store.appendAudit(row)
    } catch (error) {
      logger.error('recovery-codes: audit append failed', { event: row.event, error: errorName(error) })
    }
  }

  function storeFailure(error: unknown): RecoveryCodesError {
    if (error instanceof RecoveryCodesError) return error
    logger.error('recovery-codes: store failed', { error: errorName(error) })
    return new RecoveryCodesError(
      'STORE_UNAVAILABLE',
      'The recovery-code store is unavailable; the request was denied.',
      { cause: error },
    )
  }

  async function guardStore<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      throw storeFailure(error)
    }
  }

  return {
    config,
    store,
    clock: config.clock,
    random,
    logger,
    cache,
    cacheIsPrivate: config.cache === null,
    labelKey,
    memo,
    label,
    userLabel,
    newId,
    guardStore,
    storeFailure,
    auditRecord,
    audit,
    emit,
  }
}

/** The name logged for an error: its code for a `RecoveryCodesError`, else its class name. */
export function errorName(error: unknown): string {
  if (error instanceof RecoveryCodesError) return error.code
  return error instanceof Error ? error.name : 'unknown'
}

const SETTLED: Promise<void> = Promise.resolve()
const noop = () => {}
const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop }
