/**
 * Every difference between the SQL dialects the store speaks, in one place: column types, how a
 * timestamp is bound, the purge-time expression, how a picked row is addressed, row locks. The
 * statement files build on {@link SqlDialect} and never test the dialect's name themselves.
 */
import { RecoveryCodesError } from '@recovery-codes/core'
import {
  type Expression,
  type Kysely,
  MysqlAdapter,
  PostgresAdapter,
  type RawBuilder,
  SqliteAdapter,
  sql,
} from 'kysely'
import { Slot } from './sql/template.ts'

/** The SQL dialects this package supports. */
export type RecoveryCodesDialect = 'sqlite' | 'postgres' | 'mysql'

/**
 * Detects the dialect from the Kysely instance's adapter (`SqliteAdapter`, `PostgresAdapter` or
 * `MysqlAdapter`, including subclasses such as the PGlite dialect's). Falls back to the adapter's
 * class name when the host's `kysely` is a different copy than ours. Throws for anything else.
 */
export function detectDialect(db: Kysely<any>): RecoveryCodesDialect {
  const adapter = db.getExecutor().adapter
  if (adapter instanceof SqliteAdapter) return 'sqlite'
  if (adapter instanceof PostgresAdapter) return 'postgres'
  if (adapter instanceof MysqlAdapter) return 'mysql'
  let proto: unknown = Object.getPrototypeOf(adapter)
  while (proto !== null && typeof proto === 'object') {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? ''
    if (/sqlite/i.test(name)) return 'sqlite'
    if (/postgres/i.test(name)) return 'postgres'
    if (/mysql/i.test(name)) return 'mysql'
    proto = Object.getPrototypeOf(proto)
  }
  throw new RecoveryCodesError(
    'CONFIG_INVALID',
    'store-kysely supports SQLite, PostgreSQL and MySQL (MariaDB) adapters only',
  )
}

/**
 * Column types of the schema, per dialect. MySQL: epoch-ms `bigint`, raw `varbinary` digests and
 * JSON as text (`migrations/mysql.ts` has the rest of its column types: every id is `varbinary`).
 */
export function columnTypes(dialect: RecoveryCodesDialect) {
  if (dialect === 'mysql') return MYSQL_TYPES
  return dialect === 'postgres'
    ? ({ ts: 'timestamptz', bytes: 'bytea', json: 'jsonb' } as const)
    : ({ ts: 'integer', bytes: 'blob', json: 'text' } as const)
}

/**
 * MySQL / MariaDB column types (see `migrations/mysql.ts`). Ids, user ids and keys are
 * `varbinary`: exact byte comparison and order like SQLite's `BINARY` and PostgreSQL's `"C"` (no
 * collation common to MySQL 8 and MariaDB compares `varchar` without PAD SPACE), and at most
 * {@link MYSQL_MAX_KEY_BYTES} bytes so that every composite index fits InnoDB's 3072-byte keys.
 */
export const MYSQL_TYPES = {
  ts: 'bigint',
  bytes: sql`varbinary(255)`,
  json: sql`longtext character set utf8mb4 collate utf8mb4_bin`,
  id: sql`varbinary(1024)`,
  text: sql`varchar(1024) character set utf8mb4 collate utf8mb4_bin`,
  name: sql`varchar(16) character set ascii collate ascii_bin`,
} as const

/**
 * MySQL: the longest id, user id, limiter key or audit event, in UTF-8 bytes (their columns are
 * `varbinary(1024)`; the widest index, `(user_id, created_at, id)`, is then 2056 of InnoDB's 3072
 * bytes). The other dialects limit them to `MAX_TEXT_LENGTH` characters only.
 */
export const MYSQL_MAX_KEY_BYTES = 1024

/**
 * When a code row can first be purged: the earlier of `changed_at` and `expires_at`, NULL while
 * neither is set (PostgreSQL `least` skips NULLs; SQLite's `min` does not, hence the `coalesce`s).
 * The purge index of `0003_purge_at` is on exactly this expression, and queries must repeat it
 * verbatim for the planner to use that index.
 */
