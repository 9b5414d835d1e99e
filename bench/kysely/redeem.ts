/**
 * Redeem rows of one target:
 *
 * - {@link redeemPhase}: end to end through the service vs the floor, with the per-store-call
 *   breakdown (at 10k and at 1M rows);
 * - {@link captureRedeem}: the statements one successful `store.redeemCode` sends, captured and
 *   bound for replay (see capture.ts);
 * - {@link storeRows}: `store.redeemCode` (+ native HMAC) vs the floor and vs its own statements
 *   replayed by hand, interleaved in one run; a long run for p99; on SQLite the WAL frames a redeem
 *   writes; on PostgreSQL the rc_attempts row changes of 1,000 redeems.
 */
import { statSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { createRecoveryCodes, type RecoveryCodeStore } from '@recovery-codes/core'
import { kyselyStore, sqliteStatementCache, startSqliteCheckpointer } from '@recovery-codes/store-kysely'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { createStorage } from 'unstorage'
import {
  type BenchResult,
  mean,
  measure,
  measureInterleaved,
  pairRatio,
  type Report,
  single,
  summarize,
} from '../harness.ts'
import {
  type BoundStatement,
  bindStatements,
  type CapturedStatement,
  type CaptureSink,
  cannedKysely,
  describeBound,
  type RedeemVars,
} from './capture.ts'
import {
  BIG_LABEL,
  CLIENT_KEY,
  type Code,
  type codePool,
  fmt,
  nativeDigest,
  PEPPERS,
  redeemInput,
  type Service,
  timing,
} from './common.ts'
import { type PostgresTarget, type SqliteTarget, sqlitePragmas, type Target } from './targets.ts'

type Store = ReturnType<typeof kyselyStore>
type Codes = ReturnType<typeof codePool<Code>>

/** Per phase: p50 over this many end-to-end redeems, after a warm-up; the same for the floor. */
const E2E_SAMPLES = 1000
const E2E_WARMUP = 50
const BREAKDOWN_SAMPLES = 300
/** The interleaved store / floor / replay group: rounds (one redeem per arm each) after a warm-up. */
export const GROUP_SAMPLES = Number(process.env.RC_BENCH_GROUP_SAMPLES ?? 1500)
const GROUP_WARMUP = 50
/** Redeems in a row for p99 (with the store's connection as configured: default autocheckpoint). */
export const TAIL_SAMPLES = Number(process.env.RC_BENCH_TAIL_SAMPLES ?? 3000)
/** Redeems over which WAL growth is measured. */
export const WAL_REDEEMS = Number(process.env.RC_BENCH_WAL_REDEEMS ?? 200)
export const ATTEMPT_REDEEMS = 1000

export interface Ctx {
  report: Report
  t: Target
  store: Store
  rc: Service
  log: (s: string) => void
}

/** A successful store redeem of an issued code (digest by native HMAC); throws on anything else. */
async function storeRedeem(store: Store, c: Code, auditId: string) {
  const now = Date.now()
  const out = await store.redeemCode(
    redeemInput({ userId: c.userId, digest: nativeDigest(c.userId, c.canonical) }, auditId, now),
  )
  if (out.outcome !== 'consumed') throw new Error(`bench: store.redeemCode ${out.outcome}`)
}

async function floorRedeem(t: Target, c: Code) {
  const ok = await t.floor(c.userId, nativeDigest(c.userId, c.canonical), Date.now())
  if (!ok) throw new Error('bench: the floor UPDATE matched no row')
}

/** End to end through the service vs the floor, and the breakdown of the service's store calls. */
export async function redeemPhase(ctx: Ctx, label: string, codes: Codes) {
  const { report, t, store } = ctx
  const d = t.dialect
  const e2eCodes = codes.take(E2E_SAMPLES + E2E_WARMUP)
  const floorCodes = codes.take(E2E_SAMPLES + E2E_WARMUP)
  const e2e = report.add(
    await measure(
      `${d} e2e redeem via the service @${label} (p50)`,
      async (i) => {
        const c = e2eCodes[i]!
        const r = await ctx.rc.redeem({ userId: c.userId, code: c.code, clientKey: CLIENT_KEY })
        if (!r.ok) throw new Error(`bench: redeem failed (${r.reason})`)
      },
      { samples: E2E_SAMPLES, inner: 1, warmup: E2E_WARMUP },
    ),
  )
  const floor = report.add(
    await measure(
      `${d} floor: raw UPDATE … RETURNING + native HMAC @${label} (p50)`,
      (i) => floorRedeem(t, floorCodes[i]!),
      { samples: E2E_SAMPLES, inner: 1, warmup: E2E_WARMUP },
    ),
  )
  report.ratio(`${d} e2e redeem / floor @${label} (target ≤ 2)`, e2e, floor)

  // Breakdown: the same redeem with every store and cache call timed.
  const calls = new Map<string, number[]>()
  let inCalls = 0
  const tick = (ms: number) => {
    inCalls += ms
  }
  const timedRc = createRecoveryCodes({
    peppers: PEPPERS,
    activation: 'immediate',
    store: timing(store as RecoveryCodeStore, calls, 'store.', tick),
    cache: timing(createStorage(), calls, 'cache.', tick),
  })
  const rest: number[] = []
  const totals: number[] = []
  for (const c of codes.take(BREAKDOWN_SAMPLES)) {
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
        `${d} e2e breakdown @${label}: ${name} ×${perRedeem} (per call)`,
        'µs',
        ms.map((x) => x * 1000),
      ),
    )
    parts.push(`${name} ×${perRedeem} ${row.median} µs`)
  }
  const restRow = report.add(
    summarize(`${d} e2e breakdown @${label}: service JS outside store/cache`, 'µs', rest),
  )
  ctx.log(
    `redeem @${label}: e2e p50 ${e2e.median} µs, floor p50 ${floor.median} µs; breakdown (p50 per call, timed ` +
      `pass p50 ${summarize('total', 'µs', totals).median} µs): ${parts.join(', ')}, rest ${restRow.median} µs`,
  )
  return { e2e, floor }
}

