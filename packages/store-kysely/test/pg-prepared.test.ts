/**
 * `pgPreparedStatements`: parameterized queries become named prepared statements on their
 * connection, prepared once and reused; the per-connection LRU is bounded with DEALLOCATE and keeps
 * node-postgres' own map in step; transactions, errors and the whole store (contract and
 * conformance) work over it. The pass-through rules are checked against a fake client without a
 * server; the rest needs PostgreSQL (skipped locally when unreachable, failing under CI=true).
 */
import { IS_CI, PG_URL, probePostgres, runStoreConformance } from '@recovery-codes/testing'
import { Kysely, PostgresDialect, type PostgresPool, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateRecoveryCodes } from '../src/migrations.ts'
import { pgPreparedStatements, preparedStatementName } from '../src/pg-prepared.ts'
import type { RecoveryCodesDatabase } from '../src/schema.ts'
import { kyselyStore } from '../src/store.ts'
import { batch, codes, storeContract } from './contract.ts'

describe('pgPreparedStatements without a server', () => {
  function fake(withMaps = true) {
    const calls: unknown[][] = []
    const released: unknown[][] = []
    const raw = {
      ...(withMaps ? { connection: { parsedStatements: {}, submittedNamedStatements: {} } } : {}),
      query(...args: unknown[]) {
        calls.push(args)
        // A cursor (any query object) is returned as is, synchronously, as pg does.
        if (typeof args[0] === 'object') return args[0]
        return Promise.resolve({ command: 'SELECT', rowCount: 0, rows: [] })
      },
      release(...args: unknown[]) {
        released.push(args)
      },
    }
    const pool = { connect: async () => raw, end: async () => {} } as unknown as PostgresPool
    return { raw, calls, released, pool }
  }

  it('names parameterized calls; passes everything else through untouched', async () => {
    const f = fake()
    const pool = pgPreparedStatements(f.pool)
    const client = await pool.connect()
    expect(await pool.connect()).toBe(client) // one wrapper per physical connection (Kysely keys on it)
    await client.query('select $1::int', [1])
    expect(f.calls.at(-1)).toEqual([
      { name: preparedStatementName('select $1::int'), text: 'select $1::int', values: [1] },
    ])
    expect(preparedStatementName('select $1::int')).toMatch(/^rc_[0-9a-f]{16}$/)
    await client.query('begin', [])
    expect(f.calls.at(-1)).toEqual(['begin', []])
    await client.query('select 1; select 2' as string, [])
    expect(f.calls.at(-1)).toEqual(['select 1; select 2', []])
    const cursor = { read: async () => [], close: async () => {}, submit() {} }
    expect(client.query(cursor)).toBe(cursor)
    expect(f.calls.at(-1)).toEqual([cursor])
    const cb = () => {}
    const q = client.query as unknown as (...a: unknown[]) => unknown
    q('select $1::int', [1], cb)
    expect(f.calls.at(-1)).toEqual(['select $1::int', [1], cb])
    const err = new Error('x')
    ;(client.release as (e?: unknown) => void)(err)
    expect(f.released).toEqual([[err]])
    await pool.end()
  })

  it('leaves a client without node-postgres statement maps alone; validates max', async () => {
    const f = fake(false)
    const client = await pgPreparedStatements(f.pool).connect()
    expect(client).toBe(f.raw)
    expect(() => pgPreparedStatements(f.pool, { max: 0 })).toThrow()
    expect(() => pgPreparedStatements(f.pool, { max: 1.5 })).toThrow()
  })
})

const pgUnavailable = await probePostgres()

