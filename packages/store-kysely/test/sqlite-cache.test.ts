/**
 * `sqliteStatementCache`: statements are prepared once and reused, the cache is bounded, streaming
 * still works, and the whole store (contract and conformance) runs unchanged over it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runStoreConformance } from '@recovery-codes/testing'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateRecoveryCodes } from '../src/migrations.ts'
import type { RecoveryCodesDatabase } from '../src/schema.ts'
import { sqliteStatementCache } from '../src/sqlite-cache.ts'
import { kyselyStore } from '../src/store.ts'
import { batch, codes, storeContract } from './contract.ts'

/** A better-sqlite3 database that counts `prepare` calls by SQL text. */
function counted(file: string) {
  const raw = new Database(file, { timeout: 10_000 })
  raw.pragma('journal_mode = WAL')
  const prepared = new Map<string, number>()
  return {
    raw,
    prepared,
    total: () => [...prepared.values()].reduce((a, b) => a + b, 0),
    database: {
      prepare(text: string) {
        prepared.set(text, (prepared.get(text) ?? 0) + 1)
        return raw.prepare(text)
      },
      close: () => raw.close(),
    },
  }
}

describe('sqliteStatementCache', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rc-stmt-cache-'))
  })
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  it('prepares each SQL text once and reuses it; results stay correct', async () => {
    const c = counted(join(dir, 'reuse.db'))
    const cached = sqliteStatementCache(c.database)
    const db = new Kysely<RecoveryCodesDatabase>({ dialect: new SqliteDialect({ database: cached }) })
    await migrateRecoveryCodes(db)
    const store = kyselyStore(db)
    const cs = codes(5)
    const b = batch('u1', 1000)
    await store.createBatch(b, cs)
    const before = c.total()
    const keys = [
      { key: 'id:u1', maxAttempts: 5 },
      { key: 'ip:1', maxAttempts: 50 },
    ]
    const audit = {
      id: 'a',
      at: 2000,
      event: 'login.success',
      userId: 'u1',
      batchId: null,
      identifierHash: null,
      clientHash: null,
      outcome: 'success' as const,
      reason: null,
      data: null,
    }
    for (const [i, code] of cs.entries()) {
      const out = await store.redeemCode({
        userId: 'u1',
        digests: [code.digest],
        now: 2000 + i,
        keys,
        reset: ['id:u1'],
        audit: { ...audit, id: `a${i}` },
      })
      expect(out).toMatchObject({ outcome: 'consumed', code: { codeId: code.id, remaining: 4 - i } })
    }
    // The first redeem prepared its statements (begin, reserve, consume, batch, delete, release,
    // audit, commit); the other four prepared nothing.
    const perRedeem = c.total() - before
    expect(perRedeem).toBeGreaterThan(0)
    expect(perRedeem).toBeLessThanOrEqual(8)
    for (const [text, n] of c.prepared) expect(n, text).toBe(1)
    expect(await store.listAudit({ limit: 10, userId: 'u1' })).toHaveLength(5)
    expect(await store.getActiveBatch('u1')).toMatchObject({ used: 5, unused: 0 })
    await db.destroy()
    expect(cached.size).toBe(0)
    expect(c.raw.open).toBe(false)
  })

  it('is bounded: past max the least recently used statement is dropped', async () => {
    const c = counted(join(dir, 'bounded.db'))
    const cached = sqliteStatementCache(c.database, { max: 2 })
    const run = (text: string) => cached.prepare(text).all([])
    run('select 1')
    run('select 2')
    run('select 1') // 1 is now the most recent
    run('select 3') // drops 2
    expect(cached.size).toBe(2)
    run('select 1')
    run('select 2')
    expect(c.prepared.get('select 1')).toBe(1)
    expect(c.prepared.get('select 2')).toBe(2)
    expect(() => sqliteStatementCache(c.database, { max: 0 })).toThrow()
    cached.close()
  })

  it('a statement still iterating is never handed out again; streams keep working', async () => {
    const c = counted(join(dir, 'stream.db'))
    const cached = sqliteStatementCache(c.database)
    const db = new Kysely<{ t: { n: number } }>({ dialect: new SqliteDialect({ database: cached }) })
    await sql`create table t (n integer)`.execute(db)
    await sql`insert into t (n) values (1), (2), (3), (4), (5)`.execute(db)
    const text = 'select n from t order by n'
    // Directly: an open iterator keeps its statement busy; the same SQL gets a second statement.
    const outer = cached.prepare(text).iterate([])
    expect(outer.next().value).toEqual({ n: 1 })
    expect(cached.prepare(text).all([])).toHaveLength(5)
    const inner = [...cached.prepare(text).iterate([])].map((r) => (r as { n: number }).n)
    expect(inner).toEqual([1, 2, 3, 4, 5])
    expect([...outer].map((r) => (r as { n: number }).n)).toEqual([2, 3, 4, 5])
    // Through Kysely: a stream left early, then the same query streamed and executed again.
    const query = db.selectFrom('t').select('n').orderBy('n')
    for await (const row of query.stream()) {
      expect(row.n).toBe(1)
      break
    }
    const all: number[] = []
    for await (const row of query.stream()) all.push(row.n)
    expect(all).toEqual([1, 2, 3, 4, 5])
    expect((await query.execute()).map((r) => r.n)).toEqual([1, 2, 3, 4, 5])
    expect(c.prepared.get(query.compile().sql)).toBe(1)
    await db.destroy()
  })
})

// The whole store over the cache: the contract and the shared conformance suite.
const file = join(mkdtempSync(join(tmpdir(), 'rc-stmt-store-')), 'rc.db')
let db: Kysely<RecoveryCodesDatabase>
beforeAll(async () => {
  const raw = new Database(file, { timeout: 10_000 })
  raw.pragma('journal_mode = WAL')
  db = new Kysely({ dialect: new SqliteDialect({ database: sqliteStatementCache(raw) }) })
  await migrateRecoveryCodes(db)
})
afterAll(async () => {
  await db?.destroy()
  rmSync(join(file, '..'), { recursive: true, force: true })
})
const reset = async () => {
  for (const t of ['rc_codes', 'rc_batches', 'rc_attempts', 'rc_audit_log', 'rc_email_log'] as const) {
    await db.deleteFrom(t).execute()
  }
}

storeContract('SQLite with sqliteStatementCache', async () => {
  await reset()
  return { store: kyselyStore(db), db }
})

runStoreConformance({
  name: 'kysely (SQLite, sqliteStatementCache)',
  setup: async () => {
    await reset()
    return kyselyStore(db)
  },
})
