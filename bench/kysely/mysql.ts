/**
 * MySQL / MariaDB (`RC_BENCH_DB=mysql`): the third backend, with the same rows as SQLite and
 * PostgreSQL (`runTarget` in kysely.bench.ts, which runs redeem.ts and purge.ts), in a fresh
 * database `rc_bench_<random>` of the server at `MYSQL_URL` (dropped afterwards; skipped with a
 * note when the server does not answer). {@link storeSupports} asks the store itself, at run time,
 * whether it takes a MySQL Kysely instance.
 *
 * - The store's side: a `Kysely` over `MysqlDialect` on a mysql2 pool (10 connections), migrated.
 * - The raw side: one mysql2 connection of its own, statements with parameters through
 *   `execute()` (server-side prepared, once per connection), the others as text.
 * - The seed ({@link mysqlSeedSql}): the data set of common.ts in MySQL's SQL (`CONCAT`, `DIV`,
 *   `WITH RECURSIVE` inside `INSERT … SELECT`, `BIGINT` epoch-ms times); only real columns are
 *   written, never the generated `purge_at` / `active_user_id`.
 * - The floor ({@link FLOOR_SQL}): MySQL has no `RETURNING`, so the minimal exactly-once consume a
 *   hand-written app would do is one autocommit conditional `UPDATE … WHERE user_id = ? AND
 *   digest = ? AND state = 'active' AND changed_at IS NULL` whose `affectedRows` is 1 (the same
 *   SET and WHERE as the other floors; it tells the caller *that* it consumed, not which row).
 * - The one-shot DELETE: the store's purge predicate on MySQL, `purge_at < ?` (the generated
 *   column under `rc_codes_purge_at`; the same rows as `changed_at < ? OR expires_at < ?`).
 * - The replayer ({@link mysqlReplayer}) and the purge rows' worker (redeemer.ts, its own pool).
 * - The service's purge is stopped after {@link PURGE_SECONDS} (its rows say how many of the
 *   eligible rows it deleted by then); the one-shot DELETE still deletes all of them.
 *
 * mysql2 is not a dependency of the bench: it is loaded from store-kysely's (its dev dependency)
 * when the bench cannot resolve it itself ({@link loadMysql2}).
 */
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { kyselyStore, migrateRecoveryCodes } from '@recovery-codes/store-kysely'
import { Kysely, MysqlDialect } from 'kysely'
import { type BoundStatement, capturingDialect, type RedeemVars } from './capture.ts'
import { type BenchDialect, CODES_PER_BATCH, DAY, MYSQL_URL, type SeedOptions, sleep } from './common.ts'
import type { Target } from './targets.ts'

/**
 * Whether `kyselyStore` accepts `db` as a store of `dialect` (nothing is sent to the database:
 * building a store runs no SQL). `null` when it does, the store's refusal otherwise.
 */
export function storeSupports(db: Kysely<any>, dialect: BenchDialect): string | null {
  try {
    kyselyStore(db, { dialect: dialect as never })
    kyselyStore(db)
    return null
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  }
}

/** What a mysql2 promise connection answers: rows for a SELECT, a result header otherwise. */
type MysqlResult = Record<string, unknown>[] | { affectedRows: number }

/** The part of a mysql2 promise connection the raw side uses (typed structurally). */
export interface MysqlConnection {
  query(sql: string, values?: unknown[]): Promise<[MysqlResult, unknown]>
  execute(sql: string, values?: unknown[]): Promise<[MysqlResult, unknown]>
  end(): Promise<void>
}

/** The part of mysql2 (the callback API) the bench uses. */
export interface Mysql2 {
  createPool(config: Record<string, unknown>): unknown
  createConnection(config: Record<string, unknown>): { promise(): MysqlConnection }
}

/** mysql2, resolved from the bench or, failing that, from store-kysely (its dev dependency). */
export function loadMysql2(): Mysql2 | null {
  for (const from of [import.meta.url, import.meta.resolve('@recovery-codes/store-kysely')]) {
    try {
      return createRequire(from)('mysql2') as Mysql2
    } catch {
      // try the next place
    }
  }
  return null
}

const affected = (r: MysqlResult) => (Array.isArray(r) ? 0 : r.affectedRows)
const rowsOf = (r: MysqlResult) => (Array.isArray(r) ? r : [])

/**
 * The service's purge stops after this long (`RC_BENCH_MYSQL_PURGE_SECONDS`, default 60): on a
 * server whose buffer pool is smaller than the 1M-row table (MariaDB's default 128 MB, O_DIRECT),
 * a chunk's scattered rows are read from disk, the service's 10 ms chunk budget shrinks the chunks
 * to a few rows, and purging all 500k eligible rows would take tens of minutes.
 */
