/**
 * store-kysely benchmarks (issue 4, "Benchmarks"; acceptance 6), on SQLite (temp file, WAL,
 * synchronous=NORMAL, 256 MB page cache) and PostgreSQL (127.0.0.1:5432/test, a fresh schema
 * `rc_bench_<random>` dropped afterwards; skipped with a note when unreachable):
 *
 * 1. seed ~1,000,000 code rows with set-based SQL (`generate_series` / a recursive CTE);
 * 2. redeem end to end through the service vs the bare conditional UPDATE + native HMAC, with a
 *    per-store-call breakdown (timing proxy around the store and the cache), and the store's
 *    one-call `store.redeemCode` alone (+ the same native HMAC) against the same raw statement;
 * 3. generate+store a batch of 10 through the service vs a raw 10-row insert;
 * 4. redeem p50 at 10k rows vs at 1M rows (same table, grown in between);
 * 5. purge of 500k eligible rows in chunks of 1,000 through `store.purgeCodes` vs a one-shot DELETE
 *    of the same rows on the re-seeded (identical) table.
 *
 * Redeem and generate figures are per-operation p50s (`inner: 1`), not means of a sample. On SQLite
 * the store's Kysely instance runs over `sqliteStatementCache` (rows named `kysely sqlite (statement
 * cache)`), and on PostgreSQL over `pgPreparedStatements` (named prepared statements per connection,
 * rows named `kysely postgres (prepared statements)`); the raw side prepares its statements once as
 * well (named queries on PostgreSQL).
 * `RC_BENCH_ROWS` scales the big table (default 1,000,000), for quick local runs.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import {
  createRecoveryCodes,
  DEFAULT_CODE_FORMAT,
  normalize,
  type RecoveryCodeStore,
} from '@recovery-codes/core'
import {
  kyselyStore,
  migrateRecoveryCodes,
  pgPreparedStatements,
  sqliteStatementCache,
} from '@recovery-codes/store-kysely'
import { probePostgres } from '@recovery-codes/testing'
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { createStorage } from 'unstorage'
import { type BenchResult, type createReport, measure, summarize } from './harness.ts'

type Report = ReturnType<typeof createReport>
type Dialect = 'sqlite' | 'postgres'

const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const DAY = 86_400_000
const CODES_PER_BATCH = 20
/** Seeded code rows at full size (50,000 batches × 20 codes, half of them purge-eligible). */
const BIG_ROWS = Number(process.env.RC_BENCH_ROWS ?? 1_000_000)
const BIG_BATCHES = Math.floor(BIG_ROWS / CODES_PER_BATCH / 4) * 4
/** The small table: 350 seeded batches (7,000 rows) + 150 service batches of 20 (3,000 rows) = 10,000. */
const SMALL_BATCHES = 350
const REDEEM_USERS = 150
/** Per phase: p50 over this many redeems, after a warm-up; the same for the raw statement. */
const REDEEM_SAMPLES = 1000
const REDEEM_WARMUP = 50
const BREAKDOWN_SAMPLES = 300
/** `store.redeemCode` alone: the 600 codes a phase has left after the rows above. */
const STORE_SAMPLES = 500
const STORE_WARMUP = 50
const GENERATE_SAMPLES = 400
const PURGE_CHUNK = 1000
const CLIENT_KEY = '203.0.113.7'

// ---------------------------------------------------------------------------------------------
// The data set. Batch b belongs to user `seed-<b/4>`; k = b % 4 is its age:
//   k=0 superseded 500 d ago, created 800 d ago, expired (expires_at = created + 365 d), 3/20 used
//   k=1 superseded 200 d ago, 2/20 used
//   k=2 superseded 30 d ago, 1/20 used
//   k=3 the user's active batch, 1/20 used, 1 in 2 of them with expires_at in 300 d
// Used codes die one by one at their own time (code j of every batch on day j+1 after creation, so
// a purge chunk by changed_at picks them from many batches: scattered pages); the unused rest of a
// batch dies at once when it is superseded (runs of neighbouring rows). Recovery codes are rarely
// used, and a used code asks the user to regenerate, so most dead rows are superseded ones.
// Purge cutoff `before = now - 90 d`: every code of k=0 and k=1 is eligible (changed_at, and for
// k=0 also expires_at, is older), none of k=2/k=3: exactly half the seeded rows.
// Code i = b*20 + j: id = hex12(created ms) || md5('c' || i)[0..20] (32 hex, time-prefixed like the
// service's ids, so a batch's codes are adjacent in the id index), digest =
// sha256(int8be(i)) (32 bytes, unique), the same on both databases.

