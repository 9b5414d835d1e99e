/** Acceptance 5 (queue side): `flush` removes exactly the chosen job kinds. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PgBossQueue, pgBossQueue } from '../src/index.ts'
import { dropSchemas, PG_URL, requireServers, shouldRun, uniqueSchema, until, withClient } from './env.ts'

const FAIL = 'recovery-codes.test-fail'
const OK = 'recovery-codes.test-ok'
const WAITING = 'recovery-codes.test-waiting' // no handler: its jobs stay queued
const FOREIGN = 'host-app.fail' // outside our namespace: never touched

describe.runIf(shouldRun())('flush and stats', () => {
  const schema = uniqueSchema('rc_pgboss_flush')
  let queue: PgBossQueue
  let started = false

  /** Every job row (live and archived) by queue and state. */
  async function rows(): Promise<Record<string, number>> {
    return withClient(async (c) => {
      const r = await c.query<{ name: string; state: string; n: string }>(
        `select name, state, count(*) as n from (select name, state from ${schema}.job union all select name, state from ${schema}.archive) j where name not like '\\_\\_pgboss%' group by name, state`,
      )
      return Object.fromEntries(r.rows.map((x) => [`${x.name}:${x.state}`, Number(x.n)]))
    })
  }

  async function settle(failed: number, completed: number): Promise<void> {
    await until(
      async () => {
        const s = await queue.stats()
        return s.failed === failed && s.completed === completed && s.active === 0
      },
      15_000,
      `${failed} failed and ${completed} completed`,
    )
  }

  beforeAll(async () => {
    requireServers()
    started = true
    queue = pgBossQueue({
      connectionString: PG_URL,
      schema,
      retryLimit: 0,
      bossOptions: { pollingIntervalSeconds: 0.5, max: 3 },
    })
    queue.handle(FAIL, async () => {
      throw new Error('boom')
    })
    queue.handle(FOREIGN, async () => {
      throw new Error('boom')
    })
    queue.handle(OK, async () => {})
    await queue.start()
  })

  afterAll(async () => {
    await queue?.stop()
    if (started) await dropSchemas(schema)
  })

  it('removes exactly failed jobs, exactly schedules, or both', async () => {
    for (let i = 0; i < 3; i++) await queue.enqueue({ name: FAIL, payload: { i } })
    for (let i = 0; i < 2; i++) await queue.enqueue({ name: OK, payload: { i } })
    for (let i = 0; i < 2; i++) await queue.enqueue({ name: WAITING, payload: { i } })
    await queue.enqueue({ name: FOREIGN, payload: { i: 0 } })
    await settle(3, 2)
    await until(async () => (await rows())[`${FOREIGN}:failed`] === 1, 10_000, 'the foreign failure')
    await queue.addSchedule({ name: 'nightly', job: 'purge', frequency: 'daily' })
    await queue.addSchedule({ name: 'weekly-audit', job: 'purge-audit', frequency: 'weekly' })
    await queue.addSchedule({ name: 'later', job: 'purge', frequency: 'once', at: Date.now() + 3_600_000 })

    const before = await queue.stats()
    // The pending 'once' run is a queued job too.
    expect(before).toEqual({ queued: 3, active: 0, failed: 3, completed: 2, schedules: 3 })
    const rowsBefore = await rows()

    expect(await queue.flush('failed')).toEqual({ failed: 3, scheduled: 0 })
    expect(await queue.stats()).toEqual({ ...before, failed: 0 })
    const { [`${FAIL}:failed`]: gone, ...kept } = rowsBefore
    expect(gone).toBe(3)
    expect(await rows()).toEqual(kept) // the foreign failure, the waiting and completed jobs stay

    for (let i = 0; i < 2; i++) await queue.enqueue({ name: FAIL, payload: { i } })
    await settle(2, 2)
    const mid = await queue.stats()
    expect(await queue.flush('scheduled')).toEqual({ failed: 0, scheduled: 3 })
    expect(await queue.listSchedules()).toEqual([])
    expect(await queue.stats()).toEqual({ ...mid, queued: mid.queued - 1, schedules: 0 })
    expect((await rows())[`${FAIL}:failed`]).toBe(2)

    await queue.addSchedule({ name: 'again', job: 'purge', frequency: 'hourly' })
    expect(await queue.flush('all')).toEqual({ failed: 2, scheduled: 1 })
    expect(await queue.stats()).toEqual({ queued: 2, active: 0, failed: 0, completed: 2, schedules: 0 })
    const after = await rows()
    expect(after[`${WAITING}:created`]).toBe(2)
    expect(after[`${OK}:completed`]).toBe(2)
    expect(after[`${FOREIGN}:failed`]).toBe(1)
    expect(await queue.flush('failed')).toEqual({ failed: 0, scheduled: 0 })
    await expect(queue.flush('everything' as never)).rejects.toMatchObject({ code: 'INVALID_INPUT' })
  })

  it('refuses payloads that are not flat JSON scalars', async () => {
    await expect(queue.enqueue({ name: OK, payload: { nested: { a: 1 } } as never })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    })
    await expect(queue.enqueue({ name: 'bad name!', payload: {} })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    })
  })
})