const PURGE_SECONDS = Number(process.env.RC_BENCH_MYSQL_PURGE_SECONDS ?? 60)

/** The floor: one autocommit conditional UPDATE; consumed when it changed one row. */
export const FLOOR_SQL = `UPDATE rc_codes SET state = 'used', used_at = ?, changed_at = ?
    WHERE user_id = ? AND digest = ? AND state = 'active' AND changed_at IS NULL`
/** The one-shot reference: the store's purge predicate on MySQL, as one statement. */
const ONE_SHOT_DELETE_SQL = 'DELETE FROM rc_codes WHERE purge_at < ?'
const RAW_INSERT_SQL = `INSERT INTO rc_codes (id, user_id, batch_id, key_id, digest, state, created_at) VALUES ${Array.from(
  { length: 10 },
  () => `(?, ?, 'rawgen', 'k1', ?, 'active', ?)`,
).join(', ')}`

/**
 * Row names written for the other databases' raw side, as they read on MySQL: its floor has no
 * `RETURNING`, and the replay runs on mysql2, not on a pg client.
 */
export function mysqlRowName(name: string): string {
  return name
    .replace(
      'floor: raw UPDATE … RETURNING',
      'floor: raw conditional UPDATE, affectedRows = 1 (no RETURNING)',
    )
    .replace(
      'the same statements on a raw pg client (named prepared)',
      'the same statements on a raw mysql2 connection (execute(): server-side prepared)',
    )
}

/**
 * The seed of common.ts (`seedSql`: the same batches, code ids and digests) in MySQL's SQL. The
 * ranges come from recursive CTEs, so the session's recursion limit must allow `to - from` rows
 * (MariaDB `max_recursive_iterations`, MySQL `cte_max_recursion_depth`: the raw side raises it).
 */
export function mysqlSeedSql(o: SeedOptions): string {
  const { now } = o
  const ba = `
    SELECT b, k, created, ended, u,
      CASE WHEN k = 0 THEN created + ${365 * DAY} WHEN k = 3 AND b % 8 = 3 THEN ${now + 300 * DAY} END AS expires
    FROM (SELECT b, k,
        ${now} - (CASE k WHEN 0 THEN ${800 * DAY} WHEN 1 THEN ${500 * DAY} WHEN 2 THEN ${80 * DAY} ELSE ${20 * DAY} END) + b * 1000 AS created,
        (CASE k WHEN 0 THEN ${now - 500 * DAY} WHEN 1 THEN ${now - 200 * DAY} WHEN 2 THEN ${now - 30 * DAY} END) + b * 1000 AS ended,
        CASE k WHEN 0 THEN 3 WHEN 1 THEN 2 WHEN 2 THEN 1 ELSE 1 END AS u
      FROM (SELECT b, b % 4 AS k FROM g) s
      ${o.eligibleOnly ? 'WHERE k < 2' : ''}) t`
  // BIGINT from the anchor on: a recursive CTE's column types are its anchor's.
  const cte = `WITH RECURSIVE g(b) AS (
        SELECT CAST(${o.from} AS SIGNED) FROM DUAL WHERE ${o.from} < ${o.to}
        UNION ALL SELECT b + 1 FROM g WHERE b < ${o.to - 1}),
      js(j) AS (SELECT CAST(0 AS SIGNED) UNION ALL SELECT j + 1 FROM js WHERE j < ${CODES_PER_BATCH - 1})`
  const pick = (table: string, all: [string, string][], required: string[]) => {
    for (const c of required) {
      if (!o.columns.has(c)) throw new Error(`bench: ${table} has no column ${c}; the seed needs it`)
    }
    const kept = all.filter(([c]) => o.columns.has(c))
    return { cols: kept.map(([c]) => c).join(', '), exprs: kept.map(([, e]) => e).join(',\n        ') }
  }
  if (o.what === 'batches') {
    const { cols, exprs } = pick(
      'rc_batches',
      [
        ['id', `CONCAT('sb-', b)`],
        ['user_id', `CONCAT('seed-', b DIV 4)`],
        ['key_id', `'k1'`],
        ['status', `CASE WHEN k < 3 THEN 'superseded' ELSE 'active' END`],
        ['created_at', 'created'],
        ['expires_at', 'expires'],
        ['ended_at', 'ended'],
        ['issued', `${CODES_PER_BATCH}`],
        ['unused', `${CODES_PER_BATCH} - u`],
        ['used', 'u'],
        ['invalidated', '0'],
        ['deleted', '0'],
        ['viewed_at', 'created + 60000'],
        ['last_used_at', `created + u * ${DAY}`],
      ],
      ['id', 'user_id', 'status'],
    )
    return `INSERT INTO rc_batches (${cols}) ${cte} SELECT ${exprs} FROM (${ba}) bt`
  }
  const usedAt = `created + (j + 1) * ${DAY}`
  const { cols, exprs } = pick(
    'rc_codes',
    [
      // Time-prefixed like the service's ids: hex12(created ms) || md5('c' || i)[0..20].
      ['id', `CONCAT(LPAD(LOWER(HEX(created)), 12, '0'), SUBSTR(MD5(CONCAT('c', i)), 1, 20))`],
      ['user_id', `CONCAT('seed-', b DIV 4)`],
      ['batch_id', `CONCAT('sb-', b)`],
      ['key_id', `'k1'`],
      // sha256(int8be(i)), as `seededDigest`.
      ['digest', `UNHEX(SHA2(UNHEX(LPAD(HEX(i), 16, '0')), 256))`],
      ['state', `CASE WHEN j < u THEN 'used' ELSE 'active' END`],
      ['created_at', 'created'],
      ['expires_at', 'expires'],
      ['used_at', `CASE WHEN j < u THEN ${usedAt} END`],
      ['changed_at', `CASE WHEN j < u THEN ${usedAt} WHEN k < 3 THEN ended END`],
    ],
    ['id', 'user_id', 'batch_id', 'digest'],
  )
  // The re-seed of the eligible rows skips those a purge stopped by `purgeSeconds` left in place.
  return `INSERT ${o.eligibleOnly ? 'IGNORE ' : ''}INTO rc_codes (${cols}) ${cte}
    SELECT ${exprs}
    FROM (SELECT bt.*, js.j, bt.b * ${CODES_PER_BATCH} + js.j AS i FROM (${ba}) bt CROSS JOIN js) x`
}

