/**
 * Security notifications (issue 16, acceptance 3), with the memory store: every kind, driven
 * through the real service, is sent once per event, holds no code, and its "This wasn't me" link
 * works once, expires and revokes; a forged or replayed link changes nothing. Emit never throws.
 */
import { describe, expect, it, vi } from 'vitest'
import { inspectMemoryStore, memoryStore } from '../../../store-memory/src/index.ts'
import { createManualClock } from '../../../testing/src/clock.ts'
import { createEventRecorder } from '../../../testing/src/events.ts'
import { randomPepperSecret } from '../../../testing/src/fixtures.ts'
import { createCaptureLogger } from '../../../testing/src/logger.ts'
import { createRecordingMailer } from '../../../testing/src/mailer.ts'
import { createInlineQueue } from '../../../testing/src/queue.ts'
import { type RecoveryCodesConfig, resolveConfig } from '../config.ts'
import { normalize } from '../domain/code-format.ts'
import type { MailMessage } from '../ports/mailer.ts'
import { createServiceContext } from './context.ts'
import { createRecoveryCodes } from './create.ts'
import { NOTIFY_JOB, withNotifications } from './notify.ts'
import {
  escapeHtml,
  formatDuration,
  formatUtc,
  renderNotification,
  repudiationLink,
} from './notify-templates.ts'
import { createRepudiation } from './repudiate.ts'
import { NOTIFICATION_KINDS, type NotificationKind } from './repudiation-token.ts'

const ADDRESS = 'alice@example.test'
const LINK_BASE = 'https://example.test/repudiate'
const CONTACT = 'Questions? Write to security@example.test or call +1 555 0100.'
const TTL_S = 3600
const WRONG = '0000-0000-0000' // never a generated code of the default format (checked below)

function make(over: Partial<RecoveryCodesConfig> & { kinds?: readonly NotificationKind[] } = {}) {
  const { kinds, ...rest } = over
  const clock = createManualClock()
  const store = memoryStore()
  const mailer = createRecordingMailer()
  const logger = createCaptureLogger()
  const onRepudiated = vi.fn(async (_userId: string) => {})
  const config: RecoveryCodesConfig = {
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    activation: 'immediate',
    store,
    clock,
    logger,
    mailer,
    siteName: 'Example',
    batchSize: 4,
    lowCodesThreshold: 2,
    maxLoginAttempts: 3,
    hardFailureCap: 3,
    resolveEmail: async (userId) => (userId === 'nobody' ? null : ADDRESS),
    onRepudiated,
    notifications: {
      contact: CONTACT,
      linkBaseUrl: LINK_BASE,
      linkTtlSeconds: TTL_S,
      ...(kinds ? { kinds } : {}),
    },
    ...rest,
  }
  const rc = createRecoveryCodes(config)
  return { rc, clock, store, mailer, logger, onRepudiated, config }
}

/** The token of a message's link, from its text. */
function tokenOf(m: MailMessage): string {
  const match = /[?&]token=([^\s&]+)/.exec(m.text)
  if (!match) throw new Error('no link in message')
  return decodeURIComponent(match[1]!)
}

/** The kind a message's link was minted for (from the token's payload). */
function kindOf(m: MailMessage): NotificationKind {
  const payload = tokenOf(m).split('.')[1]!
  return JSON.parse(Buffer.from(payload, 'hex').toString('utf8')).k
}

function countByKind(messages: readonly MailMessage[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of messages) out[kindOf(m)] = (out[kindOf(m)] ?? 0) + 1
  return out
}

/** Every form of every code: as shown, canonical (no dash), lower case. */
function codeForms(codes: readonly string[], format: Parameters<typeof normalize>[1]): string[] {
  const forms = new Set<string>()
  for (const code of codes) {
    const canonical = normalize(code, format)
    if (!canonical) throw new Error('code does not normalise')
    for (const f of [code, canonical, code.replaceAll('-', '')]) forms.add(f.toLowerCase())
  }
  return [...forms]
}

