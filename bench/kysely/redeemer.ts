/**
 * The concurrent redeemer of the purge rows: a worker thread with its own connection (SQLite: its
 * own better-sqlite3 handle, since better-sqlite3 is synchronous; PostgreSQL and MySQL: its own
 * pool) and its own `kyselyStore`, redeeming one seeded code every `intervalMs` (no catch-up bursts
 * when a call was late) from `run` until `stop` (or `max` redeems), timing each `store.redeemCode`
 * call.
 *
 * Messages in: `{ type: 'run', label, max? }`, `{ type: 'stop' }`, `{ type: 'exit' }`.
 * Messages out: `{ type: 'ready' }`, `{ type: 'started', label }`,
 * `{ type: 'done', label, latencies (µs), errors, firstError }`.
 */
import { performance } from 'node:perf_hooks'
import { parentPort, workerData } from 'node:worker_threads'
import {
  type KyselyStoreOptions,
  kyselyStore,
  pgPreparedStatements,
  sqliteStatementCache,
} from '@recovery-codes/store-kysely'
import Database from 'better-sqlite3'
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { redeemInput, seededCodes, sleep } from './common.ts'
import { loadMysql2 } from './mysql.ts'
import type { WorkerConnection } from './targets.ts'

export interface RedeemerData {
  conn: WorkerConnection
  intervalMs: number
  codes: { from: number; count: number; batches: number }
}

export type RedeemerMessage =
  | { type: 'ready' }
  | { type: 'started'; label: string }
  | { type: 'done'; label: string; latencies: number[]; errors: number; firstError: string | null }

const data = workerData as RedeemerData
const port = parentPort!

async function open(conn: WorkerConnection): Promise<{ db: Kysely<any>; options?: KyselyStoreOptions }> {
  if (conn.dialect === 'sqlite') {
    // A long busy timeout: a redeem blocked by the one-shot DELETE waits it out and says how long.
    const raw = new Database(conn.file, { timeout: 60_000 })
    raw.pragma('synchronous = NORMAL')
    raw.pragma('cache_size = -65536')
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: sqliteStatementCache(raw) }) })
    return { db, options: { sqliteDatabase: raw } }
  }
  if (conn.dialect === 'postgres') {
    const pool = pgPreparedStatements(
      new pg.Pool({ connectionString: conn.url, options: conn.options, max: 2 }),
    )
    return { db: new Kysely<any>({ dialect: new PostgresDialect({ pool }) }) }
  }
  if (conn.dialect === 'mysql') {
    const mysql2 = loadMysql2()
    if (mysql2 === null) throw new Error('redeemer: mysql2 is not installed where the bench can load it')
    const pool = mysql2.createPool({ uri: conn.url, connectionLimit: 2 })
    return { db: new Kysely<any>({ dialect: new MysqlDialect({ pool: pool as never }) }) }
  }
  throw new Error(`redeemer: no worker connection for ${(conn as WorkerConnection).dialect}`)
}

const { db, options } = await open(data.conn)
const store = kyselyStore(db, options)
const codes = seededCodes(data.codes.batches)
let n = data.codes.from
const end = data.codes.from + data.codes.count
let stopping = false
let running = false

async function run(label: string, max: number | undefined) {
  running = true
  stopping = false
  const latencies: number[] = []
  let errors = 0
  let firstError: string | null = null
  port.postMessage({ type: 'started', label } satisfies RedeemerMessage)
  let next = performance.now()
  while (!stopping && (max === undefined || latencies.length < max) && n < end) {
    const wait = next - performance.now()
    if (wait > 0) await sleep(wait)
    if (stopping) break
    next = Math.max(next + data.intervalMs, performance.now())
    const c = codes.at(n++)
    const t0 = performance.now()
    try {
      const out = await store.redeemCode(redeemInput(c, `bench-redeemer-${label}-${n}`, Date.now()))
      if (out.outcome !== 'consumed') {
        errors++
        firstError ??= `outcome ${out.outcome}`
      }
    } catch (e) {
      errors++
      firstError ??= e instanceof Error ? `${e.message}${e.cause ? ` (${String(e.cause)})` : ''}` : String(e)
    }
    latencies.push((performance.now() - t0) * 1000)
  }
  if (n >= end && firstError === null) firstError = 'ran out of codes'
  running = false
  port.postMessage({ type: 'done', label, latencies, errors, firstError } satisfies RedeemerMessage)
}

port.on('message', (m: { type: string; label?: string; max?: number }) => {
  if (m.type === 'run' && !running) void run(m.label ?? 'run', m.max)
  else if (m.type === 'stop') stopping = true
  else if (m.type === 'exit') {
    stopping = true
    void db.destroy().finally(() => port.close())
  }
})
port.postMessage({ type: 'ready' } satisfies RedeemerMessage)
