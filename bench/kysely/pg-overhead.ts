/**
 * PostgreSQL: where `store.redeemCode` spends time beyond a raw call of the same statements with the
 * same parameters (the captured steady-state redeem, see capture.ts). Two kinds of rows:
 *
 * - a ladder with I/O, all arms interleaved in one run, each adding one layer to the raw named call:
 *   unnamed (parse + plan per call), no result type parsing, a pg.Pool checkout per redeem, the
 *   `pgPreparedStatements` wrapper (held client, then with its pool checkout: what Kysely's driver
 *   does), Kysely's `executeQuery` over the store's pool, and `store.redeemCode` itself;
 * - each suspect in isolation, without I/O: pool checkout, the wrapper over a fake client, Kysely's
 *   executor and the whole store over a driver that answers with the captured rows, JSON.stringify of
 *   the audit data, Date parameters, pg's parameter serialization, and the clock query.
 */
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { kyselyStore, pgPreparedStatements } from '@recovery-codes/store-kysely'
import { CompiledQuery } from 'kysely'
import { mean, measure, type Report, single, summarize } from '../harness.ts'
import {
  type BoundStatement,
  type CapturedStatement,
  cannedKysely,
  pgExec,
  type RedeemVars,
  type StatementExec,
} from './capture.ts'
import { redeemInput, type StoreCode, type seededCodes } from './common.ts'
import type { PostgresTarget } from './targets.ts'

/** node-postgres' parameter serialization (what `client.query` does to each value). */
const pgUtils = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue(v: unknown): unknown }

const LADDER_SAMPLES = Number(process.env.RC_BENCH_LADDER_SAMPLES ?? 400)
const LADDER_WARMUP = 30

type Exec = StatementExec
const runner = pgExec

/** A pool of one fake node-postgres client (its statement maps, an instant answer) under the wrapper. */
function fakeWrappedPool(rows: Record<string, unknown>[]) {
  const client = {
    connection: { parsedStatements: {} as Record<string, string>, submittedNamedStatements: {} },
    query: (..._args: unknown[]) => Promise.resolve({ rows, rowCount: rows.length, command: 'SELECT' }),
    release() {},
  }
  return pgPreparedStatements({ connect: async () => client as never, end: async () => {} })
}

