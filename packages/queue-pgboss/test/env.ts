/**
 * Real-server plumbing for the tests: PostgreSQL and Redis probes (skip locally with a message,
 * fail under `CI=true`), unique schema names, and a scan of every table of a schema.
 */

import { probePostgres } from '@recovery-codes/testing'
import { Redis } from 'ioredis'
import pg from 'pg'

export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const isCI = process.env.CI === 'true'

async function probeRedis(): Promise<string | null> {
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return (await redis.ping()) === 'PONG' ? null : 'no PONG'
  } catch (e) {
    return e instanceof Error ? e.message || e.name : String(e)
  } finally {
    redis.disconnect()
  }
}

/** `null` when reachable; the reason otherwise. */
export const pgUnavailable = await probePostgres()
export const redisUnavailable = await probeRedis()

if (!isCI) {
  if (pgUnavailable !== null)
    console.warn(
      `[queue-pgboss] PostgreSQL at ${PG_URL} unreachable (${pgUnavailable}): PostgreSQL tests SKIPPED`,
    )
  if (redisUnavailable !== null)
    console.warn(
      `[queue-pgboss] Redis at ${REDIS_URL} unreachable (${redisUnavailable}): Redis tests SKIPPED`,
    )
}

/** Whether a suite needing these servers is registered: always under CI (it must then fail). */
export function shouldRun(needs: { redis?: boolean } = {}): boolean {
  return isCI || (pgUnavailable === null && (!needs.redis || redisUnavailable === null))
}

/** Call first in `beforeAll`: under CI an unreachable server is a failure, not a skip. */
export function requireServers(needs: { redis?: boolean } = {}): void {
  if (pgUnavailable !== null) throw new Error(`PostgreSQL at ${PG_URL} unreachable: ${pgUnavailable}`)
  if (needs.redis && redisUnavailable !== null)
    throw new Error(`Redis at ${REDIS_URL} unreachable: ${redisUnavailable}`)
}

/** A fresh schema name `<prefix>_<16 hex>` (generated here, never from input). */
export function uniqueSchema(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`
}

export async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

export async function createSchema(schema: string): Promise<void> {
  await withClient((c) => c.query(`create schema ${schema}`))
}

export async function dropSchemas(...schemas: string[]): Promise<void> {
  await withClient(async (c) => {
    for (const s of schemas) await c.query(`drop schema if exists ${s} cascade`)
  })
}

/** Every row of every table in `schema` (partitions included), each as its text form. */
export async function dumpSchema(
  schema: string,
): Promise<{ tables: string[]; rows: Record<string, string[]> }> {
  return withClient(async (c) => {
    const { rows: tables } = await c.query<{ table_name: string }>(
      `select table_name from information_schema.tables where table_schema = $1 order by table_name`,
      [schema],
    )
    const rows: Record<string, string[]> = {}
    for (const { table_name } of tables) {
      const r = await c.query<{ t: string }>(`select t::text as t from ${schema}."${table_name}" t`)
      rows[table_name] = r.rows.map((x) => x.t)
    }
    return { tables: tables.map((t) => t.table_name), rows }
  })
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `fn` until it returns a truthy value (or throws after `timeoutMs`). */
export async function until<T>(fn: () => Promise<T> | T, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}