export function purgeAtSql(dialect: RecoveryCodesDialect): RawBuilder<unknown> {
  // MySQL: the stored generated column `purge_at` (MariaDB has no expression indexes); it holds
  // SQLite's expression (MySQL's `least` is NULL when any argument is).
  if (dialect === 'mysql') return sql`purge_at`
  return dialect === 'postgres'
    ? sql`least(changed_at, expires_at)`
    : sql`min(coalesce(changed_at, expires_at), coalesce(expires_at, changed_at))`
}

/** The partial-index predicate of `0003_purge_at`; purge queries repeat it verbatim. */
export const PURGE_AT_PRESENT = sql`(changed_at is not null or expires_at is not null)`

/**
 * PostgreSQL timestamps are clamped to years 0001–9999 (the range every driver serialises as a plain
 * ISO string; PGlite sends `Date#toISOString()`, which PostgreSQL refuses past year 9999).
 */
const MAX_DATE_MS = 253_402_300_799_999
const MIN_DATE_MS = -62_135_596_800_000

/** A select that picks rows of the table a statement then changes (see {@link SqlDialect.picked}). */
// biome-ignore lint/suspicious/noExplicitAny: a select builder over any of the store's tables
type Pick = any

/** The dialect-dependent pieces of the store's statements. */
export interface SqlDialect {
  readonly name: RecoveryCodesDialect
  /** Whether statements run through PostgreSQL (one statement per call where SQLite needs a transaction). */
  readonly pg: boolean
  /**
   * Epoch ms as the column type wants it: the number for SQLite; a `Date` for `timestamptz`, clamped
   * to years 0001–9999 so a `now` such as `Number.MAX_SAFE_INTEGER` still compares correctly
   * against every stored time (which is clamped the same way). Slots pass through unchanged.
   */
  ts(ms: number): number | Date
  /** {@link purgeAtSql} of this dialect. */
  readonly purgeAt: RawBuilder<unknown>
  /**
   * "The row is one of those `pick` selects", by physical address (PostgreSQL `ctid` under
   * `FOR UPDATE SKIP LOCKED`, so two purgers and redeems pass each other and the rows cannot move
   * before the change; SQLite `rowid`): the change fetches exactly those rows (TID scan / rowid
   * search) instead of joining back through a key. `auditKey`: `rc_audit_log`, a SQLite
   * `WITHOUT ROWID` table with no `rowid`, is addressed by its key `(at, id)`. MySQL has neither a row address nor a sub-select
   * of a DELETE's own table: its purges pick with `FOR UPDATE SKIP LOCKED` and delete by key in the
   * same transaction (`queries/mysql.ts`), and `picked` throws there.
   */
  picked(pick: Pick, auditKey?: boolean): RawBuilder<boolean>
  /**
   * "The code's batch is the user's active batch". PostgreSQL: `batch_id IN (…)`, planned as a
   * semi-join on the one-active-batch index. SQLite: a correlated `EXISTS` on the batch's primary
   * key, since SQLite runs `IN (subquery)` by building a temporary list (and a Bloom filter) on every
   * execution, which more than doubled the consume statement's time. MySQL: `batch_id IN (…)` on
   * the generated column `active_user_id` of the one-active-batch index (no partial indexes).
   */
  // biome-ignore lint/suspicious/noExplicitAny: an expression builder of `rc_codes` or an alias
  inActiveBatch(eb: any, batchIdColumn: string, userId: string): Expression<boolean>
  /**
   * Serialises batch creation per user (PostgreSQL: transaction-scoped advisory lock); `null` on
   * SQLite, and on MySQL, whose lock is session-scoped ({@link SqlDialect.sessionUserLock}).
   */
  lockUser(userId: string): RawBuilder<unknown> | null
  /**
   * Serialises the counts of what is left after consumes of one batch (PostgreSQL: the advisory
   * lock `rc_redeem` takes); `null` on SQLite, whose write transactions already run one at a time.
   */
  lockBatch(batchId: string): RawBuilder<unknown> | null
  /**
   * MySQL: the per-user lock of batch creation, a named lock (`GET_LOCK`, session-scoped: taken on
   * the transaction's connection before it begins, released after it ends). Every other lock of the
   * store is a row lock, taken in the order limiter rows → code rows → batch rows; the only per-user
   * row, the active batch, is locked by a consume after its code row, so batch creation cannot take
   * it before the codes it ends. `take` returns `got` = 1 when granted within
   * `innodb_lock_wait_timeout`. `null` on the other dialects (see {@link SqlDialect.lockUser}).
   */
  readonly sessionUserLock: {
    take(userId: string): RawBuilder<unknown>
    release(userId: string): RawBuilder<unknown>
  } | null
  /**
   * The longest id, user id, limiter key or audit event the dialect stores, in UTF-8 bytes
   * (MySQL: {@link MYSQL_MAX_KEY_BYTES}); `null`: only `MAX_TEXT_LENGTH` characters apply.
   */
  readonly maxKeyBytes: number | null
}