export interface CapturedRedeem {
  /** The statements of a store's first redeem (one-time work such as PostgreSQL's clock read). */
  first: CapturedStatement[]
  /** Steady state: the statements of a later redeem, bound for replay. */
  bound: BoundStatement[]
  steady: CapturedStatement[]
}

/**
 * Captures the statements of three successful redeems (three users among `codes`) on a fresh store
 * over a recording Kysely instance (same handle / pool as the store's): the first (one-time work
 * included), then two in steady state, bound against each other (see {@link bindStatements}).
 */
export async function captureRedeem(
  t: Target,
  codes: readonly Code[],
  log: (s: string) => void,
): Promise<CapturedRedeem> {
  const sink: CaptureSink = { on: true, statements: [] }
  const store = kyselyStore(t.captureDb(sink))
  const runs: { statements: CapturedStatement[]; vars: RedeemVars }[] = []
  // Three users, and three `now`s a second apart: an input equal in two captures would pass for a
  // constant of the statement.
  const picked: Code[] = []
  for (const c of codes) if (picked.length < 3 && !picked.some((p) => p.userId === c.userId)) picked.push(c)
  if (picked.length < 3) throw new Error('bench: the capture needs codes of three users')
  for (const [n, c] of picked.entries()) {
    sink.statements = []
    const auditId = `bench-capture-${n}-${Date.now()}`
    const now = Date.now() - (3 - n) * 1000
    const digest = nativeDigest(c.userId, c.canonical)
    const wall = Date.now()
    const out = await store.redeemCode(redeemInput({ userId: c.userId, digest }, auditId, now))
    if (out.outcome !== 'consumed') throw new Error(`bench: capture redeem ${out.outcome}`)
    runs.push({ statements: sink.statements, vars: { userId: c.userId, digest, now, auditId, wall } })
  }
  const [first, a, b] = runs as [(typeof runs)[0], (typeof runs)[0], (typeof runs)[0]]
  const bound = bindStatements(a.statements, a.vars, b.statements, b.vars)
  log(
    `store.redeemCode sends ${a.statements.length} statements per successful redeem (first call of a store: ` +
      `${first.statements.length}):\n    ${describeBound(bound)}`,
  )
  return { first: first.statements, bound, steady: a.statements }
}

