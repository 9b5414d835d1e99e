import {
  type AttemptReservation,
  type AttemptState,
  type AuditRecord,
  type BatchFlag,
  type BatchStatus,
  type BatchSummary,
  type CodeMatch,
  type ConsumedCode,
  composeRedeemCode,
  consumedAudit,
  type EmailLogRecord,
  type NewBatch,
  type NewCode,
  purgedAudit,
  type RecoveryCodeStore,
  RecoveryCodesError,
  type RedeemCodeInput,
  type RedeemCodeOutcome,
  settlement,
} from '@recovery-codes/core'
import {
  type Compilable,
  type CompiledQuery,
  type Kysely,
  type QueryResult,
  type RawBuilder,
  sql,
  type Transaction,
} from 'kysely'
import { storeError } from './errors.ts'
import { detectDialect, PURGE_AT_PRESENT, purgeAtSql, type RecoveryCodesDialect } from './migrations.ts'
import { DEFAULT_PG_DEADLINE_MS } from './pool.ts'
import type { RecoveryCodesDatabase } from './schema.ts'

/** Options for {@link kyselyStore}. */
export interface KyselyStoreOptions {
  /**
   * The SQL dialect of `db`.
   * @default detected from `db.getExecutor().adapter`
   */
  dialect?: RecoveryCodesDialect
  /**
   * PostgreSQL: how long after the call a redeem may still start in the database, in milliseconds;
   * `null` turns the check off. A redeem that reaches the server later (it sat in a socket buffer
   * while the server was frozen, or waited for a connection that long) is refused by the server
   * (`STORE_TIMEOUT`) and changes nothing, so it cannot consume a code after its caller gave up.
   * Give it the `deadlineMs` of {@link createPgPool}. Measured on the server's clock: the store
   * reads the offset between the two clocks once, and again every 10 minutes.
   * @default 5000 (`DEFAULT_PG_DEADLINE_MS`)
   */
  startDeadlineMs?: number | null
}

type Db = Kysely<RecoveryCodesDatabase> | Transaction<RecoveryCodesDatabase>

/** Longest id, key or short text this store writes; longer input is rejected before any SQL runs. */
export const MAX_TEXT_LENGTH = 1024
/**
 * PostgreSQL timestamps are clamped to years 0001–9999 (the range every driver serialises as a plain
 * ISO string; PGlite sends `Date#toISOString()`, which PostgreSQL refuses past year 9999).
 */
const MAX_DATE_MS = 253_402_300_799_999
const MIN_DATE_MS = -62_135_596_800_000
/** Limiter statements with more slots than this (many keys) are compiled per call, not cached. */
const MAX_CACHED_SLOTS = 32
/** How long a measured offset between the app's and PostgreSQL's clocks is trusted. */
const SERVER_OFFSET_TTL_MS = 600_000
/** Rows per multi-row insert of codes (well under SQLite's 32,766 bound parameters). */
const INSERT_CHUNK = 200

const FLAG_COLUMN = {
  viewed: 'viewed_at',
  downloaded: 'downloaded_at',
  emailed: 'emailed_at',
  verified: 'verified_at',
} as const satisfies Record<BatchFlag, string>

const STATE_COUNTER = { invalidated: 'invalidated', deleted: 'deleted' } as const
const END_STATUS = { disabled: 'disabled', deleted: 'deleted' } as const

const BATCH_COLUMNS = [
  'id',
  'user_id',
  'key_id',
  'status',
  'created_at',
  'expires_at',
  'ended_at',
  'issued',
  'unused',
  'used',
  'invalidated',
  'deleted',
  'viewed_at',
  'downloaded_at',
  'emailed_at',
  'verified_at',
  'last_used_at',
] as const

const ATTEMPT_COLUMNS = ['failures', 'consecutive', 'lockouts', 'locked_until'] as const

/** Raw 32-byte digests go to the driver as a `Buffer` (better-sqlite3 and pg both bind it as a blob). */
function bytes(d: Uint8Array): Buffer {
  if (d instanceof Slot) return d as never
  if (!(d instanceof Uint8Array)) throw new RecoveryCodesError('INVALID_INPUT', 'digest must be a Uint8Array')
  return Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength)
}

/**
 * A named placeholder for {@link template}: a hot-path builder is compiled once with slots in place
 * of its inputs; every later call reuses the compiled SQL text and fills the parameter array.
 * Only parameters ever vary, never the SQL text (R-DB-1 holds by construction).
 */
class Slot {
  constructor(readonly name: string) {}
}

/** A compiled statement with named slots: the SQL text, and per parameter a slot name or a constant. */
interface Template {
  sql: string
  query: CompiledQuery['query']
  params: ({ slot: string } | { value: unknown })[]
}

/**
 * Compiles `build` once with {@link Slot}s as inputs (through the host's Kysely instance, so its
 * plugins apply) and returns a function that turns input values into a `CompiledQuery`: no builder
 * allocation or compilation per call. Each input must be passed to the builder unchanged (slots
 * pass through `ts()` and `bytes()`); every other parameter is a constant of the statement.
 */
function template<I extends Record<string, unknown>>(
  build: (slots: I) => Compilable<unknown>,
  names: readonly (keyof I & string)[],
): (values: I) => CompiledQuery {
  let t: Template | undefined
  return (values) => {
    if (t === undefined) {
      const slots = Object.fromEntries(names.map((n) => [n, new Slot(n)])) as unknown as I
      const c = build(slots).compile()
      t = {
        sql: c.sql,
        query: c.query,
        params: c.parameters.map((p) => (p instanceof Slot ? { slot: p.name } : { value: p })),
      }
    }
    const parameters = t.params.map((p) => ('slot' in p ? values[p.slot] : p.value))
    return { sql: t.sql, query: t.query, parameters, queryId: { queryId: nextQueryId() } }
  }
}
let queryIds = 0
function nextQueryId(): string {
  queryIds = (queryIds + 1) % 1e9
  return `rc${queryIds}`
}

/** `v1, v2, …` with every value bound as a parameter; empty for no values (`array[]`). */
function boundList(values: readonly unknown[]): RawBuilder<unknown> {
  let out: RawBuilder<unknown> = sql``
  values.forEach((v, j) => {
    out = j === 0 ? sql`${v}` : sql`${out}, ${v}`
  })
  return out
}

/** The input of the PostgreSQL redeem statement (see {@link createQueries}' `redeem`). */
export interface RedeemQueryInput {
  /** The limiter keys (any order: the function locks them in byte order) and their maxAttempts. */
  keys: readonly string[]
  max: readonly number[]
  /** The keys of `keys` a consume deletes; every other key gets its reservation back. */
  reset: readonly string[]
  now: number
  userId: string
  /** Empty: no lookup (the redeem can only be `denied` or `missed`). */
  digests: readonly Uint8Array[]
  audit: Omit<AuditRecord, 'batchId' | 'data'> & { data: string | null }
  /** Server-clock epoch ms after which the call must not start; `null` = no deadline. */
  deadline: number | null
}

/** Reads a timestamp column (integer ms in SQLite; `Date` from a PostgreSQL `timestamptz`). */
function toMs(v: unknown): number {
  if (v instanceof Date) return v.getTime()
  if (typeof v === 'number') return v
  if (typeof v === 'bigint') return Number(v)
  if (typeof v === 'string') return /^-?\d+$/.test(v) ? Number(v) : Date.parse(v)
  throw new RecoveryCodesError('INTERNAL', 'unexpected timestamp value from the database')
}
const toMsOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : toMs(v))

/**
 * The query-builder layer of the store: every statement the store runs, as an uncompiled Kysely
 * builder. Exposed (not exported from the package index) so tests can `.compile()` exactly what runs
 * and check that input only ever reaches `.parameters`.
 *
 * @internal
 */
