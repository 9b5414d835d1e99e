/**
 * `0005_store_v2`: the write path shaped for the redeem (issue 15).
 *
 * - `rc_audit_log` replaces `rc_audit`: keyed by `(at, id)` (SQLite `WITHOUT ROWID`, so the key
 *   is the table), with one index per query the store serves, `(user_id, at, id)` and
 *   `(event, at, id)`. An append writes three B-tree pages instead of five. Rows are copied over.
 * - `rc_batches` loses the counters a redeem used to update (`unused`, `used`, `last_used_at`):
 *   a batch's use counts are derived from its code rows, plus `purged_used` /
 *   `purged_last_used_at` for the used codes a purge has deleted (the purge adds them in the
 *   same transaction). Existing rows keep their figures.
 * - PostgreSQL: `rc_redeem` becomes {@link REDEEM_FUNCTION_V3} (advisory locks instead of limiter
 *   rows; no batch write; `rc_audit_log`).
 */
import type { Kysely, Migration } from 'kysely'
import { sql } from 'kysely'
import { columnTypes, detectDialect } from '../dialect.ts'
import { auditColumns, createAuditTableV1 } from './0001-init.ts'
import { constantSql, redeemFunctionV2 } from './redeem-function.ts'
import { REDEEM_FUNCTION_V3 } from './redeem-function-v3.ts'

const AUDIT_COLUMNS = [
  'id',
  'at',
  'event',
  'user_id',
  'batch_id',
  'identifier_hash',
  'client_hash',
  'outcome',
  'reason',
  'data',
] as const

/** Copies every audit row from `from` to `to` and drops `from`. */
async function moveAudit(db: Kysely<any>, from: string, to: string): Promise<void> {
  await db
    .insertInto(to)
    .columns(AUDIT_COLUMNS)
    .expression(db.selectFrom(from).select(AUDIT_COLUMNS))
    .execute()
  await db.schema.dropTable(from).execute()
}

export const storeV2: Migration = {
  async up(db) {
    // MySQL: `0001_init` created the final schema (`migrations/mysql.ts`).
    if (detectDialect(db) === 'mysql') return
    const dialect = detectDialect(db)
    const t = columnTypes(dialect)
    const log = auditColumns(db, 'rc_audit_log', false).addPrimaryKeyConstraint('rc_audit_log_pk', [
      'at',
      'id',
    ])
    await (dialect === 'sqlite' ? log.modifyEnd(sql`without rowid`) : log).execute()
    await db.schema
      .createIndex('rc_audit_log_user')
      .on('rc_audit_log')
      .columns(['user_id', 'at', 'id'])
      .execute()
    await db.schema
      .createIndex('rc_audit_log_event')
      .on('rc_audit_log')
      .columns(['event', 'at', 'id'])
      .execute()
    await moveAudit(db, 'rc_audit', 'rc_audit_log')

    await db.schema
      .alterTable('rc_batches')
      .addColumn('purged_used', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema.alterTable('rc_batches').addColumn('purged_last_used_at', t.ts).execute()
    await sql`update rc_batches set purged_used = used - (select count(*) from rc_codes as c where c.batch_id = rc_batches.id and c.state = 'used'), purged_last_used_at = last_used_at`.execute(
      db,
    )
    for (const column of ['unused', 'used', 'last_used_at']) {
      await db.schema.alterTable('rc_batches').dropColumn(column).execute()
    }
    if (dialect === 'postgres') await constantSql(REDEEM_FUNCTION_V3).execute(db)
  },

  async down(db) {
    // MySQL: `0001_init` created the final schema (`migrations/mysql.ts`).
    if (detectDialect(db) === 'mysql') return
    const dialect = detectDialect(db)
    const t = columnTypes(dialect)
    if (dialect === 'postgres') await constantSql(redeemFunctionV2()).execute(db)
    await db.schema
      .alterTable('rc_batches')
      .addColumn('unused', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema
      .alterTable('rc_batches')
      .addColumn('used', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema.alterTable('rc_batches').addColumn('last_used_at', t.ts).execute()
    const latest =
      dialect === 'postgres'
        ? sql`greatest(purged_last_used_at, (select max(c.used_at) from rc_codes as c where c.batch_id = rc_batches.id and c.state = 'used'))`
        : sql`coalesce(max(purged_last_used_at, (select max(c.used_at) from rc_codes as c where c.batch_id = rc_batches.id and c.state = 'used')), purged_last_used_at, (select max(c.used_at) from rc_codes as c where c.batch_id = rc_batches.id and c.state = 'used'))`
    await sql`update rc_batches set used = purged_used + (select count(*) from rc_codes as c where c.batch_id = rc_batches.id and c.state = 'used'), last_used_at = ${latest}`.execute(
      db,
    )
    await sql`update rc_batches set unused = issued - used - invalidated - deleted`.execute(db)
    for (const column of ['purged_used', 'purged_last_used_at']) {
      await db.schema.alterTable('rc_batches').dropColumn(column).execute()
    }
    await createAuditTableV1(db)
    await moveAudit(db, 'rc_audit_log', 'rc_audit')
  },
}
