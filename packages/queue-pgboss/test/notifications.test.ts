/**
 * Acceptance 3 of issue 16, end to end: every notification kind goes through pg-boss and a real
 * SMTP server on loopback, arrives once per event at the stored address, holds no code, and no
 * pg-boss row ever holds a code or a link token. The link taken from a received mail works once
 * and revokes; a replayed, forged or expired one is refused and changes nothing. A temporary SMTP
 * failure is retried and the notice still arrives exactly once.
 */
import { createRecoveryCodes, NOTIFY_JOB, normalize, type RecoveryCodes } from '@recovery-codes/core'
import { nodemailerMailer } from '@recovery-codes/mailer'
import { inspectMemoryStore, memoryStore } from '@recovery-codes/store-memory'
import {
  createManualClock,
  type ManualClock,
  type ReceivedMail,
  startSmtp,
  TEST_PEPPER,
  type TestSmtp,
} from '@recovery-codes/testing'
import { simpleParser } from 'mailparser'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
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
const LINK_BASE = 'https://example.test/repudiate'
const CONTACT = 'Questions? Write to security@example.test or call +1 555 0100.'
const TTL_S = 3600
const WRONG = '0000-0000-0000'
const KINDS = ['recovery-login', 'codes-generated', 'low-codes', 'exhausted', 'locked', 'disabled']

/** A received mail, parsed: its text, HTML, subject, recipient and link token. */
interface Parsed {
  to: string[]
  subject: string
  text: string
  html: string
  raw: string
  token: string
  kind: string
}

async function parse(mail: ReceivedMail): Promise<Parsed> {
  const m = await simpleParser(mail.raw)
  const text = m.text ?? ''
  const href = /https:\/\/example\.test\/repudiate\?token=\S+/.exec(text)?.[0]
  if (!href) throw new Error('no link in the mail')
  const url = new URL(href)
  expect(`${url.origin}${url.pathname}`).toBe(LINK_BASE)
  const token = url.searchParams.get('token')
  if (!token) throw new Error('no token in the link')
  const kind = JSON.parse(Buffer.from(token.split('.')[1]!, 'hex').toString('utf8')).k as string
  return {
    to: mail.to,
    subject: m.subject ?? '',
    text,
    html: typeof m.html === 'string' ? m.html : '',
    raw: mail.raw,
    token,
    kind,
  }
}

function countByKind(mails: readonly Parsed[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of mails) out[m.kind] = (out[m.kind] ?? 0) + 1
  return out
}

/** Every code as shown and canonical, lower case. */
function codeForms(rc: RecoveryCodes, codes: readonly string[]): string[] {
  const forms = new Set<string>()
  for (const code of codes) {
    const canonical = normalize(code, rc.config.format)
    if (!canonical) throw new Error('code does not normalise')
    forms.add(code.toLowerCase())
    forms.add(canonical.toLowerCase())
  }
  return [...forms]
}