export function createQueries(dialect: RecoveryCodesDialect) {
  const pg = dialect === 'postgres'
  const purgeAt = purgeAtSql(dialect)
  /**
   * Epoch ms as the column type wants it: the number for SQLite; a `Date` for `timestamptz`, clamped
   * to years 0001–9999 so a `now` such as `Number.MAX_SAFE_INTEGER` still compares correctly
   * against every stored time (which is clamped the same way).
   */
  const ts = (ms: number): number | Date =>
    (ms as unknown) instanceof Slot
      ? (ms as never)
      : pg
        ? new Date(Math.max(MIN_DATE_MS, Math.min(MAX_DATE_MS, ms)))
        : ms

  /**
   * "The code's batch is the user's active batch". PostgreSQL: `batch_id IN (…)`, planned as a
   * semi-join on the one-active-batch index. SQLite: a correlated `EXISTS` on the batch's primary
   * key, since SQLite runs `IN (subquery)` by building a temporary list (and a Bloom filter) on every
   * execution, which more than doubled the consume statement's time.
   */
  // biome-ignore lint/suspicious/noExplicitAny: used on `rc_codes` and on its alias `c1`
  const inActiveBatch = (eb: any, batchIdColumn: string, userId: string) => {
    const batches = eb
      .selectFrom('rc_batches')
      .select('rc_batches.id')
      .where('rc_batches.user_id', '=', userId)
      .where('rc_batches.status', '=', 'active')
    return pg
      ? eb(batchIdColumn, 'in', batches)
      : eb.exists(batches.whereRef('rc_batches.id', '=', batchIdColumn))
  }

  /** The usable-code predicate of consume (state, batch state, expiry). */
  const usable = (userId: string, now: number) =>
    ((eb: any) =>
      eb.and([
        eb('rc_codes.state', '=', 'active'),
        eb('rc_codes.changed_at', 'is', null),
        eb.or([eb('rc_codes.expires_at', 'is', null), eb('rc_codes.expires_at', '>', ts(now))]),
        inActiveBatch(eb, 'rc_codes.batch_id', userId),
      ])) as never

  return {
    ts,

    /**
     * Consume: one conditional UPDATE of exactly one row. One digest: `(user_id, digest)` is unique,
     * so the UPDATE touches at most one row. Several digests (pepper rotation): the row is picked by
     * a sub-select in digest order, `LIMIT 1` (`FOR UPDATE` on PostgreSQL, so a concurrent consumer
     * waits and re-checks rather than skipping); the outer UPDATE re-checks the predicate.
     *
     * PostgreSQL: the batch counters are updated in the same statement (a data-modifying CTE), so a
     * consume is one autocommit statement and one round trip. SQLite cannot put an UPDATE in a CTE:
     * the store runs {@link markBatchUsed} after it, in the same transaction.
     */
    consume: (
      db: Db,
      i: { userId: string; digests?: readonly Uint8Array[]; digest?: Uint8Array; now: number },
    ) => {
      const ds = (i.digests ?? [i.digest as Uint8Array]).map(bytes)
      const base = db
        .updateTable('rc_codes')
        .set({ state: 'used', used_at: ts(i.now), changed_at: ts(i.now) })
        .where('rc_codes.user_id', '=', i.userId)
        .where(usable(i.userId, i.now))
      const update = (
        ds.length === 1
          ? base.where('rc_codes.digest', '=', ds[0]!)
          : base.where('rc_codes.id', '=', (eb) => {
              const pick = eb
                .selectFrom('rc_codes as c1')
                .select('c1.id')
                .where('c1.user_id', '=', i.userId)
                .where('c1.digest', 'in', ds)
                .where('c1.state', '=', 'active')
                .where('c1.changed_at', 'is', null)
                .where((e) => e.or([e('c1.expires_at', 'is', null), e('c1.expires_at', '>', ts(i.now))]))
                .where((e) => inActiveBatch(e, 'c1.batch_id', i.userId))
                .orderBy((e) => {
                  let order = e.case().when('c1.digest', '=', ds[0]!).then(0)
                  for (let n = 1; n < ds.length; n++) order = order.when('c1.digest', '=', ds[n]!).then(n)
                  return order.end()
                })
                .limit(1)
              return pg ? pick.forUpdate() : pick
            })
      ).returning(['rc_codes.id', 'rc_codes.batch_id', 'rc_codes.key_id'])
      if (!pg) return update
      return (db as Kysely<RecoveryCodesDatabase>)
        .with('c', () => update as never)
        .updateTable('rc_batches')
        .from('c' as never)
        .set((eb) => ({
          unused: eb('rc_batches.unused', '-', 1),
          used: eb('rc_batches.used', '+', 1),
          last_used_at: ts(i.now),
        }))
        .whereRef('rc_batches.id', '=', 'c.batch_id' as never)
        .returning(['c.id', 'c.batch_id', 'c.key_id', 'rc_batches.unused'] as never)
    },

    /**
     * A whole redeem on PostgreSQL, one statement: the `rc_redeem` function of migration
     * `0002_redeem` (reserve, consume, settle, audit in one transaction). Every input is a bound
     * parameter; a list is an `array[…]` of one parameter per element, so the statement text depends
     * only on the list lengths.
     */
    redeem: (db: Db, i: RedeemQueryInput) => {
      const a = i.audit
      const call = sql`rc_redeem(array[${boundList(i.keys)}]::text[], array[${boundList(i.max)}]::integer[], array[${boundList(i.reset)}]::text[], ${ts(i.now)}::timestamptz, ${i.userId}::text, array[${boundList(i.digests.map(bytes))}]::bytea[], ${a.id}::text, ${ts(a.at)}::timestamptz, ${a.event}::text, ${a.userId}::text, ${a.identifierHash}::text, ${a.clientHash}::text, ${a.outcome}::text, ${a.reason}::text, ${a.data}::jsonb, ${i.deadline === null ? null : ts(i.deadline)}::timestamptz)`
      return (db as Kysely<RecoveryCodesDatabase>).selectFrom(call.as('r')).selectAll()
    },

    /** After a consume (SQLite): counters and `last_used_at` on the batch row, returning what is left. */
    markBatchUsed: (db: Db, i: { batchId: string; now: number }) =>
      db
        .updateTable('rc_batches')
        .set((eb) => ({
          unused: eb('unused', '-', 1),
          used: eb('used', '+', 1),
          last_used_at: ts(i.now),
        }))
        .where('id', '=', i.batchId)
        .returning('unused'),

    find: (db: Db, i: { userId: string; digests: readonly Uint8Array[]; now: number }) =>
      db
        .selectFrom('rc_codes')
        .select(['id', 'batch_id', 'key_id', 'digest'])
        .where('user_id', '=', i.userId)
        .where('digest', 'in', i.digests.map(bytes))
        .where('state', '=', 'active')
        .where('changed_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', ts(i.now))]))
        .where((eb) =>
          eb(
            'batch_id',
            'in',
            eb
              .selectFrom('rc_batches')
              .select('rc_batches.id')
              .where('rc_batches.user_id', '=', i.userId)
              .where('rc_batches.status', '=', 'active'),
          ),
        ),

    /** Serialises batch creation per user on PostgreSQL (transaction-scoped advisory lock). */
    lockUser: (userId: string) => sql`select pg_advisory_xact_lock(29283, hashtext(${userId}))`,

    /** Supersede, step 1: mark the active batch's live codes dead (codes before batches: one lock order). */
    endActiveBatchCodes: (db: Db, i: { userId: string; now: number }) =>
      db
        .updateTable('rc_codes')
        .set({ changed_at: ts(i.now) })
        .where('user_id', '=', i.userId)
        .where('changed_at', 'is', null)
        .where((eb) =>
          eb(
            'batch_id',
            'in',
            eb
              .selectFrom('rc_batches')
              .select('rc_batches.id')
              .where('rc_batches.user_id', '=', i.userId)
              .where('rc_batches.status', '=', 'active'),
          ),
        ),

    /** Supersede, step 2. */
    supersedeActive: (db: Db, i: { userId: string; now: number }) =>
      db
        .updateTable('rc_batches')
        .set({ status: 'superseded', ended_at: ts(i.now) })
        .where('user_id', '=', i.userId)
        .where('status', '=', 'active'),

    insertBatch: (db: Db, b: NewBatch, issued: number) =>
      db.insertInto('rc_batches').values({
        id: b.id,
        user_id: b.userId,
        key_id: b.keyId,
        status: 'active',
        created_at: ts(b.createdAt),
        expires_at: b.expiresAt === null ? null : ts(b.expiresAt),
        ended_at: null,
        issued,
        unused: issued,
        used: 0,
        invalidated: 0,
        deleted: 0,
      }),

    insertCodes: (db: Db, b: NewBatch, codes: readonly NewCode[]) =>
      db.insertInto('rc_codes').values(
        codes.map((c) => ({
          id: c.id,
          user_id: b.userId,
          batch_id: b.id,
          key_id: b.keyId,
          digest: bytes(c.digest),
          state: 'active',
          created_at: ts(b.createdAt),
          expires_at: b.expiresAt === null ? null : ts(b.expiresAt),
          used_at: null,
          changed_at: null,
        })),
      ),

    setCodeState: (
      db: Db,
      i: { userId: string; codeId: string; to: 'invalidated' | 'deleted'; now: number },
    ) =>
      db
        .updateTable('rc_codes')
        .set((eb) => ({
          state: STATE_COUNTER[i.to],
          // Keep the earlier death time if the batch already ended: purge may start from it.
          changed_at: eb.fn.coalesce('changed_at', eb.val(ts(i.now))),
        }))
        .where('id', '=', i.codeId)
        .where('user_id', '=', i.userId)
        .where('state', '=', 'active')
        .returning('batch_id'),

    countStateChange: (db: Db, i: { batchId: string; to: 'invalidated' | 'deleted' }) => {
      const col = STATE_COUNTER[i.to]
      return db
        .updateTable('rc_batches')
        .set((eb) => ({ unused: eb('unused', '-', 1), [col]: eb(col, '+', 1) }))
        .where('id', '=', i.batchId)
    },

    /** End a batch, step 1: its live codes become dead, only while the batch is still active. */
    endBatchCodes: (db: Db, i: { userId: string; batchId: string; now: number }) =>
      db
        .updateTable('rc_codes')
        .set({ changed_at: ts(i.now) })
        .where('batch_id', '=', i.batchId)
        .where('user_id', '=', i.userId)
        .where('changed_at', 'is', null)
        .where((eb) =>
          eb.exists(
            eb
              .selectFrom('rc_batches')
              .select('rc_batches.id')
              .where('rc_batches.id', '=', i.batchId)
              .where('rc_batches.user_id', '=', i.userId)
              .where('rc_batches.status', '=', 'active'),
          ),
        ),

    endBatch: (db: Db, i: { userId: string; batchId: string; to: 'disabled' | 'deleted'; now: number }) =>
      db
        .updateTable('rc_batches')
        .set({ status: END_STATUS[i.to], ended_at: ts(i.now) })
        .where('id', '=', i.batchId)
        .where('user_id', '=', i.userId)
        .where('status', '=', 'active')
        .returning('id'),

    setBatchFlag: (db: Db, i: { userId: string; batchId: string; flag: BatchFlag; now: number }) => {
      const col = FLAG_COLUMN[i.flag]
      return db
        .updateTable('rc_batches')
        .set({ [col]: ts(i.now) })
        .where('id', '=', i.batchId)
        .where('user_id', '=', i.userId)
        .where(col, 'is', null)
        .returning('id')
    },

    activeBatch: (db: Db, userId: string) =>
      db
        .selectFrom('rc_batches')
        .select(BATCH_COLUMNS)
        .where('user_id', '=', userId)
        .where('status', '=', 'active'),

    /** History: a range of the `(user_id, created_at desc, id desc)` index. */
    history: (db: Db, i: { userId: string; offset: number; limit: number }) =>
      db
        .selectFrom('rc_batches')
        .select(BATCH_COLUMNS)
        .where('user_id', '=', i.userId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(i.limit)
        .offset(i.offset),

    historyTotal: (db: Db, userId: string) =>
      db
        .selectFrom('rc_batches')
        .select((eb) => eb.fn.countAll().as('total'))
        .where('user_id', '=', userId),

    /**
     * Reserve on several keys: one multi-row upsert, rows in the given order (the store sorts them,
     * so concurrent calls lock shared keys in one order). Each row is a conditional increment under
     * that row's lock (`WHERE locked_until <= :now AND failures < :max`, the max picked by
     * `excluded.key`); a row comes back for each key reserved, none for a key that is closed. A new
     * key is inserted with one failure: callers never pass `maxAttempts < 1`.
     */
    reserveAttempts: (db: Db, i: { keys: readonly { key: string; maxAttempts: number }[]; now: number }) =>
      db
        .insertInto('rc_attempts')
        .values(
          i.keys.map((k) => ({
            key: k.key,
            failures: 1,
            consecutive: 1,
            lockouts: 0,
            locked_until: ts(0),
            touched_at: ts(i.now),
          })),
        )
        .onConflict((oc) =>
          oc
            .column('key')
            .doUpdateSet((eb) => ({
              failures: eb('rc_attempts.failures', '+', 1),
              consecutive: eb('rc_attempts.consecutive', '+', 1),
              touched_at: ts(i.now),
            }))
            .where('rc_attempts.locked_until', '<=', ts(i.now))
            .where((eb) =>
              i.keys.length === 1
                ? eb('rc_attempts.failures', '<', i.keys[0]!.maxAttempts)
                : eb.or(
                    i.keys.map((k) =>
                      eb.and([
                        eb('excluded.key', '=', k.key),
                        eb('rc_attempts.failures', '<', k.maxAttempts),
                      ]),
                    ),
                  ),
            ),
        )
        .returning(['key', ...ATTEMPT_COLUMNS]),

    /** The counters of several keys (missing keys: no row). */
    readAttempts: (db: Db, keys: readonly string[]) =>
      db
        .selectFrom('rc_attempts')
        .select(['key', ...ATTEMPT_COLUMNS])
        .where('key', 'in', keys),

    getAttempts: (db: Db, key: string) =>
      db.selectFrom('rc_attempts').select(ATTEMPT_COLUMNS).where('key', '=', key),

    lockAttempts: (db: Db, i: { key: string; until: number }) =>
      db
        .insertInto('rc_attempts')
        .values({ key: i.key, failures: 0, consecutive: 0, lockouts: 1, locked_until: ts(i.until) })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet((eb) => ({
            failures: 0,
            lockouts: eb('rc_attempts.lockouts', '+', 1),
            locked_until: ts(i.until),
          })),
        )
        .returning(ATTEMPT_COLUMNS),

    /** Settle, SQLite, step 1 (same transaction as step 2): delete the reset counters. */
    deleteAttempts: (db: Db, keys: readonly string[]) =>
      db.deleteFrom('rc_attempts').where('key', 'in', keys),

    /**
     * Gives back one reservation on each key (SQLite: settle step 2, after step 1 deleted the reset
     * keys, and the give-back of a denied reserve). The `> 0` guards keep it from going negative
     * under races.
     */
    releaseAttempts: (db: Db, keys: readonly string[]) =>
      db
        .updateTable('rc_attempts')
        .set((eb) => ({
          failures: eb('failures', '-', 1),
          consecutive: eb
            .case()
            .when('consecutive', '>', 0)
            .then(eb('consecutive', '-', 1))
            .else(0)
            .end(),
        }))
        .where('key', 'in', keys)
        .where('failures', '>', 0),

    /**
     * Settle on PostgreSQL, one statement: `l` locks every existing counter named in either list in
     * one fixed order (`ORDER BY key COLLATE "C"`, byte order: the order {@link reserveAttempts}
     * rows are sent in), so a settle and a reserve that share keys cannot deadlock; then the reset
     * counters are deleted (CTE `d`) and the others released (main UPDATE, `failures > 0`). A key in
     * both lists is only deleted: a statement must not modify a row twice. Missing keys: no row in
     * `l`, nothing happens.
     */
    settleAttempts: (db: Db, i: { reset: readonly string[]; release: readonly string[] }) => {
      const all = [...i.reset, ...i.release]
      const locked = (db as Kysely<RecoveryCodesDatabase>).with('l', (qb) =>
        qb
          .selectFrom('rc_attempts')
          .select('key')
          .where('key', 'in', all)
          .orderBy(sql`"key" collate "C"`)
          .forUpdate(),
      )
      if (i.release.length === 0)
        return locked.deleteFrom('rc_attempts').where('key', 'in', (eb) => eb.selectFrom('l').select('l.key'))
      const withDelete =
        i.reset.length === 0
          ? locked
          : (locked.with('d', (qb) =>
              qb
                .deleteFrom('rc_attempts')
                .where('key', 'in', (eb) => eb.selectFrom('l').select('l.key'))
                .where('key', 'in', i.reset),
            ) as unknown as typeof locked)
      const release = withDelete
        .updateTable('rc_attempts')
        .set((eb) => ({
          failures: eb('failures', '-', 1),
          consecutive: eb
            .case()
            .when('consecutive', '>', 0)
            .then(eb('consecutive', '-', 1))
            .else(0)
            .end(),
        }))
        .where('key', 'in', (eb) => eb.selectFrom('l').select('l.key'))
        .where('key', 'in', i.release)
        .where('failures', '>', 0)
      return i.reset.length === 0 ? release : release.where('key', 'not in', i.reset)
    },

    /**
     * One purge chunk: at most `limit` codes whose purge time (the earlier of `changed_at`, set
     * when a code is used, invalidated, deleted or its batch ends, and `expires_at`) is before
     * `before`, oldest first, through the one expression index of `0003_purge_at`. The sub-select
     * walks at most `limit` index entries and hands back physical row addresses (PostgreSQL
     * `ctid`, under `FOR UPDATE SKIP LOCKED`, so two purgers and redeems pass each other and the
     * rows cannot move before the DELETE; SQLite `rowid`), so the DELETE fetches exactly those rows
     * (TID scan / rowid search) instead of joining back through `id`. The eligibility predicate is
     * checked again on the DELETE itself.
     */
    purgeChunk: (db: Db, i: { before: number; limit: number }) => {
      const eligible = sql<boolean>`${PURGE_AT_PRESENT} and ${purgeAt} < ${ts(i.before)}`
      const pick = db.selectFrom('rc_codes').where(eligible).orderBy(purgeAt).limit(i.limit)
      return db
        .deleteFrom('rc_codes')
        .where(
          pg
            ? sql<boolean>`ctid = any(array(${pick.select(sql`ctid`.as('t')).forUpdate().skipLocked()}))`
            : sql<boolean>`rowid in (${pick.select(sql`rowid`.as('r'))})`,
        )
        .where(sql<boolean>`${purgeAt} < ${ts(i.before)}`)
    },

    /**
     * One chunk of expired limiter counters: last reserved before `before` and not locked at or
     * after it. No index serves it (one on `touched_at` would cost every reserve a write and, on
     * PostgreSQL, its HOT update): the sub-select scans the table until it has `limit` rows, and
     * hands back physical addresses as {@link purgeChunk} does. The predicate is checked again on
     * the DELETE.
     */
    purgeAttempts: (db: Db, i: { before: number; limit: number }) => {
      const expired = sql<boolean>`touched_at < ${ts(i.before)} and locked_until < ${ts(i.before)}`
      const pick = db.selectFrom('rc_attempts').where(expired).limit(i.limit)
      return db
        .deleteFrom('rc_attempts')
        .where(
          pg
            ? sql<boolean>`ctid = any(array(${pick.select(sql`ctid`.as('t')).forUpdate().skipLocked()}))`
            : sql<boolean>`rowid in (${pick.select(sql`rowid`.as('r'))})`,
        )
        .where(expired)
    },

    purgeEmptyBatches: (db: Db, i: { before: number; limit: number }) =>
      db
        .deleteFrom('rc_batches')
        .where('id', 'in', (eb) => {
          const pick = eb
            .selectFrom('rc_batches as b')
            .select('b.id')
            .where('b.ended_at', '<', ts(i.before))
            .where('b.status', '<>', 'active')
            .where(({ not, exists, selectFrom }) =>
              not(exists(selectFrom('rc_codes as c').select('c.id').whereRef('c.batch_id', '=', 'b.id'))),
            )
            .orderBy('b.ended_at')
            .limit(i.limit)
          return pg ? pick.forUpdate().skipLocked() : pick
        })
        .where('ended_at', '<', ts(i.before))
        .where('status', '<>', 'active')
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(selectFrom('rc_codes as c').select('c.id').whereRef('c.batch_id', '=', 'rc_batches.id')),
          ),
        ),

    appendAudit: (db: Db, r: AuditRecord) =>
      db.insertInto('rc_audit').values({
        id: r.id,
        at: ts(r.at),
        event: r.event,
        user_id: r.userId,
        batch_id: r.batchId,
        identifier_hash: r.identifierHash,
        client_hash: r.clientHash,
        outcome: r.outcome,
        reason: r.reason,
        data: r.data === null || (r.data as unknown) instanceof Slot ? r.data : JSON.stringify(r.data),
      }),

    listAudit: (db: Db, i: { limit: number; userId?: string; event?: string }) => {
      let q = db.selectFrom('rc_audit').selectAll()
      if (i.userId !== undefined) q = q.where('user_id', '=', i.userId)
      if (i.event !== undefined) q = q.where('event', '=', i.event)
      return q.orderBy('at', 'desc').orderBy('id', 'desc').limit(i.limit)
    },

    purgeAudit: (db: Db, i: { before: number; limit: number }) =>
      db
        .deleteFrom('rc_audit')
        .where('id', 'in', (eb) => {
          const pick = eb
            .selectFrom('rc_audit')
            .select('rc_audit.id')
            .where('rc_audit.at', '<', ts(i.before))
            .orderBy('rc_audit.at')
            .limit(i.limit)
          return pg ? pick.forUpdate().skipLocked() : pick
        })
        .where('at', '<', ts(i.before)),

    appendEmailLog: (db: Db, r: EmailLogRecord) =>
      db.insertInto('rc_email_log').values({
        id: r.id,
        at: ts(r.at),
        user_id: r.userId,
        batch_id: r.batchId,
        kind: r.kind,
        recipient: r.recipient,
        outcome: r.outcome,
      }),
  }
}