export function seedSql(
  d: Dialect,
  o: { from: number; to: number; now: number; what: 'batches' | 'codes'; eligibleOnly?: boolean },
): string {
  const sqlite = d === 'sqlite'
  const ts = (x: string) => (sqlite ? `(${x})` : `to_timestamp((${x}) / 1000.0)`)
  const { now } = o
  const series = sqlite ? 'g' : `generate_series(${o.from}::bigint, ${o.to - 1}::bigint) AS g(b)`
  const ba = `
    SELECT b, k, created, ended, u,
      CASE WHEN k = 0 THEN created + ${365 * DAY} WHEN k = 3 AND b % 8 = 3 THEN ${now + 300 * DAY} END AS expires
    FROM (SELECT b, k,
        ${now} - (CASE k WHEN 0 THEN ${800 * DAY} WHEN 1 THEN ${500 * DAY} WHEN 2 THEN ${80 * DAY} ELSE ${20 * DAY} END) + b * 1000 AS created,
        (CASE k WHEN 0 THEN ${now - 500 * DAY} WHEN 1 THEN ${now - 200 * DAY} WHEN 2 THEN ${now - 30 * DAY} END) + b * 1000 AS ended,
        CASE k WHEN 0 THEN 3 WHEN 1 THEN 2 WHEN 2 THEN 1 ELSE 1 END AS u
      FROM (SELECT b, b % 4 AS k FROM ${series}) s
      ${o.eligibleOnly ? 'WHERE k < 2' : ''}) t`
  const cte = sqlite
    ? `WITH RECURSIVE g(b) AS (SELECT ${o.from} UNION ALL SELECT b + 1 FROM g WHERE b < ${o.to - 1}),
         js(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM js WHERE j < ${CODES_PER_BATCH - 1}) `
    : ''
  if (o.what === 'batches') {
    return `${cte}INSERT INTO rc_batches (id, user_id, key_id, status, created_at, expires_at, ended_at,
        issued, unused, used, invalidated, deleted, viewed_at, last_used_at)
      SELECT 'sb-' || b, 'seed-' || (b / 4), 'k1', CASE WHEN k < 3 THEN 'superseded' ELSE 'active' END,
        ${ts('created')}, ${ts('expires')}, ${ts('ended')}, ${CODES_PER_BATCH}, ${CODES_PER_BATCH} - u, u, 0, 0,
        ${ts('created + 60000')}, ${ts(`created + u * ${DAY}`)}
      FROM (${ba}) bt`
  }
  const js = sqlite ? 'js' : `generate_series(0::bigint, ${CODES_PER_BATCH - 1}::bigint) AS js(j)`
  // Time-prefixed like the service's ids (`newId(now)`: 48-bit ms, then random): a batch's codes
  // share the prefix and sit next to each other in the id index.
  const id = sqlite
    ? `printf('%012x', created) || substr(rc_md5(i), 1, 20)`
    : `lpad(to_hex(created), 12, '0') || substr(md5('c' || i), 1, 20)`
  const digest = sqlite ? 'rc_sha256(i)' : 'sha256(int8send(i))'
  const usedAt = `created + (j + 1) * ${DAY}`
  return `${cte}INSERT INTO rc_codes (id, user_id, batch_id, key_id, digest, state, created_at, expires_at, used_at, changed_at)
    SELECT ${id}, 'seed-' || (b / 4), 'sb-' || b, 'k1', ${digest},
      CASE WHEN j < u THEN 'used' ELSE 'active' END,
      ${ts('created')}, ${ts('expires')},
      CASE WHEN j < u THEN ${ts(usedAt)} END,
      CASE WHEN j < u THEN ${ts(usedAt)} WHEN k < 3 THEN ${ts('ended')} END
    FROM (SELECT bt.*, js.j, bt.b * ${CODES_PER_BATCH} + js.j AS i FROM (${ba}) bt CROSS JOIN ${js}) x`
}

