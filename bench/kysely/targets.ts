/**
 * The databases under test. A target is the store's Kysely instance plus a direct driver handle for
 * the raw statements (the floor), seeding and maintenance, and what a worker thread needs to open a
 * connection of its own. The rows themselves (redeem.ts, purge.ts) only use the {@link Target}
 * interface, so another backend (mysql.ts) plugs in by building one.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, type KyselyStoreOptions } from 'node:path'
import {
  migrateRecoveryCodes,
  pgPreparedStatements,
  sqliteStatementCache,
} from '@recovery-codes/store-kysely'
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import {
  type BoundStatement,
  type CaptureSink,
  capturingDialect,
  pgReplayer,
  type RedeemVars,
  sqliteReplayer,
} from './capture.ts'
import { type BenchDialect, PG_URL, type SeedOptions, seedSql, sleep } from './common.ts'

/** How a worker thread opens its own connection to the same database (see redeemer.ts). */
export type WorkerConnection =
  | { dialect: 'sqlite'; file: string }
  | { dialect: 'postgres'; url: string; options: string }
  | { dialect: 'mysql'; url: string }

export interface Target {
  dialect: BenchDialect
  /** How the store's side is set up (printed once). */
  setup: string
  /** The store's Kysely instance. */
  db: Kysely<any>
  /** The options of the store under test (SQLite: its better-sqlite3 handle, `sqliteDatabase`). */
  storeOptions?: KyselyStoreOptions
  /** A second Kysely instance over the same handle / pool, recording into `sink`. */
  captureDb(sink: CaptureSink): Kysely<any>
  /** Runs statements as one transaction (SQLite) or one statement each (PostgreSQL autocommit). */
  exec(sqls: string[]): Promise<void>
  /** ANALYZE / VACUUM (ANALYZE), then a checkpoint: the table as a host keeps it. */
  maintain(): Promise<void>
  count(where: string): Promise<number>
  /** The column names of a table (the seed writes only those). */
  columns(table: string): Promise<Set<string>>
  /** A timestamp as the raw statements bind it (epoch ms on SQLite, `Date` on PostgreSQL). */
  ts(ms: number): unknown
  /** SQL for a timestamp literal (epoch ms) in raw SQL text. */
  tsSql(ms: number): string
  /** The floor: the bare conditional consume, `UPDATE rc_codes … RETURNING`, prepared once. */
  floor(userId: string, digest: Buffer, now: number): Promise<boolean> | boolean
  /** The floor's SQL text (for WAL frames on a second connection). */
  floorSql: string
  rawInsert(params: unknown[]): Promise<void> | void
  oneShotDelete(before: number): Promise<number> | number
  oneShotDeleteSql: string
  explain(sqlText: string, params: unknown[]): Promise<string>
  /** The captured statements of one redeem, run by hand on the raw handle. */
  replayer(bound: readonly BoundStatement[]): (vars: RedeemVars) => Promise<void> | void
  worker: WorkerConnection
  close(): Promise<void>
  /** The seed statement for this database, where common.ts `seedSql` does not speak its SQL (MySQL). */
  seedSql?(o: SeedOptions): string
  /** Renames a row whose wording is another database's (MySQL: no `RETURNING`, no pg client). */
  rowName?(name: string): string
  /**
   * Asks the service's purge to stop (`shouldStop`) after this many seconds, for a server on which
   * purging every eligible row would take too long (MySQL); unset: the purge runs to the end.
   */
  purgeSeconds?: number
}

/** The seed statement `o` for target `t`: its own (`Target.seedSql`), else common.ts `seedSql`. */
export function seedStatement(t: Target, o: SeedOptions): string {
  return t.seedSql?.(o) ?? seedSql(t.dialect, o)
}

export const RAW_REDEEM = {
  sqlite: `UPDATE rc_codes SET state = 'used', used_at = ?, changed_at = ?
    WHERE user_id = ? AND digest = ? AND state = 'active' AND changed_at IS NULL RETURNING id`,
  postgres: `UPDATE rc_codes SET state = 'used', used_at = $1, changed_at = $1
    WHERE user_id = $2 AND digest = $3 AND state = 'active' AND changed_at IS NULL RETURNING id`,
}
/** The one-shot reference: the store's purge predicate (both columns) as one statement. */
const ONE_SHOT_DELETE = {
  sqlite: 'DELETE FROM rc_codes WHERE changed_at < ? OR expires_at < ?',
  postgres: 'DELETE FROM rc_codes WHERE changed_at < $1 OR expires_at < $1',
}
const CODE_COLUMNS = '(id, user_id, batch_id, key_id, digest, state, created_at)'
export function rawInsertSql(d: 'sqlite' | 'postgres', rows: number): string {
  const values: string[] = []
  for (let r = 0; r < rows; r++) {
    if (d === 'sqlite') values.push(`(?, ?, 'rawgen', 'k1', ?, 'active', ?)`)
    else values.push(`($${r * 4 + 1}, $${r * 4 + 2}, 'rawgen', 'k1', $${r * 4 + 3}, 'active', $${r * 4 + 4})`)
  }
  return `INSERT INTO rc_codes ${CODE_COLUMNS} VALUES ${values.join(', ')}`
}