/** The query layer's type, for tests. @internal */
export type RecoveryCodesQueries = ReturnType<typeof createQueries>

// ---------------------------------------------------------------------------------------------
// Input checks: strings that cannot be stored are refused before any SQL runs (writes), or read as
// "not found" (reads), identically on both dialects. PostgreSQL `text` cannot hold U+0000.

const hasNul = (s: string) => s.includes('\u0000')

function writeText(field: string, value: unknown, nullable = false): void {
  if (nullable && value === null) return
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT_LENGTH || hasNul(value)) {
    throw new RecoveryCodesError(
      'INVALID_INPUT',
      `${field} must be a non-empty string without NUL, at most ${MAX_TEXT_LENGTH} characters`,
    )
  }
}

/** A read key that no stored row can carry. */
const unreadable = (...values: unknown[]) => values.some((v) => typeof v !== 'string' || hasNul(v))

function time(field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new RecoveryCodesError('INVALID_INPUT', `${field} must be an integer epoch-ms timestamp`)
  }
}

function count(field: string, value: unknown, min = 0): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new RecoveryCodesError('INVALID_INPUT', `${field} must be an integer >= ${min}`)
  }
}

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (!allowed.includes(value as T)) throw new RecoveryCodesError('INVALID_INPUT', `${field} is not allowed`)
}

