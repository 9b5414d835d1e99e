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
 *   `rc_codes(expires_at) WHERE expires_at IS NOT NULL` (one index since `0003_purge_at`); empty batches via
 *   `rc_batches(ended_at) WHERE ended_at IS NOT NULL` (set exactly when a batch leaves `active`); audit via `rc_audit(at)`.
 */
/** The two per-column purge indexes of `0001_init` (replaced by one in `0003_purge_at`). */
async function createColumnPurgeIndexes(db: Kysely<any>): Promise<void> {
  for (const column of ['changed_at', 'expires_at'] as const) {
    await db.schema
      .createIndex(column === 'changed_at' ? 'rc_codes_purge_changed' : 'rc_codes_purge_expires')
      .on('rc_codes')
      .column(column)
      .where(column, 'is not', null)
      .execute()
  }
}

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
    await createColumnPurgeIndexes(db)

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

/** A statement whose whole text is a constant of this file (a function body): nothing is bound. */
const constantSql = (text: string) => sql.raw(text)

/** The argument list of `0002_redeem`'s `rc_redeem`, for `drop function`. */
const REDEEM_V1_ARGS = sql`(text[], integer[], text[], timestamptz, text, bytea[], text, timestamptz, text, text, text, text, text, text, jsonb)`
/** The argument list of `0004_attempts_touched`'s `rc_redeem`. */
const REDEEM_V2_ARGS = sql`(text[], integer[], text[], timestamptz, text, bytea[], text, timestamptz, text, text, text, text, text, text, jsonb, timestamptz)`

/** The `rc_redeem` function of `0002_redeem`, as it was released (migrations never change). */
const REDEEM_FUNCTION_V1 = `create or replace function rc_redeem(
  p_keys text[],
  p_max integer[],
  p_reset text[],
  p_now timestamptz,
  p_user text,
  p_digests bytea[],
  p_audit_id text,
  p_audit_at timestamptz,
  p_audit_event text,
  p_audit_user text,
  p_audit_identifier_hash text,
  p_audit_client_hash text,
  p_audit_outcome text,
  p_audit_reason text,
  p_audit_data jsonb
) returns table (
  outcome text,
  key text,
  failures integer,
  consecutive integer,
  lockouts integer,
  locked_until timestamptz,
  code_id text,
  batch_id text,
  key_id text,
  remaining integer
)
language plpgsql volatile
set plan_cache_mode = force_generic_plan
as $rc$
#variable_conflict use_column
declare
  v_n integer := coalesce(cardinality(p_keys), 0);
  v_reserved text[];
  v_outcome text;
  v_code text;
  v_batch text;
  v_key_id text;
  v_left integer;
begin
  if v_n > 0 then
    with r as (
      insert into rc_attempts as a (key, failures, consecutive, lockouts, locked_until)
      select u.k, 1, 1, 0, to_timestamp(0)
      from unnest(p_keys) as u(k)
      order by u.k collate "C"
      on conflict (key) do update
        set failures = a.failures + 1, consecutive = a.consecutive + 1
        where a.locked_until <= p_now
          and a.failures < p_max[array_position(p_keys, excluded.key)]
      returning a.key
    )
    select coalesce(array_agg(r.key), '{}') into v_reserved from r;
    if cardinality(v_reserved) < v_n then
      -- Same transaction: no one saw these reservations, and the rows stay locked until commit.
      update rc_attempts as a
        set failures = a.failures - 1,
            consecutive = case when a.consecutive > 0 then a.consecutive - 1 else 0 end
        where a.key = any(v_reserved);
      v_outcome := 'denied';
    end if;
  end if;

  if v_outcome is null then
    if cardinality(p_digests) = 1 then
      update rc_codes as c
        set state = 'used', used_at = p_now, changed_at = p_now
        where c.user_id = p_user
          and c.digest = p_digests[1]
          and c.state = 'active'
          and c.changed_at is null
          and (c.expires_at is null or c.expires_at > p_now)
          and c.batch_id in (
            select b.id from rc_batches as b where b.user_id = p_user and b.status = 'active')
        returning c.id, c.batch_id, c.key_id into v_code, v_batch, v_key_id;
    elsif cardinality(p_digests) > 1 then
      update rc_codes as c
        set state = 'used', used_at = p_now, changed_at = p_now
        where c.id = (
            select c1.id from rc_codes as c1
            where c1.user_id = p_user
              and c1.digest = any(p_digests)
              and c1.state = 'active'
              and c1.changed_at is null
              and (c1.expires_at is null or c1.expires_at > p_now)
              and c1.batch_id in (
                select b.id from rc_batches as b where b.user_id = p_user and b.status = 'active')
            order by array_position(p_digests, c1.digest)
            limit 1
            for update)
          and c.user_id = p_user
          and c.state = 'active'
          and c.changed_at is null
          and (c.expires_at is null or c.expires_at > p_now)
          and c.batch_id in (
            select b.id from rc_batches as b where b.user_id = p_user and b.status = 'active')
        returning c.id, c.batch_id, c.key_id into v_code, v_batch, v_key_id;
    end if;
    v_outcome := case when v_code is null then 'missed' else 'consumed' end;
  end if;

  if v_outcome = 'consumed' then
    update rc_batches as b
      set unused = b.unused - 1, used = b.used + 1, last_used_at = p_now
      where b.id = v_batch
      returning b.unused into v_left;
    if v_n > 0 then
      delete from rc_attempts as a where a.key = any(p_keys) and a.key = any(p_reset);
      update rc_attempts as a
        set failures = a.failures - 1,
            consecutive = case when a.consecutive > 0 then a.consecutive - 1 else 0 end
        where a.key = any(p_keys) and a.key <> all(p_reset) and a.failures > 0;
    end if;
    insert into rc_audit
      (id, at, event, user_id, batch_id, identifier_hash, client_hash, outcome, reason, data)
    values (p_audit_id, p_audit_at, p_audit_event, p_audit_user, v_batch, p_audit_identifier_hash,
      p_audit_client_hash, p_audit_outcome, p_audit_reason,
      coalesce(p_audit_data, '{}'::jsonb) || jsonb_build_object('remaining', v_left));
    return query select v_outcome, null::text, null::integer, null::integer, null::integer,
      null::timestamptz, v_code, v_batch, v_key_id, v_left;
    return;
  end if;

  return query select v_outcome, u.k, a.failures, a.consecutive, a.lockouts, a.locked_until,
      null::text, null::text, null::text, null::integer
    from (select 1) as one
    left join (unnest(p_keys) as u(k) left join rc_attempts as a on a.key = u.k) on true;
end
$rc$`

