import { execFileSync } from 'node:child_process'
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { confirm, ensureFlushConfirmed, flushQuestion } from '../src/commands/flush.ts'
import { run } from '../src/main.ts'
import type { QueueClient, QueueFactory, Schedule, ScheduleInput } from '../src/queue.ts'
import { CLI_SHELL, cleanEnv, fakeIO, runCli } from './helpers.ts'

function streams(answer: string | null, tty = true) {
  const stdin = Object.assign(new PassThrough(), { isTTY: tty })
  if (answer === null) stdin.end()
  else stdin.end(answer)
  return fakeIO({ DATABASE_URL: 'postgres://127.0.0.1:1/none' }, stdin)
}

/** An in-memory stand-in for `pgBossQueue` that records every call. */
function fakeQueue() {
  const calls: string[] = []
  const schedules = new Map<string, Schedule>()
  let failed = 3
  const queue: QueueClient = {
    start: async () => void calls.push('start'),
    stop: async () => void calls.push('stop'),
    addSchedule: async (input: ScheduleInput) => {
      calls.push(`add ${JSON.stringify(input)}`)
      const s = { ...input, cron: input.frequency === 'once' ? null : '0 3 * * *' }
      schedules.set(input.name, s)
      return s
    },
    listSchedules: async () => [...schedules.values()],
    removeSchedule: async (name) => schedules.delete(name),
    flush: async (kind) => {
      calls.push(`flush ${kind}`)
      const r = {
        failed: kind === 'scheduled' ? 0 : failed,
        scheduled: kind === 'failed' ? 0 : schedules.size,
      }
      if (kind !== 'scheduled') failed = 0
      if (kind !== 'failed') schedules.clear()
      return r
    },
    stats: async () => ({ queued: 0, active: 0, failed, completed: 0, schedules: schedules.size }),
  }
  const factory: QueueFactory = async (o) => {
    calls.push(`factory ${o.schema ?? '-'}`)
    return queue
  }
  return { queue, calls, factory, schedules }
}

describe('confirm', () => {
  it('asks on stderr; only y or yes (any case) is a yes; end of input is a no', async () => {
    for (const [answer, expected] of [
      ['y\n', true],
      ['YES\n', true],
      [' yes \n', true],
      ['n\n', false],
      ['\n', false],
      ['yep\n', false],
      [null, false],
    ] as const) {
      const { io, out } = streams(answer)
      expect(await confirm(io, flushQuestion('failed')), String(answer)).toBe(expected)
      expect(out.stderr).toBe('Delete all FAILED jobs from the queue? This cannot be undone. [y/N] ')
    }
  })

  it('refuses without a terminal unless --yes', async () => {
    const { io } = streams('y\n', false)
    await expect(ensureFlushConfirmed(io, 'all', false)).rejects.toMatchObject({
      exitCode: 1,
      message: expect.stringMatching(/stdin is not a terminal; pass --yes/),
    })
    await expect(ensureFlushConfirmed(io, 'all', true)).resolves.toBeUndefined()
  })
})

