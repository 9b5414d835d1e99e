/**
 * store-kysely benchmarks (issue 4 "Benchmarks", issue 15 "Store v2" acceptance), on SQLite (temp
 * file, WAL, synchronous=NORMAL, 256 MB page cache) and PostgreSQL (127.0.0.1:5432/test, a fresh
 * schema `rc_bench_<random>` dropped afterwards; skipped with a note when unreachable) and MySQL /
 * MariaDB (127.0.0.1:3306, a fresh database `rc_bench_<random>`, likewise; kysely/mysql.ts). Per
 * database, in one run:
 *
 * 1. the small table (10k rows): redeem end to end through the service vs the floor (the bare
 *    conditional `UPDATE … RETURNING` + native HMAC; MySQL, without `RETURNING`: the conditional
 *    `UPDATE` whose affectedRows is 1), with a per-store-call breakdown;
 * 2. grow to ~1,000,000 code rows with set-based SQL, the same redeem rows again;
 * 3. the statements one successful `store.redeemCode` sends, captured (never written down here):
 *    `store.redeemCode` + native HMAC vs the floor and vs those statements replayed by hand, in one
 *    interleaved run; a long run for p50/p99; SQLite: WAL frames per redeem; PostgreSQL: rc_attempts
 *    row changes over 1,000 redeems, and where the time beyond a raw call goes (kysely/pg-overhead.ts);
 * 4. generate + store a batch of 10 through the service vs a raw 10-row insert;
 * 5. purge of the 500k eligible rows through the service with a concurrent redeemer (worker thread,
 *    own connection; on MySQL stopped after 60 s, see kysely/mysql.ts), and a one-shot DELETE of
 *    the same rows as a reference (kysely/purge.ts).
 *
 * Redeem and generate figures are per-operation p50s (`inner: 1`), with p99 in its own column.
 * `RC_BENCH_ROWS` scales the big table (default 1,000,000) for quick local runs; `RC_BENCH_DB`
 * (`sqlite`, `postgres`, `mysql`) runs one database only.
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { createRecoveryCodes } from '@recovery-codes/core'
import { kyselyStore } from '@recovery-codes/store-kysely'
import { probePostgres } from '@recovery-codes/testing'
import type { Kysely } from 'kysely'
import { measure, type Report, single } from './harness.ts'
import {
  type BenchDialect,
  BIG_BATCHES,
  BIG_LABEL,
  BIG_ROWS,
  CODES_PER_BATCH,
  codePool,
  fmt,
  issueCodes,
  nativeDigest,
  PEPPERS,
  PG_URL,
  SMALL_BATCHES,
  SMALL_USERS,
  seededCodes,
  sleep,
} from './kysely/common.ts'
import { mysqlTarget } from './kysely/mysql.ts'
import { pgOverhead } from './kysely/pg-overhead.ts'
import { pgSpans } from './kysely/pg-spans.ts'
import { purgeRows } from './kysely/purge.ts'
import {
  ATTEMPT_REDEEMS,
  captureRedeem,
  GROUP_SAMPLES,
  redeemPhase,
  storeRows,
  TAIL_SAMPLES,
  WAL_REDEEMS,
} from './kysely/redeem.ts'
import {
  type PostgresTarget,
  postgresTarget,
  seedStatement,
  sqliteTarget,
  type Target,
} from './kysely/targets.ts'

export { seedSql } from './kysely/common.ts'
export { postgresTarget, sqliteTarget } from './kysely/targets.ts'

const GENERATE_SAMPLES = 400

/** Codes issued through the service for the big table's rows (1, 3 and the capture). */
function bigCodesNeeded(d: BenchDialect) {
  const e2e = 2 * 1050 + 300
  const group = 3 * (GROUP_SAMPLES + 50)
  const wal = d === 'sqlite' ? 2 * (WAL_REDEEMS + 1) : 0
  const attempts = d === 'postgres' ? ATTEMPT_REDEEMS : 0
  // SQLite: the tail run again with `startSqliteCheckpointer` (redeem.ts).
  const checkpointed = d === 'sqlite' ? TAIL_SAMPLES + 50 : 0
  return e2e + 10 + 1 + wal + group + TAIL_SAMPLES + 50 + attempts + checkpointed
}

