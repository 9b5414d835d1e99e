/**
 * Acceptance 1 of the Operations issue: the codes email goes through pg-boss and a real SMTP
 * server on loopback, arrives once to the stored address, and no pg-boss table ever holds a code
 * or the pepper.
 */
import { createRecoveryCodes, normalize, PURGE_JOB, type RecoveryCodes } from '@recovery-codes/core'
import { nodemailerMailer } from '@recovery-codes/mailer'
import { memoryStore } from '@recovery-codes/store-memory'
import { startSmtp, TEST_PEPPER, type TestSmtp } from '@recovery-codes/testing'
import { simpleParser } from 'mailparser'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PgBossQueue, pgBossQueue } from '../src/index.ts'
import {
  dropSchemas,
  dumpSchema,
  PG_URL,
  requireServers,
  shouldRun,
  sleep,
  uniqueSchema,
  until,
  withClient,
} from './env.ts'

const STORED = 'stored.address@example.test'

describe.runIf(shouldRun())('codes email through pg-boss', () => {
  const schema = uniqueSchema('rc_pgboss_mail')
  let smtp: TestSmtp
  let queue: PgBossQueue
  let rc: RecoveryCodes
  let mailer: ReturnType<typeof nodemailerMailer>
  let started = false
  let rejectNext = 0

  beforeAll(async () => {
    requireServers()
    started = true
    smtp = await startSmtp({
      // A temporary SMTP failure for the retry test.
      onRcptTo: () => {
        if (rejectNext === 0) return null
        rejectNext--
        return 'temporary failure'
      },
    })
    mailer = nodemailerMailer(smtp.url, { from: 'no-reply@example.test' })
    queue = pgBossQueue({
      connectionString: PG_URL,
      schema,
      retryDelay: 1,
      bossOptions: { pollingIntervalSeconds: 0.5, max: 3 },
    })
    rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: TEST_PEPPER }],
      store: memoryStore(),
      mailer,
      queue,
      email: { enabled: true, from: 'no-reply@example.test' },
      siteName: 'Example',
      resolveEmail: async (userId) => (userId.startsWith('user-') ? STORED : null),
    })
    await queue.start()
  })

  afterAll(async () => {
    await queue?.stop()
    mailer?.close()
    await smtp?.close()
    if (started) await dropSchemas(schema)
  })

  it('arrives once, to the stored address, with the exact codes; no table holds a code or the pepper', async () => {
    const batch = await rc.generate({ userId: 'user-1' })
    if (!batch.ok) throw new Error('generate failed')
    expect(await rc.emailCodes({ userId: 'user-1', reveal: batch.reveal })).toEqual({
      sentTo: STORED,
      queued: true,
    })
    const [mail] = await smtp.waitFor(1, 20_000)
    await until(async () => (await queue.stats()).completed >= 1, 10_000, 'the job to complete')
    await sleep(1500)
    expect(smtp.received).toHaveLength(1)
    expect(mail!.to).toEqual([STORED])
    const lines = ((await simpleParser(mail!.raw)).text ?? '').split(/\r?\n/)
    for (const code of batch.codes) expect(lines).toContain(code)
    expect(await queue.stats()).toMatchObject({ queued: 0, active: 0, failed: 0, completed: 1 })

    const dump = await dumpSchema(schema)
    for (const t of ['job', 'archive', 'queue', 'schedule', 'subscription', 'version'])
      expect(dump.tables).toContain(t)
    expect(dump.tables.some((t) => /^j[0-9a-f]{56}$/.test(t))).toBe(true) // the queue partitions
    const text = Object.values(dump.rows).flat().join('\n')
    const lower = text.toLowerCase()
    // The scan does see the job: its payload carries the batch id (a reference, not content).
    expect(text).toContain(batch.batchId)
    const jobRows = dump.rows.job!.filter((r) => r.includes(batch.batchId))
    expect(jobRows).toHaveLength(1)
    for (const code of batch.codes) {
      expect(lower).not.toContain(code.toLowerCase())
      const canonical = normalize(code, rc.config.format)
      expect(canonical).toBeTruthy()
      expect(lower).not.toContain(canonical!.toLowerCase())
    }
    const pepperBytes = Buffer.from(TEST_PEPPER, 'base64')
    expect(text).not.toContain(TEST_PEPPER)
    expect(lower).not.toContain(pepperBytes.toString('hex'))
    expect(text).not.toContain(pepperBytes.toString('base64url'))
  })

  it('a failed send retries with backoff and still arrives exactly once', async () => {
    smtp.received.length = 0
    rejectNext = 1
    const batch = await rc.generate({ userId: 'user-2' })
    if (!batch.ok) throw new Error('generate failed')
    const before = Date.now()
    await rc.emailCodes({ userId: 'user-2', reveal: batch.reveal })
    const [mail] = await smtp.waitFor(1, 30_000)
    expect(Date.now() - before).toBeGreaterThanOrEqual(500) // the retry waited (retryDelay 1 s, backoff)
    await sleep(2000)
    expect(smtp.received).toHaveLength(1)
    expect(mail!.to).toEqual([STORED])
    expect(rejectNext).toBe(0)
    expect(await queue.stats()).toMatchObject({ queued: 0, active: 0, failed: 0, completed: 2 })
    const job = await withClient((c) =>
      c.query<{ retry_count: number; retry_backoff: boolean; state: string }>(
        `select retry_count, retry_backoff, state from ${schema}.job where data->>'batchId' = $1`,
        [batch.batchId],
      ),
    )
    expect(job.rows).toEqual([{ retry_count: 1, retry_backoff: true, state: 'completed' }])
  })

  it('job names map to pg-boss queues as they are (dots allowed in pg-boss 10)', async () => {
    const dump = await dumpSchema(schema)
    const names = dump.rows.queue!.map((r) => r.slice(1, r.indexOf(',')))
    expect(names).toEqual(
      expect.arrayContaining(['recovery-codes.email-codes', PURGE_JOB, 'recovery-codes.purge-audit']),
    )
  })
})