/** A result of a replayed statement against the capture (a replay that consumes nothing fails). */
function check(b: BoundStatement, i: number, rows: number, changes: number | undefined) {
  if (
    rows !== b.expectRows ||
    (b.expectAffected !== undefined && BigInt(changes ?? 0) !== b.expectAffected)
  ) {
    throw new Error(
      `bench: replayed statement #${i} returned ${rows} rows / ${changes} changes, the capture ${b.expectRows} / ${b.expectAffected}: ${b.sql.slice(0, 120)}`,
    )
  }
}

/**
 * One redeem's statements by hand on a raw mysql2 connection: those with parameters through
 * `execute()` (prepared once per connection by mysql2, then executed), the rest (`begin`,
 * `commit`, `set transaction …`) as text; on a failure the transaction is rolled back.
 */
export function mysqlReplayer(conn: MysqlConnection, bound: readonly BoundStatement[]) {
  return async (vars: RedeemVars): Promise<void> => {
    const results: Record<string, unknown>[][] = []
    try {
      for (let i = 0; i < bound.length; i++) {
        const b = bound[i]!
        const values = b.params.map((f) => f(vars, results))
        const [r] = values.length === 0 ? await conn.query(b.sql) : await conn.execute(b.sql, values)
        const rows = rowsOf(r)
        check(b, i, rows.length, Array.isArray(r) ? undefined : affected(r))
        results.push(rows)
      }
    } catch (e) {
      await conn.query('rollback').catch(() => {})
      throw e
    }
  }
}

/** Raises the session's recursion limit for the seed's CTEs (MariaDB and MySQL name it differently). */
async function allowDeepRecursion(conn: MysqlConnection, mariadb: boolean) {
  await conn.query(
    mariadb
      ? 'SET SESSION max_recursive_iterations = 4294967295'
      : 'SET SESSION cte_max_recursion_depth = 4294967295',
  )
}

/** The database URL of `database` on the server of {@link MYSQL_URL}. */
function databaseUrl(database: string): string {
  const u = new URL(MYSQL_URL)
  u.pathname = `/${database}`
  return u.toString()
}

export interface MysqlTarget extends Target {
  dialect: 'mysql'
  database: string
  raw: MysqlConnection
}