/** The {@link SqlDialect} of `name`. */
export function sqlDialect(name: RecoveryCodesDialect): SqlDialect {
  const pg = name === 'postgres'
  const mysql = name === 'mysql'
  return {
    name,
    pg,
    ts: (ms) =>
      (ms as unknown) instanceof Slot
        ? (ms as never)
        : pg
          ? new Date(Math.max(MIN_DATE_MS, Math.min(MAX_DATE_MS, ms)))
          : ms,
    purgeAt: purgeAtSql(name),
    picked: (pick, auditKey) => {
      if (mysql) return mysqlPicked(pick, auditKey)
      if (pg)
        return sql<boolean>`ctid = any(array(${pick.select(sql`ctid`.as('t')).forUpdate().skipLocked()}))`
      if (!auditKey) return sql<boolean>`rowid in (${pick.select(sql`rowid`.as('r'))})`
      return sql<boolean>`(at, id) in (${pick.select(['at', 'id'])})`
    },
    inActiveBatch: (eb, batchIdColumn, userId) => {
      if (mysql) {
        const active = eb.selectFrom('rc_batches').select('rc_batches.id')
        return eb(batchIdColumn, 'in', active.where(sql`rc_batches.active_user_id`, '=', userId))
      }
      const batches = eb
        .selectFrom('rc_batches')
        .select('rc_batches.id')
        .where('rc_batches.user_id', '=', userId)
        .where('rc_batches.status', '=', 'active')
      return pg
        ? eb(batchIdColumn, 'in', batches)
        : eb.exists(batches.whereRef('rc_batches.id', '=', batchIdColumn))
    },
    lockUser: (userId) => (pg ? sql`select pg_advisory_xact_lock(29283, hashtext(${userId}))` : null),
    lockBatch: (batchId) =>
      pg
        ? sql`select pg_advisory_xact_lock(hashtextextended(${batchId}, 29285))`
        : mysql
          ? sql`select id from rc_batches where id = ${batchId} for update`
          : null,
    sessionUserLock: mysql ? MYSQL_USER_LOCK : null,
    maxKeyBytes: mysql ? MYSQL_MAX_KEY_BYTES : null,
  }
}

/**
 * MySQL's `GET_LOCK` name for a user: `rc_batch:` and the SHA-1 of the user id (49 characters;
 * names are limited to 64), computed by the server from the bound id.
 */
const MYSQL_USER_LOCK: NonNullable<SqlDialect['sessionUserLock']> = {
  take: (userId) =>
    sql`select get_lock(concat('rc_batch:', sha1(${userId})), @@innodb_lock_wait_timeout) as got`,
  release: (userId) => sql`select release_lock(concat('rc_batch:', sha1(${userId}))) as released`,
}

/** {@link SqlDialect.picked} on MySQL: never used (see there). */
function mysqlPicked(_pick: Pick, _auditKey: boolean | undefined): RawBuilder<boolean> {
  throw new RecoveryCodesError('INTERNAL', 'store-kysely: MySQL purges pick rows in queries/mysql.ts')
}
