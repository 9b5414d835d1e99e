/**
 * Statements of the batches aggregate (batches and their codes): consume, find, create and
 * supersede, state changes, flags, the active batch and history. Uncompiled Kysely builders; the
 * store compiles the hot ones once (`sql/template.ts`).
 */
import type { BatchFlag, NewBatch, NewCode } from '@recovery-codes/core'
import { sql } from 'kysely'
import type { SqlDialect } from '../dialect.ts'
import { BATCH_COLUMNS } from '../rows.ts'
import { bytes } from '../sql/template.ts'
import type { Db } from './db.ts'

const FLAG_COLUMN = {
  viewed: 'viewed_at',
  downloaded: 'downloaded_at',
  emailed: 'emailed_at',
  verified: 'verified_at',
} as const satisfies Record<BatchFlag, string>

const STATE_COUNTER = { invalidated: 'invalidated', deleted: 'deleted' } as const
const END_STATUS = { disabled: 'disabled', deleted: 'deleted' } as const

/** The statements of the batches aggregate for dialect `d`. */
export function batchQueries(d: SqlDialect) {
  const { ts } = d

  /** The usable-code predicate of consume (state, batch state, expiry). */
  const usable = (alias: string, userId: string, now: number) =>
    // biome-ignore lint/suspicious/noExplicitAny: `rc_codes` or its alias `c1`
    ((eb: any) =>
      eb.and([
        eb(`${alias}.state`, '=', 'active'),
        eb(`${alias}.changed_at`, 'is', null),
        eb.or([eb(`${alias}.expires_at`, 'is', null), eb(`${alias}.expires_at`, '>', ts(now))]),
        d.inActiveBatch(eb, `${alias}.batch_id`, userId),
      ])) as never

  /** A batch row with the live use counts of its code rows (see `summary`). */
  const summaryOf = (db: Db) =>
    db
      .selectFrom('rc_batches as b')
      .select(BATCH_COLUMNS.map((c) => `b.${c}` as const))
      .select((eb) => [
        eb
          .selectFrom('rc_codes as c')
          .select(eb.fn.countAll().as('n'))
          .whereRef('c.batch_id', '=', 'b.id')
          .where('c.state', '=', 'used')
          .as('live_used'),
        eb
          .selectFrom('rc_codes as c')
          .select((e) => e.fn.max('c.used_at').as('m'))
          .whereRef('c.batch_id', '=', 'b.id')
          .where('c.state', '=', 'used')
          .as('live_last_used_at'),
      ])

  /**
   * The consume UPDATE without its `RETURNING`: exactly one row at most. One digest: `(user_id,
   * digest)` is unique. Several digests (pepper rotation): the row is picked by a sub-select in
   * digest order, `LIMIT 1` (`FOR UPDATE` on PostgreSQL, so a concurrent consumer waits and
   * re-checks rather than skipping); the outer UPDATE re-checks the predicate.
   */
  const consumeWhere = (
    db: Db,
    i: { userId: string; digests?: readonly Uint8Array[]; digest?: Uint8Array; now: number },
  ) => {
    const ds = (i.digests ?? [i.digest as Uint8Array]).map(bytes)
    const base = db
      .updateTable('rc_codes')
      .set({ state: 'used', used_at: ts(i.now) })
      .where('rc_codes.user_id', '=', i.userId)
      .where(usable('rc_codes', i.userId, i.now))
    if (ds.length === 1) return base.where('rc_codes.digest', '=', ds[0]!)
    return base.where('rc_codes.id', '=', (eb) => {
      const pick = eb
        .selectFrom('rc_codes as c1')
        .select('c1.id')
        .where('c1.user_id', '=', i.userId)
        .where('c1.digest', 'in', ds)
        .where(usable('c1', i.userId, i.now))
        .orderBy((e) => {
          let order = e.case().when('c1.digest', '=', ds[0]!).then(0)
          for (let n = 1; n < ds.length; n++) order = order.when('c1.digest', '=', ds[n]!).then(n)
          return order.end()
        })
        .limit(1)
      return d.pg ? pick.forUpdate() : pick
    })
  }

  return {
    ts,

    /**
     * Consume: one conditional UPDATE of exactly one row (see `consumeWhere`), and of nothing
     * else: `state` and `used_at` are in no index, so the row's page is the only page it writes.
     */
    consume: (
      db: Db,
      i: { userId: string; digests?: readonly Uint8Array[]; digest?: Uint8Array; now: number },
    ) => consumeWhere(db, i).returning(['rc_codes.id', 'rc_codes.batch_id', 'rc_codes.key_id']),

    /**
     * SQLite's redeem: {@link consume} only while every limiter key is open (not locked, fewer
     * failures than its max; a key without a counter is open), returning with the code what its
     * batch has left (`remaining`). In `RETURNING`, SQLite evaluates the sub-select after the row's
     * change, so the consumed code no longer counts. It also returns `held_j`, 1 when key `j` has a
     * counter row, so the caller deletes reset counters only when one exists. One
     * statement where a read of the counters, the consume and a count were three; when nothing
     * comes back the caller reads the counters to tell a closed key from a miss.
     */
    consumeIfOpen: (
      db: Db,
      i: {
        userId: string
        digests: readonly Uint8Array[]
        now: number
        keys: readonly { key: string; maxAttempts: number }[]
      },
    ) => {
      let q = consumeWhere(db, i)
      // One NOT EXISTS per key: each is one probe of the key's index. (An OR of the keys in one
      // sub-select makes SQLite build a MULTI-INDEX OR row set per call: 35 µs where two probes
      // cost 3, measured at 1M rows.)
      for (const key of i.keys) {
        q = q.where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('rc_attempts as a')
                .select('a.key')
                .where('a.key', '=', key.key)
                .where((eb) =>
                  eb.or([eb('a.locked_until', '>', ts(i.now)), eb('a.failures', '>=', key.maxAttempts)]),
                ),
            ),
          ),
        )
      }
      // `held_j`: key j has a counter row, so a reset of it has something to delete.
      return q.returning((eb) => [
        'rc_codes.id',
        'rc_codes.batch_id',
        'rc_codes.key_id',
        sql<number>`(select count(*) from rc_codes as x where x.batch_id = rc_codes.batch_id and x.state = 'active')`.as(
          'remaining',
        ),
        ...i.keys.map((key, j) =>
          eb
            .exists(eb.selectFrom('rc_attempts as c').select('c.key').where('c.key', '=', key.key))
            .as(`held_${j}`),
        ),
      ])
    },

    /**
     * The batch's codes still usable after a consume, through the `rc_codes(batch_id)` index (a
     * batch holds a few codes); run after {@link lockBatch} in the consume's transaction.
     */
    remaining: (db: Db, i: { batchId: string }) =>
      db
        .selectFrom('rc_codes')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('batch_id', '=', i.batchId)
        .where('state', '=', 'active'),

    /** See {@link SqlDialect.lockBatch}. */
    lockBatch: (batchId: string) => d.lockBatch(batchId),

    find: (db: Db, i: { userId: string; digests: readonly Uint8Array[]; now: number }) =>
      db
        .selectFrom('rc_codes')
        .select(['id', 'batch_id', 'key_id', 'digest'])
        .where('user_id', '=', i.userId)
        .where('digest', 'in', i.digests.map(bytes))
        .where(usable('rc_codes', i.userId, i.now)),

    /** Serialises batch creation per user (`null`: the dialect's transactions already do). */
    lockUser: (userId: string) => d.lockUser(userId),

    /** Supersede, step 1: mark the active batch's live codes dead (codes before batches: one lock order). */
    endActiveBatchCodes: (db: Db, i: { userId: string; now: number }) =>
      db
        .updateTable('rc_codes')
        .set({ changed_at: ts(i.now) })
        .where('user_id', '=', i.userId)
        .where('changed_at', 'is', null)
        .where((eb) => d.inActiveBatch(eb, 'rc_codes.batch_id', i.userId)),

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
        purged_used: 0,
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

    /**
     * `addCodes`, step 1: the compare-and-set that raises the batch's `issued` by `count`, only
     * while it is the user's active batch and unexpired at `now` (the one row of the primary key).
     * PostgreSQL and SQLite add `RETURNING key_id, expires_at`, what the added codes copy, and
     * then {@link insertCodes} them with `createdAt = now`; MySQL reads those first
     * (`queries/mysql.ts` `addedTo`), inserts, and runs this last, counting the affected row.
     */
    raiseIssued: (db: Db, i: { userId: string; batchId: string; now: number; count: number }) =>
      db
        .updateTable('rc_batches')
        .set((eb) => ({ issued: eb('issued', '+', i.count) }))
        .where('id', '=', i.batchId)
        .where('user_id', '=', i.userId)
        .where('status', '=', 'active')
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', ts(i.now))])),

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
        .set((eb) => ({ [col]: eb(col, '+', 1) }))
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
      summaryOf(db).where('b.user_id', '=', userId).where('b.status', '=', 'active'),

    /** History: a range of the `(user_id, created_at desc, id desc)` index. */
    history: (db: Db, i: { userId: string; offset: number; limit: number }) =>
      summaryOf(db)
        .where('b.user_id', '=', i.userId)
        .orderBy('b.created_at', 'desc')
        .orderBy('b.id', 'desc')
        .limit(i.limit)
        .offset(i.offset),

    historyTotal: (db: Db, userId: string) =>
      db
        .selectFrom('rc_batches')
        .select((eb) => eb.fn.countAll().as('total'))
        .where('user_id', '=', userId),
  }
}