/** What a backend provides besides the store's Kysely instance and its dialect name. */
export type RawSide = Omit<Target, 'db' | 'dialect'>

/**
 * The rows for any backend: the store's Kysely instance, its dialect name, and the raw side
 * (floor statement, seeding, maintenance, replayer, worker connection). A new backend (MySQL, see
 * kysely/mysql.ts) builds its Kysely instance and raw side and calls this.
 */
export function runBackend(report: Report, db: Kysely<any>, dialect: BenchDialect, raw: RawSide) {
  return runTarget(report, { ...raw, db, dialect })
}

/** `report` with every row name passed through `rename` (see `Target.rowName`). */
function renamedReport(report: Report, rename: (name: string) => string): Report {
  return {
    rows: report.rows,
    add: (row) => report.add({ ...row, name: rename(row.name) }),
    ratio: (name, a, b) => report.ratio(rename(name), a, b),
    count: (name, value, unit) => report.count(rename(name), value, unit),
  }
}

/** Every row for one database: the store's Kysely instance and dialect, and the raw side. */
export async function runTarget(outer: Report, t: Target) {
  const report = t.rowName === undefined ? outer : renamedReport(outer, t.rowName)
  const d = t.dialect
  const now0 = Date.now()
  const store = kyselyStore(t.db, t.storeOptions)
  // 'immediate': a generate writes its batch, which the generate rows time.
  const rc = createRecoveryCodes({ peppers: PEPPERS, store, activation: 'immediate' })
  const log = (s: string) => console.log(`[${d}] ${s}`)
  const ctx = { report, t, store, rc, log }
  log(`setup: ${t.setup}`)
  const columns = { batches: await t.columns('rc_batches'), codes: await t.columns('rc_codes') }
  const seed = (from: number, to: number) => [
    seedStatement(t, { from, to, now: now0, what: 'batches', columns: columns.batches }),
    seedStatement(t, { from, to, now: now0, what: 'codes', columns: columns.codes }),
  ]

  // ---- 10k rows: 7,000 seeded + 3,000 issued through the service ----
  await t.exec(seed(0, SMALL_BATCHES))
  const smallCodes = codePool(await issueCodes(rc, 'redeem10k', SMALL_USERS))
  await t.maintain()
  log(`small table: ${fmt(await t.count('1 = 1'))} code rows`)
  const small = await redeemPhase(ctx, '10k', smallCodes)

  // ---- grow to ~1M rows with set-based SQL ----
  const s0 = performance.now()
  await t.exec(seed(SMALL_BATCHES, BIG_BATCHES))
  const seedMs = performance.now() - s0
  const seededRows = (BIG_BATCHES - SMALL_BATCHES) * CODES_PER_BATCH
  const m0 = performance.now()
  await t.maintain()
  const maintainMs = performance.now() - m0
  report.add(single(`${d} seed ${fmt(seededRows)} code rows (set-based SQL, indexes live)`, 'ms', seedMs))
  report.add(single(`${d} seed rate`, 'rows/s', seededRows / (seedMs / 1000)))
  log(
    `seeded ${fmt(seededRows)} code rows + ${fmt(BIG_BATCHES - SMALL_BATCHES)} batches in ${(seedMs / 1000).toFixed(1)} s ` +
      `(${fmt(Math.round(seededRows / (seedMs / 1000)))} rows/s); maintenance ${(maintainMs / 1000).toFixed(1)} s`,
  )
  const i0 = performance.now()
  const bigCodes = codePool(
    await issueCodes(rc, 'redeem1m', Math.ceil(bigCodesNeeded(d) / CODES_PER_BATCH) + 1),
  )
  log(
    `issued ${fmt(bigCodes.left)} codes through the service in ${((performance.now() - i0) / 1000).toFixed(1)} s`,
  )
  log(`big table: ${fmt(await t.count('1 = 1'))} code rows`)
  const seeded = seededCodes(BIG_BATCHES)

  const big = await redeemPhase(ctx, BIG_LABEL, bigCodes)
  report.ratio(`${d} e2e redeem p50 @${BIG_LABEL} / @10k (target ≤ 1.2)`, big.e2e, small.e2e)
  report.ratio(`${d} floor p50 @${BIG_LABEL} / @10k`, big.floor, small.floor)

  // ---- store.redeemCode against the floor and its own statements ----
  const captured = await captureRedeem(t, bigCodes.take(10), log)
  await storeRows(ctx, bigCodes, captured)
  if (t.dialect === 'postgres') {
    await pgSpans(report, t as PostgresTarget, captured.bound, seeded, log)
    await pgOverhead(report, t as PostgresTarget, captured, seeded, log)
  }

  // ---- generate + store a batch of 10 ----
  let g = 0
  const gen = report.add(
    await measure(
      `${d} generate+store a batch of 10 via the service (p50)`,
      async () => {
        const r = await rc.generate({ userId: `gen-${g++}`, count: 10 })
        if (!r.ok) throw new Error('bench: generate refused')
      },
      { samples: GENERATE_SAMPLES, inner: 1, warmup: 20 },
    ),
  )
  await t.exec([
    `INSERT INTO rc_batches (id, user_id, key_id, status, created_at, issued${columns.batches.has('unused') ? ', unused' : ''})
     VALUES ('rawgen', 'rawgen', 'k1', 'superseded', ${t.tsSql(now0)}, 0${columns.batches.has('unused') ? ', 0' : ''})`,
  ])
  let rg = 0
  const rawGen = report.add(
    await measure(
      `${d} raw 10-row INSERT (+10 random codes, 10 native HMACs) (p50)`,
      async () => {
        const userId = `rawgen-${rg++}`
        const at = t.ts(Date.now())
        const params: unknown[] = []
        for (let k = 0; k < 10; k++) {
          const code = randomBytes(16).toString('base64url').slice(0, 20)
          params.push(randomBytes(16).toString('hex'), userId, nativeDigest(userId, code), at)
        }
        await t.rawInsert(params)
      },
      { samples: GENERATE_SAMPLES, inner: 1, warmup: 20 },
    ),
  )
  report.ratio(`${d} generate+store 10 / raw 10-row insert`, gen, rawGen)

  // ---- purge with a concurrent redeemer; the one-shot reference ----
  await purgeRows(report, t, seeded, now0, log)
}

