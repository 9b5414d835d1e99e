/**
 * Statements of the retention aggregate: purge chunks of codes, empty batches, limiter counters and
 * audit rows. Every chunk is one bounded pick and a DELETE that re-checks eligibility; no statement
 * deletes without a limit.
 */
import { type Expression, sql } from 'kysely'
import { PURGE_AT_PRESENT, type SqlDialect } from '../dialect.ts'
import type { Db } from './db.ts'

type Table = 'rc_codes' | 'rc_batches' | 'rc_attempts' | 'rc_audit_log'

/** The statements of the retention aggregate for dialect `d`. */
export function retentionQueries(d: SqlDialect) {
  const { ts } = d

  /**
   * The one purge shape: a sub-select picks at most `limit` eligible rows (in `order`, through the
   * index that serves it), the DELETE fetches exactly those rows ({@link SqlDialect.picked}: by
   * physical address; `auditKey` for the audit log, which has none on SQLite) and checks
   * `eligible` again on each.
   */
  const chunk = (
    db: Db,
    table: Table,
    eligible: Expression<boolean>,
    limit: number,
    order?: Expression<unknown>,
    auditKey?: boolean,
  ) => {
    // biome-ignore lint/suspicious/noExplicitAny: the pick is built on any of the four tables
    let pick: any = db.selectFrom(table).where(eligible).limit(limit)
    if (order !== undefined) pick = pick.orderBy(order)
    return db.deleteFrom(table).where(d.picked(pick, auditKey)).where(eligible)
  }

  const codesEligible = (before: number) => sql<boolean>`${PURGE_AT_PRESENT} and ${d.purgeAt} < ${ts(before)}`

  return {
    /**
     * One chunk of codes whose purge time (the earlier of `changed_at`, set when a code is
     * invalidated, deleted or its batch ends, and `expires_at`) is before `before`, oldest first,
     * through the one expression index of `0003_purge_at`. Returns what the fold needs: each
     * deleted row's batch, state and use time.
     */
    purgeCodes: (db: Db, i: { before: number; limit: number }) =>
      chunk(db, 'rc_codes', codesEligible(i.before), i.limit, d.purgeAt).returning([
        'batch_id',
        'state',
        'used_at',
      ]),

    /**
     * SQLite: one chunk of codes in row order. Among the rows with `rowid` in `(after, after +
     * span]`, the first `limit` eligible ones, found by walking the table's own B-tree (a rowid
     * range search), deleted by `rowid`. Rows are stored in the order they were written, so
     * consecutive chunks delete neighbouring rows and each page is written about once; in purge-time
     * order ({@link purgeCodes}), used codes of many batches lie on as many pages (1,600 WAL
     * frames per 500 rows at 1M rows, against 150 here). Returns `rowid` too, for the next chunk's
     * `after`.
     */
    purgeCodesInRowOrder: (db: Db, i: { before: number; after: number; span: number; limit: number }) => {
      const eligible = codesEligible(i.before)
      const pick = db
        .selectFrom('rc_codes')
        .select(sql`rowid`.as('r'))
        .where(sql<boolean>`rowid > ${i.after} and rowid <= ${i.after} + ${i.span}`)
        .where(eligible)
        .orderBy(sql`rowid`)
        .limit(i.limit)
      return db
        .deleteFrom('rc_codes')
        .where(sql<boolean>`rowid in (${pick})`)
        .where(eligible)
        .returning([sql<number>`rowid`.as('rowid'), 'batch_id', 'state', 'used_at'])
    },

    /**
     * PostgreSQL: {@link purgeCodes} and the fold in one statement: the used codes deleted are
     * added to their batch's `purged_used` / `purged_last_used_at`, so the batch's counts stay
     * whole. Returns `deleted`.
     */
    purgeCodesFolded: (db: Db, i: { before: number; limit: number }) => {
      const deleted = chunk(db, 'rc_codes', codesEligible(i.before), i.limit, d.purgeAt).returning([
        'batch_id',
        'state',
        'used_at',
      ])
      return sql<{
        deleted: number | string
      }>`with d as (${deleted}), f as (update rc_batches as b set purged_used = b.purged_used + x.n, purged_last_used_at = greatest(b.purged_last_used_at, x.m) from (select batch_id, count(*) as n, max(used_at) as m from d where state = 'used' group by batch_id) as x where b.id = x.batch_id) select count(*) as deleted from d`
    },

    /**
     * SQLite: the fold of one chunk ({@link purgeCodesFolded}), in the chunk's transaction.
     * `folds` is a JSON array of `{ b: batchId, n: usedCount, m: lastUsedAt }`.
     */
    foldPurgedUses: (folds: unknown) =>
      sql`update rc_batches set purged_used = purged_used + j.n, purged_last_used_at = max(coalesce(purged_last_used_at, j.m), j.m) from (select value ->> 'b' as b, value ->> 'n' as n, value ->> 'm' as m from json_each(${folds})) as j where rc_batches.id = j.b`,

    /**
     * One chunk of limiter counters last reserved before `before` and not locked at or after it.
     * No index serves it (one on `touched_at` would cost every reserve a write and, on PostgreSQL,
     * its HOT update): the pick scans the table until it has `limit` rows.
     */
    purgeAttempts: (db: Db, i: { before: number; limit: number }) =>
      chunk(
        db,
        'rc_attempts',
        sql<boolean>`touched_at < ${ts(i.before)} and locked_until < ${ts(i.before)}`,
        i.limit,
      ),

    /** One chunk of ended batches (ended before `before`) whose codes are all purged, oldest first. */
    purgeEmptyBatches: (db: Db, i: { before: number; limit: number }) =>
      chunk(
        db,
        'rc_batches',
        sql<boolean>`ended_at < ${ts(i.before)} and status <> 'active' and not exists (select 1 from rc_codes as c where c.batch_id = rc_batches.id)`,
        i.limit,
        sql`ended_at`,
      ),

    /** One chunk of audit rows older than `before`, oldest first: a range of the `(at, id)` key. */
    purgeAudit: (db: Db, i: { before: number; limit: number }) =>
      chunk(db, 'rc_audit_log', sql<boolean>`at < ${ts(i.before)}`, i.limit, sql`at`, true),
  }
}