/** The limiter keys of a reserve: an array of distinct storable keys with integer `maxAttempts >= 0`. */
function attemptKeys(keys: unknown): asserts keys is readonly { key: string; maxAttempts: number }[] {
  if (!Array.isArray(keys)) throw new RecoveryCodesError('INVALID_INPUT', 'keys must be an array')
  const seen = new Set<string>()
  for (const x of keys) {
    writeText('key', x?.key)
    count('maxAttempts', x.maxAttempts)
    if (seen.has(x.key)) throw new RecoveryCodesError('INVALID_INPUT', 'keys must be distinct')
    seen.add(x.key)
  }
}

/** Byte order (= PostgreSQL `COLLATE "C"`): every limiter statement locks shared keys in one order. */
function byteOrder<T extends { key: string }>(keys: readonly T[]): readonly T[] {
  return keys.length === 1
    ? keys
    : [...keys].sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)))
}

/** An audit record that can be stored (`batchId` unchecked when the store sets it itself). */
function auditRecord(record: AuditRecord, checkBatchId = true): void {
  writeText('id', record.id)
  time('at', record.at)
  writeText('event', record.event)
  writeText('userId', record.userId, true)
  if (checkBatchId) writeText('batchId', record.batchId, true)
  writeText('identifierHash', record.identifierHash, true)
  writeText('clientHash', record.clientHash, true)
  oneOf('outcome', record.outcome, ['success', 'failure', 'info'])
  writeText('reason', record.reason, true)
  // JSON.stringify escapes U+0000 as `\u0000`, which PostgreSQL `jsonb` refuses.
  if (
    record.data !== null &&
    (typeof record.data !== 'object' || JSON.stringify(record.data).includes('\\u0000'))
  ) {
    throw new RecoveryCodesError('INVALID_INPUT', 'data must be a plain object without NUL characters')
  }
}

/** The audit parameters of a PostgreSQL redeem without a lookup (never written). */
const NO_AUDIT = (at: number): RedeemQueryInput['audit'] => ({
  id: '',
  at,
  event: '',
  userId: null,
  identifierHash: null,
  clientHash: null,
  outcome: 'info',
  reason: null,
  data: null,
})

/** Rolls a transaction back from inside without surfacing an error. */
class Rollback extends Error {}

function summary(r: Record<string, unknown>): BatchSummary {
  return {
    id: r.id as string,
    userId: r.user_id as string,
    keyId: r.key_id as string,
    status: r.status as BatchStatus,
    createdAt: toMs(r.created_at),
    expiresAt: toMsOrNull(r.expires_at),
    endedAt: toMsOrNull(r.ended_at),
    issued: Number(r.issued),
    unused: Number(r.unused),
    used: Number(r.used),
    invalidated: Number(r.invalidated),
    deleted: Number(r.deleted),
    viewedAt: toMsOrNull(r.viewed_at),
    downloadedAt: toMsOrNull(r.downloaded_at),
    emailedAt: toMsOrNull(r.emailed_at),
    verifiedAt: toMsOrNull(r.verified_at),
    lastUsedAt: toMsOrNull(r.last_used_at),
  }
}

function attempts(r: Record<string, unknown> | undefined): AttemptState {
  if (r === undefined) return { failures: 0, consecutive: 0, lockouts: 0, lockedUntil: 0 }
  return {
    failures: Number(r.failures),
    consecutive: Number(r.consecutive),
    lockouts: Number(r.lockouts),
    lockedUntil: toMs(r.locked_until),
  }
}