/** The codes found in `messages` (every field, lower case). */
function codesIn(messages: readonly MailMessage[], forms: readonly string[]): string[] {
  const hay = messages.map((m) => `${m.subject}\n${m.text}\n${m.html ?? ''}`.toLowerCase()).join('\n')
  return forms.filter((f) => hay.includes(f))
}

/** Drives every kind: generate, 4 redeems (low twice, exhausted), generate, 3 wrong (locked, disabled). */
async function everyKind({ rc, clock }: Pick<ReturnType<typeof make>, 'rc' | 'clock'>, userId = 'alice') {
  const codes: string[] = []
  const first = await rc.generate({ userId })
  if (!first.ok) throw new Error('generate failed')
  codes.push(...first.codes)
  for (const code of first.codes) {
    const r = await rc.redeem({ userId, code })
    expect(r.ok).toBe(true)
  }
  clock.advance(2 * 3_600_000) // past the regeneration cooldown
  const second = await rc.generate({ userId })
  if (!second.ok) throw new Error('second generate failed')
  codes.push(...second.codes)
  for (let i = 0; i < 3; i++) expect((await rc.redeem({ userId, code: WRONG })).ok).toBe(false)
  return { codes, first, second }
}

describe('notifications: every kind through the real service', () => {
  it('sends each event once, to the stored address, with the link, its expiry and the contact', async () => {
    const made = make()
    const { rc, mailer, clock, config } = made
    const start = clock.now()
    const { codes } = await everyKind(made)
    expect(countByKind(mailer.messages)).toEqual({
      'codes-generated': 2,
      'recovery-login': 4,
      'low-codes': 2,
      exhausted: 1,
      locked: 1,
      disabled: 1,
    })
    expect(mailer.messages).toHaveLength(11)
    for (const m of mailer.messages) {
      expect(m.to).toBe(ADDRESS)
      expect(m.subject.startsWith('Example: ')).toBe(true)
      expect(m.subject).not.toMatch(/[\r\n]/)
      // Inline delivery: sent at the event's time, so the link expires TTL after it.
      const at = [start, start + 2 * 3_600_000].find((t) => m.text.includes(`When: ${formatUtc(t)}`))
      expect(at).toBeDefined()
      expect(m.text).toContain(`${LINK_BASE}?token=rcr1.`)
      expect(m.text).toContain(`until ${formatUtc(at! + TTL_S * 1000)}`)
      expect(m.text).toContain(CONTACT)
      expect(m.text).toContain('signs you out everywhere') // onRepudiated is set
      expect(m.html).toContain(escapeHtml(CONTACT))
      expect(m.html).toContain(`href="${escapeHtml(`${LINK_BASE}?token=${tokenOf(m)}`)}"`)
      // Each message has a link of its own.
    }
    expect(new Set(mailer.messages.map(tokenOf)).size).toBe(11)
    const [low1, low2] = mailer.messages.filter((m) => kindOf(m) === 'low-codes')
    expect(low1!.text).toContain('You have 2 recovery codes left.')
    expect(low2!.text).toContain('You have 1 recovery code left.')
    const logins = mailer.messages.filter((m) => kindOf(m) === 'recovery-login')
    expect(logins.map((m) => /You have (\d+) recovery/.exec(m.text)?.[1])).toEqual(['3', '2', '1', '0'])
    for (const m of logins) expect(m.text).not.toContain('replacement')
    const locked = mailer.messages.find((m) => kindOf(m) === 'locked')!
    expect(locked.text).toMatch(/locked for \d+ (minute|hour)/)

    // No code of either batch, in any form, in any field of any message.
    const forms = codeForms(codes, rc.config.format)
    expect(forms.length).toBeGreaterThanOrEqual(8)
    expect(forms).not.toContain(normalize(WRONG, rc.config.format)?.toLowerCase())
    expect(codesIn(mailer.messages, forms)).toEqual([])
    // Control: the search does find a code planted in a message.
    const planted = {
      ...mailer.messages[0]!,
      text: `${mailer.messages[0]!.text}\n${codes[5]!.replaceAll('-', '')}`,
    }
    expect(codesIn([planted], forms)).toContain(codes[5]!.replaceAll('-', '').toLowerCase())
    // No pepper or digest either.
    const all = JSON.stringify(mailer.messages)
    const pepper = config.peppers[0]!.secret as string
    expect(all).not.toContain(pepper)
    expect(all.toLowerCase()).not.toContain(Buffer.from(pepper, 'base64').toString('hex'))
    for (const c of inspectMemoryStore(rc.config.store).codes) expect(all).not.toContain(c.digest)
  })

  it('audits each send with its kind, and logs it when storeEmailLog is on', async () => {
    const made = make({ audit: { storeEmailLog: true } })
    const { store } = made
    await everyKind(made)
    const sent = (await store.listAudit({ limit: 1000, event: 'notification.sent' })).reverse()
    expect(sent.map((r) => r.outcome)).toEqual(Array(11).fill('success'))
    expect(sent.map((r) => r.reason)).toEqual([
      'codes-generated',
      'recovery-login',
      'recovery-login',
      'low-codes',
      'recovery-login',
      'low-codes',
      'recovery-login',
      'exhausted',
      'codes-generated',
      'locked',
      'disabled',
    ])
    const log = inspectMemoryStore(store).emailLog
    expect(log).toHaveLength(11)
    expect(new Set(log.map((r) => r.kind))).toEqual(
      new Set(NOTIFICATION_KINDS.map((k) => `notification:${k}`)),
    )
    expect(log.every((r) => r.recipient === ADDRESS && r.outcome === 'sent' && r.userId === 'alice')).toBe(
      true,
    )
  })

  it('sends only the configured kinds', async () => {
    const made = make({ kinds: ['locked', 'exhausted'] })
    const { mailer } = made
    await everyKind(made)
    expect(countByKind(mailer.messages)).toEqual({ exhausted: 1, locked: 1 })
  })

  it('a recovery login that issued a replacement code says so, without the code', async () => {
    const { rc, mailer } = make({ replaceOnUse: true })
    const batch = await rc.generate({ userId: 'alice' })
    if (!batch.ok) throw new Error('generate failed')
    const r = await rc.redeem({ userId: 'alice', code: batch.codes[0]! })
    if (!r.ok || !r.replacement) throw new Error('no replacement')
    const shown = await rc.viewCodes({ userId: 'alice', reveal: r.replacement.reveal })
    const login = mailer.messages.filter((m) => kindOf(m) === 'recovery-login')
    expect(login).toHaveLength(1)
    expect(login[0]!.text).toContain('A replacement recovery code was issued')
    expect(login[0]!.text).toContain('You have 4 recovery codes left.')
    const forms = codeForms([...batch.codes, ...shown.codes], rc.config.format)
    expect(codesIn(mailer.messages, forms)).toEqual([])
  })

  it('sends nothing without notifications', async () => {
    const off = make({ notifications: undefined })
    await everyKind(off)
    expect(off.mailer.messages).toEqual([])
  })
})

