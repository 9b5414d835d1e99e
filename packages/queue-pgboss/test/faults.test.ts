/**
 * "Dependable under faults", queue side: PostgreSQL killing the queue's connections must not end
 * the process, and the queue must work again afterwards.
 *
 * - For each way of connecting (`connectionString`: pg-boss's own pool; `pool`: a `createPgPool`
 *   pool), every backend of the queue's unique `application_name` is terminated
 *   (`pg_terminate_backend`) while idle and, five times, while 8 senders enqueue: no uncaught
 *   exception or unhandled rejection (process spies; vitest fails on them too), every failed send
 *   a typed `STORE_UNAVAILABLE`, the errors logged by name and SQLSTATE only, and a job sent
 *   afterwards is handled.
 * - Control, in a child process: a bare `PgBoss` without an `'error'` listener dies of the same
 *   termination, so the scenario above does exercise the crash.
 * - A start while PostgreSQL is unreachable (a TCP proxy that drops connections) fails with
 *   `STORE_UNAVAILABLE`; once it is reachable the next call starts the queue for real (pg-boss 10
 *   would otherwise keep a half-started boss), and `stop()` closes every connection.
 */
import { spawn } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { isRecoveryCodesError } from '@recovery-codes/core'
import { createPgPool } from '@recovery-codes/store-kysely'
import { createCaptureLogger } from '@recovery-codes/testing'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type PgBossQueue, type PgBossQueueOptions, pgBossQueue } from '../src/index.ts'
import {
  dropSchemas,
  PG_URL,
  requireServers,
  shouldRun,
  sleep,
  uniqueSchema,
  until,
  withClient,
} from './env.ts'

const JOB = 'recovery-codes.test-faults'
const LOAD = 'recovery-codes.test-faults-load' // no handler: its jobs stay queued
const PKG = fileURLToPath(new URL('..', import.meta.url))
const hex = () => crypto.randomUUID().replaceAll('-', '').slice(0, 12)

/** Terminates every backend of `applicationName`; returns how many. */
async function terminate(applicationName: string): Promise<number> {
  return withClient(async (c) => {
    const r = await c.query<{ ok: boolean }>(
      `select pg_terminate_backend(pid) as ok from pg_stat_activity
        where application_name = $1 and pid <> pg_backend_pid()`,
      [applicationName],
    )
    return r.rows.filter((x) => x.ok).length
  })
}

async function backends(applicationName: string): Promise<number> {
  return withClient(async (c) => {
    const r = await c.query<{ n: string }>(
      'select count(*) as n from pg_stat_activity where application_name = $1',
      [applicationName],
    )
    return Number(r.rows[0]?.n ?? 0)
  })
}

/** Uncaught exceptions and unhandled rejections seen while a test runs. */
function processSpy() {
  const seen: unknown[] = []
  const onError = (e: unknown) => seen.push(e)
  process.on('uncaughtException', onError)
  process.on('unhandledRejection', onError)
  return {
    seen,
    restore() {
      process.off('uncaughtException', onError)
      process.off('unhandledRejection', onError)
    },
  }
}