describe.runIf(shouldRun())('security notifications through pg-boss and SMTP', () => {
  const schema = uniqueSchema('rc_pgboss_notify')
  const store = memoryStore()
  const onRepudiated = vi.fn(async (_userId: string) => {})
  let clock: ManualClock
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
    // The service's clock is manual (lockouts, cooldowns, link expiry); pg-boss keeps real time.
    clock = createManualClock()
    rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: TEST_PEPPER }],
      store,
      clock,
      mailer,
      queue,
      activation: 'immediate',
      siteName: 'Example',
      batchSize: 4,
      lowCodesThreshold: 2,
      maxLoginAttempts: 3,
      hardFailureCap: 3,
      resolveEmail: async (userId) => (userId.startsWith('user-') ? STORED : null),
      onRepudiated,
      notifications: { contact: CONTACT, linkBaseUrl: LINK_BASE, linkTtlSeconds: TTL_S },
    })
    await queue.start()
  })

  afterAll(async () => {
    await queue?.stop()
    mailer?.close()
    await smtp?.close()
    if (started) await dropSchemas(schema)
  })

  /** Waits for `n` more mails after `from`, then a settle period, and parses them. */
  async function mailsAfter(from: number, n: number): Promise<Parsed[]> {
    await smtp.waitFor(from + n, 60_000)
    await until(
      async () => (await queue.stats()).queued === 0 && (await queue.stats()).active === 0,
      20_000,
      'the queue to drain',
    )
    await sleep(1500)
    expect(smtp.received).toHaveLength(from + n)
    return Promise.all(smtp.received.slice(from).map(parse))
  }

  it('every kind arrives once per event at the stored address, with no code; no row holds a code or token', async () => {
    const codes: string[] = []
    const first = await rc.generate({ userId: 'user-1' })
    if (!first.ok) throw new Error('generate failed')
    codes.push(...first.codes)
    for (const code of first.codes) expect((await rc.redeem({ userId: 'user-1', code })).ok).toBe(true)
    clock.advance(2 * 3_600_000) // past the regeneration cooldown
    const second = await rc.generate({ userId: 'user-1' })
    if (!second.ok) throw new Error('second generate failed')
    codes.push(...second.codes)
    for (let i = 0; i < 3; i++) expect((await rc.redeem({ userId: 'user-1', code: WRONG })).ok).toBe(false)

    const mails = await mailsAfter(0, 11)
    expect(countByKind(mails)).toEqual({
      'codes-generated': 2,
      'recovery-login': 4,
      'low-codes': 2,
      exhausted: 1,
      locked: 1,
      disabled: 1,
    })
    expect(new Set(mails.map((m) => m.kind))).toEqual(new Set(KINDS))
    expect(new Set(mails.map((m) => m.token)).size).toBe(11)
    for (const m of mails) {
      expect(m.to).toEqual([STORED])
      expect(m.subject.startsWith('Example: ')).toBe(true)
      expect(m.text).toContain(CONTACT)
      expect(m.text).toMatch(/When: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/)
      expect(m.text).toMatch(/The link works once, until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\./)
      expect(m.html).toContain(CONTACT)
    }
    expect(await queue.stats()).toMatchObject({ queued: 0, active: 0, failed: 0 })

    // No code, in any form, in any received byte.
    const forms = codeForms(rc, codes)
    const received = mails.map((m) => `${m.subject}\n${m.text}\n${m.html}\n${m.raw}`.toLowerCase()).join('\n')
    for (const f of forms) expect(received).not.toContain(f)
    // Control: the search does see a code planted in the text.
    expect(`${received}\n${forms[3]}`).toContain(forms[3]!)

    // No pg-boss row holds a code, a token (or a part of one) or the pepper.
    const dump = await dumpSchema(schema)
    const text = Object.values(dump.rows).flat().join('\n')
    const lower = text.toLowerCase()
    // The scan does see the jobs: each carries its kind and user id (references, not content).
    const notifyRows = dump.rows.job!.filter((r) => r.includes(NOTIFY_JOB))
    expect(notifyRows.length).toBeGreaterThanOrEqual(1)
    expect(lower).toContain('user-1')
    for (const f of forms) expect(lower).not.toContain(f)
    expect(lower).not.toContain('rcr1')
    for (const m of mails) {
      const [, payload, tag] = m.token.split('.') as [string, string, string]
      expect(lower).not.toContain(payload)
      expect(lower).not.toContain(tag)
    }
    const pepperBytes = Buffer.from(TEST_PEPPER, 'base64')
    expect(text).not.toContain(TEST_PEPPER)
    expect(lower).not.toContain(pepperBytes.toString('hex'))
  })

  it('the link from a received mail works once and revokes; replayed and forged links change nothing', async () => {
    const from = smtp.received.length
    const batch = await rc.generate({ userId: 'user-2' })
    if (!batch.ok) throw new Error('generate failed')
    expect((await rc.redeem({ userId: 'user-2', code: batch.codes[0]! })).ok).toBe(true)
    const mails = await mailsAfter(from, 2)
    expect(countByKind(mails)).toEqual({ 'codes-generated': 1, 'recovery-login': 1 })
    const login = mails.find((m) => m.kind === 'recovery-login')!
    expect(login.text).toContain('You have 3 recovery codes left.')

    // Forged: one character changed (in the tag, then in the payload).
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1)
    const before = JSON.stringify(inspectMemoryStore(store))
    for (const forged of [flip(login.token, login.token.length - 1), flip(login.token, 20)]) {
      expect(await rc.repudiate({ token: forged })).toEqual({ ok: false, reason: 'invalid' })
    }
    expect(JSON.stringify(inspectMemoryStore(store))).toBe(before)
    expect(onRepudiated).not.toHaveBeenCalled()

    expect(await rc.inspectRepudiation({ token: login.token })).toMatchObject({
      ok: true,
      kind: 'recovery-login',
    })
    expect((await store.getActiveBatch('user-2'))?.id).toBe(batch.batchId)
    expect(await rc.repudiate({ token: login.token, clientKey: '203.0.113.9' })).toEqual({
      ok: true,
      batchDisabled: true,
    })
    expect(await store.getActiveBatch('user-2')).toBeNull()
    expect(onRepudiated).toHaveBeenCalledExactlyOnceWith('user-2')
    const audit = await store.listAudit({ limit: 100, userId: 'user-2' })
    expect(audit.find((r) => r.event === 'account.repudiated')?.reason).toBe('recovery-login')
    expect((await rc.redeem({ userId: 'user-2', code: batch.codes[1]! })).ok).toBe(false)

    // Replayed: refused, nothing changes.
    const after = JSON.stringify(inspectMemoryStore(store))
    expect(await rc.repudiate({ token: login.token })).toEqual({ ok: false, reason: 'used' })
    expect(await rc.inspectRepudiation({ token: login.token })).toEqual({ ok: false, reason: 'used' })
    expect(JSON.stringify(inspectMemoryStore(store))).toBe(after)
    expect(onRepudiated).toHaveBeenCalledTimes(1)
  })

  it('a link expires after linkTtlSeconds and then changes nothing', async () => {
    const from = smtp.received.length
    const batch = await rc.generate({ userId: 'user-3' })
    if (!batch.ok) throw new Error('generate failed')
    const [mail] = await mailsAfter(from, 1)
    expect(mail!.kind).toBe('codes-generated')
    clock.advance(TTL_S * 1000)
    const before = JSON.stringify(inspectMemoryStore(store))
    expect(await rc.inspectRepudiation({ token: mail!.token })).toEqual({ ok: false, reason: 'expired' })
    expect(await rc.repudiate({ token: mail!.token })).toEqual({ ok: false, reason: 'expired' })
    expect(JSON.stringify(inspectMemoryStore(store))).toBe(before)
    expect((await store.getActiveBatch('user-3'))?.id).toBe(batch.batchId)
  })

  it('a temporary SMTP failure is retried and the notice still arrives exactly once', async () => {
    const from = smtp.received.length
    rejectNext = 1
    const before = Date.now()
    clock.advance(2 * 3_600_000)
    const batch = await rc.generate({ userId: 'user-4' })
    if (!batch.ok) throw new Error('generate failed')
    const [mail] = await mailsAfter(from, 1)
    expect(Date.now() - before).toBeGreaterThanOrEqual(500) // the retry waited (retryDelay 1 s)
    await sleep(1500)
    expect(smtp.received).toHaveLength(from + 1)
    expect(rejectNext).toBe(0)
    expect(mail!.kind).toBe('codes-generated')
    expect(mail!.to).toEqual([STORED])
    const job = await withClient((c) =>
      c.query<{ retry_count: number; state: string }>(
        `select retry_count, state from ${schema}.job where name = $1 and data->>'userId' = $2`,
        [NOTIFY_JOB, 'user-4'],
      ),
    )
    expect(job.rows).toEqual([{ retry_count: 1, state: 'completed' }])
    const sent = await store.listAudit({ limit: 10, userId: 'user-4', event: 'notification.sent' })
    expect(sent.map((r) => r.outcome).sort()).toEqual(['failure', 'success'])
  })
})
