/** Migration `0001_init` (shipped: its SQL is pinned by test/migrations-pinned.test.ts). */
import type { Kysely, Migration } from 'kysely'
import { sql } from 'kysely'
import { detectDialect, columnTypes as types } from '../dialect.ts'
import { createMysqlSchema, dropMysqlSchema } from './mysql.ts'

/** The two per-column purge indexes of `0001_init` (replaced by one in `0003_purge_at`). */
export async function createColumnPurgeIndexes(db: Kysely<any>): Promise<void> {
  for (const column of ['changed_at', 'expires_at'] as const) {
    await db.schema
      .createIndex(column === 'changed_at' ? 'rc_codes_purge_changed' : 'rc_codes_purge_expires')
      .on('rc_codes')
      .column(column)
      .where(column, 'is not', null)
      .execute()
  }
}

/** The columns of an audit table (`rc_audit`, `rc_audit_log`); `id` the primary key or not. */
export function auditColumns(db: Kysely<any>, table: string, idPrimary: boolean) {
  const t = types(detectDialect(db))
  return db.schema
    .createTable(table)
    .addColumn('id', 'text', (c) => (idPrimary ? c.primaryKey() : c.notNull()))
    .addColumn('at', t.ts, (c) => c.notNull())
    .addColumn('event', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text')
    .addColumn('batch_id', 'text')
    .addColumn('identifier_hash', 'text')
    .addColumn('client_hash', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('data', t.json)
}

/** `rc_audit` of `0001_init` with its three indexes (replaced by `rc_audit_log` in `0005_store_v2`). */
export async function createAuditTableV1(db: Kysely<any>): Promise<void> {
  await auditColumns(db, 'rc_audit', true).execute()
  await db.schema.createIndex('rc_audit_at').on('rc_audit').columns(['at', 'id']).execute()
  await db.schema.createIndex('rc_audit_user_at').on('rc_audit').columns(['user_id', 'at', 'id']).execute()
  await db.schema.createIndex('rc_audit_event_at').on('rc_audit').columns(['event', 'at', 'id']).execute()
}

/**
 * `0001_init`: the five `rc_` tables and the indexes for the hot paths.
 *
 * - consume: `UNIQUE rc_codes(user_id, digest)`; the batch check uses the partial unique index
 *   `rc_batches(user_id) WHERE status = 'active'` (which also keeps one active batch per user).
 * - history: `rc_batches(user_id, created_at DESC, id DESC)`.
 * - purge: partial indexes `rc_codes(changed_at) WHERE changed_at IS NOT NULL` and
 *   `rc_codes(expires_at) WHERE expires_at IS NOT NULL` (one index since `0003_purge_at`); empty batches via
 *   `rc_batches(ended_at) WHERE ended_at IS NOT NULL` (set exactly when a batch leaves `active`); audit via `rc_audit(at)`.
 */
export const init: Migration = {
  async up(db) {
    // MySQL: the final schema at once (`migrations/mysql.ts`); later migrations skip it.
    if (detectDialect(db) === 'mysql') return createMysqlSchema(db)
    const t = types(detectDialect(db))

    await db.schema
      .createTable('rc_batches')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', t.ts, (c) => c.notNull())
      .addColumn('expires_at', t.ts)
      .addColumn('ended_at', t.ts)
      .addColumn('issued', 'integer', (c) => c.notNull())
      .addColumn('unused', 'integer', (c) => c.notNull())
      .addColumn('used', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('invalidated', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('viewed_at', t.ts)
      .addColumn('downloaded_at', t.ts)
      .addColumn('emailed_at', t.ts)
      .addColumn('verified_at', t.ts)
      .addColumn('last_used_at', t.ts)
      .addCheckConstraint(
        'rc_batches_status_check',
        sql`status in ('active', 'superseded', 'disabled', 'deleted')`,
      )
      .execute()

    await db.schema
      .createIndex('rc_batches_one_active')
      .on('rc_batches')
      .column('user_id')
      .unique()
      .where(sql<boolean>`status = 'active'`)
      .execute()
    await db.schema
      .createIndex('rc_batches_history')
      .on('rc_batches')
      .columns(['user_id', 'created_at desc', 'id desc'])
      .execute()
    await db.schema
      .createIndex('rc_batches_ended')
      .on('rc_batches')
      .column('ended_at')
      .where('ended_at', 'is not', null)
      .execute()

    await db.schema
      .createTable('rc_codes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('batch_id', 'text', (c) => c.notNull().references('rc_batches.id'))
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('digest', t.bytes, (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('created_at', t.ts, (c) => c.notNull())
      .addColumn('expires_at', t.ts)
      .addColumn('used_at', t.ts)
      .addColumn('changed_at', t.ts)
      .addCheckConstraint('rc_codes_state_check', sql`state in ('active', 'used', 'invalidated', 'deleted')`)
      .execute()

    await db.schema
      .createIndex('rc_codes_user_digest')
      .on('rc_codes')
      .columns(['user_id', 'digest'])
      .unique()
      .execute()
    await db.schema.createIndex('rc_codes_batch').on('rc_codes').column('batch_id').execute()
    await createColumnPurgeIndexes(db)

    await db.schema
      .createTable('rc_attempts')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('failures', 'integer', (c) => c.notNull())
      .addColumn('consecutive', 'integer', (c) => c.notNull())
      .addColumn('lockouts', 'integer', (c) => c.notNull())
      .addColumn('locked_until', t.ts, (c) => c.notNull())
      .execute()

    await createAuditTableV1(db)

    await db.schema
      .createTable('rc_email_log')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('at', t.ts, (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('batch_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('recipient', 'text', (c) => c.notNull())
      .addColumn('outcome', 'text', (c) => c.notNull())
      .execute()
    await db.schema
      .createIndex('rc_email_log_user_at')
      .on('rc_email_log')
      .columns(['user_id', 'at'])
      .execute()
  },

  async down(db) {
    if (detectDialect(db) === 'mysql') return dropMysqlSchema(db)
    for (const table of ['rc_email_log', 'rc_audit', 'rc_attempts', 'rc_codes', 'rc_batches']) {
      await db.schema.dropTable(table).ifExists().execute()
    }
  },
}
