/**
 * Purge with a concurrent redeemer (issue 15, row 3), on the big table (half of the seeded rows
 * eligible): a worker thread with its own connection redeems a seeded code every 2 ms
 * (redeemer.ts) — first alone (idle), then while the service's purge runs (`rc.purge` with
 * `chunkSize: PURGE_CHUNK` as the ceiling — the service sizes each chunk itself, by its
 * `purge.chunkBudgetMs` where it has one — and no per-run cap: the `store.purgeCodes` chunks, each
 * with its audit row, as the
 * service issues them). Then, on the re-seeded (identical) table, a one-shot DELETE of the same
 * rows with the redeemer running: a reference of how long one statement blocks a redeem, not a goal.
 */
import { performance } from 'node:perf_hooks'
import { Worker } from 'node:worker_threads'
import { createRecoveryCodes } from '@recovery-codes/core'
import { kyselyStore } from '@recovery-codes/store-kysely'
import { type Report, single, summarize } from '../harness.ts'
import type { CaptureSink } from './capture.ts'
import {
  BIG_BATCHES,
  DAY,
  fmt,
  PEPPERS,
  PURGE_CHUNK,
  RETENTION_DAYS,
  type seededCodes,
  sleep,
  timing,
} from './common.ts'
import type { RedeemerData, RedeemerMessage } from './redeemer.ts'
import { seedStatement, type Target } from './targets.ts'

const INTERVAL_MS = 2
const IDLE_REDEEMS = Number(process.env.RC_BENCH_IDLE_REDEEMS ?? 1000)
/** Codes handed to the worker: enough for ~100 s of redeems every 2 ms. */
const WORKER_CODES = 50_000

/** The redeemer worker, driven by messages. */
async function startRedeemer(data: RedeemerData) {
  // Through worker-boot.mjs: a worker needs tsx's loader registered in its own thread.
  const worker = new Worker(new URL('./worker-boot.mjs', import.meta.url), {
    workerData: { ...data, entry: new URL('./redeemer.ts', import.meta.url).href },
  })
  const waiters: ((m: RedeemerMessage) => void)[] = []
  let failure: Error | null = null
  worker.on('message', (m: RedeemerMessage) => waiters.shift()?.(m))
  worker.on('error', (e) => {
    failure = e
  })
  const next = () =>
    new Promise<RedeemerMessage>((resolve, reject) => {
      if (failure) reject(failure)
      waiters.push(resolve)
      worker.once('error', reject)
    })
  const ready = await next()
  if (ready.type !== 'ready') throw new Error('bench: redeemer did not start')
  type Done = Extract<RedeemerMessage, { type: 'done' }>
  return {
    /** Starts redeeming; resolves once the worker has begun. `finished` resolves with its figures. */
    async start(label: string, max?: number) {
      const started = next()
      const finished = next() as Promise<Done>
      worker.postMessage({ type: 'run', label, max })
      await started
      return { finished }
    },
    stop() {
      worker.postMessage({ type: 'stop' })
    },
    async exit() {
      worker.postMessage({ type: 'exit' })
      await new Promise((r) => worker.once('exit', r))
    },
  }
}

function latencyRow(name: string, done: { latencies: number[] }) {
  return summarize(name, 'µs', done.latencies)
}