function parseData(v: unknown): AuditRecord['data'] {
  if (v === null || v === undefined) return null
  return (typeof v === 'string' ? JSON.parse(v) : v) as AuditRecord['data']
}

/**
 * A {@link RecoveryCodeStore} over a host-supplied Kysely instance: SQLite (better-sqlite3) or
 * PostgreSQL (pg, or PGlite). Run {@link migrateRecoveryCodes} (or the host's `Migrator` with
 * `recoveryCodesMigrations`) first.
 *
 * Guarantees: consume is one conditional `UPDATE … RETURNING` on the unique `(user_id, digest)` row;
 * batch creation supersedes and inserts in one transaction (per-user advisory lock on PostgreSQL,
 * one writer at a time on SQLite); a limiter reservation is one multi-row `INSERT … ON CONFLICT DO UPDATE`
 * for all keys (given back, or rolled back on SQLite, when any key is closed) and a settle one statement;
 * flags and state changes are compare-and-set; purge deletes bounded chunks and re-checks
 * eligibility in the DELETE. Database failures throw `RecoveryCodesError('STORE_UNAVAILABLE')` with
 * the driver error as `cause`; a statement cancelled at its deadline (`57014`, `55P03`, pg's
 * "Query read timeout"; see `createPgPool`) throws `STORE_TIMEOUT` instead, also with the
 * driver error as `cause`; bad input throws `INVALID_INPUT` before any SQL runs.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { Kysely, SqliteDialect } from 'kysely'
 * import { kyselyStore, migrateRecoveryCodes } from '@recovery-codes/store-kysely'
 *
 * const db = new Kysely({ dialect: new SqliteDialect({ database: new Database('app.db') }) })
 * await migrateRecoveryCodes(db)
 * const rc = createRecoveryCodes({ store: kyselyStore(db), … })
 * ```
 */