if (pgUnavailable !== null) {
  describe('pgPreparedStatements on PostgreSQL', () => {
    it.runIf(IS_CI)(`requires PostgreSQL at ${PG_URL} under CI=true`, () => {
      throw new Error(`PostgreSQL unreachable under CI=true: ${pgUnavailable}`)
    })
    it.skipIf(IS_CI)(`SKIPPED: PostgreSQL at ${PG_URL} unreachable (${pgUnavailable})`, () => {})
  })
} else {
  // One schema for this file, generated from hex digits (never input), dropped afterwards.
  const schema = `rc_test_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`
  const options = `-c search_path=${schema}`
  const rawPool = (max: number) => new pg.Pool({ connectionString: PG_URL, max, options })
  const open = (max: number, prepared: { max?: number } = {}) =>
    new Kysely<RecoveryCodesDatabase>({
      dialect: new PostgresDialect({ pool: pgPreparedStatements(rawPool(max), prepared) }),
    })
  let db: Kysely<RecoveryCodesDatabase>

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: PG_URL })
    await admin.connect()
    await admin.query(`create schema ${schema}`)
    await admin.end()
    db = open(10)
    await migrateRecoveryCodes(db)
  })
  afterAll(async () => {
    await db?.destroy()
    const admin = new pg.Client({ connectionString: PG_URL })
    await admin.connect()
    await admin.query(`drop schema if exists ${schema} cascade`)
    await admin.end()
  })

  type Prepared = { name: string; statement: string; generic_plans: string; custom_plans: string }
  type Client = {
    query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>
    release(): void
  }

  /** One wrapped connection, its raw pg client (for pg's map) and the server's view of it. */
  async function oneConnection(max: number) {
    const raw = rawPool(1)
    let rawClient: pg.PoolClient | undefined
    raw.on('connect', (c) => {
      rawClient = c
    })
    const pool = pgPreparedStatements(raw, { max })
    const client = (await pool.connect()) as unknown as Client
    const parsed = () =>
      Object.keys(
        (rawClient as unknown as { connection: { parsedStatements: Record<string, string> } }).connection
          .parsedStatements,
      ).sort()
    // No parameters: passed through unprepared, so it does not show up in its own answer.
    const server = async () =>
      (await client.query('select name from pg_prepared_statements order by name')).rows.map(
        (r) => r.name as string,
      )
    return { pool, client, parsed, server }
  }

  describe('pgPreparedStatements on PostgreSQL', () => {
    it('prepares each store statement once per connection and reuses it', async () => {
      const one = open(1)
      const store = kyselyStore(one)
      const list = () =>
        sql<Prepared>`select name, statement, generic_plans::text, custom_plans::text
        from pg_prepared_statements order by name`.execute(one)
      const round = async (i: number) => {
        const userId = `reuse-${i}`
        const cs = codes(3)
        await store.createBatch(batch(userId, 1000 + i), cs)
        const out = await store.redeemCode({
          userId,
          digests: [cs[0]!.digest],
          now: 5000 + i,
          keys: [{ key: `id:${userId}`, maxAttempts: 5 }],
          reset: [`id:${userId}`],
          audit: {
            id: `audit-${i}`,
            at: 5000 + i,
            event: 'login.success',
            userId,
            batchId: null,
            identifierHash: null,
            clientHash: null,
            outcome: 'success',
            reason: null,
            data: null,
          },
        })
        expect(out).toMatchObject({ outcome: 'consumed', code: { remaining: 2 } })
        expect(await store.getActiveBatch(userId)).toMatchObject({ used: 1, unused: 2 })
      }
      await round(0)
      const first = (await list()).rows
      expect(first.length).toBeGreaterThan(0)
      const rounds = 20
      for (let i = 1; i < rounds; i++) await round(i)
      const after = (await list()).rows
      // The same statements, each prepared once under its hash name, run on every round.
      expect(after.map((r) => r.name)).toEqual(first.map((r) => r.name))
      expect(new Set(after.map((r) => r.statement)).size).toBe(after.length)
      for (const r of after) {
        expect(r.name).toBe(preparedStatementName(r.statement))
        expect(Number(r.generic_plans) + Number(r.custom_plans), r.statement).toBeGreaterThanOrEqual(rounds)
      }
      await one.destroy()
    })

    it('is bounded per connection: DEALLOCATE past max, pg map in step, evicted names re-prepare', async () => {
      const { pool, client, parsed, server } = await oneConnection(2)
      const add = async (k: number, x: number) =>
        (await client.query(`select $1::int + ${k} as v`, [x])).rows[0]!.v as number
      expect(await add(1, 10)).toBe(11)
      expect(await add(2, 10)).toBe(12)
      expect(await add(3, 10)).toBe(13) // drops `+ 1`
      const names = [1, 2, 3].map((k) => preparedStatementName(`select $1::int + ${k} as v`))
      expect(await server()).toEqual([names[1], names[2]].sort())
      expect(parsed()).toEqual(await server())
      // Round and round: every name is evicted and prepared again, never "does not exist".
      for (let i = 0; i < 5; i++) {
        for (const k of [1, 2, 3]) expect(await add(k, i)).toBe(k + i)
        expect((await server()).length).toBe(2)
        expect(parsed()).toEqual(await server())
      }
      // Recently used survives: 3 was used last, then 1; using 3 again then 2 drops 1.
      await add(3, 0)
      await add(2, 0)
      expect(await server()).toEqual([names[1], names[2]].sort())
      ;(client as unknown as { release(): void }).release()
      await pool.end()
    })

    it('an eviction that fails in an aborted transaction is retried later; the bound comes back', async () => {
      const { pool, client, parsed, server } = await oneConnection(2)
      const q = async (text: string, values: unknown[]) => (await client.query(text, values)).rows[0]
      await q('select $1::int as a', [1])
      await q('select $1::int as b', [1])
      await client.query('begin', [])
      await expect(q('select 1 / $1::int as c', [0])).rejects.toMatchObject({ code: '22012' })
      // Needs an eviction: DEALLOCATE is refused in the aborted transaction, and so is the query.
      await expect(q('select $1::int as d', [1])).rejects.toMatchObject({ code: '25P02' })
      await client.query('rollback', [])
      expect(parsed()).toEqual(await server())
      expect(await q('select $1::int as e', [7])).toEqual({ e: 7 })
      expect((await server()).length).toBeLessThanOrEqual(2)
      expect(parsed()).toEqual(await server())
      for (const col of ['a', 'b', 'c', 'd', 'e']) {
        const text = col === 'c' ? 'select 1 / $1::int as c' : `select $1::int as ${col}`
        expect(await q(text, [1])).toEqual({ [col]: 1 })
      }
      expect((await server()).length).toBe(2)
      expect(parsed()).toEqual(await server())
      ;(client as unknown as { release(): void }).release()
      await pool.end()
    })

    it('errors leave the wrapper usable (server, client-side, DISCARD ALL, changed result type)', async () => {
      const { pool, client, parsed, server } = await oneConnection(100)
      const div = 'select 10 / $1::int as v'
      await expect(client.query(div, [0])).rejects.toMatchObject({ code: '22012' })
      expect((await client.query(div, [2])).rows).toEqual([{ v: 5 }])
      // A parse error: never prepared, and the same text fails the same way again.
      await expect(client.query('selec $1::int', [1])).rejects.toMatchObject({ code: '42601' })
      await expect(client.query('selec $1::int', [1])).rejects.toMatchObject({ code: '42601' })
      expect(parsed()).toEqual(await server())
      // A value pg cannot serialize fails in the client (pg sends Close for the statement).
      const circular: Record<string, unknown> = {}
      circular.self = circular
      const json = 'select $1::jsonb as j'
      expect((await client.query(json, [{ a: 1 }])).rows).toEqual([{ j: { a: 1 } }])
      await expect(client.query(json, [circular])).rejects.toThrow()
      expect((await client.query(json, [{ a: 2 }])).rows).toEqual([{ j: { a: 2 } }])
      expect(parsed()).toEqual(await server())
      // Someone else empties the connection's statements: one call fails, the next prepares again.
      await client.query('discard all')
      await client.query(`set search_path = ${schema}`)
      await expect(client.query(div, [5])).rejects.toMatchObject({ code: '26000' })
      expect((await client.query(div, [5])).rows).toEqual([{ v: 2 }])
      // DDL changes the result type under a prepared `select *`.
      await client.query('create table pp_t (id int primary key, a int)')
      await client.query('insert into pp_t values (1, 1)')
      const star = 'select * from pp_t where id = $1'
      expect((await client.query(star, [1])).rows).toEqual([{ id: 1, a: 1 }])
      await client.query('alter table pp_t add column b int default 2')
      await expect(client.query(star, [1])).rejects.toMatchObject({ code: '0A000' })
      expect((await client.query(star, [1])).rows).toEqual([{ id: 1, a: 1, b: 2 }])
      expect(parsed()).toEqual(await server())
      await client.query('drop table pp_t')
      ;(client as unknown as { release(): void }).release()
      await pool.end()
    })

    it('transactions through Kysely commit and roll back; statements outlive a rollback', async () => {
      const one = open(1, { max: 5 })
      await sql`create table pp_tx (id int primary key, v text)`.execute(one)
      await one.transaction().execute(async (trx) => {
        await sql`insert into pp_tx values (${1}, ${'a'})`.execute(trx)
        await sql`insert into pp_tx values (${2}, ${'b'})`.execute(trx)
      })
      // Prepared for the first time inside a transaction that then rolls back.
      await expect(
        one.transaction().execute(async (trx) => {
          await sql`update pp_tx set v = ${'z'} where id = ${1}`.execute(trx)
          await sql`insert into pp_tx values (${1}, ${'dup'})`.execute(trx)
        }),
      ).rejects.toMatchObject({ code: '23505' })
      const rows = async () =>
        (
          await sql<{ id: number; v: string }>`select id, v from pp_tx where id > ${0} order by id`.execute(
            one,
          )
        ).rows
      expect(await rows()).toEqual([
        { id: 1, v: 'a' },
        { id: 2, v: 'b' },
      ])
      await sql`update pp_tx set v = ${'y'} where id = ${2}`.execute(one)
      expect(await rows()).toEqual([
        { id: 1, v: 'a' },
        { id: 2, v: 'y' },
      ])
      // Many distinct statements in one transaction, past max: evictions inside it are fine.
      await one.transaction().execute(async (trx) => {
        for (let k = 0; k < 12; k++) {
          const r = await sql<{ v: number }>`select ${k}::int + ${sql.lit(k)} as v`.execute(trx)
          expect(r.rows[0]!.v).toBe(2 * k)
        }
      })
      const n = await sql<{ n: string }>`select count(*)::text as n from pg_prepared_statements`.execute(one)
      expect(Number(n.rows[0]!.n)).toBeLessThanOrEqual(5)
      await sql`drop table pp_tx`.execute(one)
      await one.destroy()
    })
  })

  // The whole store over the wrapped pool: the contract and the shared conformance suite.
  const reset = () => sql`truncate rc_codes, rc_batches, rc_attempts, rc_audit_log, rc_email_log`.execute(db)

  storeContract('PostgreSQL with pgPreparedStatements', async () => {
    await reset()
    return { store: kyselyStore(db), db }
  })

  runStoreConformance({
    name: 'kysely (PostgreSQL, pgPreparedStatements)',
    setup: async () => {
      await reset()
      return kyselyStore(db)
    },
  })
}