describe('notifications: the "This wasn\'t me" link', () => {
  it('works once and revokes; a replay is refused and changes nothing', async () => {
    const { rc, mailer, store, onRepudiated } = make()
    const batch = await rc.generate({ userId: 'alice' })
    if (!batch.ok) throw new Error('generate failed')
    await rc.redeem({ userId: 'alice', code: batch.codes[0]! })
    const login = mailer.messages.find((m) => kindOf(m) === 'recovery-login')!
    const token = tokenOf(login)
    expect(await rc.inspectRepudiation({ token })).toMatchObject({ ok: true, kind: 'recovery-login' })
    expect((await store.getActiveBatch('alice'))?.id).toBe(batch.batchId)

    expect(await rc.repudiate({ token })).toEqual({ ok: true, batchDisabled: true })
    expect(await store.getActiveBatch('alice')).toBeNull()
    expect(onRepudiated).toHaveBeenCalledExactlyOnceWith('alice')
    const audit = await store.listAudit({ limit: 1000, userId: 'alice' })
    expect(audit.find((r) => r.event === 'account.repudiated')?.reason).toBe('recovery-login')
    // The store holds no token, only a keyed label of its nonce.
    expect(JSON.stringify(inspectMemoryStore(store))).not.toContain(token.split('.')[2]!)
    expect(JSON.stringify(inspectMemoryStore(store))).not.toContain(token.split('.')[1]!)

    const before = JSON.stringify(inspectMemoryStore(store))
    const sentBefore = mailer.messages.length
    expect(await rc.repudiate({ token })).toEqual({ ok: false, reason: 'used' })
    expect(await rc.inspectRepudiation({ token })).toEqual({ ok: false, reason: 'used' })
    expect(JSON.stringify(inspectMemoryStore(store))).toBe(before)
    expect(onRepudiated).toHaveBeenCalledTimes(1)
    expect(mailer.messages).toHaveLength(sentBefore)
    // The code of the revoked batch no longer works.
    expect((await rc.redeem({ userId: 'alice', code: batch.codes[1]! })).ok).toBe(false)
  })

  it('expires after linkTtlSeconds and changes nothing', async () => {
    const { rc, mailer, store, clock, onRepudiated } = make()
    const batch = await rc.generate({ userId: 'alice' })
    if (!batch.ok) throw new Error('generate failed')
    const token = tokenOf(mailer.messages[0]!)
    clock.advance(TTL_S * 1000 - 1)
    expect((await rc.inspectRepudiation({ token })).ok).toBe(true)
    clock.advance(1)
    const before = JSON.stringify(inspectMemoryStore(store))
    expect(await rc.repudiate({ token })).toEqual({ ok: false, reason: 'expired' })
    expect(JSON.stringify(inspectMemoryStore(store))).toBe(before)
    expect((await store.getActiveBatch('alice'))?.id).toBe(batch.batchId)
    expect(onRepudiated).not.toHaveBeenCalled()
  })

  it('a forged link (one character changed anywhere) is refused and changes nothing', async () => {
    const { rc, mailer, store, onRepudiated } = make()
    const batch = await rc.generate({ userId: 'alice' })
    if (!batch.ok) throw new Error('generate failed')
    const token = tokenOf(mailer.messages[0]!)
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1)
    const [, payload] = token.split('.') as [string, string, string]
    const forged = [
      flip(token, token.length - 1), // the tag
      flip(token, 5 + Math.floor(payload.length / 2)), // the payload
      flip(token, 5 + payload.length + 1 + 10),
    ]
    const before = JSON.stringify(inspectMemoryStore(store))
    for (const f of forged) {
      expect(f).not.toBe(token)
      expect(await rc.repudiate({ token: f })).toEqual({ ok: false, reason: 'invalid' })
    }
    expect(JSON.stringify(inspectMemoryStore(store))).toBe(before)
    expect(onRepudiated).not.toHaveBeenCalled()
    // A link of another instance (another pepper) is refused too.
    const other = make()
    await other.rc.generate({ userId: 'alice' })
    expect(await rc.repudiate({ token: tokenOf(other.mailer.messages[0]!) })).toEqual({
      ok: false,
      reason: 'invalid',
    })
    expect(JSON.stringify(inspectMemoryStore(store))).toBe(before)
    // The real one still works.
    expect(await rc.repudiate({ token })).toEqual({ ok: true, batchDisabled: true })
  })
})