/** The store rows at the big table (see the file comment). */
export async function storeRows(ctx: Ctx, codes: Codes, captured: CapturedRedeem) {
  const { report, t, store, log } = ctx
  const d = t.dialect
  report.count(`${d} store.redeemCode statements per successful redeem (captured)`, captured.steady.length)

  if (t.dialect === 'sqlite') await walFrames(ctx, t as SqliteTarget, codes)

  // Store, floor and the store's own statements by hand, in rotation: each round shares its moment.
  const replay = t.replayer(captured.bound)
  const [sc, fc, rc] = [0, 1, 2].map(() => codes.take(GROUP_SAMPLES + GROUP_WARMUP)) as [
    Code[],
    Code[],
    Code[],
  ]
  const replayName =
    d === 'sqlite'
      ? 'the same statements as prepared better-sqlite3 statements'
      : 'the same statements on a raw pg client (named prepared)'
  const g = await measureInterleaved(
    [
      {
        name: `${d} store.redeemCode + native HMAC @${BIG_LABEL} (p50)`,
        fn: (i) => storeRedeem(store, sc[i]!, `bench-g-${i}`),
      },
      {
        name: `${d} floor: raw UPDATE … RETURNING + native HMAC @${BIG_LABEL}, same run (p50)`,
        fn: (i) => floorRedeem(t, fc[i]!),
      },
      {
        name: `${d} ${replayName} + native HMAC @${BIG_LABEL} (p50)`,
        fn: (i) => {
          const c = rc[i]!
          return replay({
            userId: c.userId,
            digest: nativeDigest(c.userId, c.canonical),
            now: Date.now(),
            auditId: `bench-replay-${i}-${c.userId}`,
          })
        },
      },
    ],
    { samples: GROUP_SAMPLES, warmup: GROUP_WARMUP, cpu: true },
  )
  const [storeRow, floorRow, replayRow] = g.results.map((r) => report.add(r)) as [
    BenchResult,
    BenchResult,
    BenchResult,
  ]
  const floorTarget = d === 'sqlite' ? ' (target ≤ 2.5)' : d === 'postgres' ? ' (target ≤ 1.6)' : ''
  const vsFloor = report.add(
    pairRatio(`${d} store.redeemCode / floor${floorTarget}`, g.samples[1]!, g.samples[0]!),
  )
  const replayTarget = d === 'sqlite' ? ' (target ≤ 1.2)' : ''
  const vsReplay = report.add(
    pairRatio(
      `${d} store.redeemCode / its statements replayed by hand${replayTarget}`,
      g.samples[2]!,
      g.samples[0]!,
    ),
  )
  const gap = storeRow.median - replayRow.median
  report.add(single(`${d} store.redeemCode − replayed statements (p50 difference)`, 'µs', gap))
  // This process's CPU time per call (insensitive to waiting for the server or for a busy CPU).
  const [storeCpu, floorCpu, replayCpu] = g.cpu.map((x) => mean(x)) as [number, number, number]
  report.add(single(`${d} store.redeemCode + native HMAC, client CPU per call (mean)`, 'µs', storeCpu))
  report.add(single(`${d} floor + native HMAC, client CPU per call (mean)`, 'µs', floorCpu))
  report.add(single(`${d} replayed statements + native HMAC, client CPU per call (mean)`, 'µs', replayCpu))
  log(
    `store.redeemCode p50 ${storeRow.median} µs (p99 ${storeRow.p99}), floor ${floorRow.median} µs, replayed ` +
      `${replayRow.median} µs: store/floor ${vsFloor.median}, store/replay ${vsReplay.median}, gap ${gap.toFixed(1)} µs; ` +
      `client CPU per call: store ${storeCpu}, floor ${floorCpu}, replayed ${replayCpu} µs`,
  )

  // The store's own JavaScript: the same redeem over a driver that answers with the captured rows.
  if (d === 'sqlite' || d === 'postgres') {
    const canned = kyselyStore(cannedKysely(d, [...captured.first, ...captured.steady]))
    const some = codes.take(1)[0]!
    const js = report.add(
      await measure(
        `${d} store.redeemCode JS + Kysely over a no-I/O driver answering the captured rows (hot loop)`,
        async (i) => {
          const out = await canned.redeemCode(
            redeemInput(
              { userId: some.userId, digest: nativeDigest(some.userId, some.canonical) },
              `x-${i}`,
              Date.now(),
            ),
          )
          if (out.outcome !== 'consumed') throw new Error('bench: canned store.redeemCode did not consume')
        },
        { samples: 30, inner: 1000, warmup: 5 },
      ),
    )
    log(`store.redeemCode's own JS (no I/O, hot loop, incl. one native HMAC): ${js.median} µs per call`)
  }

  // A long run of store redeems for the tail (checkpoints and all, as configured).
  const tc = codes.take(TAIL_SAMPLES + 50)
  const tail = report.add(
    await measure(
      `${d} store.redeemCode + native HMAC, ${fmt(TAIL_SAMPLES)} in a row @${BIG_LABEL}${d === 'sqlite' ? ', default wal_autocheckpoint' : ''} (p50; p99 column)`,
      (i) => storeRedeem(store, tc[i]!, `bench-tail-${i}`),
      { samples: TAIL_SAMPLES, inner: 1, warmup: 50 },
    ),
  )
  report.add({
    name: `${d} store.redeemCode p99 / p50 @${BIG_LABEL}${d === 'sqlite' ? ' (target ≤ 10)' : ''}`,
    unit: 'ratio',
    median: Math.round((tail.p99! / tail.median) * 1000) / 1000,
    min: Math.round((tail.p99! / tail.median) * 1000) / 1000,
    max: Math.round((tail.max / tail.median) * 1000) / 1000,
    n: tail.n,
  })
  log(`tail: ${fmt(TAIL_SAMPLES)} redeems p50 ${tail.median} µs, p99 ${tail.p99} µs, max ${tail.max} µs`)

  if (t.dialect === 'sqlite') {
    // The same run with the checkpoints moved to a worker thread (`startSqliteCheckpointer`): no
    // redeem's commit copies the WAL into the file any more.
    const checkpointer = startSqliteCheckpointer((t as SqliteTarget).raw, { intervalMs: 250 })
    const cc = codes.take(TAIL_SAMPLES + 50)
    const bg = report.add(
      await measure(
        `sqlite store.redeemCode + native HMAC, ${fmt(TAIL_SAMPLES)} in a row @${BIG_LABEL}, startSqliteCheckpointer (p50; p99 column)`,
        (i) => storeRedeem(store, cc[i]!, `bench-tail-bg-${i}`),
        { samples: TAIL_SAMPLES, inner: 1, warmup: 50 },
      ),
    )
    await checkpointer.stop()
    report.add({
      name: `sqlite store.redeemCode p99 / p50 @${BIG_LABEL}, startSqliteCheckpointer (target ≤ 10)`,
      unit: 'ratio',
      median: Math.round((bg.p99! / bg.median) * 1000) / 1000,
      min: Math.round((bg.p99! / bg.median) * 1000) / 1000,
      max: Math.round((bg.max / bg.median) * 1000) / 1000,
      n: bg.n,
    })
    log(`tail, checkpointer: p50 ${bg.median} µs, p99 ${bg.p99} µs, max ${bg.max} µs`)
  }

  if (t.dialect === 'postgres') await attemptRows(ctx, t as PostgresTarget, codes)
}

