/**
 * "Dependable under faults": SQLite out of pages. A write that needs a page past `max_page_count`
 * fails with SQLITE_FULL, and SQLite may roll the whole transaction back by itself; the store must
 * still report that error (`STORE_UNAVAILABLE`, cause SQLITE_FULL), not the failed ROLLBACK after it
 * ("cannot rollback - no transaction is active"), leave nothing half-written, and work again on the
 * same instance once there is space.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type AuditRecord,
  createRecoveryCodes,
  isRecoveryCodesError,
  type RecoveryCodes,
  type RecoveryCodesError,
} from '@recovery-codes/core'
import { createManualClock, TEST_PEPPER } from '@recovery-codes/testing'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateRecoveryCodes } from '../src/migrations.ts'
import type { RecoveryCodesDatabase } from '../src/schema.ts'
import { kyselyStore } from '../src/store.ts'

const USER = 'u_disk_full'
const SEED_CODES = 10
const DAY_MS = 86_400_000
/** Bound of the fill loop (it stops at the first SQLITE_FULL, after a few hundred rows). */
const MAX_FILL_ROWS = 20_000

/** A 128-bit hex id whose first 48 bits are `at` (as the service's ids), so rows append in order. */
function timeId(at: number): string {
  const b = crypto.getRandomValues(new Uint8Array(16))
  let t = at
  for (let i = 5; i >= 0; i--) {
    b[i] = t % 256
    t = Math.floor(t / 256)
  }
  return Buffer.from(b).toString('hex')
}

/** Every `code` in `e` and its `cause` chain. */
function chainCodes(e: unknown): unknown[] {
  const out: unknown[] = []
  for (let x = e as { code?: unknown; cause?: unknown } | undefined; x; x = x.cause as typeof x) {
    out.push(x.code)
  }
  return out
}

/**
 * `e` is the store's `STORE_UNAVAILABLE` for SQLITE_FULL: the driver's error kept as `cause`, its
 * code named in the message, and no plaintext code anywhere outside the cause.
 */
function expectFull(e: unknown, op: string | RegExp, secrets: readonly string[]): void {
  expect(isRecoveryCodesError(e, 'STORE_UNAVAILABLE')).toBe(true)
  const err = e as RecoveryCodesError
  if (typeof op === 'string') expect(err.message).toBe(`store-kysely: ${op} failed (SQLITE_FULL)`)
  else expect(err.message).toMatch(op)
  expect(err.cause).toMatchObject({ code: 'SQLITE_FULL' })
  expect(chainCodes(e)).toContain('SQLITE_FULL')
  const { cause: _, ...own } = err
  const visible = JSON.stringify({ own, message: err.message, stack: err.stack, json: err.toJSON() })
  expect(visible).not.toMatch(/no transaction is active/)
  for (const s of secrets) {
    expect(visible).not.toContain(s)
    expect(visible).not.toContain(s.replaceAll('-', ''))
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: unknown) => e,
  )
}

