/**
 * "Dependable under faults" on a real PostgreSQL: backends killed under the pool (idle and under
 * load) must not kill the process, and a statement that cannot finish by its deadline is cancelled
 * by the server (`STORE_TIMEOUT`), committing nothing after the caller gave up. After every
 * scenario both sweeps run over every user it touched, through the port (`checkStoreInvariants`)
 * and in SQL over the rows (`checkSqlInvariants`): one active batch per user, no batch with missing
 * codes, used codes = `login.success` rows, every batch with its `batch.generated` row.
 */
import {
  createRecoveryCodes,
  isRecoveryCodesError,
  type RecoveryCodes,
  type RecoveryCodesError,
} from '@recovery-codes/core'
import {
  checkStoreInvariants,
  createCaptureLogger,
  createManualClock,
  expectInvariantReport,
  formatViolation,
  TEST_PEPPER,
} from '@recovery-codes/testing'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { migrateRecoveryCodes } from '../src/migrations.ts'
import { createPgPool } from '../src/pool.ts'
import { kyselyStore } from '../src/store.ts'
import { type Backend, isCI, PG_URL, pgUnavailable, sqliteBackend } from './backends.ts'
import { checkSqlInvariants } from './invariants.ts'

const RUN = crypto.randomUUID().replaceAll('-', '').slice(0, 12)
/** Generated from hex digits here, never from input. */
const SCHEMA = `rc_faults_${RUN}`
const DEADLINE_MS = 300
/** Scheduling and round-trip allowance on top of the deadline for "rejects in time". */
const SLACK_MS = 1_500

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL, application_name: `rc_faults_admin_${RUN}` })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

/** Terminates every backend whose application_name is `app` (ours only); returns how many. */
const terminate = (app: string) =>
  admin(async (c) => {
    const r = await c.query<{ n: number }>(
      'select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where application_name = $1',
      [app],
    )
    return r.rows[0]!.n
  })

