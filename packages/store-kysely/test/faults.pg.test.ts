/**
 * "Dependable under faults" on a real PostgreSQL: backends killed under the pool (idle and under
 * load) must not kill the process, and a statement that cannot finish by its deadline is cancelled
 * by the server (`STORE_TIMEOUT`), committing nothing after the caller gave up.
 */
import {
  createRecoveryCodes,
  isRecoveryCodesError,
  type RecoveryCodes,
  type RecoveryCodesError,
} from '@recovery-codes/core'
import { createCaptureLogger, createManualClock, TEST_PEPPER } from '@recovery-codes/testing'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { migrateRecoveryCodes } from '../src/migrations.ts'
import { createPgPool } from '../src/pool.ts'
import { kyselyStore } from '../src/store.ts'
import { isCI, PG_URL, pgUnavailable } from './backends.ts'

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
    })

    it('a row lock held past the deadline: redeem and generate reject with STORE_TIMEOUT and commit nothing', async () => {
      const app = `rc_faults_lock_${RUN}`
      const { db, rc, clock } = open(app, { deadlineMs: DEADLINE_MS })
      const userId = `u_${crypto.randomUUID()}`
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
    })

    it('why the deadline belongs in the database: a client-only timeout gives up, the statement commits later', async () => {
      const app = `rc_faults_client_${RUN}`
      const { db, rc } = open(app, { deadlineMs: DEADLINE_MS, serverDeadline: false })
      const userId = `u_${crypto.randomUUID()}`
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
    })
  })
}