/** The purge index expression of migration `0003_purge_at` on SQLite (for the plan log). */
const SQLITE_PURGE_AT = 'min(coalesce(changed_at, expires_at), coalesce(expires_at, changed_at))'

/** The one-shot baseline: the store's purge predicate (both branches) as one statement. */
const ONE_SHOT_DELETE = {
  sqlite: 'DELETE FROM rc_codes WHERE changed_at < ? OR expires_at < ?',
  postgres: 'DELETE FROM rc_codes WHERE changed_at < $1 OR expires_at < $1',
}
const RAW_REDEEM = {
  sqlite: `UPDATE rc_codes SET state = 'used', used_at = ?, changed_at = ?
    WHERE user_id = ? AND digest = ? AND state = 'active' AND changed_at IS NULL RETURNING id`,
  postgres: `UPDATE rc_codes SET state = 'used', used_at = $1, changed_at = $1
    WHERE user_id = $2 AND digest = $3 AND state = 'active' AND changed_at IS NULL RETURNING id`,
}
const CODE_COLUMNS =
  '(id, user_id, batch_id, key_id, digest, state, created_at, expires_at, used_at, changed_at)'
function rawInsertSql(d: Dialect, rows: number): string {
  const values: string[] = []
  for (let r = 0; r < rows; r++) {
    if (d === 'sqlite') values.push(`(?, ?, 'rawgen', 'k1', ?, 'active', ?, NULL, NULL, NULL)`)
    else
      values.push(
        `($${r * 4 + 1}, $${r * 4 + 2}, 'rawgen', 'k1', $${r * 4 + 3}, 'active', $${r * 4 + 4}, NULL, NULL, NULL)`,
      )
  }
  return `INSERT INTO rc_codes ${CODE_COLUMNS} VALUES ${values.join(', ')}`
}

// ---------------------------------------------------------------------------------------------
// One database under test: a Kysely instance for the store, plus a direct driver handle for the
// raw statements, seeding and maintenance.

interface Target {
  dialect: Dialect
  /** How the store's side is set up, when it differs from a plain Kysely dialect (in row names). */
  note?: string
  db: Kysely<any>
  /** Runs statements as one transaction (SQLite) or one statement each (PostgreSQL autocommit). */
  exec(sqls: string[]): Promise<void>
  /** ANALYZE (SQLite) / VACUUM (ANALYZE) (PostgreSQL), then a checkpoint: the table as a host keeps it. */
  maintain(): Promise<void>
  count(where: string): Promise<number>
  rawRedeem(userId: string, digest: Buffer, now: number): Promise<boolean> | boolean
  rawInsert(params: unknown[]): Promise<void> | void
  oneShotDelete(before: number): Promise<number> | number
  explain(sqlText: string, params: unknown[]): Promise<string>
  close(): Promise<void>
}