/**
 * `0002_redeem` (PostgreSQL; a no-op on SQLite): the function `rc_redeem`, a whole redeem in one
 * statement and one round trip (`kyselyStore().redeemCode`). Created unqualified, so it lands in the
 * schema the migration runs in, beside the tables, and resolves the `rc_` tables through the
 * caller's `search_path` exactly like every other statement of the store.
 *
 * In one transaction (the caller's autocommit statement):
 * 1. reserve: the multi-row conditional upsert of `reserveAttempts`, rows in byte order
 *    (`COLLATE "C"`, the order every limiter statement locks in). A closed key's row is locked too
 *    (`ON CONFLICT DO UPDATE … WHERE` locks the row it does not update), so when some key is closed
 *    the reservations just taken are given back before anyone can see them: `denied`, strictly all
 *    or nothing;
 * 2. consume: the conditional UPDATE of `consumeCode` (one digest: the `(user_id, digest)` row;
 *    several: the first usable one in digest order, `FOR UPDATE`), then the batch counters;
 *    nothing usable: `missed`, the reservations stay;
 * 3. settle: the `p_reset` keys deleted, every other key of `p_keys` given back (`failures > 0`);
 * 4. audit: the row appended with `batch_id` and `data.remaining` from the consumed code.
 *
 * Returns one row per key (`denied`, `missed`: the counters after the call; one all-null row when
 * there are no keys) or one row with the code (`consumed`). Locks: attempts rows (in byte order),
 * then the code row, then the batch row, the order of the store's other statements.
 *
 * `plan_cache_mode = force_generic_plan`: every statement here is a key lookup whose generic plan
 * is the right one, but PostgreSQL's cost comparison (it cannot see the array lengths) would
 * otherwise re-plan them on every call, about a fifth of the function's time.
 */
const redeem: Migration = {
  async up(db) {
    if (detectDialect(db) !== 'postgres') return
    await constantSql(REDEEM_FUNCTION_V1).execute(db)
  },

  async down(db) {
    if (detectDialect(db) !== 'postgres') return
    await sql`drop function if exists rc_redeem${REDEEM_V1_ARGS}`.execute(db)
  },
}

/**
 * When a code row can first be purged: the earlier of `changed_at` and `expires_at`, NULL while
 * neither is set (PostgreSQL `least` skips NULLs; SQLite's `min` does not, hence the `coalesce`s).
 * The purge index of `0003_purge_at` is on exactly this expression, and queries must repeat it
 * verbatim for the planner to use that index.
 */
export function purgeAtSql(dialect: RecoveryCodesDialect) {
  return dialect === 'postgres'
    ? sql`least(changed_at, expires_at)`
    : sql`min(coalesce(changed_at, expires_at), coalesce(expires_at, changed_at))`
}

