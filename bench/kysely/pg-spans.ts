/**
 * PostgreSQL: one `store.redeemCode` call cut into spans on the clock, next to the raw named call
 * of the same statements (adjacent pairs). Marks come from instrumenting the store's own pool and
 * connections for the duration of this run only: `pg.Pool#connect` (called, resolved),
 * node-postgres `Client#query` on every pool client and on the raw client (called = the request
 * is built and written; its promise resolved = the reply is parsed), and the pool's internal
 * `_release` (the connection handed back):
 *
 *   call → [store JS before checkout] → connect → [checkout] → connected → [Kysely + wrapper before
 *   the query] → query → [pg: serialize, wire, server, parse] → reply → [wrapper + Kysely after the
 *   reply, up to release] → release → [release, result mapping, promise hops] → return
 *
 * A span the raw call does not have (checkout, the layers) is overhead by construction; the pg span
 * compares the wire and server time of the two (same statement text, same parameters' kinds).
 */
import { performance } from 'node:perf_hooks'
import { kyselyStore } from '@recovery-codes/store-kysely'
import { type Report, summarize } from '../harness.ts'
import { type BoundStatement, pgExec } from './capture.ts'
import { redeemInput, type seededCodes } from './common.ts'
import type { PostgresTarget } from './targets.ts'

const SPAN_PAIRS = Number(process.env.RC_BENCH_SPAN_PAIRS ?? 1000)

interface Marks {
  connect: number
  connected: number
  send: number
  reply: number
  release: number
}

type Patchable = Record<string, unknown>