export async function sqliteTarget(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'rc-bench-'))
  const file = join(dir, 'rc.db')
  const raw = new Database(file, { timeout: 10_000 })
  raw.pragma('journal_mode = WAL')
  raw.pragma('synchronous = NORMAL')
  // The issue's baseline: a 256 MB page cache (negative = KiB).
  raw.pragma('cache_size = -262144')
  raw.function('rc_md5', { deterministic: true }, (i) => createHash('md5').update(`c${i}`).digest('hex'))
  raw.function('rc_sha256', { deterministic: true }, (i) => {
    const b = Buffer.alloc(8)
    b.writeBigInt64BE(BigInt(i as number))
    return createHash('sha256').update(b).digest()
  })
  // The store's side prepares each statement once (`sqliteStatementCache`); the raw side below
  // prepares its statements once too.
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: sqliteStatementCache(raw) }) })
  await migrateRecoveryCodes(db)
  const redeem = raw.prepare(RAW_REDEEM.sqlite)
  const insert = raw.prepare(rawInsertSql('sqlite', 10))
  const oneShot = raw.prepare(ONE_SHOT_DELETE.sqlite)
  return {
    dialect: 'sqlite',
    note: 'statement cache',
    db,
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
    rawRedeem(userId, digest, now) {
      return redeem.get(now, now, userId, digest) !== undefined
    },
    rawInsert(params) {
      insert.run(params)
    },
    oneShotDelete(before) {
      return oneShot.run(before, before).changes
    },
    async explain(sqlText, params) {
      const rows = raw.prepare(`EXPLAIN QUERY PLAN ${sqlText}`).all(params) as { detail: string }[]
      return rows.map((r) => r.detail).join(' | ')
    },
    async close() {
      await db.destroy()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export async function postgresTarget(): Promise<Target> {
  // Generated from hex digits here, never from input.
  const schema = `rc_bench_${randomBytes(8).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.end()
  const options = `-c search_path=${schema}`
  // The store's side prepares each statement once per connection (`pgPreparedStatements`), like the
  // raw side's named queries below.
  const pool = pgPreparedStatements(new pg.Pool({ connectionString: PG_URL, max: 10, options }))
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
  await migrateRecoveryCodes(db)
  const raw = new pg.Client({ connectionString: PG_URL, options })
  await raw.connect()
  // Autovacuum off on the bench tables so it cannot land inside one measurement and not the other;
  // the bench runs VACUUM (ANALYZE) itself between phases (see maintain()).
  for (const t of ['rc_codes', 'rc_batches', 'rc_attempts', 'rc_audit']) {
    await raw.query(`ALTER TABLE ${t} SET (autovacuum_enabled = false)`)
  }
  const insertText = rawInsertSql('postgres', 10)
  return {
    dialect: 'postgres',
    note: 'prepared statements',
    db,
    async exec(sqls) {
      for (const s of sqls) await raw.query(s)
    },
    async maintain() {
      await raw.query('VACUUM (ANALYZE) rc_codes, rc_batches, rc_attempts, rc_audit')
      await raw.query('CHECKPOINT')
    },
    async count(where) {
      const r = await raw.query(`SELECT count(*)::int AS n FROM rc_codes WHERE ${where}`)
      return r.rows[0].n as number
    },
    async rawRedeem(userId, digest, now) {
      const at = new Date(now)
      const r = await raw.query({
        name: 'rc_raw_redeem',
        text: RAW_REDEEM.postgres,
        values: [at, userId, digest],
      })
      return r.rowCount === 1
    },
    async rawInsert(params) {
      await raw.query({ name: 'rc_raw_insert10', text: insertText, values: params })
    },
    async oneShotDelete(before) {
      const r = await raw.query(ONE_SHOT_DELETE.postgres, [new Date(before)])
      return r.rowCount ?? 0
    },
    async explain(sqlText, params) {
      const r = await raw.query(`EXPLAIN ${sqlText}`, params)
      return r.rows.map((x) => String(x['QUERY PLAN']).trim()).join(' | ')
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

// ---------------------------------------------------------------------------------------------
// Helpers.

const PEPPER = randomBytes(32)
const PEPPERS = [{ id: 'k1', secret: PEPPER.toString('base64') }]

/** The core digest with node:crypto: HMAC(pepper, "rc1\0" ‖ u32be(len) ‖ userId ‖ u32be(len) ‖ code). */
function nativeDigest(userId: string, canonical: string): Buffer {
  const u = Buffer.from(userId, 'utf8')
  const c = Buffer.from(canonical, 'utf8')
  const msg = Buffer.allocUnsafe(4 + 8 + u.length + c.length)
  msg.write('rc1\0', 0, 'latin1')
  msg.writeUInt32BE(u.length, 4)
  u.copy(msg, 8)
  msg.writeUInt32BE(c.length, 8 + u.length)
  c.copy(msg, 12 + u.length)
  return createHmac('sha256', PEPPER).update(msg).digest()
}

interface Code {
  userId: string
  code: string
  canonical: string
}

/** Generates one batch per user through the service, so the plaintext is known. */
async function issueCodes(rc: ReturnType<typeof createRecoveryCodes>, prefix: string, users: number) {
  const out: Code[] = []
  for (let u = 0; u < users; u++) {
    const userId = `${prefix}-${u}`
    const r = await rc.generate({ userId, count: CODES_PER_BATCH })
    if (!r.ok) throw new Error(`bench: generate refused for ${userId}`)
    for (const code of r.codes) out.push({ userId, code, canonical: normalize(code, DEFAULT_CODE_FORMAT)! })
  }
  // Interleave users so consecutive redeems do not hit one batch.
  out.sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0))
  return out
}

/** Wraps every method of an object, adding call durations to `into` (method → ms per call). */
function timing<T extends object>(
  target: T,
  into: Map<string, number[]>,
  prefix = '',
  tick?: (ms: number) => void,
): T {
  return new Proxy(target, {
    get(t, p, r) {
      const v = Reflect.get(t, p, r)
      if (typeof v !== 'function') return v
      return async (...args: unknown[]) => {
        const t0 = performance.now()
        try {
          return await v.apply(t, args)
        } finally {
          const ms = performance.now() - t0
          const key = `${prefix}${String(p)}`
          const arr = into.get(key)
          if (arr === undefined) into.set(key, [ms])
          else arr.push(ms)
          tick?.(ms)
        }
      }
    },
  })
}

function single(name: string, unit: BenchResult['unit'], value: number): BenchResult {
  const v = Math.round(value * 1000) / 1000
  return { name, unit, median: v, min: v, max: v, n: 1 }
}

const fmt = (n: number) => n.toLocaleString('en-US')

// ---------------------------------------------------------------------------------------------
// The run for one database.

async function runOne(report: Report, t: Target) {
  const tag = `kysely ${t.dialect}${t.note === undefined ? '' : ` (${t.note})`}`
  const now0 = Date.now()
  const store = kyselyStore(t.db)
  const rc = createRecoveryCodes({ peppers: PEPPERS, store })
  const log = (s: string) => console.log(`[${tag}] ${s}`)

  // ---- 10k rows: 7,000 seeded + 3,000 issued through the service ----
  await t.exec([
    seedSql(t.dialect, { from: 0, to: SMALL_BATCHES, now: now0, what: 'batches' }),
    seedSql(t.dialect, { from: 0, to: SMALL_BATCHES, now: now0, what: 'codes' }),
  ])
  const smallCodes = await issueCodes(rc, 'redeem10k', REDEEM_USERS)
  await t.maintain()
  log(`small table: ${fmt(await t.count('1 = 1'))} code rows`)

  async function redeemPhase(label: string, codes: Code[]) {
    let next = 0
    const take = (n: number) => {
      const s = codes.slice(next, next + n)
      next += n
      if (s.length < n) throw new Error('bench: not enough codes')
      return s
    }
    const e2eCodes = take(REDEEM_SAMPLES + REDEEM_WARMUP)
    const rawCodes = take(REDEEM_SAMPLES + REDEEM_WARMUP)
    const e2e = report.add(
      await measure(
        `${tag}: redeem end to end @${label} (p50)`,
        async (i) => {
          const c = e2eCodes[i]!
          const r = await rc.redeem({ userId: c.userId, code: c.code, clientKey: CLIENT_KEY })
          if (!r.ok) throw new Error(`bench: redeem failed (${r.reason})`)
        },
        { samples: REDEEM_SAMPLES, inner: 1, warmup: REDEEM_WARMUP },
      ),
    )
    const raw = report.add(
      await measure(
        `${tag}: raw UPDATE … RETURNING + native HMAC @${label} (p50)`,
        async (i) => {
          const c = rawCodes[i]!
          const ok = await t.rawRedeem(c.userId, nativeDigest(c.userId, c.canonical), Date.now())
          if (!ok) throw new Error('bench: raw redeem matched no row')
        },
        { samples: REDEEM_SAMPLES, inner: 1, warmup: REDEEM_WARMUP },
      ),
    )
    report.ratio(`${tag}: redeem e2e / raw @${label} (target ≤ 2)`, e2e, raw)

    // Breakdown: the same redeem with every store and cache call timed.
    const calls = new Map<string, number[]>()
    let inCalls = 0
    const tick = (ms: number) => {
      inCalls += ms
    }
    const timedRc = createRecoveryCodes({
      peppers: PEPPERS,
      store: timing(store as RecoveryCodeStore, calls, 'store.', tick),
      cache: timing(createStorage(), calls, 'cache.', tick),
    })
    const rest: number[] = []
    const totals: number[] = []
    for (const c of take(BREAKDOWN_SAMPLES)) {
      inCalls = 0
      const t0 = performance.now()
      const r = await timedRc.redeem({ userId: c.userId, code: c.code, clientKey: CLIENT_KEY })
      const ms = performance.now() - t0
      if (!r.ok) throw new Error('bench: redeem failed (breakdown)')
      totals.push(ms * 1000)
      rest.push((ms - inCalls) * 1000)
    }
    const parts: string[] = []
    for (const [name, ms] of calls) {
      const perRedeem = ms.length / BREAKDOWN_SAMPLES
      const row = report.add(
        summarize(
          `${tag}: breakdown @${label}: ${name} ×${perRedeem} (per call)`,
          'µs',
          ms.map((x) => x * 1000),
        ),
      )
      parts.push(`${name} ×${perRedeem} ${row.median} µs`)
    }
    const restRow = report.add(
      summarize(`${tag}: breakdown @${label}: service JS outside store/cache`, 'µs', rest),
    )

    // The store's one-call redeem alone (limiter keys, consume, settle, audit), with the digest from
    // the same native HMAC as the raw row: the store's cost against the bare statement.
    const storeCodes = take(STORE_SAMPLES + STORE_WARMUP)
    const storeRow = report.add(
      await measure(
        `${tag}: store.redeemCode alone + native HMAC @${label} (p50)`,
        async (i) => {
          const c = storeCodes[i]!
          const now = Date.now()
          const idKey = `bench-id:${c.userId}`
          const out = await store.redeemCode({
            userId: c.userId,
            digests: [nativeDigest(c.userId, c.canonical)],
            now,
            keys: [
              { key: idKey, maxAttempts: 5 },
              { key: `bench-ip:${CLIENT_KEY}`, maxAttempts: 1_000_000 },
            ],
            reset: [idKey],
            audit: {
              id: `bench-${label}-${i}`,
              at: now,
              event: 'login.success',
              userId: c.userId,
              batchId: null,
              identifierHash: null,
              clientHash: null,
              outcome: 'success',
              reason: null,
              data: { mode: 'code' },
            },
          })
          if (out.outcome !== 'consumed') throw new Error(`bench: store.redeemCode ${out.outcome}`)
        },
        { samples: STORE_SAMPLES, inner: 1, warmup: STORE_WARMUP },
      ),
    )
    report.ratio(`${tag}: store.redeemCode / raw @${label}`, storeRow, raw)
    const totalRow = summarize('total', 'µs', totals)
    log(
      `redeem @${label}: e2e p50 ${e2e.median} µs, raw p50 ${raw.median} µs; breakdown (p50 per call, ` +
        `timed pass p50 ${totalRow.median} µs): ${parts.join(', ')}, rest ${restRow.median} µs; ` +
        `store.redeemCode alone p50 ${storeRow.median} µs`,
    )
    return { e2e, raw }
  }

  const small = await redeemPhase('10k', smallCodes)

  // ---- grow to ~1M rows with set-based SQL ----
  const growFrom = SMALL_BATCHES
  const t0 = performance.now()
  await t.exec([
    seedSql(t.dialect, { from: growFrom, to: BIG_BATCHES, now: now0, what: 'batches' }),
    seedSql(t.dialect, { from: growFrom, to: BIG_BATCHES, now: now0, what: 'codes' }),
  ])
  const seedMs = performance.now() - t0
  const seededRows = (BIG_BATCHES - growFrom) * CODES_PER_BATCH
  const t1 = performance.now()
  await t.maintain()
  const maintainMs = performance.now() - t1
  report.add(single(`${tag}: seed ${fmt(seededRows)} code rows (set-based SQL, indexes live)`, 'ms', seedMs))
  report.add(single(`${tag}: seed rate`, 'rows/s', seededRows / (seedMs / 1000)))
  log(
    `seeded ${fmt(seededRows)} code rows + ${fmt(BIG_BATCHES - growFrom)} batches in ${(seedMs / 1000).toFixed(1)} s ` +
      `(${fmt(Math.round(seededRows / (seedMs / 1000)))} rows/s); ${t.dialect === 'sqlite' ? 'ANALYZE' : 'VACUUM (ANALYZE)'} + checkpoint ${(maintainMs / 1000).toFixed(1)} s`,
  )
  const bigCodes = await issueCodes(rc, 'redeem1m', REDEEM_USERS)
  const total = await t.count('1 = 1')
  log(`big table: ${fmt(total)} code rows`)

  const big = await redeemPhase('1M', bigCodes)
  report.ratio(`${tag}: redeem p50 @1M / @10k, end to end (target ≤ 1.2)`, big.e2e, small.e2e)
  report.ratio(`${tag}: raw UPDATE p50 @1M / @10k`, big.raw, small.raw)

  // ---- generate + store a batch of 10 ----
  let g = 0
  const gen = report.add(
    await measure(
      `${tag}: generate+store a batch of 10 via the service (p50)`,
      async () => {
        const r = await rc.generate({ userId: `gen-${g++}`, count: 10 })
        if (!r.ok) throw new Error('bench: generate refused')
      },
      { samples: GENERATE_SAMPLES, inner: 1, warmup: 20 },
    ),
  )
  await t.exec([
    `INSERT INTO rc_batches (id, user_id, key_id, status, created_at, issued, unused)
     VALUES ('rawgen', 'rawgen', 'k1', 'superseded', ${t.dialect === 'sqlite' ? now0 : `to_timestamp(${now0} / 1000.0)`}, 0, 0)`,
  ])
  let rg = 0
  const rawGen = report.add(
    await measure(
      `${tag}: raw 10-row INSERT (+10 random codes, 10 native HMACs) (p50)`,
      async () => {
        const userId = `rawgen-${rg++}`
        const at = Date.now()
        const params: unknown[] = []
        for (let k = 0; k < 10; k++) {
          const code = randomBytes(16).toString('base64url').slice(0, 20)
          params.push(
            randomBytes(16).toString('hex'),
            userId,
            nativeDigest(userId, code),
            t.dialect === 'sqlite' ? at : new Date(at),
          )
        }
        await t.rawInsert(params)
      },
      { samples: GENERATE_SAMPLES, inner: 1, warmup: 20 },
    ),
  )
  report.ratio(`${tag}: generate+store 10 / raw 10-row insert`, gen, rawGen)

  // ---- purge 500k eligible rows: chunks of 1,000 vs one shot ----
  const before = now0 - 90 * DAY
  const beforeParam = t.dialect === 'sqlite' ? before : new Date(before)
  const eligibleWhere =
    t.dialect === 'sqlite'
      ? `changed_at < ${before} OR expires_at < ${before}`
      : `changed_at < to_timestamp(${before} / 1000.0) OR expires_at < to_timestamp(${before} / 1000.0)`
  await t.maintain()
  const eligible = await t.count(eligibleWhere)
  const rowsBefore = await t.count('1 = 1')
  log(`purge: ${fmt(eligible)} eligible of ${fmt(rowsBefore)} code rows`)
  log(
    `plan, purge chunk: ${await t.explain(
      t.dialect === 'sqlite'
        ? `DELETE FROM rc_codes WHERE rowid IN (SELECT rowid FROM rc_codes WHERE (changed_at is not null or expires_at is not null) AND ${SQLITE_PURGE_AT} < ? ORDER BY ${SQLITE_PURGE_AT} LIMIT 1000) AND ${SQLITE_PURGE_AT} < ?`
        : 'DELETE FROM rc_codes WHERE ctid = any(array(SELECT ctid FROM rc_codes WHERE (changed_at is not null or expires_at is not null) AND least(changed_at, expires_at) < $1 ORDER BY least(changed_at, expires_at) LIMIT 1000 FOR UPDATE SKIP LOCKED)) AND least(changed_at, expires_at) < $1',
      t.dialect === 'sqlite' ? [before, before] : [beforeParam],
    )}`,
  )
  const chunks: number[] = []
  let purged = 0
  const p0 = performance.now()
  for (;;) {
    const c0 = performance.now()
    const n = await store.purgeCodes({ before, limit: PURGE_CHUNK })
    chunks.push(performance.now() - c0)
    purged += n
    if (n < PURGE_CHUNK) break
  }
  const chunkedMs = performance.now() - p0
  const left = await t.count(eligibleWhere)
  if (purged !== eligible || left !== 0)
    throw new Error(`bench: purge deleted ${purged}/${eligible}, ${left} left`)
  const chunked = report.add(
    single(`${tag}: purge ${fmt(purged)} rows in chunks of 1,000`, 'rows/s', purged / (chunkedMs / 1000)),
  )
  const chunkRow = report.add(summarize(`${tag}: purge chunk time (target max ≤ 25 ms)`, 'ms', chunks))
  log(
    `chunked purge: ${fmt(purged)} rows in ${(chunkedMs / 1000).toFixed(2)} s, ${chunks.length} chunks, p50 ${chunkRow.median} ms, max ${chunkRow.max} ms (chunk #${chunks.indexOf(Math.max(...chunks)) + 1}; last chunk ${chunks.at(-1)!.toFixed(1)} ms)`,
  )

  // Re-seed exactly the rows just purged (same ids, digests, times): the identical table again.
  await t.maintain()
  const r0 = performance.now()
  await t.exec([
    seedSql(t.dialect, { from: 0, to: BIG_BATCHES, now: now0, what: 'codes', eligibleOnly: true }),
  ])
  const reseedMs = performance.now() - r0
  await t.maintain()
  const again = await t.count(eligibleWhere)
  const rowsAgain = await t.count('1 = 1')
  if (again !== eligible || rowsAgain !== rowsBefore)
    throw new Error('bench: re-seed did not restore the table')
  log(
    `re-seeded ${fmt(again)} eligible rows in ${(reseedMs / 1000).toFixed(1)} s; table back to ${fmt(rowsAgain)} rows`,
  )
  const o0 = performance.now()
  const deleted = await t.oneShotDelete(before)
  const oneShotMs = performance.now() - o0
  if (deleted !== eligible) throw new Error(`bench: one-shot deleted ${deleted}/${eligible}`)
  const oneShot = report.add(
    single(
      `${tag}: one-shot DELETE of the same ${fmt(deleted)} rows`,
      'rows/s',
      deleted / (oneShotMs / 1000),
    ),
  )
  log(`one-shot DELETE: ${fmt(deleted)} rows in ${(oneShotMs / 1000).toFixed(2)} s`)
  report.ratio(`${tag}: purge chunked / one-shot rows/s (target ≥ 0.8)`, chunked, oneShot)
}

/** `pnpm bench kysely`: SQLite always; PostgreSQL when the server answers. */
export async function runKyselyBench(report: Report) {
  const started = performance.now()
  console.log(
    `[kysely] ${fmt(BIG_BATCHES * CODES_PER_BATCH)} seeded code rows per database` +
      (BIG_ROWS === 1_000_000 ? '' : ` (scaled by RC_BENCH_ROWS=${BIG_ROWS})`),
  )
  // `RC_BENCH_DB=sqlite` or `=postgres` runs one database only (local runs; `pnpm bench` runs both).
  const only = process.env.RC_BENCH_DB
  if (only !== undefined && only !== 'sqlite' && only !== 'postgres')
    throw new Error(`RC_BENCH_DB must be sqlite or postgres, not ${only}`)
  if (only !== 'postgres') {
    const sqlite = await sqliteTarget()
    try {
      await runOne(report, sqlite)
    } finally {
      await sqlite.close()
    }
  }
  const why = only === 'sqlite' ? 'not run (RC_BENCH_DB=sqlite)' : await probePostgres()
  if (why !== null) {
    console.log(
      `[kysely postgres] SKIPPED: ${only === 'sqlite' ? why : `PostgreSQL at ${PG_URL} unreachable (${why})`}`,
    )
  } else {
    const postgres = await postgresTarget()
    try {
      await runOne(report, postgres)
    } finally {
      await postgres.close()
    }
  }
  console.log(`[kysely] done in ${((performance.now() - started) / 1000).toFixed(0)} s`)
}