/**
 * SQLite: WAL frames per successful redeem, on a second connection to the same file opened with
 * `wal_autocheckpoint=0` (nothing checkpoints while it runs, so the WAL only grows): the file's
 * growth over each redeem / (page_size + 24). The floor's frames on the same connection for scale.
 */
async function walFrames(ctx: Ctx, t: SqliteTarget, codes: Codes) {
  const conn = new Database(t.file, { timeout: 10_000 })
  sqlitePragmas(conn)
  conn.pragma('wal_autocheckpoint = 0')
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: sqliteStatementCache(conn) }) })
  const store = kyselyStore(db, { sqliteDatabase: conn })
  const floor = conn.prepare(t.floorSql)
  const pageSize = conn.pragma('page_size', { simple: true }) as number
  const frame = pageSize + 24
  const wal = `${t.file}-wal`
  const size = () => statSync(wal, { throwIfNoEntry: false })?.size ?? 0
  try {
    t.raw.pragma('wal_checkpoint(TRUNCATE)')
    const measureFrames = async (
      name: string,
      list: Code[],
      op: (c: Code, i: number) => Promise<void> | void,
    ) => {
      await op(list[0]!, -1) // writes the WAL header: every later delta is whole frames
      const per: number[] = []
      const start = size()
      for (const [i, c] of list.slice(1).entries()) {
        const s0 = size()
        await op(c, i)
        const grown = size() - s0
        if (grown % frame !== 0) throw new Error(`bench: WAL grew by ${grown} bytes, not whole frames`)
        per.push(grown / frame)
      }
      const total = (size() - start) / frame
      const row = summarize(name, 'frames/op', per)
      delete row.p99
      row.mean = Math.round((total / per.length) * 1000) / 1000
      ctx.report.add(row)
      return { row, total }
    }
    const s = await measureFrames(
      `sqlite redeem WAL frames/op: store.redeemCode, wal_autocheckpoint=0 (mean column; target ≤ 5)`,
      codes.take(WAL_REDEEMS + 1),
      (c, i) => storeRedeem(store, c, `bench-wal-${i}`),
    )
    const f = await measureFrames(
      'sqlite redeem WAL frames/op: floor UPDATE … RETURNING (autocommit), same connection',
      codes.take(WAL_REDEEMS + 1),
      (c) => {
        if (floor.get(Date.now(), Date.now(), c.userId, nativeDigest(c.userId, c.canonical)) === undefined)
          throw new Error('bench: the floor UPDATE matched no row')
      },
    )
    ctx.log(
      `WAL (page_size ${pageSize}): store.redeemCode ${s.total} frames over ${WAL_REDEEMS} redeems = ${s.row.mean}/op ` +
        `(per op ${s.row.min}..${s.row.max}); floor ${f.row.mean}/op`,
    )
  } finally {
    await db.destroy()
    t.raw.pragma('wal_checkpoint(TRUNCATE)')
  }
}