export async function pgSpans(
  report: Report,
  t: PostgresTarget,
  bound: readonly BoundStatement[],
  seeded: ReturnType<typeof seededCodes>,
  log: (s: string) => void,
) {
  const d = 'postgres overhead span'
  const pairs = Math.min(SPAN_PAIRS, Math.floor(seeded.left / 4) - 50)
  if (pairs < 50) {
    log('spans skipped: too few seeded codes at this table size')
    return
  }
  const store = kyselyStore(t.db)
  const m: Marks = {
    connect: Number.NaN,
    connected: Number.NaN,
    send: Number.NaN,
    reply: Number.NaN,
    release: Number.NaN,
  }
  const reset = () => {
    m.connect = m.connected = m.send = m.reply = m.release = Number.NaN
  }

  // ---- instrumentation (instance properties, removed in `finally`) ----
  const pool = t.pgPool as unknown as Patchable & {
    _clients: Patchable[]
    on(e: string, f: (c: Patchable) => void): void
    off(e: string, f: (c: Patchable) => void): void
  }
  const proto = Object.getPrototypeOf(pool) as Patchable
  const patchedClients = new Set<Patchable>()
  // Parse messages sent (a named statement already prepared on its connection sends none).
  let parses = 0
  const patchedConns = new Set<Patchable>()
  const patchClient = (c: Patchable) => {
    if (patchedClients.has(c)) return
    patchedClients.add(c)
    const conn = c.connection as Patchable | undefined
    if (conn !== undefined && typeof conn.parse === 'function') {
      const parse = Object.getPrototypeOf(conn).parse as (...a: unknown[]) => unknown
      conn.parse = function (this: unknown, ...args: unknown[]) {
        parses++
        return parse.apply(this, args)
      }
      patchedConns.add(conn)
    }
    const query = Object.getPrototypeOf(c).query as (...a: unknown[]) => unknown
    c.query = function (this: unknown, ...args: unknown[]) {
      const sent = performance.now()
      const done = args[args.length - 1]
      if (typeof done === 'function') {
        // The callback form (the store's prepared fast path): the reply is the callback's call.
        if (Number.isNaN(m.send)) m.send = sent
        args[args.length - 1] = (...r: unknown[]) => {
          m.reply = performance.now()
          return (done as (...a: unknown[]) => unknown)(...r)
        }
      }
      const p = query.apply(this, args)
      if (p instanceof Promise) {
        if (Number.isNaN(m.send)) m.send = sent
        p.then(
          () => {
            m.reply = performance.now()
          },
          () => {},
        )
      }
      return p
    }
  }
  pool.connect = function (this: unknown, ...args: unknown[]) {
    const called = performance.now()
    const p = (proto.connect as (...a: unknown[]) => unknown).apply(this, args)
    if (p instanceof Promise) {
      if (Number.isNaN(m.connect)) m.connect = called
      p.then(
        () => {
          if (Number.isNaN(m.connected)) m.connected = performance.now()
        },
        () => {},
      )
    }
    return p
  }
  pool._release = function (this: unknown, ...args: unknown[]) {
    m.release = performance.now()
    return (proto._release as (...a: unknown[]) => unknown).apply(this, args)
  }
  const onConnect = (c: Patchable) => patchClient(c)
  pool.on('connect', onConnect)
  for (const c of pool._clients) patchClient(c)
  patchClient(t.raw as unknown as Patchable)

  const names = [
    'before checkout',
    'checkout',
    'before the query',
    'pg query',
    'after the reply',
    'release + return',
  ] as const
  type Arm = {
    label: string
    pool: boolean
    run: (i: number) => Promise<void>
    spans: number[][]
    total: number[]
    parses: number
  }
  const codes = seeded.take(3 * (pairs + 50))
  // One name per statement for the whole run: each connection prepares it once.
  const prefix = `rc_span_${Date.now().toString(36)}_`
  const named = (client: { query: (q: object) => Promise<unknown> }) => {
    return pgExec(
      bound,
      (text, values, k) =>
        (values.length === 0
          ? client.query({ text })
          : client.query({ name: `${prefix}${k}`, text, values })) as never,
    )
  }
  const rawNamed = named(t.raw as never)
  const arms: Arm[] = [
    {
      label: 'store.redeemCode',
      pool: true,
      run: async (i) => {
        const c = codes[3 * i]!
        const out = await store.redeemCode(redeemInput(c, `bench-span-s-${i}-${c.userId}`, Date.now()))
        if (out.outcome !== 'consumed') throw new Error(`bench: span store.redeemCode ${out.outcome}`)
      },
      spans: names.map(() => []),
      total: [],
      parses: 0,
    },
    {
      label: 'pg.Pool connect + named query + release (no Kysely, no wrapper)',
      pool: true,
      run: async (i) => {
        const c = codes[3 * i + 1]!
        const client = await t.pgPool.connect()
        try {
          await named(client as never)({
            userId: c.userId,
            digest: c.digest,
            now: Date.now(),
            auditId: `bench-span-p-${i}-${c.userId}`,
          })
        } finally {
          client.release()
        }
      },
      spans: names.map(() => []),
      total: [],
      parses: 0,
    },
    {
      label: 'raw client named query',
      pool: false,
      run: async (i) => {
        const c = codes[3 * i + 2]!
        await rawNamed({
          userId: c.userId,
          digest: c.digest,
          now: Date.now(),
          auditId: `bench-span-r-${i}-${c.userId}`,
        })
      },
      spans: [[], [], []],
      total: [],
      parses: 0,
    },
  ]
  const us = (a: number, b: number) => (b - a) * 1000
  try {
    for (let i = 0; i < pairs + 50; i++) {
      // Each round runs the three in another order, so an order effect cancels out.
      for (let j = 0; j < arms.length; j++) {
        const arm = arms[(i + j) % arms.length]!
        reset()
        const p0 = parses
        const t0 = performance.now()
        await arm.run(i)
        const t1 = performance.now()
        if (i < 50) continue
        arm.parses += parses - p0
        if (arm.pool && Number.isNaN(m.connect)) {
          // The store's kept connection (`keepClient`) skipped pg-pool: checkout and release are 0.
          m.connect = t0
          m.connected = t0
        }
        if (arm.pool && Number.isNaN(m.release)) m.release = m.reply
        const parts = arm.pool
          ? [
              us(t0, m.connect),
              us(m.connect, m.connected),
              us(m.connected, m.send),
              us(m.send, m.reply),
              us(m.reply, m.release),
              us(m.release, t1),
            ]
          : [us(t0, m.send), us(m.send, m.reply), us(m.reply, t1)]
        if (parts.some((x) => Number.isNaN(x)))
          throw new Error(
            `bench: a span mark is missing (${arm.label}: ${Object.entries(m)
              .filter(([, v]) => Number.isNaN(v))
              .map(([k]) => k)
              .join(', ')})`,
          )
        for (const [k, x] of parts.entries()) arm.spans[k]!.push(x)
        arm.total.push(us(t0, t1))
      }
    }
  } finally {
    delete pool.connect
    delete pool._release
    pool.off('connect', onConnect)
    for (const c of patchedClients) delete c.query
    for (const c of patchedConns) delete c.parse
  }
  report.count(
    `${d}: Parse messages over ${pairs} store.redeemCode calls (steady state; 0 = prepared once)`,
    arms[0]!.parses,
  )
  const lines: string[] = []
  for (const arm of arms) {
    const labels = arm.pool ? names : (['before the query', 'pg query', 'after the reply'] as const)
    const parts = labels.map(
      (n, k) => `${n} ${report.add(summarize(`${d}: ${arm.label}: ${n} (p50)`, 'µs', arm.spans[k]!)).median}`,
    )
    const total = report.add(summarize(`${d}: ${arm.label}: whole call (p50)`, 'µs', arm.total)).median
    lines.push(`${arm.label} ${total} = ${parts.join(' + ')} (Parse messages: ${arm.parses})`)
  }
  log(`spans, p50 over ${pairs} rounds of the three in rotation (µs):\n    ${lines.join('\n    ')}`)
}