// Both redeem paths: statements through Kysely, and one synchronous transaction on the handle.
describe.each([
  ['through Kysely', false],
  ['with sqliteDatabase', true],
])('SQLite disk full (SQLITE_FULL), %s', (_, sync) => {
  let dir: string
  let database: Database.Database
  let db: Kysely<RecoveryCodesDatabase>
  let store: ReturnType<typeof kyselyStore>
  let rc: RecoveryCodes
  const clock = createManualClock()
  let seedBatchId: string
  let seedCodes: string[]
  let defaultMaxPages: number
  /** The figures of the run, printed at the end. */
  const figures = {
    pageSize: 0,
    pagesBefore: 0,
    freePagesBefore: 0,
    maxPageCount: 0,
    fillBatches: 0,
    fillRows: 0,
    pagesAfter: 0,
  }

  const scalar = async (query: ReturnType<typeof sql<{ n: number }>>) =>
    Number((await query.execute(db)).rows[0]!.n)
  const counts = async () => ({
    batches: await scalar(sql<{ n: number }>`select count(*) as n from rc_batches`),
    codes: await scalar(sql<{ n: number }>`select count(*) as n from rc_codes`),
    audit: await scalar(sql<{ n: number }>`select count(*) as n from rc_audit_log`),
  })
  /** The seed batch is still the active one, all its codes unused. */
  async function expectSeedIntact(): Promise<void> {
    const active = await store.getActiveBatch(USER)
    expect(active).toMatchObject({ id: seedBatchId, status: 'active', unused: SEED_CODES, used: 0 })
    const states = await sql<{ state: string; n: number }>`
      select state, count(*) as n from rc_codes where batch_id = ${seedBatchId} group by state`.execute(db)
    expect(states.rows).toEqual([{ state: 'active', n: SEED_CODES }])
  }
  const loginAudit = (at: number, batchId: string): AuditRecord => ({
    id: timeId(at),
    at,
    event: 'login.success',
    userId: USER,
    batchId,
    identifierHash: null,
    clientHash: null,
    outcome: 'success',
    reason: null,
    data: null,
  })

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rc-disk-full-'))
    database = new Database(join(dir, 'rc.db'), { timeout: 10_000 })
    database.pragma('journal_mode = WAL')
    database.pragma('synchronous = NORMAL')
    db = new Kysely<RecoveryCodesDatabase>({ dialect: new SqliteDialect({ database }) })
    await migrateRecoveryCodes(db)
    store = kyselyStore(db, sync ? { sqliteDatabase: database } : {})
    rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: TEST_PEPPER }],
      store,
      clock,
      activation: 'immediate',
    })
    const seeded = await rc.generate({ userId: USER, count: SEED_CODES })
    if (!seeded.ok) throw new Error('seed generate refused')
    seedBatchId = seeded.batchId
    seedCodes = seeded.codes
    // Past the seed's regeneration cooldown, so the next generate reaches createBatch.
    clock.advance(DAY_MS)

    defaultMaxPages = Number(database.pragma('max_page_count', { simple: true }))
    figures.pageSize = Number(database.pragma('page_size', { simple: true }))
    figures.pagesBefore = Number(database.pragma('page_count', { simple: true }))
    figures.freePagesBefore = Number(database.pragma('freelist_count', { simple: true }))
    figures.maxPageCount = Number(
      database.pragma(`max_page_count = ${figures.pagesBefore + 1}`, { simple: true }),
    )
  })

  afterAll(async () => {
    console.info('[disk-full] figures', figures)
    await db?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('createBatch (store): batch after batch until the file is full; the first that finds no page rejects with SQLITE_FULL', async () => {
    expect(figures.maxPageCount).toBe(figures.pagesBefore + 1)
    // One-code batches of new users: the failing statement is a one-row insert, after which SQLite
    // rolls the whole transaction back itself (the store's ROLLBACK then finds none).
    const now = clock.now()
    let error: unknown
    let failedUser = ''
    let batches = 0
    for (; batches < MAX_FILL_ROWS; batches++) {
      failedUser = `u_fill_${String(batches).padStart(6, '0')}`
      const batch = { id: timeId(now), userId: failedUser, keyId: 'k1', createdAt: now, expiresAt: null }
      const codes = [{ id: timeId(now), digest: crypto.getRandomValues(new Uint8Array(32)) }]
      error = await store.createBatch(batch, codes).then(
        () => undefined,
        (e: unknown) => e,
      )
      if (error !== undefined) break
    }
    figures.fillBatches = batches
    expect(batches).toBeGreaterThan(0)
    expect(batches).toBeLessThan(MAX_FILL_ROWS)
    expectFull(error, 'createBatch', seedCodes)
    expect(await store.getActiveBatch(failedUser)).toBeNull()
    const orphans = await sql`select id from rc_codes where user_id = ${failedUser}`.execute(db)
    expect(orphans.rows).toEqual([])
    expect(await counts()).toMatchObject({ batches: batches + 1, codes: batches + SEED_CODES })
    await expectSeedIntact()
  })

  it('appendAudit: the row that needs a page past max_page_count rejects with SQLITE_FULL, writes nothing', async () => {
    // Audit rows shaped like a redeem's, at the millisecond before it: they fill the last page of
    // every rc_audit_log b-tree where the redeem's row would go, and then the page past the limit.
    const at = clock.now() - 1
    let error: unknown
    let record: AuditRecord | undefined
    let rows = 0
    for (; rows < MAX_FILL_ROWS; rows++) {
      record = loginAudit(at, seedBatchId)
      error = await store.appendAudit(record).then(
        () => undefined,
        (e: unknown) => e,
      )
      if (error !== undefined) break
    }
    figures.fillRows = rows
    expect(rows).toBeGreaterThan(0)
    expect(rows).toBeLessThan(MAX_FILL_ROWS)
    expectFull(error, 'appendAudit', seedCodes)
    const found = await sql`select id from rc_audit_log where id = ${record!.id}`.execute(db)
    expect(found.rows).toEqual([])
    expect(Number(database.pragma('page_count', { simple: true }))).toBeLessThanOrEqual(figures.maxPageCount)
    // Again: still full, still the real error.
    expectFull(await rejection(store.appendAudit(loginAudit(at, seedBatchId))), 'appendAudit', seedCodes)
  })

  it('generate (service): rejects with SQLITE_FULL; no new batch, the active batch and its codes untouched', async () => {
    const before = await counts()
    const e = await rejection(rc.generate({ userId: USER, count: 50 }))
    expectFull(e, 'createBatch', seedCodes)
    expect(await counts()).toEqual(before)
    await expectSeedIntact()
  })

  it('createBatch (store): 500 codes reject with SQLITE_FULL; nothing half-written', async () => {
    const before = await counts()
    const now = clock.now()
    const batchId = timeId(now)
    const codes = Array.from({ length: 500 }, () => ({
      id: timeId(now),
      digest: crypto.getRandomValues(new Uint8Array(32)),
    }))
    const e = await rejection(
      store.createBatch({ id: batchId, userId: USER, keyId: 'k1', createdAt: now, expiresAt: null }, codes),
    )
    expectFull(e, 'createBatch', seedCodes)
    expect(await counts()).toEqual(before)
    const row = await sql`select id from rc_batches where id = ${batchId}`.execute(db)
    expect(row.rows).toEqual([])
    await expectSeedIntact()
  })

  it('redeem (service): rejects with SQLITE_FULL; the code stays unused, no audit row', async () => {
    const before = await counts()
    const code = seedCodes[0]!
    const e = await rejection(rc.redeem({ userId: USER, code }))
    expectFull(e, 'redeemCode', seedCodes)
    expect(await counts()).toEqual(before)
    await expectSeedIntact()
    const attempts = await sql`select key, failures from rc_attempts where failures > 0`.execute(db)
    expect(attempts.rows).toEqual([])
  })

  it('the database file is intact: integrity_check is ok', () => {
    expect(database.pragma('integrity_check', { simple: true })).toBe('ok')
    expect(database.inTransaction).toBe(false)
  })

  it('once there is space again the same store generates and redeems', async () => {
    database.pragma(`max_page_count = ${defaultMaxPages}`)
    // The seed code still redeems: it was never consumed.
    expect(await rc.redeem({ userId: USER, code: seedCodes[0]! })).toMatchObject({
      ok: true,
      remaining: SEED_CODES - 1,
    })
    const g = await rc.generate({ userId: USER, count: 50 })
    if (!g.ok) throw new Error('generate refused')
    expect(await rc.redeem({ userId: USER, code: g.codes[0]! })).toMatchObject({ ok: true, remaining: 49 })
    await store.appendAudit(loginAudit(clock.now(), g.batchId))
    expect(await store.getActiveBatch(USER)).toMatchObject({ id: g.batchId, unused: 49, used: 1 })
    figures.pagesAfter = Number(database.pragma('page_count', { simple: true }))
    expect(database.pragma('integrity_check', { simple: true })).toBe('ok')
  })
})