describe('flush wiring (fake queue)', () => {
  it('declined: nothing flushed, no queue started, exit 1', async () => {
    const { io, out } = streams('n\n')
    const q = fakeQueue()
    const code = await run(['flush', '--all'], { io, queueFactory: q.factory })
    expect(code).toBe(1)
    expect(out.stderr).toContain('Delete all FAILED jobs and all SCHEDULES from the queue?')
    expect(out.stderr).toContain('aborted: nothing was flushed')
    expect(q.calls).toEqual([])
  })

  it('confirmed: flushes exactly the chosen kind', async () => {
    for (const kind of ['failed', 'scheduled', 'all'] as const) {
      const { io, out } = streams('y\n')
      const q = fakeQueue()
      await q.queue.addSchedule({ name: 's1', job: 'purge', frequency: 'daily' })
      q.calls.length = 0
      const code = await run(['flush', `--${kind}`, '--queue-schema', 'rc_boss_x'], {
        io,
        queueFactory: q.factory,
      })
      expect(code, out.stderr).toBe(0)
      expect(q.calls).toEqual(['factory rc_boss_x', 'start', `flush ${kind}`, 'stop'])
      expect(out.stdout).toBe(
        `flushed: ${kind === 'scheduled' ? 0 : 3} failed jobs, ${kind === 'failed' ? 0 : 1} schedules\n`,
      )
    }
  })

  it('--yes skips the question, even without a terminal', async () => {
    const { io, out } = streams(null, false)
    const q = fakeQueue()
    expect(await run(['flush', '--failed', '--yes'], { io, queueFactory: q.factory })).toBe(0)
    expect(out.stderr).toBe('')
    expect(q.calls).toContain('flush failed')
  })

  it('schedule add/list/remove map flags to the queue API', async () => {
    const q = fakeQueue()
    const { io, out } = streams(null)
    const code = await run(
      [
        'schedule',
        'add',
        'nightly',
        '--job',
        'purge',
        '--every',
        'daily',
        '--at',
        '2030-01-01T03:00:00Z',
        '--retention-days',
        '30',
        '--chunk-size',
        '500',
        '--max-deletions',
        'unlimited',
        '--delete-empty-batches',
        '--report-to-admin',
      ],
      { io, queueFactory: q.factory },
    )
    expect(code, out.stderr).toBe(0)
    expect(q.schedules.get('nightly')).toEqual({
      name: 'nightly',
      job: 'purge',
      frequency: 'daily',
      at: Date.UTC(2030, 0, 1, 3),
      options: {
        retentionDays: 30,
        chunkSize: 500,
        maxDeletionsPerRun: null,
        deleteEmptyBatches: true,
        reportToAdmin: true,
      },
      cron: '0 3 * * *',
    })
    expect(out.stdout).toBe('schedule nightly: purge daily (cron 0 3 * * *)\n')
    out.stdout = ''
    expect(await run(['schedule', 'list'], { io, queueFactory: q.factory })).toBe(0)
    expect(out.stdout).toMatch(
      /^NAME +JOB +EVERY +CRON +AT +OPTIONS\nnightly +purge +daily +0 3 \* \* \* +2030-01-01T03:00:00.000Z +retention=30d chunk=500 max=unlimited empty-batches report\n$/,
    )
    expect(await run(['schedule', 'remove', 'nightly'], { io, queueFactory: q.factory })).toBe(0)
    expect(await run(['schedule', 'remove', 'nightly'], { io, queueFactory: q.factory })).toBe(1)
    expect(out.stderr).toContain('error: no schedule named nightly')
  })
})

describe('flush (real CLI)', () => {
  it('without --yes and without a terminal: refuses with exit 1 before touching the queue', async () => {
    // An unreachable server: reaching it would give a connection error instead.
    const r = await runCli(['flush', '--all', '--database', 'postgres://127.0.0.1:1/none'], {
      env: cleanEnv(),
      input: 'y\n',
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(
      'error: refusing to flush without confirmation: stdin is not a terminal; pass --yes to confirm\n',
    )
  })

  it('on a terminal it asks, and "n" aborts', () => {
    const cmd = `${CLI_SHELL} flush --failed --database postgres://127.0.0.1:1/none`
    let out = ''
    let status: number | null = 0
    try {
      out = execFileSync('script', ['-qec', cmd, '/dev/null'], {
        env: cleanEnv(),
        input: 'n\n',
        encoding: 'utf8',
        timeout: 30_000,
      })
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { status: number | null; stdout: string }
      if (err.code === 'ENOENT') return // no `script` (util-linux) here
      status = err.status
      out = err.stdout
    }
    expect(out).toContain('Delete all FAILED jobs from the queue? This cannot be undone. [y/N]')
    expect(out).toContain('aborted: nothing was flushed')
    expect(status).toBe(1)
  })
})