describe('notifications: through a queue', () => {
  it('enqueues ids only, sends once per event, and a redelivered job sends nothing', async () => {
    const queue = createInlineQueue()
    const made = make({ queue })
    const { rc, mailer } = made
    const { codes } = await everyKind(made)
    await queue.idle()
    const jobs = queue.jobs.filter((j) => j.name === NOTIFY_JOB)
    expect(jobs).toHaveLength(11)
    expect(countByKind(mailer.messages)).toEqual({
      'codes-generated': 2,
      'recovery-login': 4,
      'low-codes': 2,
      exhausted: 1,
      locked: 1,
      disabled: 1,
    })
    for (const j of jobs) {
      expect(Object.keys(j.payload).sort()).toEqual(
        expect.arrayContaining(['at', 'batchId', 'id', 'kind', 'userId']),
      )
      for (const v of Object.values(j.payload))
        expect(['string', 'number', 'boolean', 'object']).toContain(typeof v)
    }
    const dumped = JSON.stringify(queue.jobs).toLowerCase()
    expect(dumped).not.toContain('rcr1')
    expect(dumped).not.toContain('token')
    for (const f of codeForms(codes, rc.config.format)) expect(dumped).not.toContain(f)

    // Redelivery of every job (a queue that lost its acknowledgement): nothing more is sent.
    for (const j of jobs) await queue.enqueue(j)
    await queue.idle()
    expect(mailer.messages).toHaveLength(11)
    expect(queue.runs.every((r) => r.ok)).toBe(true)
  })

  it('a failed send throws (the queue retries) and gives the claim back; the retry sends once', async () => {
    const queue = createInlineQueue()
    const { rc, mailer, store } = make({ queue })
    mailer.failNext(1)
    const batch = await rc.generate({ userId: 'alice' })
    if (!batch.ok) throw new Error('generate failed')
    await queue.idle()
    expect(mailer.messages).toHaveLength(0)
    expect(queue.runs).toHaveLength(1)
    expect(queue.runs[0]!.ok).toBe(false)
    const failed = await store.listAudit({ limit: 10, event: 'notification.sent' })
    expect(failed.map((r) => [r.outcome, r.reason])).toEqual([['failure', 'codes-generated']])
    // The retry (same payload) delivers; a second redelivery sends nothing.
    await queue.enqueue(queue.jobs[0]!)
    await queue.enqueue(queue.jobs[0]!)
    await queue.idle()
    expect(mailer.messages).toHaveLength(1)
    expect(kindOf(mailer.messages[0]!)).toBe('codes-generated')
    expect(queue.runs.slice(1).every((r) => r.ok)).toBe(true)
  })

  it('drops a malformed job without sending', async () => {
    const queue = createInlineQueue()
    const { mailer } = make({ queue })
    await queue.enqueue({ name: NOTIFY_JOB, payload: { id: 'x', kind: 'locked', userId: 'alice' } })
    await queue.enqueue({
      name: NOTIFY_JOB,
      payload: { id: 'a'.repeat(32), kind: 'nope', userId: 'alice', batchId: null, at: 1 },
    })
    await queue.idle()
    expect(mailer.messages).toEqual([])
    expect(queue.runs.every((r) => r.ok)).toBe(true)
  })
})