async function until(what: string, ok: () => boolean, timeoutMs = 5_000): Promise<void> {
  const t0 = performance.now()
  while (!ok()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const DAY_MS = 86_400_000

/** Rolls a self-test transaction back after its check. */
class Rollback extends Error {}

/**
 * The SQL sweep must be able to fail: on a clean service-written state (no violation), each rule is
 * broken in its own transaction, checked inside it, and rolled back. `schema` qualifies the tables.
 */
async function sqlSweepSelfTest(db: Kysely<any>, schema?: string) {
  const clock = createManualClock()
  const rc = createRecoveryCodes({
    peppers: [{ id: 'k1', secret: TEST_PEPPER }],
    store: kyselyStore(db),
    clock,
    activation: 'immediate',
  })
  const users = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7'].map((u) => `${u}_${crypto.randomUUID()}`)
  const batchOf: Record<string, string> = {}
  for (const userId of users) {
    const g = await rc.generate({ userId, count: 3 })
    if (!g.ok) throw new Error('generate refused')
    batchOf[userId] = g.batchId
    expect(await rc.redeem({ userId, code: g.codes[0]! })).toMatchObject({ ok: true, remaining: 2 })
  }
  const [b1, b2, b3, b4, b5, b6, b7] = users as [string, string, string, string, string, string, string]
  clock.advance(DAY_MS)
  const second = await rc.generate({ userId: b7, count: 3 })
  if (!second.ok) throw new Error('generate refused')
  const clean = await checkSqlInvariants(db, { schema, userIds: users })
  expectInvariantReport(clean, 'self-test, clean')
  expect(clean.checked).toEqual({
    users: 7,
    batches: 8,
    usedCodes: 7,
    redeemAuditRows: 7,
    generatedAuditRows: 8,
  })
  const t = (d: Kysely<any>) => (schema === undefined ? d : d.withSchema(schema))

  /** `rules` as `[rule, user, batch]`, from a sweep inside a transaction that `breakIt` changed. */
  const broken = async (userId: string, breakIt: (trx: Kysely<any>) => Promise<void>) => {
    let found: unknown[] = []
    await db
      .transaction()
      .execute(async (trx) => {
        await breakIt(trx)
        const report = await checkSqlInvariants(trx, { schema, userIds: [userId] })
        found = report.violations.map((v) => [v.rule, v.userId, v.batchId])
        expect(JSON.stringify(report)).not.toMatch(/[0-9a-f]{64}/)
        throw new Rollback()
      })
      .catch((e: unknown) => {
        if (!(e instanceof Rollback)) throw e
      })
    return found
  }
  const activeCode = (trx: Kysely<any>, userId: string) =>
    t(trx)
      .selectFrom('rc_codes')
      .select('id')
      .where('user_id', '=', userId)
      .where('state', '=', 'active')
      .orderBy('id')
      .executeTakeFirstOrThrow()

  // A code row lost: the counters still balance, the rows do not.
  expect(
    await broken(b1, async (trx) => {
      const { id } = await activeCode(trx, b1)
      await t(trx).deleteFrom('rc_codes').where('id', '=', id).execute()
    }),
  ).toEqual([['code-rows-match-counters', b1, batchOf[b1]]])
  // The batch committed without its batch.generated row.
  expect(
    await broken(b2, (trx) =>
      t(trx)
        .deleteFrom('rc_audit_log')
        .where('user_id', '=', b2)
        .where('event', '=', 'batch.generated')
        .execute()
        .then(() => {}),
    ),
  ).toEqual([['batch-generated-audited', b2, batchOf[b2]]])
  // A code used without an audit row (the batch's use count is derived from its rows, so it is the
  // audit that disagrees).
  expect(
    await broken(b3, async (trx) => {
      const { id } = await activeCode(trx, b3)
      await t(trx).updateTable('rc_codes').set({ state: 'used' }).where('id', '=', id).execute()
    }),
  ).toEqual([
    ['used-matches-redeem-audit', b3, null],
    ['used-rows-match-redeem-audit', b3, null],
  ])
  // A consume whose login.success row is missing.
  expect(
    await broken(b4, (trx) =>
      t(trx)
        .deleteFrom('rc_audit_log')
        .where('user_id', '=', b4)
        .where('event', '=', 'login.success')
        .execute()
        .then(() => {}),
    ),
  ).toEqual([
    ['used-matches-redeem-audit', b4, null],
    ['used-rows-match-redeem-audit', b4, null],
  ])
  // Counters that add up to more than `issued`.
  expect(
    await broken(b5, (trx) =>
      t(trx)
        .updateTable('rc_batches')
        .set((e) => ({ deleted: e('deleted', '+', 3) }))
        .where('user_id', '=', b5)
        .execute()
        .then(() => {}),
    ),
  ).toEqual([
    ['batch-counts-balance', b5, batchOf[b5]],
    ['code-rows-match-counters', b5, batchOf[b5]],
  ])
  // A batch of zero codes (with its audit row): only the nonzero rule.
  expect(
    await broken(b6, async (trx) => {
      const row = await t(trx)
        .selectFrom('rc_batches')
        .selectAll()
        .where('user_id', '=', b6)
        .executeTakeFirstOrThrow()
      const id = `empty_${crypto.randomUUID()}`
      await t(trx)
        .insertInto('rc_batches')
        .values({ ...row, id, status: 'superseded', ended_at: row.created_at, issued: 0, purged_used: 0 })
        .execute()
      const audit = await t(trx)
        .selectFrom('rc_audit_log')
        .selectAll()
        .where('user_id', '=', b6)
        .where('event', '=', 'batch.generated')
        .executeTakeFirstOrThrow()
      await t(trx)
        .insertInto('rc_audit_log')
        .values({ ...audit, id: `a_${id}`, batch_id: id })
        .execute()
    }),
  ).toEqual([['batch-issued-nonzero', b6, expect.stringMatching(/^empty_/)]])
  // Two active batches (past the partial unique index, dropped inside the transaction).
  expect(
    await broken(b7, async (trx) => {
      await (schema === undefined ? trx.schema : trx.schema.withSchema(schema))
        .dropIndex('rc_batches_one_active')
        .execute()
      await t(trx)
        .updateTable('rc_batches')
        .set({ status: 'active', ended_at: null })
        .where('id', '=', batchOf[b7]!)
        .execute()
    }),
  ).toEqual([['one-active-batch', b7, null]])
  // Every breakage was rolled back.
  expectInvariantReport(
    await checkSqlInvariants(db, { schema, userIds: users }),
    'self-test, after rollbacks',
  )
}

describe('checkSqlInvariants can fail: SQLite', () => {
  let backend: Backend
  beforeAll(async () => {
    backend = await sqliteBackend()
  })
  afterAll(async () => {
    await backend?.close()
  })
  it('reports exactly the broken rule, for each rule', async () => {
    await sqlSweepSelfTest(backend.db)
  })
})

if (pgUnavailable !== null) {
  describe('PostgreSQL faults', () => {
    it.runIf(isCI)(`requires PostgreSQL at ${PG_URL} under CI=true`, () => {
      throw new Error(`PostgreSQL unreachable under CI=true: ${pgUnavailable}`)
    })
    it.skipIf(isCI)(`SKIPPED: PostgreSQL at ${PG_URL} unreachable (${pgUnavailable})`, () => {})
  })
} else {
  const uncaught: unknown[] = []
  const onUncaught = (e: unknown) => uncaught.push(e)
  const opened: Kysely<any>[] = []
  /** Users the current scenario touched (every generate of `roundTrip` and each test's own). */
  let touched: string[] = []
  /** A plain pool on the schema (no deadline, no kills) the sweeps read through. */
  let sweeper: Kysely<any>

  function open(app: string, options: { max?: number; deadlineMs?: number; serverDeadline?: false } = {}) {
    const logger = createCaptureLogger()
    const pool = createPgPool(pg.Pool, {
      connectionString: PG_URL,
      max: options.max ?? 4,
      application_name: app,
      options: `-c search_path=${SCHEMA}`,
      logger,
      ...(options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs }),
      // 0 = not sent at connect, so only the client's query_timeout is left.
      ...(options.serverDeadline === false
        ? { statement_timeout: 0, lock_timeout: 0, idle_in_transaction_session_timeout: 0 }
        : {}),
    })
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
    opened.push(db)
    const clock = createManualClock()
    const rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: TEST_PEPPER }],
      store: kyselyStore(db),
      clock,
      activation: 'immediate',
    })
    return { pool, db, rc, clock, logger }
  }

  /** A plain connection (no deadline) to hold row locks with. */
  async function openLocker() {
    const locker = new pg.Client({
      connectionString: PG_URL,
      application_name: `rc_faults_locker_${RUN}`,
      options: `-c search_path=${SCHEMA}`,
    })
    await locker.connect()
    return locker
  }

  /** One generate and one redeem of its first code, both succeeding. */
  async function roundTrip(rc: RecoveryCodes, userId = `u_${crypto.randomUUID()}`) {
    touched.push(userId)
    const g = await rc.generate({ userId, count: 3 })
    if (!g.ok) throw new Error('unexpected cooldown')
    expect(await rc.redeem({ userId, code: g.codes[0]! })).toMatchObject({ ok: true, remaining: 2 })
    return g
  }

  /** Log lines carry the error name and SQLSTATE, never the connection string or its password. */
  function expectCleanLogs(logger: ReturnType<typeof createCaptureLogger>) {
    const text = logger.text()
    expect(text).not.toContain(PG_URL)
    const password = new URL(PG_URL).password
    if (password) expect(text).not.toContain(password)
    for (const line of logger.lines) expect(Object.keys(line.fields ?? {}).sort()).toEqual(['code', 'error'])
  }

  /**
   * Both sweeps over every user the scenario touched; each logs its figures and violations before
   * either assertion runs, so a failure shows both.
   */
  async function sweep(label: string) {
    const userIds = [...new Set(touched)]
    const port = await checkStoreInvariants(kyselyStore(sweeper), { userIds })
    const rows = await checkSqlInvariants(sweeper, { schema: SCHEMA, userIds })
    for (const [via, report] of [
      ['port', port],
      ['sql', rows],
    ] as const) {
      const byRule: Record<string, number> = {}
      for (const v of report.violations) byRule[v.rule] = (byRule[v.rule] ?? 0) + 1
      console.info(
        `[faults] invariants (${via}) ${label}: ${JSON.stringify(report.checked)}, ${report.violations.length} violations ${JSON.stringify(byRule)}`,
      )
      for (const v of report.violations.slice(0, 5)) console.info(`[faults]   ${formatViolation(v)}`)
    }
    expectInvariantReport(port, `port, ${label}`)
    expectInvariantReport(rows, `sql, ${label}`)
    expect(port.checked.users).toBe(userIds.length)
    expect(rows.checked.batches).toBe(port.checked.batches)
  }

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught)
    process.on('unhandledRejection', onUncaught)
    await admin((c) => c.query(`create schema ${SCHEMA}`))
    const db = new Kysely<any>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: PG_URL, max: 1, options: `-c search_path=${SCHEMA}` }),
      }),
    })
    try {
      await migrateRecoveryCodes(db)
    } finally {
      await db.destroy()
    }
    sweeper = new Kysely<any>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: PG_URL, max: 2, options: `-c search_path=${SCHEMA}` }),
      }),
    })
    opened.push(sweeper)
  })

  beforeEach(() => {
    touched = []
  })

  afterEach(() => {
    expect(uncaught.splice(0), 'uncaught exceptions / unhandled rejections').toEqual([])
  })

  afterAll(async () => {
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onUncaught)
    for (const db of opened) await db.destroy().catch(() => {})
    await admin((c) => c.query(`drop schema if exists ${SCHEMA} cascade`))
  })

  describe('PostgreSQL faults (createPgPool)', () => {
    it('survives pg_terminate_backend of every idle connection; the next calls succeed', async () => {
      const app = `rc_faults_idle_${RUN}`
      const { pool, db, rc, logger } = open(app, { max: 4 })
      // Four backends, all idle in the pool afterwards.
      await Promise.all(Array.from({ length: 4 }, () => sql`select pg_sleep(0.05)`.execute(db)))
      expect(pool.idleCount).toBe(4)
      expect(await terminate(app)).toBe(4)
      await until('the pool to drop its dead clients', () => pool.totalCount === 0)
      expect(uncaught).toEqual([])
      expect(logger.lines.filter((l) => l.fields?.code === '57P01').length).toBeGreaterThanOrEqual(4)
      expectCleanLogs(logger)
      await roundTrip(rc)
      await roundTrip(rc)
      await sweep('after idle backends were terminated')
    })

    it('survives pg_terminate_backend under 8 concurrent generate/redeem workers; later calls succeed', async () => {
      const app = `rc_faults_load_${RUN}`
      const { rc, logger } = open(app, { max: 8 })
      let stop = false
      let ok = 0
      const failures = new Map<string, number>()
      const worker = async () => {
        while (!stop) {
          try {
            await roundTrip(rc)
            ok++
          } catch (e) {
            // A call whose connection was killed under it fails closed; nothing else may fail.
            const code = isRecoveryCodesError(e) ? e.code : `non-RecoveryCodesError ${String(e)}`
            failures.set(code, (failures.get(code) ?? 0) + 1)
          }
        }
      }
      const workers = Array.from({ length: 8 }, worker)
      await until('workers to get going', () => ok >= 16, 10_000)
      const before = ok
      let killed = 0
      for (let i = 0; i < 3; i++) {
        killed += await terminate(app)
        await new Promise((r) => setTimeout(r, 150))
      }
      await until('workers to recover', () => ok >= before + 16, 10_000)
      stop = true
      await Promise.all(workers)
      console.info(
        `[faults] under load: ${killed} backends terminated, ${ok} round trips ok, failures ${JSON.stringify(Object.fromEntries(failures))}`,
      )
      expect(killed).toBeGreaterThanOrEqual(8)
      expect([...failures.keys()].filter((c) => c !== 'STORE_UNAVAILABLE')).toEqual([])
      expect(uncaught).toEqual([])
      expectCleanLogs(logger)
      await roundTrip(rc)
      await sweep(`after ${killed} backends were terminated under 8 workers`)
    })

    it('a row lock held past the deadline: redeem and generate reject with STORE_TIMEOUT and commit nothing', async () => {
      const app = `rc_faults_lock_${RUN}`
      const { db, rc, clock } = open(app, { deadlineMs: DEADLINE_MS })
      const userId = `u_${crypto.randomUUID()}`
      touched.push(userId)
      const g = await rc.generate({ userId, count: 3 })
      if (!g.ok) throw new Error('unexpected cooldown')
      clock.advance(24 * 3_600_000) // past the regeneration cooldown
      const batches = async () =>
        Number(
          (
            await db
              .selectFrom('rc_batches')
              .select((e) => e.fn.countAll().as('n'))
              .where('user_id', '=', userId)
              .executeTakeFirstOrThrow()
          ).n,
        )
      expect(await batches()).toBe(1)

      // Redeem consumes a code row and generate ends the active batch's code rows: hold them all.
      const locker = await openLocker()
      const timed = async (what: string, fn: () => Promise<unknown>) => {
        const t0 = performance.now()
        const error = await fn().then(
          () => new Error(`${what} resolved`),
          (e: unknown) => e,
        )
        const ms = Math.round(performance.now() - t0)
        const cause = (error as { cause?: { code?: string } }).cause
        console.info(
          `[faults] ${what} rejected after ${ms} ms (deadline ${DEADLINE_MS} ms, SQLSTATE ${cause?.code})`,
        )
        expect(isRecoveryCodesError(error, 'STORE_TIMEOUT'), String(error)).toBe(true)
        const e = error as RecoveryCodesError
        expect(e.status).toBe(503)
        expect(['55P03', '57014']).toContain((e.cause as { code?: string }).code)
        expect(e.message).not.toContain(PG_URL)
        expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS - 50)
        expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS)
        return e
      }
      try {
        await locker.query('begin')
        const locked = await locker.query('select id from rc_codes where batch_id = $1 for update', [
          g.batchId,
        ])
        expect(locked.rowCount).toBe(3)
        await timed('rc.redeem', () => rc.redeem({ userId, code: g.codes[0]! }))
        await timed('rc.generate', () => rc.generate({ userId, count: 3 }))
        const direct = await timed('store.endBatch', () =>
          kyselyStore(db).endBatch({ userId, batchId: g.batchId, to: 'disabled', now: clock.now() }),
        )
        expect(direct.message).toMatch(/^store-kysely: endBatch timed out \(SQLSTATE (55P03|57014)\)$/)
      } finally {
        await locker.query('rollback')
        await locker.end()
      }
      // Nothing of the cancelled statements committed: no new batch, the code still unused.
      expect(await batches()).toBe(1)
      const code = await db
        .selectFrom('rc_codes')
        .select(['state', 'used_at'])
        .where('batch_id', '=', g.batchId)
        .where('state', '=', 'active')
        .execute()
      expect(code).toHaveLength(3)
      expect(await kyselyStore(db).getActiveBatch(userId)).toMatchObject({
        id: g.batchId,
        unused: 3,
        used: 0,
      })
      expect(await rc.redeem({ userId, code: g.codes[0]! })).toMatchObject({ ok: true, remaining: 2 })
      await sweep('after a row lock past the deadline')
    })

    it('why the deadline belongs in the database: a client-only timeout gives up, the statement commits later', async () => {
      const app = `rc_faults_client_${RUN}`
      const { db, rc } = open(app, { deadlineMs: DEADLINE_MS, serverDeadline: false })
      const userId = `u_${crypto.randomUUID()}`
      touched.push(userId)
      const g = await rc.generate({ userId, count: 3 })
      if (!g.ok) throw new Error('unexpected cooldown')
      const locker = await openLocker()
      let error: unknown
      let ms: number
      try {
        await locker.query('begin')
        await locker.query('select id from rc_codes where batch_id = $1 for update', [g.batchId])
        const t0 = performance.now()
        // One autocommit statement (`rc_redeem`), so nothing is left for a ROLLBACK to undo.
        error = await rc.redeem({ userId, code: g.codes[0]! }).then(
          () => new Error('redeem resolved'),
          (e: unknown) => e,
        )
        ms = Math.round(performance.now() - t0)
      } finally {
        await locker.query('rollback')
        await locker.end()
      }
      console.info(`[faults] client-only query_timeout: rc.redeem rejected after ${ms} ms`)
      // pg's "Query read timeout" is a STORE_TIMEOUT too ...
      expect(isRecoveryCodesError(error, 'STORE_TIMEOUT'), String(error)).toBe(true)
      expect((error as Error).message).toBe('store-kysely: redeemCode timed out (client query_timeout)')
      expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS + 1_000 - 50)
      expect(ms).toBeLessThan(DEADLINE_MS + 1_000 + SLACK_MS)
      // ... but the server kept the statement, and it consumed the code once the lock was gone.
      const used = async () =>
        (
          await db
            .selectFrom('rc_codes')
            .select((e) => e.fn.countAll().as('n'))
            .where('batch_id', '=', g.batchId)
            .where('state', '=', 'used')
            .executeTakeFirstOrThrow()
        ).n
      const t0 = performance.now()
      while (Number(await used()) === 0 && performance.now() - t0 < 5_000) {
        await new Promise((r) => setTimeout(r, 20))
      }
      expect(Number(await used())).toBe(1)
      // The statement the client gave up on committed its consume and its audit row together.
      await sweep('after a client-only timeout')
    })

    it('checkSqlInvariants can fail: reports exactly the broken rule, for each rule (PostgreSQL)', async () => {
      await sqlSweepSelfTest(sweeper, SCHEMA)
    })
  })
}
