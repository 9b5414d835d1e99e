/**
 * The MySQL / MariaDB forms of the statements whose SQLite and PostgreSQL forms rest on what MySQL
 * lacks: `RETURNING`, `ON CONFLICT … DO UPDATE … WHERE`, partial and expression indexes, and a
 * DELETE that picks rows of its own table. Each write here is one step of a READ COMMITTED
 * transaction of `store/mysql*.ts`, which holds the locks in the store's one order: limiter rows
 * (byte order) → code rows → batch rows (id order) → appended rows. Uncompiled Kysely builders,
 * like the other `queries/` files; inputs only ever reach parameters.
 */
import type { BatchFlag } from '@recovery-codes/core'
import { sql } from 'kysely'
import type { SqlDialect } from '../dialect.ts'
import { bytes } from '../sql/template.ts'
import { ATTEMPT_COLUMNS } from './attempts.ts'
import type { Db } from './db.ts'

/**
 * The `touched_at` of a placeholder limiter row: BIGINT's minimum, which no caller can write
 * (every `now` is a safe integer), so a transaction knows which locked rows are its own
 * placeholders. A placeholder never commits with it (see `lockAttemptRows`).
 */
export const MYSQL_PLACEHOLDER_TOUCHED = -9223372036854775808n

/** The purge time of a code row: the stored generated column `purge_at` (see `migrations/mysql.ts`). */
const PURGE_AT = sql`purge_at`

const FLAG_COLUMN = {
  viewed: 'viewed_at',
  downloaded: 'downloaded_at',
  emailed: 'emailed_at',
  verified: 'verified_at',
} as const satisfies Record<BatchFlag, string>

/** One purge fold: the used codes of batch `batchId` a chunk deleted, and the latest `used_at`. */
export interface MysqlFold {
  batchId: string
  used: number
  lastUsedAt: number
}