describe('notifications: emit never throws', () => {
  it('a throwing mailer, a missing address or a throwing resolveEmail never fail the operation', async () => {
    const made = make()
    const { rc, mailer, logger, store } = made
    mailer.failNext(100, Object.assign(new Error('smtp down: alice@example.test'), { name: 'SmtpError' }))
    const { codes } = await everyKind(made)
    expect(mailer.messages).toEqual([])
    expect(mailer.failed).toHaveLength(11)
    const failures = logger.lines.filter((l) => l.message === 'recovery-codes: notification failed')
    expect(failures).toHaveLength(11)
    expect(failures.every((l) => l.fields?.error === 'SmtpError')).toBe(true)
    expect(logger.text()).not.toContain('smtp down')
    for (const f of codeForms(codes, rc.config.format)) expect(logger.text().toLowerCase()).not.toContain(f)
    expect(await store.listAudit({ limit: 100, event: 'notification.sent' })).toHaveLength(11)

    const none = make()
    const g = await none.rc.generate({ userId: 'nobody' })
    expect(g.ok).toBe(true)
    expect(none.mailer.messages).toEqual([])
    expect(none.logger.lines.some((l) => l.message === 'recovery-codes: no address for a notification')).toBe(
      true,
    )
    const skipped = await none.store.listAudit({ limit: 10, event: 'notification.skipped' })
    expect(skipped.map((r) => r.reason)).toEqual(['codes-generated'])

    const throwing = make({
      resolveEmail: async () => {
        throw new TypeError('directory down')
      },
    })
    const t = await throwing.rc.generate({ userId: 'alice' })
    expect(t.ok).toBe(true)
    expect(throwing.mailer.messages).toEqual([])
    expect(throwing.logger.text()).not.toContain('directory down')
  })

  it('a failing store claim is logged, not thrown', async () => {
    const { rc, store, mailer, logger } = make()
    const reserve = store.reserveAttempts.bind(store)
    const batch = await rc.generate({ userId: 'alice' })
    if (!batch.ok) throw new Error('generate failed')
    mailer.clear()
    // Only the notification claim fails: the redeem's own reservation goes through.
    store.reserveAttempts = async (input) => {
      if (input.keys.some((k) => k.key.startsWith('notify:'))) throw new Error('store down')
      return reserve(input)
    }
    expect((await rc.redeem({ userId: 'alice', code: batch.codes[0]! })).ok).toBe(true)
    expect(mailer.messages).toEqual([])
    expect(logger.lines.some((l) => l.message === 'recovery-codes: notification not delivered')).toBe(true)
  })
})

