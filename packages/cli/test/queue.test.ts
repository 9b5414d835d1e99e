import { afterAll, describe, expect, it } from 'vitest'
import { cleanEnv, isCI, PG_URL, pgQuery, probePostgres, randomSchema, runCli } from './helpers.ts'

const pgUnavailable = await probePostgres()
const pgIt = pgUnavailable === null || isCI ? it : it.skip

/** Real PostgreSQL + `@recovery-codes/queue-pgboss` in its own pg-boss schema, through the real CLI. */
describe('schedule and flush on pg-boss (real CLI)', () => {
  const bossSchema = randomSchema('rc_cli_boss')
  const env = () => cleanEnv({ DATABASE_URL: PG_URL })
  afterAll(async () => {
    if (pgUnavailable === null) await pgQuery(`drop schema if exists ${bossSchema} cascade`)
  })

  const queueStats = async () => {
    const specifier = '@recovery-codes/queue-pgboss'
    const { pgBossQueue } = await import(specifier)
    const q = pgBossQueue({ connectionString: PG_URL, schema: bossSchema })
    await q.start()
    try {
      return await q.stats()
    } finally {
      await q.stop()
    }
  }

  pgIt(
    'flush removes exactly the chosen kinds; schedules round-trip through add/list/remove',
    async () => {
      expect(pgUnavailable, `PostgreSQL must be reachable under CI: ${pgUnavailable}`).toBeNull()
      const s = ['--queue-schema', bossSchema]
      for (const [name, job, every] of [
        ['nightly', 'purge', 'daily'],
        ['audit', 'purge-audit', 'weekly'],
        ['tmp', 'purge', 'hourly'],
      ]) {
        const r = await runCli(
          ['schedule', 'add', name!, '--job', job!, '--every', every!, '--retention-days', '7', ...s],
          { env: env() },
        )
        expect(r.code, r.stderr).toBe(0)
      }
      const once = await runCli(
        [
          'schedule',
          'add',
          'one-off',
          '--job',
          'purge',
          '--every',
          'once',
          '--at',
          '2099-01-01T00:00:00Z',
          '--json',
          ...s,
        ],
        { env: env() },
      )
      expect(once.code, once.stderr).toBe(0)
      expect(JSON.parse(once.stdout)).toMatchObject({ name: 'one-off', frequency: 'once', cron: null })
      const removed = await runCli(['schedule', 'remove', 'tmp', ...s], { env: env() })
      expect(removed.code, removed.stderr).toBe(0)
      const list = await runCli(['schedule', 'list', '--json', ...s], { env: env() })
      expect((JSON.parse(list.stdout) as { name: string }[]).map((x) => x.name).sort()).toEqual([
        'audit',
        'nightly',
        'one-off',
      ])

      // Two failed jobs: enqueue through the queue package, then mark them failed in pg-boss's table.
      const specifier = '@recovery-codes/queue-pgboss'
      const { pgBossQueue } = await import(specifier)
      const q = pgBossQueue({ connectionString: PG_URL, schema: bossSchema })
      await q.start()
      await q.enqueue({ name: 'recovery-codes.purge', payload: {} })
      await q.enqueue({ name: 'recovery-codes.purge-audit', payload: {} })
      await q.stop()
      await pgQuery(
        `update ${bossSchema}.job set state = 'failed' where state = 'created' and name not like '%schedule%'`,
      )
      const before = await queueStats()
      expect(before).toMatchObject({ failed: 2, schedules: 3 })

      const scheduled = await runCli(['flush', '--scheduled', '--yes', ...s], { env: env() })
      expect(scheduled.code, scheduled.stderr).toBe(0)
      expect(scheduled.stdout).toBe('flushed: 0 failed jobs, 3 schedules\n')
      expect(await queueStats()).toMatchObject({ failed: 2, schedules: 0 })

      await runCli(['schedule', 'add', 'again', '--job', 'purge', '--every', 'daily', ...s], { env: env() })
      const failed = await runCli(['flush', '--failed', '--yes', ...s], { env: env() })
      expect(failed.stdout).toBe('flushed: 2 failed jobs, 0 schedules\n')
      expect(await queueStats()).toMatchObject({ failed: 0, schedules: 1 })

      const all = await runCli(['flush', '--all', '--yes', ...s], { env: env() })
      expect(all.stdout).toBe('flushed: 0 failed jobs, 1 schedules\n')
      expect(await queueStats()).toMatchObject({ failed: 0, schedules: 0 })
    },
    120_000,
  )
})