export function kyselyStore(db: Kysely<any>, options: KyselyStoreOptions = {}) {
  const dialect = options.dialect ?? detectDialect(db)
  oneOf('dialect', dialect, ['sqlite', 'postgres'])
  const k = db as Kysely<RecoveryCodesDatabase>
  const q = createQueries(dialect)
  const pg = dialect === 'postgres'
  const ts = q.ts
  const startDeadlineMs =
    options.startDeadlineMs === undefined ? DEFAULT_PG_DEADLINE_MS : options.startDeadlineMs
  if (startDeadlineMs !== null) count('startDeadlineMs', startDeadlineMs, 1)
  /** The server's clock minus ours (ms) and when it was read ({@link redeemDeadline}). */
  let serverOffset: { ms: number; at: number } | null = null

  // Hot paths (redeem, limiter, audit, purge), compiled once per store: see `template`.
  type S = any
  const hot = {
    consume1: template(
      (i: S) => q.consume(k, { userId: i.userId, digests: [i.digest], now: i.now }),
      ['userId', 'digest', 'now'],
    ),
    consumeN: new Map<number, ReturnType<typeof template>>(),
    markBatchUsed: template((i: S) => q.markBatchUsed(k, i), ['batchId', 'now']),
    getAttempts: template((i: S) => q.getAttempts(k, i.key), ['key']),
    /** Limiter statements by shape (key count; for a settle, `reset:release` counts). */
    attempts: new Map<string, ReturnType<typeof template>>(),
    /** PostgreSQL redeem statements by shape (`keys:reset:digests` counts). */
    redeem: new Map<string, ReturnType<typeof template>>(),
    appendAudit: template(
      (i: S) => q.appendAudit(k, i),
      ['id', 'at', 'event', 'userId', 'batchId', 'identifierHash', 'clientHash', 'outcome', 'reason', 'data'],
    ),
    /** PostgreSQL: the server's clock, epoch ms. */
    serverClock: template(
      () => ({
        compile: () => sql`select (extract(epoch from clock_timestamp()) * 1000)::float8 as ms`.compile(k),
      }),
      [],
    ),
    /** Transaction control for {@link writeTx} (SQLite). */
    beginImmediate: template(() => ({ compile: () => sql`begin immediate`.compile(k) }), []),
    commit: template(() => ({ compile: () => sql`commit`.compile(k) }), []),
    rollback: template(() => ({ compile: () => sql`rollback`.compile(k) }), []),
    purge: template((i: S) => q.purgeChunk(k, { before: i.before, limit: i.limit }), ['before', 'limit']),
  }
  const consumeQuery = (userId: string, digests: Buffer[], now: number): CompiledQuery => {
    if (digests.length === 1) return hot.consume1({ userId, digest: digests[0], now: ts(now) })
    let t = hot.consumeN.get(digests.length)
    if (t === undefined) {
      const names = digests.map((_, n) => `d${n}`)
      t = template(
        (i: S) => q.consume(k, { userId: i.userId, digests: names.map((n) => i[n]), now: i.now }),
        ['userId', 'now', ...names],
      )
      hot.consumeN.set(digests.length, t)
    }
    const values: Record<string, unknown> = { userId, now: ts(now) }
    digests.forEach((d, n) => {
      values[`d${n}`] = d
    })
    return t(values)
  }
  /**
   * A limiter statement compiled once per shape: `build` gets the slots `k0…`, `m0…` (keys,
   * maxAttempts), `r0…`, `l0…` (settle lists) and `now`, as `shape` says.
   */
  const attemptQuery = (
    shape: string,
    lists: { k?: number; m?: number; r?: number; l?: number; now?: boolean },
    build: (i: S, names: (p: string, n: number) => string[]) => Compilable<unknown>,
  ) => {
    let t = hot.attempts.get(shape)
    if (t === undefined) {
      const names = (p: string, n: number) => Array.from({ length: n }, (_, j) => `${p}${j}`)
      const all = [
        ...names('k', lists.k ?? 0),
        ...names('m', lists.m ?? 0),
        ...names('r', lists.r ?? 0),
        ...names('l', lists.l ?? 0),
        ...(lists.now ? ['now'] : []),
      ]
      t = template((i: S) => build(i, names), all)
      // Cache the shapes a service uses (a few keys); an odd large call compiles for itself.
      if (all.length <= MAX_CACHED_SLOTS) hot.attempts.set(shape, t)
    }
    return t
  }
  const slotValues = (p: string, values: readonly unknown[], into: Record<string, unknown> = {}) => {
    values.forEach((v, j) => {
      into[`${p}${j}`] = v
    })
    return into
  }
  /** Multi-row reserve; `keys` already sorted. */
  const reserveQuery = (keys: readonly { key: string; maxAttempts: number }[], now: number) => {
    const n = keys.length
    const t = attemptQuery(`reserve:${n}`, { k: n, m: n, now: true }, (i, names) => {
      const ms = names('m', n)
      return q.reserveAttempts(k, {
        keys: names('k', n).map((kn, j) => ({ key: i[kn], maxAttempts: i[ms[j]!] })),
        now: i.now,
      })
    })
    const values: Record<string, unknown> = { now: ts(now) }
    keys.forEach((x, j) => {
      values[`k${j}`] = x.key
      values[`m${j}`] = x.maxAttempts
    })
    return t(values)
  }
  const readQuery = (keys: readonly string[]) =>
    attemptQuery(`read:${keys.length}`, { k: keys.length }, (i, names) =>
      q.readAttempts(
        k,
        names('k', keys.length).map((n) => i[n]),
      ),
    )(slotValues('k', keys))
  /** PostgreSQL: the one-statement settle. */
  const settleQuery = (reset: readonly string[], release: readonly string[]) =>
    attemptQuery(
      `settle:${reset.length}:${release.length}`,
      { r: reset.length, l: release.length },
      (i, names) =>
        q.settleAttempts(k, {
          reset: names('r', reset.length).map((n) => i[n]),
          release: names('l', release.length).map((n) => i[n]),
        }),
    )(slotValues('l', release, slotValues('r', reset)))
  /**
   * PostgreSQL: the server-clock time after which a redeem sent now must not start, or `null` when
   * `startDeadlineMs` is off. Wall-clock time, not the service's `now` (which a test clock may
   * drive): the deadline is about this call's real wait. The clock offset is read on first use and
   * every {@link SERVER_OFFSET_TTL_MS}, with an error of at most half a round trip.
   */
  async function redeemDeadline(): Promise<number | null> {
    if (startDeadlineMs === null) return null
    const sent = Date.now()
    if (serverOffset === null || sent - serverOffset.at > SERVER_OFFSET_TTL_MS) {
      const { rows } = await exec<{ ms: number | string }>(k, hot.serverClock({}))
      const back = Date.now()
      serverOffset = { ms: Number(rows[0]!.ms) - (sent + back) / 2, at: back }
    }
    return sent + serverOffset.ms + startDeadlineMs
  }

  /**
   * PostgreSQL `reserveAttempts` as `rc_redeem` with no lookup: `missed` is "reserved", `denied`
   * "refused, nothing changed". `null` before migration `0004_attempts_touched`'s function exists.
   */
  async function reserveThroughRedeem(
    keys: readonly { key: string; maxAttempts: number }[],
    now: number,
  ): Promise<AttemptReservation | null> {
    const call = redeemQuery({
      deadline: await redeemDeadline(),
      keys: keys.map((x) => x.key),
      max: keys.map((x) => x.maxAttempts),
      reset: [],
      now,
      userId: '',
      digests: [],
      audit: NO_AUDIT(now),
    })
    type Row = Record<string, unknown> & { key: string | null; outcome: string; failures: number | null }
    const rows = await execRedeem<Row>(call)
    if (rows === null) return null
    const outcome = rows[0]?.outcome
    if (outcome !== 'missed' && outcome !== 'denied') {
      throw new RecoveryCodesError('INTERNAL', 'store-kysely: unexpected rc_redeem result')
    }
    const byKey = new Map(rows.filter((r) => r.key !== null && r.failures !== null).map((r) => [r.key, r]))
    return { allowed: outcome === 'missed', states: keys.map((x) => attempts(byKey.get(x.key))) }
  }

  /** Runs an `rc_redeem` call: its rows, or `null` when the function does not exist (`42883`). */
  async function execRedeem<R>(call: CompiledQuery): Promise<R[] | null> {
    try {
      return (await exec<R>(k, call)).rows
    } catch (e) {
      if ((e as { code?: unknown })?.code === '42883' && String(e).includes('rc_redeem')) return null
      throw e
    }
  }

  /** PostgreSQL: the one-statement redeem, compiled once per shape. */
  const redeemQuery = (i: RedeemQueryInput) => {
    const nk = i.keys.length
    const nr = i.reset.length
    const nd = i.digests.length
    const shape = `${nk}:${nr}:${nd}`
    const AUDIT = [
      'id',
      'at',
      'event',
      'userId',
      'identifierHash',
      'clientHash',
      'outcome',
      'reason',
      'data',
    ] as const
    let t = hot.redeem.get(shape)
    if (t === undefined) {
      const names = (p: string, n: number) => Array.from({ length: n }, (_, j) => `${p}${j}`)
      const [ks, ms, rs, ds] = [names('k', nk), names('m', nk), names('r', nr), names('d', nd)]
      const audit = AUDIT.map((f) => `a_${f}`)
      t = template(
        (s: S) =>
          q.redeem(k, {
            keys: ks.map((n) => s[n]),
            max: ms.map((n) => s[n]),
            reset: rs.map((n) => s[n]),
            now: s.now,
            userId: s.userId,
            digests: ds.map((n) => s[n]),
            audit: Object.fromEntries(AUDIT.map((f, j) => [f, s[audit[j]!]])) as RedeemQueryInput['audit'],
            deadline: s.deadline,
          }),
        [...ks, ...ms, ...rs, ...ds, 'now', 'userId', 'deadline', ...audit],
      )
      if (nk + nr + nd <= MAX_CACHED_SLOTS) hot.redeem.set(shape, t)
    }
    const values: Record<string, unknown> = {
      now: ts(i.now),
      userId: i.userId,
      deadline: i.deadline === null ? null : ts(i.deadline),
    }
    slotValues('k', i.keys, values)
    slotValues('m', i.max, values)
    slotValues('r', i.reset, values)
    slotValues('d', i.digests, values)
    for (const f of AUDIT) values[`a_${f}`] = f === 'at' ? ts(i.audit.at) : i.audit[f]
    return t(values)
  }
  /** SQLite settle steps. */
  const deleteQuery = (keys: readonly string[]) =>
    attemptQuery(`delete:${keys.length}`, { k: keys.length }, (i, names) =>
      q.deleteAttempts(
        k,
        names('k', keys.length).map((n) => i[n]),
      ),
    )(slotValues('k', keys))
  const releaseQuery = (keys: readonly string[]) =>
    attemptQuery(`release:${keys.length}`, { k: keys.length }, (i, names) =>
      q.releaseAttempts(
        k,
        names('k', keys.length).map((n) => i[n]),
      ),
    )(slotValues('k', keys))

  const exec = <R = Record<string, unknown>>(db: Db, c: CompiledQuery): Promise<QueryResult<R>> =>
    db.executeQuery(c as CompiledQuery<R>)

  /** Store call `op`: its failure as a `RecoveryCodesError` with the original as `cause` (see `storeError`). */
  async function run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (e) {
      throw storeError(op, e)
    }
  }

  /**
   * SQLite: a transaction that holds the write lock from its start (`BEGIN IMMEDIATE`, which waits
   * through the busy handler), so it may read before it writes; rolled back when `fn` (or the
   * COMMIT) throws, and that error is rethrown. A failed ROLLBACK is ignored: after SQLITE_FULL,
   * SQLITE_IOERR, … SQLite may have rolled back already ("no transaction is active").
   */
  async function writeTx<T>(fn: (conn: Kysely<RecoveryCodesDatabase>) => Promise<T>): Promise<T> {
    return k.connection().execute(async (conn) => {
      await exec(conn, hot.beginImmediate({}))
      try {
        const result = await fn(conn)
        await exec(conn, hot.commit({}))
        return result
      } catch (e) {
        await exec(conn, hot.rollback({})).catch(() => {})
        throw e
      }
    })
  }

  /** The precompiled audit insert for one record (its `data` as JSON text). */
  const appendAuditQuery = (record: AuditRecord) =>
    hot.appendAudit({
      id: record.id,
      at: ts(record.at),
      event: record.event,
      userId: record.userId,
      batchId: record.batchId,
      identifierHash: record.identifierHash,
      clientHash: record.clientHash,
      outcome: record.outcome,
      reason: record.reason,
      data: record.data === null ? null : JSON.stringify(record.data),
    })

  /**
   * A purge chunk: `purge` alone (autocommit) without an audit row; with one, `purge` and the row
   * ({@link purgedAudit}, written only when something was deleted) in one transaction.
   */
  async function withPurgeAudit(
    audit: AuditRecord | undefined,
    purge: (db: Db) => Promise<number>,
  ): Promise<number> {
    if (audit === undefined) return purge(k)
    return tx(async (trx) => {
      const deleted = await purge(trx)
      if (deleted > 0) await exec(trx, appendAuditQuery(purgedAudit(audit, deleted)))
      return deleted
    })
  }

  /**
   * A transaction that can be rolled back quietly with `Rollback`, resolving to `fallback`. SQLite:
   * {@link writeTx}; PostgreSQL: Kysely's (a host's driver may hook BEGIN, see `pgPreparedStatements`).
   * When `fn` throws, its error is the one rethrown, never a failed ROLLBACK's after it.
   */
  async function tx<T>(fn: (trx: Kysely<RecoveryCodesDatabase>) => Promise<T>, fallback?: T): Promise<T> {
    let failed: { error: unknown } | undefined
    const body = async (trx: Kysely<RecoveryCodesDatabase>) => {
      try {
        return await fn(trx)
      } catch (error) {
        failed = { error }
        throw error
      }
    }
    try {
      return await (pg ? k.transaction().execute(body) : writeTx(body))
    } catch (e) {
      const error = failed === undefined ? e : failed.error
      if (error instanceof Rollback) return fallback as T
      throw error
    }
  }

  const store = {
    createBatch: (batch: NewBatch, codes: readonly NewCode[], audit?: AuditRecord) =>
      run('createBatch', async () => {
        if (audit !== undefined) auditRecord(audit)
        writeText('batch.id', batch.id)
        writeText('batch.userId', batch.userId)
        writeText('batch.keyId', batch.keyId)
        time('batch.createdAt', batch.createdAt)
        if (batch.expiresAt !== null) time('batch.expiresAt', batch.expiresAt)
        for (const c of codes) {
          writeText('code.id', c.id)
          bytes(c.digest)
        }
        await tx(async (trx) => {
          if (pg) await q.lockUser(batch.userId).execute(trx)
          // Every SQLite transaction here starts with a write, so it takes the write lock at once
          // (busy handler honoured) instead of failing a read-to-write upgrade.
          await q.endActiveBatchCodes(trx, { userId: batch.userId, now: batch.createdAt }).execute()
          await q.supersedeActive(trx, { userId: batch.userId, now: batch.createdAt }).execute()
          await q.insertBatch(trx, batch, codes.length).execute()
          for (let i = 0; i < codes.length; i += INSERT_CHUNK) {
            await q.insertCodes(trx, batch, codes.slice(i, i + INSERT_CHUNK)).execute()
          }
          if (audit !== undefined) await exec(trx, appendAuditQuery(audit))
        })
      }),

    consumeCode: (input: { userId: string; digests: readonly Uint8Array[]; now: number }) =>
      run('consumeCode', async (): Promise<ConsumedCode | null> => {
        time('now', input.now)
        const digests = input.digests.map(bytes)
        if (digests.length === 0 || unreadable(input.userId)) return null
        type Row = { id: string; batch_id: string; key_id: string; unused?: number | string }
        if (pg) {
          // One autocommit statement: the code UPDATE and the batch counters (data-modifying CTE).
          const { rows } = await exec<Row>(k, consumeQuery(input.userId, digests, input.now))
          const row = rows[0]
          if (row === undefined) return null
          return {
            codeId: row.id,
            batchId: row.batch_id,
            keyId: row.key_id,
            remaining: Number(row.unused ?? 0),
          }
        }
        return tx(async (trx) => {
          // Exactly one row at most (see `consume`); the counters in the same transaction.
          const { rows } = await exec<Row>(trx, consumeQuery(input.userId, digests, input.now))
          const row = rows[0]
          if (row === undefined) return null
          const batch = await exec<{ unused: number }>(
            trx,
            hot.markBatchUsed({ batchId: row.batch_id, now: ts(input.now) }),
          )
          return {
            codeId: row.id,
            batchId: row.batch_id,
            keyId: row.key_id,
            remaining: Number(batch.rows[0]?.unused ?? 0),
          }
        })
      }),

    findCode: (input: { userId: string; digests: readonly Uint8Array[]; now: number }) =>
      run('findCode', async (): Promise<CodeMatch | null> => {
        time('now', input.now)
        const digests = input.digests.map(bytes)
        if (digests.length === 0 || unreadable(input.userId)) return null
        const rows = await q.find(k, { userId: input.userId, digests, now: input.now }).execute()
        for (const d of digests) {
          const row = rows.find((r) => Buffer.from(r.digest).equals(d))
          if (row !== undefined) return { codeId: row.id, batchId: row.batch_id, keyId: row.key_id }
        }
        return null
      }),

    setCodeState: (input: {
      userId: string
      codeId: string
      to: 'invalidated' | 'deleted'
      now: number
      audit?: AuditRecord
    }) =>
      run('setCodeState', async () => {
        oneOf('to', input.to, ['invalidated', 'deleted'])
        time('now', input.now)
        if (input.audit !== undefined) auditRecord(input.audit)
        if (unreadable(input.userId, input.codeId)) return false
        return tx(async (trx) => {
          const row = await q.setCodeState(trx, input).executeTakeFirst()
          if (row === undefined) return false
          await q.countStateChange(trx, { batchId: row.batch_id, to: input.to }).execute()
          if (input.audit !== undefined) await exec(trx, appendAuditQuery(input.audit))
          return true
        })
      }),

    endBatch: (input: {
      userId: string
      batchId: string
      to: 'disabled' | 'deleted'
      now: number
      audit?: AuditRecord
    }) =>
      run('endBatch', async () => {
        oneOf('to', input.to, ['disabled', 'deleted'])
        time('now', input.now)
        if (input.audit !== undefined) auditRecord(input.audit)
        if (unreadable(input.userId, input.batchId)) return false
        return tx(async (trx) => {
          await q.endBatchCodes(trx, input).execute()
          const row = await q.endBatch(trx, input).executeTakeFirst()
          if (row === undefined) throw new Rollback()
          if (input.audit !== undefined) await exec(trx, appendAuditQuery(input.audit))
          return true
        }, false)
      }),

    setBatchFlag: (input: { userId: string; batchId: string; flag: BatchFlag; now: number }) =>
      run('setBatchFlag', async () => {
        oneOf('flag', input.flag, ['viewed', 'downloaded', 'emailed', 'verified'])
        time('now', input.now)
        if (unreadable(input.userId, input.batchId)) return false
        const row = await q.setBatchFlag(k, input).executeTakeFirst()
        return row !== undefined
      }),

    getActiveBatch: (userId: string) =>
      run('getActiveBatch', async () => {
        if (unreadable(userId)) return null
        const row = await q.activeBatch(k, userId).executeTakeFirst()
        return row === undefined ? null : summary(row)
      }),

    listBatches: (input: { userId: string; offset: number; limit: number }) =>
      run('listBatches', async () => {
        count('offset', input.offset)
        count('limit', input.limit)
        if (unreadable(input.userId)) return { items: [], total: 0 }
        const [rows, total] = await Promise.all([
          input.limit === 0 ? Promise.resolve([]) : q.history(k, input).execute(),
          q.historyTotal(k, input.userId).executeTakeFirst(),
        ])
        return { items: rows.map(summary), total: Number(total?.total ?? 0) }
      }),

    reserveAttempts: (input: { keys: readonly { key: string; maxAttempts: number }[]; now: number }) =>
      run('reserveAttempts', async (): Promise<AttemptReservation> => {
        time('now', input.now)
        const keys = input.keys
        attemptKeys(keys)
        if (keys.length === 0) return { allowed: true, states: [] }
        type Row = Record<string, unknown> & { key: string }
        const statesOf = (rows: readonly Row[]) => {
          const byKey = new Map(rows.map((r) => [r.key, r]))
          return keys.map((x) => attempts(byKey.get(x.key)))
        }
        const read = async () => statesOf((await exec<Row>(k, readQuery(keys.map((x) => x.key)))).rows)
        if (keys.some((x) => x.maxAttempts < 1)) return { allowed: false, states: await read() }
        if (pg) {
          // `rc_redeem` without a lookup: the reserve, all or nothing in one transaction, under the
          // start deadline (a reserve that reaches a thawed server late changes nothing).
          const reserved = await reserveThroughRedeem(keys, input.now)
          if (reserved !== null) return reserved
        }
        const reserve = reserveQuery(byteOrder(keys), input.now)
        if (pg) {
          // Without `rc_redeem`: one autocommit statement. When a key is closed the others may have
          // been reserved: give them back before returning (one more statement, only on the denied path).
          const { rows } = await exec<Row>(k, reserve)
          if (rows.length === keys.length) return { allowed: true, states: statesOf(rows) }
          if (rows.length > 0)
            await exec(
              k,
              settleQuery(
                [],
                rows.map((r) => r.key),
              ),
            )
          return { allowed: false, states: await read() }
        }
        // SQLite: a transaction, rolled back when a key is closed (strictly all or nothing).
        const rows = await tx(async (trx) => {
          const r = await exec<Row>(trx, reserve)
          if (r.rows.length < keys.length) throw new Rollback()
          return r.rows
        }, null)
        if (rows !== null) return { allowed: true, states: statesOf(rows) }
        return { allowed: false, states: await read() }
      }),

    settleAttempts: (input: { reset: readonly string[]; release: readonly string[] }) =>
      run('settleAttempts', async () => {
        if (!Array.isArray(input.reset) || !Array.isArray(input.release)) {
          throw new RecoveryCodesError('INVALID_INPUT', 'reset and release must be arrays')
        }
        // A key no row can carry is missing: ignored, like any missing key.
        const reset = [...new Set(input.reset.filter((x) => !unreadable(x)))]
        const resetSet = new Set(reset)
        const release = [...new Set(input.release.filter((x) => !unreadable(x) && !resetSet.has(x)))]
        if (reset.length === 0 && release.length === 0) return
        if (pg) {
          await exec(k, settleQuery(reset, release))
          return
        }
        if (release.length === 0) {
          await exec(k, deleteQuery(reset))
          return
        }
        if (reset.length === 0) {
          await exec(k, releaseQuery(release))
          return
        }
        await tx(async (trx) => {
          await exec(trx, deleteQuery(reset))
          await exec(trx, releaseQuery(release))
        })
      }),

    /**
     * A redeem in one call, equal in result to {@link composeRedeemCode}. PostgreSQL: one statement,
     * one round trip (the `rc_redeem` function of migration `0002_redeem`, one transaction; a
     * database not yet migrated to it gets the composition instead). SQLite: one `BEGIN IMMEDIATE`
     * transaction (see below). Both are all or nothing: a failed call leaves no reservation, a
     * denied call never shows a reservation to anyone, and a failing audit insert undoes the
     * consume. Malformed input (the audit record too, when there is a lookup) throws
     * `INVALID_INPUT` before any SQL runs.
     */
    redeemCode: (input: RedeemCodeInput) =>
      run('redeemCode', async (): Promise<RedeemCodeOutcome> => {
        const { keys, audit, now } = input
        time('now', now)
        attemptKeys(keys)
        if (!Array.isArray(input.reset))
          throw new RecoveryCodesError('INVALID_INPUT', 'reset must be an array')
        const digests = input.digests.map(bytes)
        // As `consumeCode`: nothing to look up, or a user id no row can carry, is a miss.
        const lookup = digests.length > 0 && !unreadable(input.userId)
        // The audit record is only written on a consume: checked when there is a lookup.
        if (lookup) auditRecord(audit, false)
        const { reset } = settlement(keys, input.reset)
        type Row = Record<string, unknown> & { key: string }
        const statesOf = (rows: readonly Row[]) => {
          const byKey = new Map(rows.map((r) => [r.key, r]))
          return keys.map((x) => attempts(byKey.get(x.key)))
        }
        const read = async () => statesOf((await exec<Row>(k, readQuery(keys.map((x) => x.key)))).rows)
        // As `reserveAttempts`: a key that allows no attempt denies without reserving anything.
        if (keys.some((x) => x.maxAttempts < 1)) return { outcome: 'denied', states: await read() }

        if (pg) {
          type RedeemRow = {
            outcome: string
            key: string | null
            failures: number | null
            code_id: string
            batch_id: string
            key_id: string
            remaining: number | string | null
          }
          const call = redeemQuery({
            deadline: await redeemDeadline(),
            keys: keys.map((x) => x.key),
            max: keys.map((x) => x.maxAttempts),
            reset,
            now,
            userId: lookup ? input.userId : '',
            digests: lookup ? digests : [],
            audit: lookup
              ? {
                  id: audit.id,
                  at: audit.at,
                  event: audit.event,
                  userId: audit.userId,
                  identifierHash: audit.identifierHash,
                  clientHash: audit.clientHash,
                  outcome: audit.outcome,
                  reason: audit.reason,
                  data: audit.data === null ? null : JSON.stringify(audit.data),
                }
              : NO_AUDIT(now),
          })
          const rows = await execRedeem<RedeemRow>(call)
          // Without the function (`undefined_function`): the four calls, same result.
          if (rows === null) return composeRedeemCode(store, input)
          const first = rows[0]
          if (first?.outcome === 'consumed') {
            return {
              outcome: 'consumed',
              code: {
                codeId: first.code_id,
                batchId: first.batch_id,
                keyId: first.key_id,
                remaining: Number(first.remaining ?? 0),
              },
            }
          }
          if (first?.outcome !== 'denied' && first?.outcome !== 'missed') {
            throw new RecoveryCodesError('INTERNAL', 'store-kysely: unexpected rc_redeem result')
          }
          // One row per key; a key without a counter row comes back with null counters.
          return {
            outcome: first.outcome,
            states: statesOf(rows.filter((r): r is Row & RedeemRow => r.key !== null && r.failures !== null)),
          }
        }

        if (keys.length === 0 && !lookup) return { outcome: 'missed', states: [] }
        // SQLite: one write transaction (`BEGIN IMMEDIATE`: the write lock from the start, so
        // nothing else runs until it commits). Serialised like that, reserve → consume → settle has
        // the same result as: read the counters; any key closed → `denied`, nothing written; no
        // code → reserve (the upsert of `reserveAttempts`) → `missed`; a code → consume, delete the
        // reset counters, and leave the others as they were (a reservation given back in the same
        // transaction is no change at all). Fewer statements and pages written than the four calls.
        return writeTx(async (conn): Promise<RedeemCodeOutcome> => {
          const byKey = new Map<string, Row>()
          if (keys.length > 0) {
            const { rows } = await exec<Row>(conn, readQuery(keys.map((x) => x.key)))
            for (const r of rows) byKey.set(r.key, r)
            const states = keys.map((x) => attempts(byKey.get(x.key)))
            // Open: not locked (`now >= lockedUntil`) and fewer failures than maxAttempts (>= 1 here).
            if (states.some((st, j) => now < st.lockedUntil || st.failures >= keys[j]!.maxAttempts)) {
              return { outcome: 'denied', states }
            }
          }
          const miss = async (): Promise<RedeemCodeOutcome> => {
            if (keys.length === 0) return { outcome: 'missed', states: [] }
            const r = await exec<Row>(conn, reserveQuery(byteOrder(keys), now))
            // Every key was open a moment ago under the same write lock.
            if (r.rows.length < keys.length) throw new RecoveryCodesError('INTERNAL', 'reservation lost')
            return { outcome: 'missed', states: statesOf(r.rows) }
          }
          if (!lookup) return miss()
          type CodeRow = { id: string; batch_id: string; key_id: string }
          const { rows } = await exec<CodeRow>(conn, consumeQuery(input.userId, digests, now))
          const row = rows[0]
          if (row === undefined) return miss()
          const batch = await exec<{ unused: number }>(
            conn,
            hot.markBatchUsed({ batchId: row.batch_id, now: ts(now) }),
          )
          const code: ConsumedCode = {
            codeId: row.id,
            batchId: row.batch_id,
            keyId: row.key_id,
            remaining: Number(batch.rows[0]?.unused ?? 0),
          }
          const stored = reset.filter((key) => byKey.has(key))
          if (stored.length > 0) await exec(conn, deleteQuery(stored))
          await exec(conn, appendAuditQuery(consumedAudit(audit, code)))
          return { outcome: 'consumed', code }
        })
      }),

    getAttempts: (key: string) =>
      run('getAttempts', async () => {
        if (unreadable(key)) return attempts(undefined)
        return attempts(await q.getAttempts(k, key).executeTakeFirst())
      }),

    lockAttempts: (input: { key: string; until: number }) =>
      run('lockAttempts', async () => {
        writeText('key', input.key)
        time('until', input.until)
        return attempts(await q.lockAttempts(k, input).executeTakeFirst())
      }),

    purgeCodes: (input: { before: number; limit: number; audit?: AuditRecord }) =>
      run('purgeCodes', async () => {
        time('before', input.before)
        count('limit', input.limit)
        if (input.audit !== undefined) auditRecord(input.audit)
        if (input.limit === 0) return 0
        // One short statement, or one chunk-sized transaction with its audit row: no transaction
        // spans chunks.
        return withPurgeAudit(input.audit, async (db) => {
          const r = await exec(db, hot.purge({ before: ts(input.before), limit: input.limit }))
          return Number(r.numAffectedRows ?? 0)
        })
      }),

    purgeEmptyBatches: (input: { before: number; limit: number; audit?: AuditRecord }) =>
      run('purgeEmptyBatches', async () => {
        time('before', input.before)
        count('limit', input.limit)
        if (input.audit !== undefined) auditRecord(input.audit)
        if (input.limit === 0) return 0
        return withPurgeAudit(input.audit, async (db) => {
          const r = await q.purgeEmptyBatches(db, input).executeTakeFirst()
          return Number(r.numDeletedRows)
        })
      }),

    appendAudit: (record: AuditRecord) =>
      run('appendAudit', async () => {
        auditRecord(record)
        await exec(k, appendAuditQuery(record))
      }),

    listAudit: (input: { limit: number; userId?: string; event?: string }) =>
      run('listAudit', async () => {
        count('limit', input.limit)
        if (input.limit === 0) return []
        if (
          (input.userId !== undefined && unreadable(input.userId)) ||
          (input.event !== undefined && unreadable(input.event))
        ) {
          return []
        }
        const rows = await q.listAudit(k, input).execute()
        return rows.map(
          (r): AuditRecord => ({
            id: r.id,
            at: toMs(r.at),
            event: r.event,
            userId: r.user_id,
            batchId: r.batch_id,
            identifierHash: r.identifier_hash,
            clientHash: r.client_hash,
            outcome: r.outcome as AuditRecord['outcome'],
            reason: r.reason,
            data: parseData(r.data),
          }),
        )
      }),

    purgeAttempts: (input: { before: number; limit: number }) =>
      run('purgeAttempts', async () => {
        time('before', input.before)
        count('limit', input.limit)
        if (input.limit === 0) return 0
        const r = await q.purgeAttempts(k, input).executeTakeFirst()
        return Number(r.numDeletedRows)
      }),

    purgeAudit: (input: { before: number; limit: number }) =>
      run('purgeAudit', async () => {
        time('before', input.before)
        count('limit', input.limit)
        if (input.limit === 0) return 0
        const r = await q.purgeAudit(k, input).executeTakeFirst()
        return Number(r.numDeletedRows)
      }),

    appendEmailLog: (record: EmailLogRecord) =>
      run('appendEmailLog', async () => {
        writeText('id', record.id)
        time('at', record.at)
        writeText('userId', record.userId)
        writeText('batchId', record.batchId)
        writeText('kind', record.kind)
        writeText('recipient', record.recipient)
        oneOf('outcome', record.outcome, ['sent', 'failed'])
        await q.appendEmailLog(k, record).execute()
      }),
  } satisfies RecoveryCodeStore
  return store
}