/** The MySQL target, or the reason it is skipped. */
export async function mysqlTarget(): Promise<MysqlTarget | string> {
  const mysql2 = loadMysql2()
  if (mysql2 === null) return 'mysql2 is not installed where the bench can load it'
  // Probe first: the server's own database, a short connect timeout.
  const admin = mysql2.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 }).promise()
  let version: string
  try {
    const [r] = await admin.query('SELECT VERSION() AS v')
    version = String(rowsOf(r)[0]?.v)
  } catch (e) {
    await admin.end().catch(() => {})
    const why = e instanceof Error ? e.message || (e as { code?: string }).code || e.name : String(e)
    // The host only: a URL may carry a password.
    return `MySQL at ${new URL(MYSQL_URL).host} unreachable (${why})`
  }
  // A pool is created lazily by mysql2: no connection is opened by building the store.
  const probe = new Kysely<any>({
    dialect: new MysqlDialect({ pool: mysql2.createPool({ uri: MYSQL_URL, connectionLimit: 1 }) as never }),
  })
  const refused = storeSupports(probe, 'mysql')
  await probe.destroy()
  if (refused !== null) {
    await admin.end()
    return `store-kysely does not take a MySQL Kysely instance yet (${refused})`
  }
  // Generated from hex digits here, never from input.
  const database = `rc_bench_${randomBytes(8).toString('hex')}`
  await admin.query(`CREATE DATABASE ${database}`)
  await admin.end()
  const url = databaseUrl(database)
  const dropDatabase = async () => {
    const c = mysql2.createConnection({ uri: MYSQL_URL }).promise()
    try {
      await c.query(`DROP DATABASE IF EXISTS ${database}`)
    } finally {
      await c.end().catch(() => {})
    }
  }
  const pool = mysql2.createPool({ uri: url, connectionLimit: 10 })
  const db = new Kysely<any>({ dialect: new MysqlDialect({ pool: pool as never }) })
  let raw: MysqlConnection | undefined
  try {
    await migrateRecoveryCodes(db)
    raw = mysql2.createConnection({ uri: url }).promise()
    await allowDeepRecursion(raw, /mariadb/i.test(version))
  } catch (e) {
    await raw?.end().catch(() => {})
    await db.destroy()
    await dropDatabase()
    throw e
  }
  const conn = raw
  const tables = ['rc_codes', 'rc_batches', 'rc_attempts', 'rc_audit_log']
  /** InnoDB history (undo the purge threads have yet to clean), or `null` when not readable. */
  const historyLength = async () => {
    const [r] = await conn
      .query(`SELECT count AS n FROM information_schema.innodb_metrics WHERE name = 'trx_rseg_history_len'`)
      .catch(() => [[] as Record<string, unknown>[]] as const)
    const n = rowsOf(r)[0]?.n
    return n === undefined ? null : Number(n)
  }
  return {
    dialect: 'mysql',
    setup: `${/mariadb/i.test(version) ? 'MariaDB' : 'MySQL'} ${version}, mysql2 pool (10) under MysqlDialect, database ${database}; raw side: one mysql2 connection, execute() (server-side prepared)`,
    database,
    raw: conn,
    db,
    captureDb: (sink) =>
      new Kysely<any>({ dialect: capturingDialect(new MysqlDialect({ pool: pool as never }), sink) }),
    seedSql: mysqlSeedSql,
    rowName: mysqlRowName,
    purgeSeconds: PURGE_SECONDS,
    async exec(sqls) {
      for (const s of sqls) await conn.query(s)
    },
    async maintain() {
      await conn.query(`ANALYZE TABLE ${tables.join(', ')}`)
      // No checkpoint to ask InnoDB for; wait (at most 30 s) for its purge threads to clean up
      // after the big deletes instead, so their work does not land inside the next rows.
      for (let waited = 0; waited < 30_000; waited += 250) {
        const n = await historyLength()
        if (n === null || n < 10_000) break
        await sleep(250)
      }
    },
    async count(where) {
      const [r] = await conn.query(`SELECT count(*) AS n FROM rc_codes WHERE ${where}`)
      return Number(rowsOf(r)[0]?.n)
    },
    async columns(table) {
      // Real columns only: the generated ones (`purge_at`, `active_user_id`) cannot be written.
      const [r] = await conn.execute(
        `SELECT column_name AS name FROM information_schema.columns
         WHERE table_schema = DATABASE() AND table_name = ? AND COALESCE(generation_expression, '') = ''`,
        [table],
      )
      return new Set(rowsOf(r).map((x) => String(x.name)))
    },
    ts: (ms) => ms,
    tsSql: (ms) => String(ms),
    async floor(userId, digest, now) {
      const [r] = await conn.execute(FLOOR_SQL, [now, now, userId, digest])
      return affected(r) === 1
    },
    floorSql: FLOOR_SQL,
    async rawInsert(params) {
      await conn.execute(RAW_INSERT_SQL, params)
    },
    async oneShotDelete(before) {
      const [r] = await conn.execute(ONE_SHOT_DELETE_SQL, [before])
      return affected(r)
    },
    oneShotDeleteSql: ONE_SHOT_DELETE_SQL,
    async explain(sqlText, params) {
      const [r] = await conn.query(`EXPLAIN ${sqlText}`, params)
      return rowsOf(r)
        .map((x) => `${x.table} ${x.type} key=${x.key} rows=${x.rows}${x.Extra ? ` (${x.Extra})` : ''}`)
        .join(' | ')
    },
    replayer: (bound) => mysqlReplayer(conn, bound),
    worker: { dialect: 'mysql', url },
    async close() {
      try {
        await conn.end().catch(() => {})
        await db.destroy()
      } finally {
        await dropDatabase()
      }
    },
  }
}
