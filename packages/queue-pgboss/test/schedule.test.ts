import { type Job, PURGE_AUDIT_JOB, PURGE_JOB } from '@recovery-codes/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FREQUENCY_CRON, type PgBossQueue, pgBossQueue } from '../src/index.ts'
import { dropSchemas, PG_URL, requireServers, shouldRun, uniqueSchema, until } from './env.ts'

describe('FREQUENCY_CRON', () => {
  it('maps every recurring frequency of the reference app', () => {
    expect(FREQUENCY_CRON).toEqual({
      hourly: '0 * * * *',
      daily: '0 3 * * *',
      weekly: '0 3 * * 1',
      monthly: '0 3 1 * *',
      quarterly: '0 3 1 1,4,7,10 *',
      yearly: '0 3 1 1 *',
    })
    expect(Object.isFrozen(FREQUENCY_CRON)).toBe(true)
  })

  it('refuses bad options at construction', () => {
    expect(() => pgBossQueue({ schema: 'x; drop', connectionString: PG_URL })).toThrow(/schema/)
    expect(() => pgBossQueue({})).toThrow(/connectionString/)
    expect(() => pgBossQueue({ connectionString: PG_URL, retryLimit: -1 })).toThrow(/retryLimit/)
  })
})

describe.runIf(shouldRun())('schedules', () => {
  const schema = uniqueSchema('rc_pgboss_sched')
  const runs: { name: string; payload: Job['payload'] }[] = []
  let queue: PgBossQueue
  let started = false

  beforeAll(async () => {
    requireServers()
    started = true
    queue = pgBossQueue({
      connectionString: PG_URL,
      schema,
      cron: { weekly: '15 4 * * 0' },
      scheduleRefreshSeconds: 1,
      bossOptions: { pollingIntervalSeconds: 0.5, max: 3 },
    })
    queue.handle(PURGE_JOB, async (payload) => {
      runs.push({ name: PURGE_JOB, payload })
    })
    queue.handle(PURGE_AUDIT_JOB, async (payload) => {
      runs.push({ name: PURGE_AUDIT_JOB, payload })
    })
    await queue.start()
  })

  afterAll(async () => {
    await queue?.stop()
    if (started) await dropSchemas(schema)
  })

  it('adds, lists (by name, with the cron of each frequency), replaces and removes', async () => {
    expect(await queue.listSchedules()).toEqual([])
    const frequencies = ['hourly', 'daily', 'weekly', 'monthly', 'quarterly', 'yearly'] as const
    for (const frequency of frequencies)
      await queue.addSchedule({ name: `s-${frequency}`, job: 'purge-audit', frequency })
    const later = Date.now() + 3_600_000
    await queue.addSchedule({
      name: 'a-once',
      job: 'purge',
      frequency: 'once',
      at: later,
      options: { chunkSize: 10, deleteEmptyBatches: true },
    })
    const list = await queue.listSchedules()
    expect(list.map((s) => s.name)).toEqual(['a-once', ...frequencies.map((f) => `s-${f}`).sort()])
    expect(list[0]).toEqual({
      name: 'a-once',
      job: 'purge',
      frequency: 'once',
      at: later,
      options: { chunkSize: 10, deleteEmptyBatches: true },
      cron: null,
    })
    const cronOf = Object.fromEntries(list.map((s) => [s.name, s.cron]))
    expect(cronOf['s-daily']).toBe('0 3 * * *')
    expect(cronOf['s-weekly']).toBe('15 4 * * 0') // the `cron` option overrides the table
    expect(cronOf['s-quarterly']).toBe('0 3 1 1,4,7,10 *')

    // Replacing keeps one schedule of the name; a 'once' replaced by a recurring one leaves no run behind.
    await queue.addSchedule({
      name: 'a-once',
      job: 'purge',
      frequency: 'hourly',
      options: { retentionDays: 7 },
    })
    const replaced = (await queue.listSchedules()).filter((s) => s.name === 'a-once')
    expect(replaced).toEqual([
      { name: 'a-once', job: 'purge', frequency: 'hourly', options: { retentionDays: 7 }, cron: '0 * * * *' },
    ])
    expect((await queue.stats()).queued).toBe(0)

    expect(await queue.removeSchedule('a-once')).toBe(true)
    expect(await queue.removeSchedule('a-once')).toBe(false)
    expect(await queue.removeSchedule('../not a name')).toBe(false)
    for (const frequency of frequencies) expect(await queue.removeSchedule(`s-${frequency}`)).toBe(true)
    expect(await queue.listSchedules()).toEqual([])
  })

  it("a 'once' schedule runs its job at `at`, with its options as payload, then is gone", async () => {
    runs.length = 0
    await queue.addSchedule({
      name: 'soon',
      job: 'purge',
      frequency: 'once',
      at: Date.now() + 1500,
      options: { retentionDays: 0, chunkSize: 25, maxDeletionsPerRun: null, reportToAdmin: false },
    })
    expect(runs).toEqual([])
    await until(() => runs.length > 0, 15_000, 'the once run')
    expect(runs).toEqual([
      {
        name: PURGE_JOB,
        payload: {
          schedule: 'soon',
          retentionDays: 0,
          chunkSize: 25,
          maxDeletionsPerRun: null,
          reportToAdmin: false,
        },
      },
    ])
    await until(async () => (await queue.listSchedules()).length === 0, 5000, 'the once schedule to be spent')
  })

  it('validates input with INVALID_INPUT and stores nothing', async () => {
    const bad = [
      { name: 'bad name', job: 'purge', frequency: 'daily' },
      { name: '', job: 'purge', frequency: 'daily' },
      { name: 'x'.repeat(64), job: 'purge', frequency: 'daily' },
      { name: 'ok', job: 'drop-tables', frequency: 'daily' },
      { name: 'ok', job: 'purge', frequency: 'fortnightly' },
      { name: 'ok', job: 'purge', frequency: 'once' },
      { name: 'ok', job: 'purge', frequency: 'once', at: Number.NaN },
      { name: 'ok', job: 'purge', frequency: 'daily', options: { retentionDays: -1 } },
      { name: 'ok', job: 'purge', frequency: 'daily', options: { chunkSize: 0 } },
      { name: 'ok', job: 'purge', frequency: 'daily', options: { chunkSize: '50' } },
      { name: 'ok', job: 'purge', frequency: 'daily', options: { reportToAdmin: 'yes' } },
      { name: 'ok', job: 'purge', frequency: 'daily', options: { __proto__: { x: 1 }, nope: 1 } },
    ]
    for (const input of bad)
      await expect(queue.addSchedule(input as never), JSON.stringify(input)).rejects.toMatchObject({
        code: 'INVALID_INPUT',
      })
    expect(await queue.listSchedules()).toEqual([])
  })
})
