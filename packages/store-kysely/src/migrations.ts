import { RecoveryCodesError } from '@recovery-codes/core'
import {
  type Kysely,
  type Migration,
  type MigrationResultSet,
  Migrator,
  PostgresAdapter,
  SqliteAdapter,
  sql,
} from 'kysely'

/** The SQL dialects this package supports. */
export type RecoveryCodesDialect = 'sqlite' | 'postgres'

/** Name of this package's own migration table, so it never mixes with the host's migrations. */
export const DEFAULT_MIGRATION_TABLE = 'rc_migrations'
/** Name of this package's own migration lock table. */
export const DEFAULT_MIGRATION_LOCK_TABLE = 'rc_migrations_lock'

/**
 * Detects the dialect from the Kysely instance's adapter (`SqliteAdapter` or `PostgresAdapter`,
 * including subclasses such as the PGlite dialect's). Falls back to the adapter's class name when the
 * host's `kysely` is a different copy than ours. Throws for anything else.
 */
export function detectDialect(db: Kysely<any>): RecoveryCodesDialect {
  const adapter = db.getExecutor().adapter
  if (adapter instanceof SqliteAdapter) return 'sqlite'
  if (adapter instanceof PostgresAdapter) return 'postgres'
  let proto: unknown = Object.getPrototypeOf(adapter)
  while (proto !== null && typeof proto === 'object') {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? ''
    if (/sqlite/i.test(name)) return 'sqlite'
    if (/postgres/i.test(name)) return 'postgres'
    proto = Object.getPrototypeOf(proto)
  }
  throw new RecoveryCodesError('CONFIG_INVALID', 'store-kysely supports SQLite and PostgreSQL adapters only')
}

function types(dialect: RecoveryCodesDialect) {
  return dialect === 'postgres'
    ? ({ ts: 'timestamptz', bytes: 'bytea', json: 'jsonb' } as const)
    : ({ ts: 'integer', bytes: 'blob', json: 'text' } as const)
}

/**
 * `0001_init`: the five `rc_` tables and the indexes for the hot paths.
 *
 * - consume: `UNIQUE rc_codes(user_id, digest)`; the batch check uses the partial unique index
 *   `rc_batches(user_id) WHERE status = 'active'` (which also keeps one active batch per user).
 * - history: `rc_batches(user_id, created_at DESC, id DESC)`.
 * - purge: partial indexes `rc_codes(changed_at) WHERE changed_at IS NOT NULL` and
 *   `rc_codes(expires_at) WHERE expires_at IS NOT NULL`; empty batches via
 *   `rc_batches(ended_at) WHERE ended_at IS NOT NULL` (set exactly when a batch leaves `active`); audit via `rc_audit(at)`.
 */
const init: Migration = {
  async up(db) {
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
    await db.schema
      .createIndex('rc_codes_purge_changed')
      .on('rc_codes')
      .column('changed_at')
      .where('changed_at', 'is not', null)
      .execute()
    await db.schema
      .createIndex('rc_codes_purge_expires')
      .on('rc_codes')
      .column('expires_at')
      .where('expires_at', 'is not', null)
      .execute()

    await db.schema
      .createTable('rc_attempts')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('failures', 'integer', (c) => c.notNull())
      .addColumn('consecutive', 'integer', (c) => c.notNull())
      .addColumn('lockouts', 'integer', (c) => c.notNull())
      .addColumn('locked_until', t.ts, (c) => c.notNull())
      .execute()

    await db.schema
      .createTable('rc_audit')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('at', t.ts, (c) => c.notNull())
      .addColumn('event', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text')
      .addColumn('batch_id', 'text')
      .addColumn('identifier_hash', 'text')
      .addColumn('client_hash', 'text')
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('data', t.json)
      .execute()
    await db.schema.createIndex('rc_audit_at').on('rc_audit').columns(['at', 'id']).execute()
    await db.schema.createIndex('rc_audit_user_at').on('rc_audit').columns(['user_id', 'at', 'id']).execute()
    await db.schema.createIndex('rc_audit_event_at').on('rc_audit').columns(['event', 'at', 'id']).execute()

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
    for (const table of ['rc_email_log', 'rc_audit', 'rc_attempts', 'rc_codes', 'rc_batches']) {
      await db.schema.dropTable(table).ifExists().execute()
    }
  },
}

/**
 * The package's migrations, as code, for the host's own Kysely `Migrator`. Keys sort in order.
 * Give the Migrator this package's own table names so the host's migration history is untouched.
 *
 * @example
 * ```ts
 * const migrator = new Migrator({
 *   db,
 *   provider: { getMigrations: async () => recoveryCodesMigrations },
 *   migrationTableName: 'rc_migrations',
 *   migrationLockTableName: 'rc_migrations_lock',
 * })
 * await migrator.migrateToLatest()
 * ```
 */
export const recoveryCodesMigrations: Record<string, Migration> = Object.freeze({
  '0001_init': init,
})

/** Options for {@link migrateRecoveryCodes}. */
export interface MigrateRecoveryCodesOptions {
  /** @default 'rc_migrations' */
  migrationTableName?: string
  /** @default 'rc_migrations_lock' */
  migrationLockTableName?: string
  /**
   * PostgreSQL schema for the migration tables.
   * @default the connection's `current_schema()` on PostgreSQL; unused on SQLite
   */
  migrationTableSchema?: string
}

/**
 * Runs this package's migrations to the latest version with its own migration table, and returns the
 * Migrator's result set. Throws `RecoveryCodesError('STORE_UNAVAILABLE')` (with the migration error as
 * `cause`) when a migration fails.
 *
 * @example
 * ```ts
 * const db = new Kysely({ dialect: new SqliteDialect({ database: new Database('app.db') }) })
 * await migrateRecoveryCodes(db)
 * const store = kyselyStore(db)
 * ```
 */
export async function migrateRecoveryCodes(
  db: Kysely<any>,
  options: MigrateRecoveryCodesOptions = {},
): Promise<MigrationResultSet> {
  let schema = options.migrationTableSchema
  if (schema === undefined && detectDialect(db) === 'postgres') {
    // Kysely's Migrator looks for its table in every schema when none is given; pin it to ours so
    // a second schema on the same server (one per tenant or per test file) gets its own history.
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db)
    schema = rows[0]?.schema
  }
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => recoveryCodesMigrations },
    migrationTableName: options.migrationTableName ?? DEFAULT_MIGRATION_TABLE,
    migrationLockTableName: options.migrationLockTableName ?? DEFAULT_MIGRATION_LOCK_TABLE,
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  })
  const result = await migrator.migrateToLatest()
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName
    throw new RecoveryCodesError(
      'STORE_UNAVAILABLE',
      `recovery-codes migration failed${failed === undefined ? '' : `: ${failed}`}`,
      { cause: result.error },
    )
  }
  return result
}