export async function purgeRows(
  report: Report,
  t: Target,
  seeded: ReturnType<typeof seededCodes>,
  now0: number,
  log: (s: string) => void,
) {
  const d = t.dialect
  const before = now0 - RETENTION_DAYS * DAY
  const eligibleWhere = `changed_at < ${t.tsSql(before)} OR expires_at < ${t.tsSql(before)}`
  await t.maintain()
  const eligible = await t.count(eligibleWhere)
  const rowsBefore = await t.count('1 = 1')
  log(`purge: ${fmt(eligible)} eligible of ${fmt(rowsBefore)} code rows`)

  // The chunk statement as the store sends it (captured from a chunk that finds nothing), for its plan.
  const sink: CaptureSink = { on: true, statements: [] }
  const longAgo = before - 10_000 * DAY
  await kyselyStore(t.captureDb(sink)).purgeCodes({ before: longAgo, limit: PURGE_CHUNK })
  const same = (v: unknown) => (v instanceof Date ? v.getTime() : v) === longAgo
  const chunkSql = sink.statements.find((s) => s.parameters.some(same))
  if (chunkSql !== undefined) {
    const params = chunkSql.parameters.map((v) => (same(v) ? t.ts(before) : v))
    log(`plan, purge chunk: ${await t.explain(chunkSql.sql, params)}`)
  }

  const redeemer = await startRedeemer({
    conn: t.worker,
    intervalMs: INTERVAL_MS,
    codes: seeded.reserve(Math.min(WORKER_CODES, seeded.left)),
  })
  try {
    // ---- the redeemer alone ----
    const idleRun = await redeemer.start('idle', IDLE_REDEEMS)
    const idle = await idleRun.finished
    const idleRow = report.add(
      latencyRow(`${d} purge: redeem latency idle, every 2 ms, own connection (p50; p99 column)`, idle),
    )

    // ---- the service's purge, redeemer running ----
    const calls = new Map<string, number[]>()
    const rc = createRecoveryCodes({
      peppers: PEPPERS,
      store: timing(kyselyStore(t.db, t.storeOptions), calls),
    })
    const duringRun = await redeemer.start('purge')
    const p0 = performance.now()
    const stopAt = p0 + (t.purgeSeconds ?? Number.POSITIVE_INFINITY) * 1000
    const run = await rc.purge({
      retentionDays: RETENTION_DAYS,
      chunkSize: PURGE_CHUNK,
      maxDeletionsPerRun: null,
      ...(t.purgeSeconds === undefined ? {} : { shouldStop: () => performance.now() >= stopAt }),
    })
    const purgeMs = performance.now() - p0
    redeemer.stop()
    const during = await duringRun.finished
    const left = await t.count(eligibleWhere)
    // Stopped by `purgeSeconds`: what is left is exactly what it did not delete.
    const stopped = t.purgeSeconds !== undefined && run.deleted < eligible
    if (run.error !== undefined || left !== eligible - run.deleted || (!stopped && left !== 0)) {
      throw new Error(
        `bench: purge deleted ${run.deleted}/${eligible}, ${left} left (${run.error ?? 'no error'})`,
      )
    }
    const chunks = calls.get('purgeCodes') ?? []
    const duringRow = report.add(
      latencyRow(`${d} purge: redeem latency during the purge (p50; p99 column)`, during),
    )
    report.add({
      name: `${d} purge: redeem p99 during / idle${d === 'postgres' ? ' (target ≤ 2)' : ''}`,
      unit: 'ratio',
      median: Math.round((duringRow.p99! / idleRow.p99!) * 1000) / 1000,
      min: Math.round((duringRow.median / idleRow.median) * 1000) / 1000,
      max: Math.round((duringRow.max / idleRow.max) * 1000) / 1000,
      n: duringRow.n,
    })
    if (d === 'sqlite') {
      report.add(
        single('sqlite purge: redeem p99 during the purge (target ≤ 25 ms)', 'ms', duringRow.p99! / 1000),
      )
    }
    const rateTarget = d === 'sqlite' ? ' (target ≥ 50k)' : d === 'postgres' ? ' (target ≥ 100k)' : ''
    report.add(
      single(
        `${d} purge via the service: ${fmt(run.deleted)} rows${stopped ? ` of ${fmt(eligible)} (stopped after ${t.purgeSeconds} s)` : ''}, chunk ceiling ${fmt(PURGE_CHUNK)} (the service sizes chunks), redeemer running${rateTarget}`,
        'rows/s',
        run.deleted / (purgeMs / 1000),
      ),
    )
    const chunkRow = report.add(
      summarize(
        `${d} purge chunk duration, store.purgeCodes with its audit row (p50; p99 column; target p99 ≤ 25 ms)`,
        'ms',
        chunks,
      ),
    )
    report.count(`${d} purge: chunks the service issued (store.purgeCodes calls)`, chunks.length)
    report.count(`${d} purge: redeems that failed during the purge`, during.errors)
    log(
      `service purge: ${fmt(run.deleted)} rows in ${(purgeMs / 1000).toFixed(2)} s (${fmt(Math.round(run.deleted / (purgeMs / 1000)))} rows/s), ` +
        `${chunks.length} chunks (${fmt(Math.round(run.deleted / Math.max(1, chunks.length)))} rows each on average) p50 ${chunkRow.median} ms p99 ${chunkRow.p99} ms max ${chunkRow.max} ms; redeems idle ` +
        `p50 ${idleRow.median} µs p99 ${idleRow.p99} µs (${idleRow.n}), during p50 ${duringRow.median} µs p99 ${duringRow.p99} µs ` +
        `max ${duringRow.max} µs (${duringRow.n} redeems, ${during.errors} failed${during.firstError ? `: ${during.firstError}` : ''})`,
    )

    // ---- the one-shot reference on the re-seeded table ----
    await t.maintain()
    const r0 = performance.now()
    await t.exec([
      seedStatement(t, {
        from: 0,
        to: BIG_BATCHES,
        now: now0,
        what: 'codes',
        eligibleOnly: true,
        columns: await t.columns('rc_codes'),
      }),
    ])
    const reseedMs = performance.now() - r0
    await t.maintain()
    const again = await t.count(eligibleWhere)
    if (again !== eligible) throw new Error(`bench: re-seed restored ${again} of ${eligible} eligible rows`)
    log(`re-seeded ${fmt(again)} eligible rows in ${(reseedMs / 1000).toFixed(1)} s`)
    const oneRun = await redeemer.start('one-shot')
    await sleep(200)
    const o0 = performance.now()
    const deleted = await t.oneShotDelete(before)
    const oneShotMs = performance.now() - o0
    await sleep(200)
    redeemer.stop()
    const one = await oneRun.finished
    if (deleted !== eligible) throw new Error(`bench: one-shot deleted ${deleted}/${eligible}`)
    report.add(
      single(
        `${d} one-shot DELETE of the same ${fmt(deleted)} rows (reference, not a goal)`,
        'rows/s',
        deleted / (oneShotMs / 1000),
      ),
    )
    report.add(single(`${d} one-shot DELETE: statement duration`, 'ms', oneShotMs))
    const longest = Math.max(...one.latencies) / 1000
    report.add(single(`${d} one-shot DELETE: longest redeem wait while it runs`, 'ms', longest))
    log(
      `one-shot DELETE: ${fmt(deleted)} rows in ${(oneShotMs / 1000).toFixed(2)} s; the redeemer's longest call ` +
        `${longest.toFixed(1)} ms (${one.latencies.length} redeems, ${one.errors} failed${one.firstError ? `: ${one.firstError}` : ''})`,
    )
  } finally {
    await redeemer.exit()
  }
}