export async function pgOverhead(
  report: Report,
  t: PostgresTarget,
  captured: { first: CapturedStatement[]; steady: CapturedStatement[]; bound: BoundStatement[] },
  seeded: ReturnType<typeof seededCodes>,
  log: (s: string) => void,
) {
  const d = 'postgres overhead'
  const { bound } = captured
  const store = kyselyStore(t.db)
  const noDeadline = kyselyStore(t.db, { startDeadlineMs: null })
  // Clients the ladder holds for its whole run (released in the `finally` below, before the pool ends).
  const noParse = await t.connect({ types: { getTypeParser: () => (v: string) => v } as never })
  const held = await t.preparedPool.connect()
  const heldRaw = await t.pgPool.connect()
  const release = async () => {
    held.release()
    heldRaw.release()
    await noParse.end()
  }
  const prefix = `rc_ladder_${Date.now().toString(36)}_`
  const named =
    (c: { query: (q: object) => Promise<unknown> }): Exec =>
    (text, values, i) =>
      (values.length === 0 ? c.query({ text }) : c.query({ name: `${prefix}${i}`, text, values })) as never
  const vars = (c: StoreCode, i: number, arm: string): RedeemVars => ({
    userId: c.userId,
    digest: c.digest,
    now: Date.now(),
    auditId: `bench-ladder-${arm}-${i}-${c.userId}`,
  })
  const rawNamed = runner(bound, named(t.raw as never))
  const cdb = cannedKysely('postgres', [...captured.first, ...captured.steady])
  const cannedStore = kyselyStore(cdb)
  const arms: { name: string; run: (c: StoreCode, i: number) => Promise<void> }[] = [
    {
      name: 'raw pg client, named prepared (the baseline)',
      run: runnerArm('a', rawNamed),
    },
    {
      name: 'raw pg client, unnamed (parse + plan every call)',
      run: runnerArm(
        'b',
        runner(bound, (text, values) => t.raw.query(text, values) as never),
      ),
    },
    {
      name: 'raw pg client, named, result type parsers off',
      run: runnerArm('c', runner(bound, named(noParse as never))),
    },
    {
      name: 'raw pg.Pool client held, named (same pool as the store)',
      run: runnerArm('d', runner(bound, named(heldRaw as never))),
    },
    {
      name: 'pg.Pool connect + named + release, per redeem',
      run: async (c, i) => {
        const client = await t.pgPool.connect()
        try {
          await runner(bound, named(client as never))(vars(c, i, 'e'))
        } finally {
          client.release()
        }
      },
    },
    {
      name: 'pgPreparedStatements client held: query(text, values)',
      run: runnerArm(
        'f',
        runner(bound, (text, values) => held.query(text, values) as never),
      ),
    },
    {
      name: 'pgPreparedStatements connect + query(text, values) + release (as Kysely’s driver)',
      run: async (c, i) => {
        const client = await t.preparedPool.connect()
        try {
          await runner(bound, (text, values) => client.query(text, values) as never)(vars(c, i, 'g'))
        } finally {
          client.release()
        }
      },
    },
    {
      name: 'Kysely db.executeQuery(CompiledQuery) over the store’s pool',
      run: runnerArm(
        'h',
        runner(bound, (text, values) => t.db.executeQuery(CompiledQuery.raw(text, values)) as never),
      ),
    },
    {
      // The store's JS without its I/O, but run where it really runs: right after a round trip.
      name: 'raw named call, then store.redeemCode over a no-I/O driver (the store’s JS, cold)',
      run: async (c, i) => {
        await rawNamed(vars(c, i, 'j'))
        const out = await cannedStore.redeemCode(redeemInput(c, `bench-ladder-j-${i}`, Date.now()))
        if (out.outcome !== 'consumed') throw new Error('bench: canned store.redeemCode did not consume')
      },
    },
    {
      name: 'store.redeemCode, startDeadlineMs: null (no deadline parameter)',
      run: async (c, i) => {
        const out = await noDeadline.redeemCode(redeemInput(c, `bench-ladder-n-${i}-${c.userId}`, Date.now()))
        if (out.outcome !== 'consumed') throw new Error(`bench: ladder store.redeemCode ${out.outcome}`)
      },
    },
    {
      name: 'store.redeemCode',
      run: async (c, i) => {
        const out = await store.redeemCode(redeemInput(c, `bench-ladder-s-${i}-${c.userId}`, Date.now()))
        if (out.outcome !== 'consumed') throw new Error(`bench: ladder store.redeemCode ${out.outcome}`)
      },
    },
  ]
  function runnerArm(arm: string, run: (v: RedeemVars) => Promise<void>) {
    return (c: StoreCode, i: number) => run(vars(c, i, arm))
  }
  // Each arm right after a baseline call, so a pair shares its moment: the median of the pair
  // differences is the arm's cost over the raw named call (noise cancels far better than in a
  // difference of two medians). Fewer rounds on a small table (seeded codes run out).
  const pairs = arms.length - 1
  const samples = Math.min(LADDER_SAMPLES, Math.floor(seeded.left / 2 / (2 * pairs)) - LADDER_WARMUP)
  if (samples < 20) {
    await release()
    log('ladder skipped: too few seeded codes at this table size')
    return null
  }
  const rounds = samples + LADDER_WARMUP
  const codes = arms.map((_, k) => seeded.take(rounds * (k === 0 ? pairs : 1)))
  const wall = arms.map(() => [] as number[])
  const dWall = arms.map(() => [] as number[])
  const dCpu = arms.map(() => [] as number[])
  const timed = async (fn: () => Promise<void>) => {
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    await fn()
    const us = (performance.now() - t0) * 1000
    const c = process.cpuUsage(c0)
    return { us, cpu: c.user + c.system }
  }
  try {
    let nb = 0
    for (let r = 0; r < rounds; r++) {
      for (let k = 1; k < arms.length; k++) {
        const b = await timed(() => arms[0]!.run(codes[0]![nb]!, nb++))
        const x = await timed(() => arms[k]!.run(codes[k]![r]!, r))
        if (r < LADDER_WARMUP) continue
        wall[0]!.push(b.us)
        wall[k]!.push(x.us)
        dWall[k]!.push(x.us - b.us)
        dCpu[k]!.push(x.cpu - b.cpu)
      }
    }
  } finally {
    await release()
  }
  const baseRow = report.add(summarize(`${d} ladder: ${arms[0]!.name} (p50)`, 'µs', wall[0]!))
  const ladder: { name: string; p50: number; dWall: number; dCpu: number }[] = [
    { name: arms[0]!.name, p50: baseRow.median, dWall: 0, dCpu: 0 },
  ]
  for (let k = 1; k < arms.length; k++) {
    const a = arms[k]!
    const dw = report.add(
      summarize(
        `${d} ladder: ${a.name}: Δ wall vs the raw named call (median of adjacent pairs)`,
        'µs',
        dWall[k]!,
      ),
    )
    delete dw.p99
    const dc = report.add(
      single(
        `${d} ladder: ${a.name}: Δ client CPU vs the raw named call (mean of pairs)`,
        'µs',
        mean(dCpu[k]!),
      ),
    )
    ladder.push({
      name: a.name,
      p50: summarize('', 'µs', wall[k]!).median,
      dWall: dw.median,
      dCpu: dc.median,
    })
  }
  const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`
  log(
    `ladder (${samples} adjacent pairs per arm; wall p50 | Δ wall, median of pairs | Δ client CPU, mean of pairs):\n    ${ladder
      .map((r) => `${r.name}: ${r.p50} µs | ${signed(r.dWall)} | CPU ${signed(r.dCpu)}`)
      .join('\n    ')}`,
  )

  // ---- each suspect alone, no I/O ----
  const iso: string[] = []
  const alone = async (name: string, fn: (i: number) => unknown, inner = 1000) => {
    const row = report.add(await measure(`${d} alone: ${name}`, fn, { samples: 30, inner, warmup: 5 }))
    iso.push(`${name}: ${row.median} µs`)
    return row
  }
  await alone('pg.Pool connect + release (idle client)', async () => {
    const c = await t.pgPool.connect()
    c.release()
  })
  await alone('pgPreparedStatements pool connect + release', async () => {
    const c = await t.preparedPool.connect()
    c.release()
  })
  const rows = captured.steady.at(-1)?.rows ?? []
  const fake = fakeWrappedPool([...rows])
  const fakeClient = await fake.connect()
  const last = bound.at(-1)!
  const sampleValues = last.params.map((f) =>
    f(
      vars(seeded.at(0), 0, 'x'),
      captured.steady.map((s) => s.rows),
    ),
  )
  await alone('pgPreparedStatements wrapper query() over a fake instant client', () =>
    fakeClient.query(last.sql, sampleValues),
  )
  await alone('Kysely executeQuery(CompiledQuery) over a no-I/O driver', () =>
    cdb.executeQuery(CompiledQuery.raw(last.sql, sampleValues)),
  )
  const cstore = cannedStore
  const some = seeded.at(0)
  await alone('store.redeemCode JS + Kysely over a no-I/O driver (captured rows)', async (i) => {
    const out = await cstore.redeemCode(redeemInput(some, `x-${i}`, Date.now()))
    if (out.outcome !== 'consumed') throw new Error('bench: canned store.redeemCode did not consume')
  })
  await alone(
    'redeemInput() object (the bench’s own input building)',
    (i) => redeemInput(some, `x-${i}`, 1),
    10_000,
  )
  await alone('JSON.stringify of the audit data', () => JSON.stringify({ mode: 'code' }), 10_000)
  const dates = sampleValues.filter((v) => v instanceof Date).length
  await alone(
    `${dates} Date parameters: new Date(ms) + pg prepareValue (local-time string)`,
    (i) => {
      for (let k = 0; k < dates; k++) pgUtils.prepareValue(new Date(1_700_000_000_000 + i))
    },
    10_000,
  )
  await alone(`pg prepareValue of all ${sampleValues.length} parameters of the call`, () => {
    for (const v of sampleValues) pgUtils.prepareValue(v)
  })
  const clock = captured.first.filter((s) => !captured.steady.some((x) => x.sql === s.sql))
  report.count(`${d}: one-time statements on a store's first redeem (e.g. the clock read)`, clock.length)
  for (const s of clock) {
    const row = await measure(
      `${d}: one-time statement on the store's pool (p50)`,
      () => t.db.executeQuery(CompiledQuery.raw(s.sql, [...s.parameters])),
      {
        samples: 200,
        inner: 1,
        warmup: 10,
      },
    )
    report.add({
      ...row,
      name: `${d}: one-time statement "${s.sql.replace(/\s+/g, ' ').slice(0, 60)}" (p50; once per store per 10 min)`,
    })
    iso.push(`one-time "${s.sql.slice(0, 40)}…": ${row.median} µs per call, not in steady state`)
  }
  log(`suspects alone (no I/O, per call):\n    ${iso.join('\n    ')}`)
  return ladder
}
