/**
 * `pgPreparedStatements`: parameterized queries become named prepared statements on their
 * connection, prepared once and reused; the per-connection LRU is bounded with DEALLOCATE and keeps
 * node-postgres' own map in step; transactions, errors and the whole store (contract and
 * conformance) work over it. The pass-through rules are checked against a fake client without a
 * server; the rest needs PostgreSQL (skipped locally when unreachable, failing under CI=true).
 */
import { spawn } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { fileURLToPath } from 'node:url'
import { IS_CI, PG_URL, probePostgres, runStoreConformance } from '@recovery-codes/testing'
import { Kysely, PostgresDialect, type PostgresPool, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateRecoveryCodes } from '../src/migrations.ts'
import { pgPreparedStatements, preparedStatementName } from '../src/pg-prepared.ts'
import type { RecoveryCodesDatabase } from '../src/schema.ts'
import { kyselyStore } from '../src/store.ts'
import { auditRow, batch, codes, storeContract } from './contract.ts'

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

  /**
   * A node-postgres-like client over a fake server that holds prepared statements by name: pg's
   * maps are kept as pg keeps them (set on success), a named call the server does not hold fails
   * with 26000, and `fail` makes the next named call fail with any error.
   */
  class FakeClient extends EventEmitter {
    connection = { parsedStatements: {} as Record<string, string>, submittedNamedStatements: {} }
    server = new Set<string>()
    calls: unknown[][] = []
    released: unknown[][] = []
    fail: unknown
    status = 'I'
    referenced = true
    _queryable = true
    _ending = false
    query(...args: unknown[]) {
      this.calls.push(args)
      const [q, cb] = args as [{ name?: string; text: string } | string, unknown]
      let error: unknown
      let rows: unknown[] = []
      if (typeof q === 'object' && q.name !== undefined) {
        const parsed = this.connection.parsedStatements
        if (this.fail !== undefined) [error, this.fail] = [this.fail, undefined]
        else if (parsed[q.name] !== undefined && !this.server.has(q.name)) {
          error = Object.assign(new Error('gone'), { code: '26000', severity: 'ERROR' })
        } else {
          parsed[q.name] = q.text
          this.server.add(q.name)
          rows = [{ v: 1 }]
        }
      } else if (q === 'select name from pg_prepared_statements') {
        rows = [...this.server].map((name) => ({ name }))
      } else if (typeof q === 'string' && q.startsWith('DEALLOCATE ')) {
        this.server.delete(q.slice('DEALLOCATE '.length))
      }
      const result = { command: 'SELECT', rowCount: rows.length, rows }
      if (typeof cb === 'function') {
        queueMicrotask(() => (error === undefined ? cb(null, result) : cb(error)))
        return undefined
      }
      return error === undefined ? Promise.resolve(result) : Promise.reject(error)
    }
    getTransactionStatus() {
      return this.status
    }
    ref() {
      this.referenced = true
    }
    unref() {
      this.referenced = false
    }
    release(...args: unknown[]) {
      this.released.push(args)
    }
  }

  /** A pool of {@link FakeClient}s: a new one per `connect()`, as pg-pool with spare room does. */
  function fakePool(options: { maxUses?: number } = {}) {
    const clients: FakeClient[] = []
    const pool = Object.assign(new EventEmitter(), {
      waitingCount: 0,
      ended: false,
      options: { maxUses: options.maxUses ?? Number.POSITIVE_INFINITY, maxLifetimeSeconds: 0 },
      connect: async () => {
        const c = new FakeClient()
        clients.push(c)
        return c
      },
      end: async () => {
        pool.ended = true
      },
    })
    return { pool, clients }
  }
  const text = 'select $1::int as v'
  type Q = { query(t: string, v: unknown[]): Promise<unknown>; release(e?: unknown): void }

  it('steady state: a statement prepared on the connection goes straight to pg (callback form)', async () => {
    const { pool, clients } = fakePool()
    const client = (await pgPreparedStatements(pool as never).connect()) as unknown as Q
    const raw = clients[0]!
    const name = preparedStatementName(text)
    await client.query(text, [1])
    expect(raw.calls.at(-1)).toEqual([{ name, text, values: [1] }]) // first use: prepared (slow path)
    expect(await client.query(text, [2])).toMatchObject({ rows: [{ v: 1 }] })
    const [config, cb] = raw.calls.at(-1)!
    expect(config).toEqual({ name, text, values: [2] })
    expect(typeof cb).toBe('function')
    expect(raw.calls).toHaveLength(2)
  })

  it('the steady-state path still marks what to repair: 0A000, 26000 and client-side errors', async () => {
    const { pool, clients } = fakePool()
    const client = (await pgPreparedStatements(pool as never).connect()) as unknown as Q
    const raw = clients[0]!
    const name = preparedStatementName(text)
    const last = () => raw.calls.at(-1)!
    await client.query(text, [1])
    // The result type changed under it: DEALLOCATE, then prepared again.
    raw.fail = Object.assign(new Error('cached plan'), { code: '0A000', severity: 'ERROR' })
    await expect(client.query(text, [1])).rejects.toMatchObject({ code: '0A000' })
    let n = raw.calls.length
    await client.query(text, [1])
    expect(raw.calls.slice(n)).toEqual([[`DEALLOCATE ${name}`], [{ name, text, values: [1] }]])
    await client.query(text, [1])
    expect(last()).toHaveLength(2) // steady again
    // The server lost it (DISCARD ALL elsewhere): one failure, then reconciled and prepared again.
    raw.server.clear()
    await expect(client.query(text, [1])).rejects.toMatchObject({ code: '26000' })
    n = raw.calls.length
    await client.query(text, [1])
    expect(raw.calls.slice(n)).toEqual([
      ['select name from pg_prepared_statements'],
      [{ name, text, values: [1] }],
    ])
    expect(raw.connection.parsedStatements).toEqual({ [name]: text })
    // A client-side failure (no SQLSTATE): reconciled before the next named call too.
    raw.fail = new TypeError('cannot serialize')
    await expect(client.query(text, [1])).rejects.toThrow(TypeError)
    n = raw.calls.length
    await client.query(text, [1])
    expect(raw.calls.slice(n)).toEqual([
      ['select name from pg_prepared_statements'],
      [{ name, text, values: [1] }],
    ])
    // A server error leaves pg's map true: no repair, still the steady path.
    raw.fail = Object.assign(new Error('division by zero'), { code: '22012', severity: 'ERROR' })
    await expect(client.query(text, [1])).rejects.toMatchObject({ code: '22012' })
    n = raw.calls.length
    await client.query(text, [1])
    expect(raw.calls.slice(n)).toHaveLength(1)
    expect(last()).toHaveLength(2)
  })

  it('keepClient: one free client stays out of the pool and is handed out next, unref’d meanwhile', async () => {
    const { pool, clients } = fakePool()
    const wrapped = pgPreparedStatements(pool as never)
    const a = (await wrapped.connect()) as unknown as Q
    const raw = clients[0]!
    await a.query(text, [1])
    a.release()
    expect(raw.released).toEqual([]) // kept, not back in the pool
    expect(raw.referenced).toBe(false) // does not hold the process open while free
    expect(raw.listenerCount('error')).toBe(1)
    expect(() => a.release()).toThrow(/already been released/)
    expect(await wrapped.connect()).toBe(a)
    expect(raw.referenced).toBe(true)
    expect(clients).toHaveLength(1)
    // Busy: a concurrent caller gets another client from the pool, never the one in use.
    const b = (await wrapped.connect()) as unknown as Q
    expect(b).not.toBe(a)
    expect(clients).toHaveLength(2)
    b.release() // the first one back is kept
    a.release() // the kept slot is taken: this one goes back to the pool
    expect(clients[1]!.released).toEqual([])
    expect(raw.released).toEqual([[]])
    expect(raw.listenerCount('error')).toBe(0)
    expect(await wrapped.connect()).toBe(b)
    // end(): the kept one goes back to the pool first.
    b.release()
    await wrapped.end()
    expect(clients[1]!.released).toEqual([[]])
    expect(pool.ended).toBe(true)
  })

  it('keepClient: not kept after a failed query, in a transaction, with waiters, or when off', async () => {
    const returned = async (prepare: (raw: FakeClient, client: Q) => Promise<void>, opts = {}) => {
      const { pool, clients } = fakePool()
      const wrapped = pgPreparedStatements(pool as never, opts)
      const client = (await wrapped.connect()) as unknown as Q
      await prepare(clients[0]!, client)
      client.release()
      return clients[0]!.released.length === 1
    }
    expect(await returned(async () => {})).toBe(false)
    expect(
      await returned(async (raw, c) => {
        raw.fail = Object.assign(new Error('unique'), { code: '23505', severity: 'ERROR' })
        await c.query(text, [1]).catch(() => {})
      }),
    ).toBe(true)
    expect(
      await returned(async (raw) => {
        raw.status = 'T'
      }),
    ).toBe(true)
    expect(
      await returned(async (raw) => {
        raw.status = 'E'
      }),
    ).toBe(true)
    expect(
      await returned(async (raw) => {
        raw._queryable = false
      }),
    ).toBe(true)
    expect(await returned(async () => {}, { keepClient: false })).toBe(true)
    // Someone waits on the pool itself: the client goes to them.
    const { pool, clients } = fakePool()
    const wrapped = pgPreparedStatements(pool as never)
    const client = (await wrapped.connect()) as unknown as Q
    pool.waitingCount = 1
    client.release()
    expect(clients[0]!.released).toEqual([[]])
    // A pool that retires connections by use count: off unless asked for.
    const retiring = fakePool({ maxUses: 100 })
    const r = (await pgPreparedStatements(retiring.pool as never).connect()) as unknown as Q
    r.release()
    expect(retiring.clients[0]!.released).toEqual([[]])
  })

  it('keepClient: a connection error while kept drops it (as pg-pool does with an idle one)', async () => {
    const { pool, clients } = fakePool()
    const poolErrors: unknown[] = []
    pool.on('error', (e) => poolErrors.push(e))
    const wrapped = pgPreparedStatements(pool as never)
    const a = (await wrapped.connect()) as unknown as Q
    a.release()
    const raw = clients[0]!
    const error = new Error('terminating connection due to administrator command')
    raw._queryable = false
    raw.emit('error', error)
    expect(raw.released).toEqual([[error]]) // pg-pool removes a client released with an error
    expect(poolErrors).toEqual([error])
    expect(raw.listenerCount('error')).toBe(0)
    const b = await wrapped.connect()
    expect(b).not.toBe(a)
    expect(clients).toHaveLength(2)
    // Closed while kept without an event: dropped when the next caller would have got it.
    b.release()
    clients[1]!._ending = true
    const c = await wrapped.connect()
    expect(c).not.toBe(b)
    expect(clients[1]!.released).toEqual([[]])
    // An error while handed out (between queries): it goes back to the pool with that error.
    c.release()
    const d = (await wrapped.connect()) as unknown as Q
    expect(d).toBe(c)
    const late = new Error('connection lost')
    clients[2]!._queryable = false
    clients[2]!.emit('error', late)
    expect(poolErrors).toEqual([error]) // in use: the caller hears of it, not the pool
    d.release()
    expect(clients[2]!.released).toEqual([[late]])
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
          audit: auditRow({ id: `audit-${i}`, at: 5000 + i, event: 'login.success', userId }),
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

    it('keepClient: concurrent callers and transactions never share a connection mid-query', async () => {
      const raw = rawPool(3)
      const one = new Kysely<RecoveryCodesDatabase>({
        dialect: new PostgresDialect({ pool: pgPreparedStatements(raw) }),
      })
      const pid = async () =>
        (await sql<{ p: number }>`select pg_backend_pid() as p, ${1}::int as x`.execute(one)).rows[0]!.p
      // Serial calls: the kept connection every time, outside pg-pool (none idle there).
      const first = await pid()
      for (let i = 0; i < 5; i++) expect(await pid()).toBe(first)
      expect(raw.idleCount).toBe(0)
      // A transaction holds its connection throughout; concurrent ones and plain queries get others.
      const inTx = (i: number) =>
        one.transaction().execute(async (trx) => {
          await sql`select set_config('rc.t', ${String(i)}, true)`.execute(trx)
          await sql`select pg_sleep(${0.002 * (i % 4)})`.execute(trx)
          return (await sql<{ v: string }>`select current_setting('rc.t') as v, ${i}::int as i`.execute(trx))
            .rows[0]!.v
        })
      const plain = async (i: number) =>
        (await sql<{ v: number }>`select ${i}::int as v from pg_sleep(${0.001 * (i % 3)})`.execute(one))
          .rows[0]!.v
      const jobs = Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? inTx(i) : plain(i)))
      expect(await Promise.all(jobs)).toEqual(
        Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? String(i) : i)),
      )
      expect(raw.totalCount).toBeLessThanOrEqual(3)
      // Nothing was left in a transaction, and the kept connection is one of the pool's.
      expect(await pid()).toBeGreaterThan(0)
      await one.destroy()
      expect(raw.totalCount).toBe(0)
    })

    it('keepClient: a pool of one serves a queue of callers (the kept connection goes to the waiter)', async () => {
      const one = open(1)
      const jobs = Array.from({ length: 10 }, (_, i) =>
        sql<{ v: number }>`select ${i}::int as v`.execute(one).then((r) => r.rows[0]!.v),
      )
      expect(await Promise.all(jobs)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      await one.destroy()
    })

    it('keepClient: a kept connection whose backend is terminated is dropped, never reused', async () => {
      const raw = rawPool(2)
      const errors: unknown[] = []
      raw.on('error', (e) => errors.push(e))
      const one = new Kysely<RecoveryCodesDatabase>({
        dialect: new PostgresDialect({ pool: pgPreparedStatements(raw) }),
      })
      const pid = async () =>
        (await sql<{ p: number }>`select pg_backend_pid() as p, ${1}::int as x`.execute(one)).rows[0]!.p
      const before = await pid()
      const admin = new pg.Client({ connectionString: PG_URL })
      await admin.connect()
      await admin.query('select pg_terminate_backend($1)', [before])
      await admin.end()
      await expect.poll(() => errors.length, { timeout: 5000 }).toBe(1)
      expect(errors[0]).toMatchObject({ code: '57P01' })
      const after = await pid()
      expect(after).not.toBe(before)
      expect(await pid()).toBe(after)
      expect(raw.totalCount).toBe(1)
      await one.destroy()
    })

    it('keepClient: the kept connection does not keep the process alive', async () => {
      // A child process that queries and never ends its pool: pg-pool's idle timer (idleTimeoutMillis)
      // would hold it for two minutes; the kept connection must not.
      const src = fileURLToPath(new URL('../src/pg-prepared.ts', import.meta.url))
      const code = `
        import { createRequire } from 'node:module'
        import { pathToFileURL } from 'node:url'
        const req = createRequire(${JSON.stringify(src)})
        const pg = (await import(pathToFileURL(req.resolve('pg')).href)).default
        const { Kysely, PostgresDialect, sql } = await import(pathToFileURL(req.resolve('kysely')).href)
        const { pgPreparedStatements } = await import(${JSON.stringify(src)})
        const pool = new pg.Pool({ connectionString: ${JSON.stringify(PG_URL)}, max: 2, idleTimeoutMillis: 120000 })
        const db = new Kysely({ dialect: new PostgresDialect({ pool: pgPreparedStatements(pool) }) })
        for (let i = 0; i < 3; i++) await sql\`select \${i}::int as v\`.execute(db)
        console.log('queried', pool.totalCount, pool.idleCount)
      `
      const started = Date.now()
      const out = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
          cwd: fileURLToPath(new URL('..', import.meta.url)),
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        let [stdout, stderr] = ['', '']
        child.stdout.on('data', (b) => {
          stdout += b
        })
        child.stderr.on('data', (b) => {
          stderr += b
        })
        const kill = setTimeout(() => child.kill('SIGKILL'), 50_000)
        child.on('exit', (status) => {
          clearTimeout(kill)
          resolve({ status, stdout, stderr })
        })
      })
      expect(out.stderr).toBe('')
      expect(out.stdout.trim()).toBe('queried 1 0')
      expect(out.status).toBe(0)
      expect(Date.now() - started).toBeLessThan(50_000)
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