/** The partial-index predicate of `0003_purge_at`; purge queries repeat it verbatim. */
export const PURGE_AT_PRESENT = sql`(changed_at is not null or expires_at is not null)`

/**
 * `0003_purge_at`: one purge index in death order, `rc_codes(purge_at) WHERE changed_at IS NOT NULL
 * OR expires_at IS NOT NULL` (see {@link purgeAtSql}), replacing the two per-column partial indexes
 * of `0001_init`. A purge chunk is then one statement over one index: no second branch that walks
 * again the rows the first branch already deleted (on PostgreSQL their entries stay in the other
 * index until VACUUM, which made the branch switch the slowest chunk of a run), and every write that
 * ends a code maintains one purge index instead of two.
 */
const purgeAt: Migration = {
  async up(db) {
    const expression = purgeAtSql(detectDialect(db))
    await sql`create index rc_codes_purge_at on rc_codes (${expression}) where ${PURGE_AT_PRESENT}`.execute(
      db,
    )
    await db.schema.dropIndex('rc_codes_purge_changed').execute()
    await db.schema.dropIndex('rc_codes_purge_expires').execute()
  },

  async down(db) {
    await createColumnPurgeIndexes(db)
    await db.schema.dropIndex('rc_codes_purge_at').execute()
  },
}

/**
 * The `rc_redeem` of `0004_attempts_touched`: `0002_redeem`'s function with the reserve also setting
 * `touched_at`, and a start deadline `p_deadline` (the server's clock; `NULL` = none): a call that
 * reaches the server after it (held in a socket buffer while the server was frozen, say) raises
 * `57014` and changes nothing, instead of consuming a code for a caller that gave up long ago.
 */
function redeemFunctionV2(): string {
  const edits: [string, string][] = [
    [
      '  p_audit_data jsonb\n) returns table (',
      '  p_audit_data jsonb,\n  p_deadline timestamptz\n) returns table (',
    ],
    [
      'begin\n  if v_n > 0 then',
      "begin\n  if p_deadline is not null and clock_timestamp() > p_deadline then\n    raise exception 'rc_redeem: start deadline passed' using errcode = '57014';\n  end if;\n  if v_n > 0 then",
    ],
    [
      'insert into rc_attempts as a (key, failures, consecutive, lockouts, locked_until)\n      select u.k, 1, 1, 0, to_timestamp(0)\n',
      'insert into rc_attempts as a (key, failures, consecutive, lockouts, locked_until, touched_at)\n      select u.k, 1, 1, 0, to_timestamp(0), p_now\n',
    ],
    [
      'set failures = a.failures + 1, consecutive = a.consecutive + 1\n',
      'set failures = a.failures + 1, consecutive = a.consecutive + 1, touched_at = p_now\n',
    ],
  ]
  let text = REDEEM_FUNCTION_V1
  for (const [from, to] of edits) {
    if (text.split(from).length !== 2) throw new Error('rc_redeem: a statement of 0002_redeem moved')
    text = text.replace(from, to)
  }
  return text
}

/**
 * `0004_attempts_touched`: `rc_attempts.touched_at`, when the counter was last reserved, so purge
 * can delete counters nobody has failed on for `purge.attemptRetentionDays`. Existing rows count
 * as touched at the migration (their age is unknown: none is dropped early). No index: see the
 * store's `purgeAttempts`. On PostgreSQL `rc_redeem` is replaced by {@link redeemFunctionV2}: it sets
 * `touched_at` and takes a start deadline.
 */
const attemptsTouched: Migration = {
  async up(db) {
    const dialect = detectDialect(db)
    const { ts } = types(dialect)
    await db.schema
      .alterTable('rc_attempts')
      .addColumn('touched_at', ts, (c) =>
        c.notNull().defaultTo(dialect === 'postgres' ? sql`to_timestamp(0)` : 0),
      )
      .execute()
    const now = dialect === 'postgres' ? sql`now()` : sql`cast(unixepoch('subsec') * 1000 as integer)`
    await sql`update rc_attempts set touched_at = ${now}`.execute(db)
    if (dialect === 'postgres') {
      await sql`drop function rc_redeem${REDEEM_V1_ARGS}`.execute(db)
      await constantSql(redeemFunctionV2()).execute(db)
    }
  },

  async down(db) {
    if (detectDialect(db) === 'postgres') {
      await sql`drop function rc_redeem${REDEEM_V2_ARGS}`.execute(db)
      await constantSql(REDEEM_FUNCTION_V1).execute(db)
    }
    await db.schema.alterTable('rc_attempts').dropColumn('touched_at').execute()
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
  '0002_redeem': redeem,
  '0003_purge_at': purgeAt,
  '0004_attempts_touched': attemptsTouched,
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