describe.runIf(shouldRun())('queue under PostgreSQL faults', () => {
  const schemas: string[] = []
  let started = false
  let spy: ReturnType<typeof processSpy>
  const cleanups: (() => Promise<unknown>)[] = []

  beforeAll(() => {
    requireServers()
    started = true
  })
  beforeEach(() => {
    spy = processSpy()
  })
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {})
    spy.restore()
  })
  afterAll(async () => {
    if (started) await dropSchemas(...schemas)
  })

  const variants: {
    name: string
    options: (app: string, logger: ReturnType<typeof createCaptureLogger>) => PgBossQueueOptions
  }[] = [
    {
      name: 'connectionString (pg-boss pool)',
      options: (app) => ({ connectionString: PG_URL, bossOptions: { application_name: app, max: 4 } }),
    },
    {
      name: 'pool from createPgPool',
      options: (app, logger) => {
        const pool = createPgPool(pg.Pool, {
          connectionString: PG_URL,
          application_name: app,
          max: 4,
          deadlineMs: 30_000,
          logger,
        })
        cleanups.push(() => pool.end())
        return { pool }
      },
    },
  ]

  for (const variant of variants) {
    it(`survives terminated backends, idle and under load: ${variant.name}`, async () => {
      const schema = uniqueSchema('rc_pgboss_faults')
      schemas.push(schema)
      const app = `rc-queue-faults-${hex()}`
      const logger = createCaptureLogger()
      const handled = new Map<string, number>()
      const connection = variant.options(app, logger)
      const queue: PgBossQueue = pgBossQueue({
        ...connection,
        schema,
        retryLimit: 2,
        retryDelay: 1,
        retryBackoff: false,
        logger,
        bossOptions: { ...connection.bossOptions, pollingIntervalSeconds: 0.5 },
      })
      cleanups.push(() => queue.stop())
      queue.handle(JOB, async (payload) => {
        handled.set(String(payload.id), Date.now())
      })
      await queue.start()

      const roundTrip = async (id: string) => {
        const t0 = Date.now()
        await queue.enqueue({ name: JOB, payload: { id } })
        await until(() => handled.has(id), 20_000, `job ${id}`)
        return (handled.get(id) as number) - t0
      }
      const before = await roundTrip('before')

      // Idle: every connection of the queue is terminated between polls.
      await until(async () => (await backends(app)) > 0, 10_000, 'a pooled connection')
      const idleKilled = await terminate(app)
      expect(idleKilled).toBeGreaterThan(0)
      await sleep(1_500) // polls run into the dead connections
      const afterIdle = await roundTrip('after-idle')

      // Under load: 8 senders for 2.5 s while every backend is terminated five times. They send to
      // a queue nobody works (one worker handles one job per poll: a backlog would only slow the
      // check below down); the jobs are counted in the table instead.
      const sent: string[] = []
      const failures: string[] = []
      const okMs: number[] = []
      const failMs: number[] = []
      let loadKilled = 0
      const end = Date.now() + 2_500
      const senders = Array.from({ length: 8 }, async (_, w) => {
        for (let n = 0; Date.now() < end; n++) {
          const id = `load-${w}-${n}`
          const t0 = Date.now()
          try {
            await queue.enqueue({ name: LOAD, payload: { id } })
            sent.push(id)
            okMs.push(Date.now() - t0)
          } catch (e) {
            failures.push(isRecoveryCodesError(e) ? e.code : `untyped ${String(e)}`)
            failMs.push(Date.now() - t0)
          }
        }
      })
      const killer = (async () => {
        for (let round = 0; round < 5; round++) {
          await sleep(400)
          loadKilled += await terminate(app)
        }
      })()
      await Promise.all([...senders, killer])

      const afterLoad = await roundTrip('after-load')
      // Every send that succeeded was committed; a failed one may have committed too (its answer
      // was lost with the connection), so the table holds between the two counts.
      const stored = await withClient(async (c) => {
        const r = await c.query<{ id: string }>(
          `select data->>'id' as id from ${schema}.job where name = $1`,
          [LOAD],
        )
        return new Set(r.rows.map((x) => x.id))
      })
      expect(sent.filter((id) => !stored.has(id))).toEqual([])
      expect(stored.size).toBeLessThanOrEqual(sent.length + failures.length)

      const logged = logger.lines.filter(
        (l) => l.message.includes('PostgreSQL') || l.message.includes('pg-boss'),
      )
      console.info(
        `[queue faults] ${variant.name}: round trip before ${before} ms, after idle kill ${afterIdle} ms, ` +
          `after load ${afterLoad} ms; backends killed idle ${idleKilled}, under load ${loadKilled}; ` +
          `sends ok ${sent.length} (max ${Math.max(0, ...okMs)} ms), failed ${failures.length} ` +
          `(${[...new Set(failures)].join(', ') || 'none'}, max ${Math.max(0, ...failMs)} ms), stored ${stored.size}; ` +
          `error lines ${logged.length} (codes ${[...new Set(logged.map((l) => l.fields?.code))].join(', ')})`,
      )

      expect(spy.seen).toEqual([])
      expect(loadKilled).toBeGreaterThan(0)
      // The 8 senders' first sends create LOAD concurrently: they share one create (concurrent
      // create_queue calls deadlock in PostgreSQL and blocked every send until a kill).
      expect(sent.length).toBeGreaterThan(100)
      for (const f of failures) expect(f).toBe('STORE_UNAVAILABLE')
      // Errors were logged by name and SQLSTATE only: no message, payload or connection string.
      expect(logged.length).toBeGreaterThan(0)
      expect(logged.some((l) => l.fields?.code === '57P01')).toBe(true)
      for (const l of logged) {
        for (const key of Object.keys(l.fields ?? {})) expect(['error', 'code', 'queue']).toContain(key)
      }
      expect(logger.text()).not.toMatch(/load-\d|after-|terminating|postgres:\/\//)
    })
  }

  it('control: a bare PgBoss without an error listener dies of the same termination', async () => {
    const schema = uniqueSchema('rc_pgboss_bare')
    schemas.push(schema)
    const app = `rc-queue-bare-${hex()}`
    const script = `
      import PgBoss from 'pg-boss'
      const boss = new PgBoss({ connectionString: ${JSON.stringify(PG_URL)}, schema: ${JSON.stringify(schema)},
        application_name: ${JSON.stringify(app)}, max: 2, supervise: false, schedule: false })
      await boss.start()
      await boss.getQueues()
      console.log('up')
      setTimeout(() => { console.log('alive'); process.exit(0) }, 15000)
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: PKG,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    cleanups.push(async () => child.kill('SIGKILL'))
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      err += d
    })
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    await until(() => out.includes('up') || child.exitCode !== null, 20_000, 'the bare boss to start')
    expect(out).toContain('up')
    await until(async () => (await backends(app)) > 0, 10_000, 'its pooled connection')
    const killed = await terminate(app)
    const code = await Promise.race([exited, sleep(10_000).then(() => 'still running' as const)])
    console.info(`[queue faults] bare PgBoss: ${killed} backend(s) killed, exit code ${code}`)
    expect(code).not.toBe(0)
    expect(code).not.toBe('still running')
    expect(err).toMatch(/Unhandled 'error' event|terminating connection/)
  })

  it('a start while PostgreSQL is unreachable fails, and the next call starts it for real', async () => {
    const schema = uniqueSchema('rc_pgboss_down')
    schemas.push(schema)
    const app = `rc-queue-down-${hex()}`
    const target = new URL(PG_URL)
    let down = true
    const sockets = new Set<net.Socket>()
    const proxy = net.createServer((client) => {
      if (down) return client.destroy()
      const server = net.connect(Number(target.port || 5432), target.hostname)
      sockets.add(client).add(server)
      client.pipe(server).pipe(client)
      const close = () => {
        client.destroy()
        server.destroy()
      }
      client.on('error', close).on('close', close)
      server.on('error', close).on('close', close)
    })
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy()
          proxy.close(() => r())
        }),
    )
    const port = (proxy.address() as net.AddressInfo).port
    const url = new URL(PG_URL)
    url.host = `127.0.0.1:${port}`

    const logger = createCaptureLogger()
    const handled = new Set<string>()
    const queue = pgBossQueue({
      connectionString: url.toString(),
      schema,
      logger,
      bossOptions: { application_name: app, pollingIntervalSeconds: 0.5 },
    })
    cleanups.push(() => queue.stop())
    queue.handle(JOB, async (payload) => {
      handled.add(String(payload.id))
    })

    const t0 = Date.now()
    const failed = await queue.start().then(
      () => 'started',
      (e: unknown) => (isRecoveryCodesError(e) ? e.code : String(e)),
    )
    const failMs = Date.now() - t0
    expect(failed).toBe('STORE_UNAVAILABLE')

    down = false
    const t1 = Date.now()
    await queue.enqueue({ name: JOB, payload: { id: 'after-start' } })
    await until(() => handled.has('after-start'), 20_000, 'the job after the failed start')
    const recoverMs = Date.now() - t1
    expect(await backends(app)).toBeGreaterThan(0)

    // A boss that really started stops for real: every connection is closed.
    await queue.stop()
    await until(async () => (await backends(app)) === 0, 5_000, 'no connection left after stop()')
    console.info(
      `[queue faults] start while down: rejected in ${failMs} ms; after recovery a job was handled ${recoverMs} ms after enqueue; stop() left 0 connections`,
    )
    expect(spy.seen).toEqual([])
  })
})
