/**
 * The MySQL 8 / MariaDB 10.11 schema: the shape SQLite and PostgreSQL reach at `0005_store_v2`,
 * created whole by `0001_init` (MySQL DDL is not transactional, so one step is safer than five);
 * `0002`–`0005` do nothing on MySQL. Where the other dialects use what MySQL lacks:
 *
 * - one active batch per user: no partial unique index, so a stored generated column
 *   `active_user_id` (the user id while `active`, NULL otherwise) under a unique index;
 * - purge order: no expression index on MariaDB, so a stored generated column `purge_at` (SQLite's
 *   expression: MySQL's `least` is NULL when any argument is) under a plain index, whose NULL
 *   rows no `purge_at < ?` range reaches; `rc_batches_ended` is not partial either;
 * - ids, user ids, keys and audit events are `varbinary(1024)` (byte equality and order, at most
 *   1024 bytes: see `MYSQL_TYPES`), other text `varchar(1024) utf8mb4_bin`, times `bigint` epoch ms.
 *
 * Tables are InnoDB, `utf8mb4_bin` by default, whatever the server's defaults.
 */
import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import { MYSQL_TYPES as t } from '../dialect.ts'

const TABLE_OPTIONS = sql`engine=InnoDB default charset=utf8mb4 collate=utf8mb4_bin`

/** Creates every `rc_` table of the MySQL schema with its indexes. */
export async function createMysqlSchema(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('rc_batches')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('user_id', t.id, (c) => c.notNull())
    .addColumn('key_id', t.text, (c) => c.notNull())
    .addColumn('status', t.name, (c) => c.notNull())
    .addColumn('created_at', t.ts, (c) => c.notNull())
    .addColumn('expires_at', t.ts)
    .addColumn('ended_at', t.ts)
    .addColumn('issued', 'integer', (c) => c.notNull())
    .addColumn('purged_used', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('invalidated', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('viewed_at', t.ts)
    .addColumn('downloaded_at', t.ts)
    .addColumn('emailed_at', t.ts)
    .addColumn('verified_at', t.ts)
    .addColumn('purged_last_used_at', t.ts)
    .addColumn('active_user_id', t.id, (c) =>
      c.generatedAlwaysAs(sql`case when status = 'active' then user_id end`).stored(),
    )
    .addCheckConstraint(
      'rc_batches_status_check',
      sql`status in ('active', 'superseded', 'disabled', 'deleted')`,
    )
    .modifyEnd(TABLE_OPTIONS)
    .execute()
  await db.schema
    .createIndex('rc_batches_one_active')
    .on('rc_batches')
    .column('active_user_id')
    .unique()
    .execute()
  await db.schema
    .createIndex('rc_batches_history')
    .on('rc_batches')
    .columns(['user_id', 'created_at desc', 'id desc'])
    .execute()
  await db.schema.createIndex('rc_batches_ended').on('rc_batches').column('ended_at').execute()

  await db.schema
    .createTable('rc_codes')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('user_id', t.id, (c) => c.notNull())
    .addColumn('batch_id', t.id, (c) => c.notNull())
    .addColumn('key_id', t.text, (c) => c.notNull())
    .addColumn('digest', t.bytes, (c) => c.notNull())
    .addColumn('state', t.name, (c) => c.notNull())
    .addColumn('created_at', t.ts, (c) => c.notNull())
    .addColumn('expires_at', t.ts)
    .addColumn('used_at', t.ts)
    .addColumn('changed_at', t.ts)
    .addColumn('purge_at', t.ts, (c) =>
      c
        .generatedAlwaysAs(sql`least(coalesce(changed_at, expires_at), coalesce(expires_at, changed_at))`)
        .stored(),
    )
    .addForeignKeyConstraint('rc_codes_batch_fk', ['batch_id'], 'rc_batches', ['id'])
    .addCheckConstraint('rc_codes_state_check', sql`state in ('active', 'used', 'invalidated', 'deleted')`)
    .modifyEnd(TABLE_OPTIONS)
    .execute()
  await db.schema
    .createIndex('rc_codes_user_digest')
    .on('rc_codes')
    .columns(['user_id', 'digest'])
    .unique()
    .execute()
  await db.schema.createIndex('rc_codes_batch').on('rc_codes').column('batch_id').execute()
  await db.schema.createIndex('rc_codes_purge_at').on('rc_codes').column('purge_at').execute()

  await db.schema
    .createTable('rc_attempts')
    .addColumn('key', t.id, (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('consecutive', 'integer', (c) => c.notNull())
    .addColumn('lockouts', 'integer', (c) => c.notNull())
    .addColumn('locked_until', t.ts, (c) => c.notNull())
    .addColumn('touched_at', t.ts, (c) => c.notNull().defaultTo(0))
    .modifyEnd(TABLE_OPTIONS)
    .execute()

  await db.schema
    .createTable('rc_audit_log')
    .addColumn('id', t.id, (c) => c.notNull())
    .addColumn('at', t.ts, (c) => c.notNull())
    .addColumn('event', t.id, (c) => c.notNull())
    .addColumn('user_id', t.id)
    .addColumn('batch_id', t.text)
    .addColumn('identifier_hash', t.text)
    .addColumn('client_hash', t.text)
    .addColumn('outcome', t.name, (c) => c.notNull())
    .addColumn('reason', t.text)
    .addColumn('data', t.json)
    .addPrimaryKeyConstraint('rc_audit_log_pk', ['at', 'id'])
    .modifyEnd(TABLE_OPTIONS)
    .execute()
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

  await db.schema
    .createTable('rc_email_log')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('at', t.ts, (c) => c.notNull())
    .addColumn('user_id', t.id, (c) => c.notNull())
    .addColumn('batch_id', t.text, (c) => c.notNull())
    .addColumn('kind', t.text, (c) => c.notNull())
    .addColumn('recipient', t.text, (c) => c.notNull())
    .addColumn('outcome', t.name, (c) => c.notNull())
    .modifyEnd(TABLE_OPTIONS)
    .execute()
  await db.schema.createIndex('rc_email_log_user_at').on('rc_email_log').columns(['user_id', 'at']).execute()
}

/** Drops every `rc_` table of the MySQL schema (codes before the batches they reference). */
export async function dropMysqlSchema(db: Kysely<any>): Promise<void> {
  for (const table of ['rc_email_log', 'rc_audit_log', 'rc_attempts', 'rc_codes', 'rc_batches']) {
    await db.schema.dropTable(table).ifExists().execute()
  }
}
