/**
 * Acceptance 2 of the Operations issue: three app processes sharing PostgreSQL (store-kysely),
 * Redis (unstorage redis driver: cache and reveal slots) and pg-boss.
 * - a daily purge schedule fires once per tick, not three times;
 * - an invalidation through one instance is honoured by the others at once;
 * - the limiter budget is shared (5 wrong guesses over 3 instances lock the account for all).
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { PURGE_JOB } from '@recovery-codes/core'
import { migrateRecoveryCodes } from '@recovery-codes/store-kysely'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { createStorage } from 'unstorage'
import redisDriver from 'unstorage/drivers/redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PgBossQueue, pgBossQueue, SCHEDULE_QUEUE_PREFIX } from '../src/index.ts'
import {
  createSchema,
  dropSchemas,
  PG_URL,
  REDIS_URL,
  requireServers,
  shouldRun,
  sleep,
  uniqueSchema,
  until,
  withClient,
} from './env.ts'

const APP = fileURLToPath(new URL('./fixtures/app.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

interface App {
  name: string
  child: ChildProcess
  purged: { instance: string; at: number }[]
  call<T = any>(op: string, args: unknown): Promise<T>
}

function startApp(name: string, config: Record<string, string>, purged: App['purged']): Promise<App> {
  const child = fork(APP, [JSON.stringify({ ...config, instance: name })], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  let seq = 0
  const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not up within 30 s`)), 30_000)
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was up`)))
    child.on('message', (m: any) => {
      if (m.type === 'up') {
        clearTimeout(timer)
        resolve(app)
      } else if (m.type === 'purged') purged.push({ instance: m.instance, at: m.at })
      else if (m.type === 'reply') {
        const p = pending.get(m.id)
        pending.delete(m.id)
        if (m.ok) p?.resolve(m.value)
        else p?.reject(new Error(m.error))
      }
    })
    const app: App = {
      name,
      child,
      purged,
      call(op, args) {
        const id = ++seq
        return new Promise((res, rej) => {
          pending.set(id, { resolve: res, reject: rej })
          child.send({ id, op, args })
        })
      },
    }
  })
}

async function stopApps(apps: App[]): Promise<void> {
  await Promise.all(
    apps.map(
      (a) =>
        new Promise<void>((resolve) => {
          if (a.child.exitCode !== null || a.child.signalCode !== null) return resolve()
          a.child.once('exit', () => resolve())
          a.child.send({ type: 'exit' })
          setTimeout(() => a.child.kill('SIGKILL'), 10_000).unref()
        }),
    ),
  )
}

describe.runIf(shouldRun({ redis: true }))('three processes sharing PostgreSQL, Redis and pg-boss', () => {
  const storeSchema = uniqueSchema('rc_mp_store')
  const bossSchema = uniqueSchema('rc_mp_boss')
  const redisBase = `rc-test-${crypto.randomUUID()}`
  const purged: App['purged'] = []
  let apps: App[] = []
  let db: Kysely<any>
  let admin: PgBossQueue | undefined
  let started = false

  beforeAll(async () => {
    requireServers({ redis: true })
    started = true
    await createSchema(storeSchema)
    db = new Kysely<any>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: PG_URL, max: 2, options: `-c search_path=${storeSchema}` }),
      }),
    })
    await migrateRecoveryCodes(db)
    const config = { pgUrl: PG_URL, storeSchema, bossSchema, redisUrl: REDIS_URL, redisBase }
    // The first instance installs pg-boss's schema; the other two then start side by side.
    apps = [await startApp('A', config, purged)]
    apps.push(...(await Promise.all([startApp('B', config, purged), startApp('C', config, purged)])))
  }, 90_000)

  afterAll(async () => {
    await stopApps(apps)
    await admin?.stop()
    await db?.destroy()
    if (!started) return
    const redis = createStorage({ driver: redisDriver({ url: REDIS_URL, base: redisBase }) })
    await redis.clear()
    await redis.dispose()
    await dropSchemas(storeSchema, bossSchema)
  }, 60_000)

  it('an invalidation (and a delete) through one instance is honoured by the others at once', async () => {
    const [A, B, C] = apps as [App, App, App]
    const gen = await A.call('generate', { userId: 'inv-user' })
    expect(gen.ok).toBe(true)
    // Warm B's and C's view through the shared cache.
    expect((await B.call('status', { userId: 'inv-user' })).remaining).toBe(10)
    expect((await C.call('status', { userId: 'inv-user' })).remaining).toBe(10)
    expect((await C.call('history', { userId: 'inv-user' })).items[0].unused).toBe(10)
    // The reveal slot lives in Redis: another instance can open it, once.
    expect((await B.call('viewCodes', { userId: 'inv-user', reveal: gen.reveal })).codes).toEqual(gen.codes)
    await expect(C.call('viewCodes', { userId: 'inv-user', reveal: gen.reveal })).rejects.toThrow(
      'ALREADY_DONE',
    )

    expect(await A.call('invalidateCode', { userId: 'inv-user', code: gen.codes[0] })).toMatchObject({
      ok: true,
    })
    expect(await B.call('redeem', { userId: 'inv-user', code: gen.codes[0] })).toMatchObject({ ok: false })
    expect((await C.call('status', { userId: 'inv-user' })).remaining).toBe(9)
    expect((await C.call('history', { userId: 'inv-user' })).items[0].invalidated).toBe(1)
    expect((await B.call('status', { userId: 'inv-user' })).remaining).toBe(9)

    await C.call('deleteBatch', { userId: 'inv-user' })
    expect(await A.call('redeem', { userId: 'inv-user', code: gen.codes[1] })).toMatchObject({ ok: false })
    expect(await B.call('status', { userId: 'inv-user' })).toMatchObject({ active: null, remaining: 0 })
  })

  it('the limiter budget is shared: 5 wrong guesses over 3 instances lock the account everywhere', async () => {
    const [A, B, C] = apps as [App, App, App]
    const wrong = 'AAAAA-AAAAA-AAAAA-AAAAA-AAAAA'
    // Control: 4 wrong guesses spread over the instances do not lock; a right code still works.
    const control = await A.call('generate', { userId: 'lim-control' })
    for (const [app, n] of [
      [A, 2],
      [B, 1],
      [C, 1],
    ] as const)
      for (let i = 0; i < n; i++)
        expect(
          await app.call('redeem', { userId: 'lim-control', code: wrong, clientKey: app.name }),
        ).toMatchObject({
          ok: false,
        })
    expect(await B.call('redeem', { userId: 'lim-control', code: control.codes[0] })).toMatchObject({
      ok: true,
    })

    const gen = await A.call('generate', { userId: 'lim-user' })
    const results = []
    for (const [app, n] of [
      [A, 2],
      [B, 2],
      [C, 1],
    ] as const)
      for (let i = 0; i < n; i++)
        results.push(
          await app.call('redeem', { userId: 'lim-user', code: wrong, clientKey: `ip-${app.name}` }),
        )
    expect(results.every((r) => r.ok === false)).toBe(true)
    expect(results.at(-1).retryAfterMs).toBeGreaterThan(0) // the 5th guess, on C, locked the account
    for (const app of [A, B, C]) {
      const r = await app.call('redeem', {
        userId: 'lim-user',
        code: gen.codes[0],
        clientKey: `ip-${app.name}`,
      })
      expect(r, app.name).toMatchObject({ ok: false })
      expect(r.retryAfterMs, app.name).toBeGreaterThan(0)
    }
  })

  it('a daily purge schedule fires once per tick across the three instances', async () => {
    // A real daily cron whose tick is the current minute (UTC): pg-boss sends a tick while it is
    // less than 60 s old, so we watch the whole window. Too late in the minute: use the next one.
    if (new Date().getUTCSeconds() > 50) await sleep(61_000 - (Date.now() % 60_000))
    const tick = Math.floor(Date.now() / 60_000) * 60_000
    const t = new Date(tick)
    const daily = `${t.getUTCMinutes()} ${t.getUTCHours()} * * *`
    admin = pgBossQueue({
      connectionString: PG_URL,
      schema: bossSchema,
      cron: { daily },
      bossOptions: { max: 2 },
    })
    const schedule = await admin.addSchedule({
      name: 'daily-purge',
      job: 'purge',
      frequency: 'daily',
      options: { retentionDays: 30, chunkSize: 100, maxDeletionsPerRun: null },
    })
    expect(schedule).toEqual({
      name: 'daily-purge',
      job: 'purge',
      frequency: 'daily',
      options: { retentionDays: 30, chunkSize: 100, maxDeletionsPerRun: null },
      cron: daily,
    })
    await until(() => purged.length > 0, 20_000, 'the scheduled purge')
    // Watch the rest of the tick's window (pg-boss would resend within it) plus slack.
    await sleep(Math.max(0, tick + 62_000 - Date.now()))

    expect(purged, JSON.stringify(purged)).toHaveLength(1)
    const audit = await db
      .selectFrom('rc_audit_log')
      .select(['event', 'outcome'])
      .where('event', '=', 'purge.run')
      .execute()
    expect(audit).toEqual([{ event: 'purge.run', outcome: 'success' }])
    const runs = await withClient((c) =>
      c.query<{ state: string; data: any }>(
        `select state, data from ${bossSchema}.job where name = $1 union all select state, data from ${bossSchema}.archive where name = $1`,
        [`${SCHEDULE_QUEUE_PREFIX}daily-purge`],
      ),
    )
    expect(runs.rows.map((r) => r.state)).toEqual(['completed'])
    // The options travel in the job data (ids and numbers only).
    expect(runs.rows[0]!.data).toMatchObject({ job: 'purge', options: { retentionDays: 30, chunkSize: 100 } })
    expect(PURGE_JOB).toBe('recovery-codes.purge')
  }, 150_000)
})