/** The MySQL statements for dialect `d` (always `sqlDialect('mysql')`). */
export function mysqlQueries(d: SqlDialect) {
  const { ts } = d
  return {
    /**
     * Limiter lock, step 1: every existing row of `keys` (in byte order: the PK order the range
     * locks in), `FOR UPDATE`; `placeholder` is 1 for a row this transaction inserted in step 2.
     */
    lockAttemptRows: (db: Db, keys: readonly string[]) =>
      db
        .selectFrom('rc_attempts')
        .select(['key', ...ATTEMPT_COLUMNS])
        .select(sql<number>`touched_at = ${MYSQL_PLACEHOLDER_TOUCHED}`.as('placeholder'))
        .where('key', 'in', keys)
        .forUpdate(),

    /**
     * Limiter lock, step 2: a zero placeholder row for each key step 1 did not find, so that it is
     * locked too (READ COMMITTED locks no row that does not exist). `ON DUPLICATE KEY UPDATE`, not
     * a plain INSERT: its duplicate check takes an exclusive lock on a row another transaction
     * created (or deleted) meanwhile, instead of a shared lock to upgrade later, which deadlocked.
     */
    insertPlaceholders: (db: Db, keys: readonly string[]) =>
      db
        .insertInto('rc_attempts')
        .values(
          keys.map((key) => ({
            key,
            failures: 0,
            consecutive: 0,
            lockouts: 0,
            locked_until: ts(0),
            touched_at: MYSQL_PLACEHOLDER_TOUCHED as never,
          })),
        )
        .onDuplicateKeyUpdate({ touched_at: sql`touched_at` }),

    /** The reservation, on rows the transaction has locked: one failure on every key. */
    incrementAttempts: (db: Db, i: { keys: readonly string[]; now: number }) =>
      db
        .updateTable('rc_attempts')
        .set((eb) => ({
          failures: eb('failures', '+', 1),
          consecutive: eb('consecutive', '+', 1),
          touched_at: ts(i.now),
        }))
        .where('key', 'in', i.keys),

    /** Settle with both lists: the rows of every key locked first, in one statement (byte order). */
    lockSettleRows: (db: Db, keys: readonly string[]) =>
      db.selectFrom('rc_attempts').select('key').where('key', 'in', keys).forUpdate(),

    /** `lockAttempts` (no RETURNING: the store reads the row back in the same transaction). */
    lockAttempts: (db: Db, i: { key: string; until: number }) =>
      db
        .insertInto('rc_attempts')
        .values({ key: i.key, failures: 0, consecutive: 0, lockouts: 1, locked_until: ts(i.until) })
        .onDuplicateKeyUpdate((eb) => ({
          failures: 0,
          lockouts: eb('lockouts', '+', 1),
          locked_until: ts(i.until),
        })),

    /**
     * Consume, step 1: the first usable code row of `digests` (in their order), `FOR UPDATE`. A
     * concurrent consumer of the same row waits, then reads the committed row, which no longer
     * matches. No sub-select on `rc_batches` here: no plan can lock a batch row before the code
     * row; step 2 checks the batch on its locked row.
     */
    pickCode: (db: Db, i: { userId: string; digests: readonly Uint8Array[]; now: number }) => {
      const ds = i.digests.map(bytes)
      let pick = db
        .selectFrom('rc_codes')
        .select(['id', 'batch_id', 'key_id'])
        .where('user_id', '=', i.userId)
        .where((eb) => (ds.length === 1 ? eb('digest', '=', ds[0]!) : eb('digest', 'in', ds)))
        .where('state', '=', 'active')
        .where('changed_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', ts(i.now))]))
      if (ds.length > 1) {
        pick = pick.orderBy((eb) => {
          let order = eb.case().when('digest', '=', ds[0]!).then(0)
          for (let n = 1; n < ds.length; n++) order = order.when('digest', '=', ds[n]!).then(n)
          return order.end()
        })
      }
      return pick.limit(1).forUpdate()
    },

    /**
     * Consume, step 2: the code's batch row, `FOR UPDATE` (after the code row: the store's lock
     * order). It serialises the consumes of one batch, so each one's count of what is left (a new
     * statement, a fresh READ COMMITTED snapshot) sees the others'.
     */
    lockBatchRow: (db: Db, batchId: string) =>
      db.selectFrom('rc_batches').select('status').where('id', '=', batchId).forUpdate(),

    /** Consume, step 3: the code row becomes used (it is locked and still usable). */
    markUsed: (db: Db, i: { codeId: string; now: number }) =>
      db
        .updateTable('rc_codes')
        .set({ state: 'used', used_at: ts(i.now) })
        .where('id', '=', i.codeId),

    /** createBatch, step 1: the user's active batch (the unique `active_user_id` entry). */
    activeBatchId: (db: Db, userId: string) =>
      db.selectFrom('rc_batches').select('id').where(sql`active_user_id`, '=', userId),

    /** createBatch, step 2: the active batch's live codes end (codes before their batch). */
    endCodesOf: (db: Db, i: { userId: string; batchId: string; now: number }) =>
      db
        .updateTable('rc_codes')
        .set({ changed_at: ts(i.now) })
        .where('batch_id', '=', i.batchId)
        .where('user_id', '=', i.userId)
        .where('changed_at', 'is', null),

    /** createBatch, step 3: the batch is superseded, if nothing ended it meanwhile. */
    supersede: (db: Db, i: { batchId: string; now: number }) =>
      db
        .updateTable('rc_batches')
        .set({ status: 'superseded', ended_at: ts(i.now) })
        .where('id', '=', i.batchId)
        .where('status', '=', 'active'),

    /**
     * addCodes, step 1: the user's batch, what its added codes copy (`key_id`, `expires_at`: they
     * never change) and whether it is live (`status`), read without a lock: the codes are inserted
     * next, then `raiseIssued` (code rows before batch rows) decides on the locked row.
     */
    addedTo: (db: Db, i: { userId: string; batchId: string }) =>
      db
        .selectFrom('rc_batches')
        .select(['key_id', 'expires_at', 'status'])
        .where('id', '=', i.batchId)
        .where('user_id', '=', i.userId),

    /** setCodeState's compare-and-set (one affected row: this call made the change). */
    setCodeState: (
      db: Db,
      i: { userId: string; codeId: string; to: 'invalidated' | 'deleted'; now: number },
    ) =>
      db
        .updateTable('rc_codes')
        .set((eb) => ({
          state: i.to,
          // Keep the earlier death time if the batch already ended: purge may start from it.
          changed_at: eb.fn.coalesce('changed_at', eb.val(ts(i.now))),
        }))
        .where('id', '=', i.codeId)
        .where('user_id', '=', i.userId)
        .where('state', '=', 'active'),

    /** The batch of a code row (its own, locked row, after `setCodeState`). */
    codeBatch: (db: Db, codeId: string) =>
      db.selectFrom('rc_codes').select('batch_id').where('id', '=', codeId),

    /** endBatch's compare-and-set on the status. */
    endBatch: (db: Db, i: { userId: string; batchId: string; to: 'disabled' | 'deleted'; now: number }) =>
      db
        .updateTable('rc_batches')
        .set({ status: i.to, ended_at: ts(i.now) })
        .where('id', '=', i.batchId)
        .where('user_id', '=', i.userId)
        .where('status', '=', 'active'),

    /** setBatchFlag's compare-and-set (the flag column changes from NULL, so it always counts). */
    setBatchFlag: (db: Db, i: { userId: string; batchId: string; flag: BatchFlag; now: number }) => {
      const column = FLAG_COLUMN[i.flag]
      return db
        .updateTable('rc_batches')
        .set({ [column]: ts(i.now) })
        .where('id', '=', i.batchId)
        .where('user_id', '=', i.userId)
        .where(column, 'is', null)
    },

    /**
     * A purge chunk of codes, step 1: at most `limit` rows whose purge time is before `before`,
     * oldest first through `rc_codes_purge_at`, `FOR UPDATE SKIP LOCKED` (purgers and consumers
     * pass each other), with what the fold needs.
     */
    pickPurgeableCodes: (db: Db, i: { before: number; limit: number }) =>
      db
        .selectFrom('rc_codes')
        .select(['id', 'batch_id', 'state', 'used_at'])
        .where(PURGE_AT, '<', ts(i.before))
        .orderBy(PURGE_AT)
        .limit(i.limit)
        .forUpdate()
        .skipLocked(),

    /**
     * Step 2: the used codes of the chunk folded into their batches (`purged_used`,
     * `purged_last_used_at`) in one statement; `folds` sorted by batch id, so the batch rows are
     * locked in id order, as by every other purger.
     */
    foldPurgedUses: (db: Db, folds: readonly MysqlFold[]) =>
      db
        .updateTable('rc_batches')
        .set((eb) => {
          let used = eb.case('id').when(folds[0]!.batchId).then(folds[0]!.used)
          let last = eb
            .case('id')
            .when(folds[0]!.batchId)
            .then(
              sql<number>`greatest(coalesce(purged_last_used_at, ${folds[0]!.lastUsedAt}), ${folds[0]!.lastUsedAt})`,
            )
          for (const f of folds.slice(1)) {
            used = used.when(f.batchId).then(f.used)
            last = last
              .when(f.batchId)
              .then(sql<number>`greatest(coalesce(purged_last_used_at, ${f.lastUsedAt}), ${f.lastUsedAt})`)
          }
          return { purged_used: eb('purged_used', '+', used.end()), purged_last_used_at: last.end() }
        })
        .where(
          'id',
          'in',
          folds.map((f) => f.batchId),
        ),

    /** Step 3: the picked rows, eligibility checked again. */
    deletePurgedCodes: (db: Db, i: { ids: readonly string[]; before: number }) =>
      db.deleteFrom('rc_codes').where('id', 'in', i.ids).where(PURGE_AT, '<', ts(i.before)),

    /** Empty ended batches, step 1: oldest first through `rc_batches_ended`, `SKIP LOCKED`. */
    pickEmptyBatches: (db: Db, i: { before: number; limit: number }) =>
      db
        .selectFrom('rc_batches as b')
        .select('b.id')
        .where('b.ended_at', '<', ts(i.before))
        .where('b.status', '<>', 'active')
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('rc_codes as c').select('c.id').whereRef('c.batch_id', '=', 'b.id'))),
        )
        .orderBy('b.ended_at')
        .limit(i.limit)
        .forUpdate()
        .skipLocked(),

    /** Step 2: the picked batches, the predicate checked again. */
    deleteEmptyBatches: (db: Db, i: { ids: readonly string[]; before: number }) =>
      db
        .deleteFrom('rc_batches')
        .where('id', 'in', i.ids)
        .where('ended_at', '<', ts(i.before))
        .where('status', '<>', 'active')
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(selectFrom('rc_codes as c').select('c.id').whereRef('c.batch_id', '=', 'rc_batches.id')),
          ),
        ),

    /** Expired limiter counters, step 1 (no index, as on the other dialects), `SKIP LOCKED`. */
    pickStaleAttempts: (db: Db, i: { before: number; limit: number }) =>
      db
        .selectFrom('rc_attempts')
        .select('key')
        .where('touched_at', '<', ts(i.before))
        .where('locked_until', '<', ts(i.before))
        .limit(i.limit)
        .forUpdate()
        .skipLocked(),

    /** Step 2: the picked counters, the predicate checked again. */
    deleteStaleAttempts: (db: Db, i: { keys: readonly string[]; before: number }) =>
      db
        .deleteFrom('rc_attempts')
        .where('key', 'in', i.keys)
        .where('touched_at', '<', ts(i.before))
        .where('locked_until', '<', ts(i.before)),

    /**
     * Audit rows older than `before`, oldest first: one DELETE along the clustered `(at, id)` key
     * from its left edge, while appends land at its right edge.
     */
    purgeAudit: (db: Db, i: { before: number; limit: number }) =>
      db.deleteFrom('rc_audit_log').where('at', '<', ts(i.before)).orderBy('at').orderBy('id').limit(i.limit),
  }
}

/** The MySQL statements' type. */
export type MysqlQueries = ReturnType<typeof mysqlQueries>