async function withTarget(report: Report, open: () => Promise<Target | string>, name: string) {
  const t = await open()
  if (typeof t === 'string') {
    console.log(`[${name}] SKIPPED: ${t}`)
    return
  }
  try {
    await runTarget(report, t)
  } finally {
    // A client left checked out (after a failure) would make the pool's end wait forever.
    const closed = await Promise.race([t.close().then(() => true), sleep(30_000).then(() => false)])
    if (!closed) console.log(`[${name}] close timed out after 30 s (a connection was still checked out)`)
  }
}

/** `pnpm bench kysely`: SQLite always; PostgreSQL and MySQL / MariaDB when their servers answer. */
export async function runKyselyBench(report: Report) {
  const started = performance.now()
  console.log(
    `[kysely] ${fmt(BIG_BATCHES * CODES_PER_BATCH)} seeded code rows per database` +
      (BIG_ROWS === 1_000_000 ? '' : ` (scaled by RC_BENCH_ROWS=${BIG_ROWS})`),
  )
  const only = process.env.RC_BENCH_DB
  if (only !== undefined && only !== 'sqlite' && only !== 'postgres' && only !== 'mysql')
    throw new Error(`RC_BENCH_DB must be sqlite, postgres or mysql, not ${only}`)
  if (only === undefined || only === 'sqlite') await withTarget(report, sqliteTarget, 'sqlite')
  if (only === undefined || only === 'postgres') {
    await withTarget(
      report,
      async () => {
        const why = await probePostgres()
        return why === null ? postgresTarget() : `PostgreSQL at ${PG_URL} unreachable (${why})`
      },
      'postgres',
    )
  }
  // MySQL / MariaDB (127.0.0.1:3306, a fresh database `rc_bench_<random>` dropped afterwards).
  if (only === undefined || only === 'mysql') await withTarget(report, mysqlTarget, 'mysql')
  console.log(`[kysely] done in ${((performance.now() - started) / 1000).toFixed(0)} s`)
}