describe('withNotifications', () => {
  it('is the context itself when notifications are off', () => {
    const sc = createServiceContext(
      resolveConfig({ peppers: [{ id: 'k1', secret: randomPepperSecret() }], store: memoryStore() }),
    )
    expect(withNotifications(sc, createRepudiation(sc))).toBe(sc)
  })

  it('passes every event to the sink first, and notifies only notifying events of a known user', async () => {
    const events = createEventRecorder()
    const mailer = createRecordingMailer()
    const sc = createServiceContext(
      resolveConfig({
        peppers: [{ id: 'k1', secret: randomPepperSecret() }],
        store: memoryStore(),
        events,
        mailer,
        resolveEmail: async () => ADDRESS,
        notifications: { contact: CONTACT, linkBaseUrl: LINK_BASE },
      }),
    )
    const wrapped = withNotifications(sc, createRepudiation(sc))
    await wrapped.emit('viewed', 1, 'alice', 'b1')
    await wrapped.emit('failed', 1, 'alice', null)
    await wrapped.emit('locked', 1, null, null, { retryAfterMs: 60_000 })
    expect(mailer.messages).toEqual([])
    await wrapped.emit('locked', 1, 'alice', null, { retryAfterMs: 60_000 })
    expect(events.events.map((e) => e.name)).toEqual(['viewed', 'failed', 'locked', 'locked'])
    expect(mailer.messages.map(kindOf)).toEqual(['locked'])
    expect(mailer.messages[0]!.text).toContain('locked for 1 minute.')
  })
})

describe('notify templates', () => {
  const base = {
    siteName: 'A <b>&</b> "site"',
    at: Date.UTC(2026, 0, 2, 3, 4, 5),
    link: repudiationLink('https://example.test/r?x=1', 'rcr1.ab.cd'),
    linkExpiresAt: Date.UTC(2026, 0, 9, 3, 4, 5),
    contact: 'Call <support> & ask',
  }
  it('renders every kind with the time, the link, its expiry and the contact; HTML escaped', () => {
    expect(base.link).toBe('https://example.test/r?x=1&token=rcr1.ab.cd')
    for (const kind of NOTIFICATION_KINDS) {
      const m = renderNotification({ ...base, kind })
      expect(m.subject.startsWith(`${base.siteName}: `)).toBe(true)
      expect(m.text).toContain('When: 2026-01-02 03:04:05 UTC')
      expect(m.text).toContain('until 2026-01-09 03:04:05 UTC')
      expect(m.text).toContain(base.link)
      expect(m.text).toContain(base.contact)
      expect(m.html).not.toContain('<support>')
      expect(m.html).not.toContain('<b>')
      expect(m.html).toContain('Call &lt;support&gt; &amp; ask')
      expect(m.html).toContain('href="https://example.test/r?x=1&amp;token=rcr1.ab.cd"')
    }
  })
  it('promises to sign the user out only when the host ends sessions (onRepudiated)', () => {
    expect(renderNotification({ ...base, kind: 'locked' }).text).not.toContain('signs you out')
    expect(renderNotification({ ...base, kind: 'locked', endsSessions: true }).text).toContain(
      'It disables your recovery codes and signs you out everywhere.',
    )
  })
  it('formats durations', () => {
    expect(formatDuration(1)).toBe('1 minute')
    expect(formatDuration(15 * 60_000)).toBe('15 minutes')
    expect(formatDuration(3_600_000)).toBe('1 hour')
    expect(formatDuration(3_900_000)).toBe('1 hour 5 minutes')
  })
})