/** The SQLite connection settings of the bench (the baseline), for every connection. */
export function sqlitePragmas(raw: Database.Database) {
  raw.pragma('journal_mode = WAL')
  raw.pragma('synchronous = NORMAL')
  // A 256 MB page cache (negative = KiB).
  raw.pragma('cache_size = -262144')
}

export interface SqliteTarget extends Target {
  dialect: 'sqlite'
  file: string
  raw: Database.Database
}

export async function sqliteTarget(): Promise<SqliteTarget> {
  const dir = mkdtempSync(join(tmpdir(), 'rc-bench-'))
  const file = join(dir, 'rc.db')
  const raw = new Database(file, { timeout: 10_000 })
  sqlitePragmas(raw)
  raw.function('rc_md5', { deterministic: true }, (i) => createHash('md5').update(`c${i}`).digest('hex'))
  raw.function('rc_sha256', { deterministic: true }, (i) => {
    const b = Buffer.alloc(8)
    b.writeBigInt64BE(BigInt(i as number))
    return createHash('sha256').update(b).digest()
  })
  // The store's side prepares each statement once (`sqliteStatementCache`); so does the raw side.
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: sqliteStatementCache(raw) }) })
  await migrateRecoveryCodes(db)
  const redeem = raw.prepare(RAW_REDEEM.sqlite)
  const insert = raw.prepare(rawInsertSql('sqlite', 10))
  const oneShot = raw.prepare(ONE_SHOT_DELETE.sqlite)
  return {
    dialect: 'sqlite',
    setup:
      'better-sqlite3, WAL, synchronous=NORMAL, 256 MB page cache, sqliteStatementCache, kyselyStore sqliteDatabase',
    file,
    raw,
    db,
    storeOptions: { sqliteDatabase: raw },
    captureDb: (sink) =>
      new Kysely<any>({
        dialect: capturingDialect(new SqliteDialect({ database: sqliteStatementCache(raw) }), sink),
      }),
    async exec(sqls) {
      raw.transaction(() => {
        for (const s of sqls) raw.prepare(s).run()
      })()
    },
    async maintain() {
      raw.exec('ANALYZE')
      raw.pragma('wal_checkpoint(TRUNCATE)')
    },
    async count(where) {
      return (raw.prepare(`SELECT count(*) AS n FROM rc_codes WHERE ${where}`).get() as { n: number }).n
    },
    async columns(table) {
      const rows = raw.prepare('SELECT name FROM pragma_table_info(?)').all(table) as { name: string }[]
      return new Set(rows.map((r) => r.name))
    },
    ts: (ms) => ms,
    tsSql: (ms) => String(ms),
    floor(userId, digest, now) {
      return redeem.get(now, now, userId, digest) !== undefined
    },
    floorSql: RAW_REDEEM.sqlite,
    rawInsert(params) {
      insert.run(params)
    },
    oneShotDelete(before) {
      return oneShot.run(before, before).changes
    },
    oneShotDeleteSql: ONE_SHOT_DELETE.sqlite,
    async explain(sqlText, params) {
      const rows = raw.prepare(`EXPLAIN QUERY PLAN ${sqlText}`).all(params) as { detail: string }[]
      return rows.map((r) => r.detail).join(' | ')
    },
    replayer: (bound) => sqliteReplayer(raw, bound),
    worker: { dialect: 'sqlite', file },
    async close() {
      await db.destroy()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface PostgresTarget extends Target {
  dialect: 'postgres'
  schema: string
  /** The node-postgres pool under the store's `pgPreparedStatements` wrapper. */
  pgPool: pg.Pool
  /** The wrapped pool the store's dialect uses. */
  preparedPool: ReturnType<typeof pgPreparedStatements>
  /** The raw side's own connection. */
  raw: pg.Client
  /** Opens another raw connection in the bench schema (the caller ends it). */
  connect(config?: Partial<pg.ClientConfig>): Promise<pg.Client>
  /**
   * rc_attempts row changes so far (n_tup_ins + n_tup_upd + n_tup_del + n_tup_hot_upd), after
   * making every pool connection flush its pending statistics.
   */
  attemptChanges(): Promise<{ total: number; ins: number; upd: number; del: number; hot: number }>
}

export async function postgresTarget(): Promise<PostgresTarget> {
  // Generated from hex digits here, never from input.
  const schema = `rc_bench_${randomBytes(8).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.end()
  const options = `-c search_path=${schema}`
  // The store's side prepares each statement once per connection (`pgPreparedStatements`), like the
  // raw side's named queries below.
  const pgPool = new pg.Pool({ connectionString: PG_URL, max: 10, options })
  const preparedPool = pgPreparedStatements(pgPool)
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: preparedPool }) })
  await migrateRecoveryCodes(db)
  const connect = async (config: Partial<pg.ClientConfig> = {}) => {
    const c = new pg.Client({ connectionString: PG_URL, options, ...config })
    await c.connect()
    return c
  }
  const raw = await connect()
  // Autovacuum off on the bench tables so it cannot land inside one measurement and not the other;
  // the bench runs VACUUM (ANALYZE) itself between phases (see maintain()).
  const tables = (
    await raw.query(
      `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'rc\\_%' AND tablename NOT LIKE 'rc\\_migrations%'`,
    )
  ).rows.map((r) => r.tablename as string)
  for (const t of tables) await raw.query(`ALTER TABLE ${t} SET (autovacuum_enabled = false)`)
  const hasForceFlush =
    (await raw.query(`SELECT 1 FROM pg_proc WHERE proname = 'pg_stat_force_next_flush'`)).rowCount === 1
  const insertText = rawInsertSql('postgres', 10)
  /** Runs `text` once on every idle connection of the store's pool (checked out together). */
  const onEveryPoolConnection = async (text: string) => {
    const clients = await Promise.all(
      Array.from({ length: Math.max(1, pgPool.idleCount) }, () => pgPool.connect()),
    )
    try {
      for (const c of clients) await c.query(text)
    } finally {
      for (const c of clients) c.release()
    }
  }
  return {
    dialect: 'postgres',
    setup: `node-postgres Pool (max 10) under pgPreparedStatements, schema ${schema}`,
    schema,
    pgPool,
    preparedPool,
    raw,
    connect,
    db,
    captureDb: (sink) =>
      new Kysely<any>({ dialect: capturingDialect(new PostgresDialect({ pool: preparedPool }), sink) }),
    async exec(sqls) {
      for (const s of sqls) await raw.query(s)
    },
    async maintain() {
      await raw.query(`VACUUM (ANALYZE) ${tables.join(', ')}`)
      await raw.query('CHECKPOINT')
    },
    async count(where) {
      const r = await raw.query(`SELECT count(*)::int AS n FROM rc_codes WHERE ${where}`)
      return r.rows[0].n as number
    },
    async columns(table) {
      const r = await raw.query(
        'SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
        [table],
      )
      return new Set(r.rows.map((x) => x.column_name as string))
    },
    ts: (ms) => new Date(ms),
    tsSql: (ms) => `to_timestamp(${ms} / 1000.0)`,
    async floor(userId, digest, now) {
      const r = await raw.query({
        name: 'rc_raw_redeem',
        text: RAW_REDEEM.postgres,
        values: [new Date(now), userId, digest],
      })
      return r.rowCount === 1
    },
    floorSql: RAW_REDEEM.postgres,
    async rawInsert(params) {
      await raw.query({ name: 'rc_raw_insert10', text: insertText, values: params })
    },
    async oneShotDelete(before) {
      const r = await raw.query(ONE_SHOT_DELETE.postgres, [new Date(before)])
      return r.rowCount ?? 0
    },
    oneShotDeleteSql: ONE_SHOT_DELETE.postgres,
    async explain(sqlText, params) {
      const r = await raw.query(`EXPLAIN ${sqlText}`, params)
      return r.rows.map((x) => String(x['QUERY PLAN']).trim()).join(' | ')
    },
    replayer: (bound) => pgReplayer(raw, bound),
    worker: { dialect: 'postgres', url: PG_URL, options },
    async attemptChanges() {
      if (hasForceFlush) {
        // Flushed by each backend when it goes idle after this statement (before it answers).
        await onEveryPoolConnection('SELECT pg_stat_force_next_flush()')
      } else {
        // Pending statistics are flushed at most once a second, when a backend goes idle.
        await sleep(1100)
        await onEveryPoolConnection('SELECT 1')
        await sleep(600)
      }
      const r = await raw.query(
        `SELECT n_tup_ins AS ins, n_tup_upd AS upd, n_tup_del AS del, n_tup_hot_upd AS hot
         FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'rc_attempts'`,
        [schema],
      )
      const row = r.rows[0] ?? { ins: 0, upd: 0, del: 0, hot: 0 }
      const [ins, upd, del, hot] = [row.ins, row.upd, row.del, row.hot].map(Number) as [
        number,
        number,
        number,
        number,
      ]
      return { total: ins + upd + del + hot, ins, upd, del, hot }
    },
    async close() {
      await raw.end()
      await db.destroy()
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await c.end()
    },
  }
}