/** PostgreSQL: rows changed in rc_attempts (and, for scale, the other tables) by 1,000 redeems. */
async function attemptRows(ctx: Ctx, t: PostgresTarget, codes: Codes) {
  const list = codes.take(ATTEMPT_REDEEMS)
  const tables = async () => {
    await t.attemptChanges()
    const r = await t.raw.query(
      `SELECT relname, n_tup_ins + n_tup_upd + n_tup_del + n_tup_hot_upd AS n FROM pg_stat_user_tables WHERE schemaname = $1`,
      [t.schema],
    )
    return new Map(r.rows.map((x) => [x.relname as string, Number(x.n)]))
  }
  const before = await t.attemptChanges()
  const other0 = await tables()
  for (const [i, c] of list.entries()) await storeRedeem(ctx.store, c, `bench-attempts-${i}`)
  const after = await t.attemptChanges()
  const other1 = await tables()
  const delta = after.total - before.total
  ctx.report.count(
    `postgres rc_attempts row changes over ${fmt(ATTEMPT_REDEEMS)} successful store.redeemCode (pg_stat_user_tables ins+upd+del+hot_upd; target 0)`,
    delta,
  )
  const others = [...other1]
    .map(([rel, n]) => `${rel} ${n - (other0.get(rel) ?? 0)}`)
    .filter((s) => !s.endsWith(' 0'))
    .join(', ')
  ctx.log(
    `rc_attempts over ${fmt(ATTEMPT_REDEEMS)} redeems: ins ${after.ins - before.ins}, upd ${after.upd - before.upd}, ` +
      `del ${after.del - before.del}, hot_upd ${after.hot - before.hot} (sum ${delta}); all tables: ${others}`,
  )
}
