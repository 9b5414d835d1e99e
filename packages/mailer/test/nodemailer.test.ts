import { createRecoveryCodes, isRecoveryCodesError, type RecoveryCodesError } from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import { createManualClock, startSmtp, TEST_PEPPER, type TestSmtp } from '@recovery-codes/testing'
import { simpleParser } from 'mailparser'
import nodemailer from 'nodemailer'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { codesEmail, nodemailerMailer } from '../src/index.ts'

let smtp: TestSmtp

beforeAll(async () => {
  smtp = await startSmtp()
})
afterAll(async () => {
  await smtp?.close()
})
beforeEach(() => {
  smtp.received.length = 0
})

function expectInvalid(fn: () => unknown, path: string): void {
  let caught: unknown
  try {
    fn()
  } catch (e) {
    caught = e
  }
  expect(isRecoveryCodesError(caught, 'INVALID_INPUT'), String(caught)).toBe(true)
  expect((caught as RecoveryCodesError).issues[0]?.path).toBe(path)
}

async function expectRejectsInvalid(p: Promise<unknown>, path: string): Promise<void> {
  const e = await p.then(
    () => null,
    (error: unknown) => error,
  )
  expect(isRecoveryCodesError(e, 'INVALID_INPUT'), String(e)).toBe(true)
  expect((e as RecoveryCodesError).issues[0]?.path).toBe(path)
}

describe('nodemailerMailer over a real SMTP server on loopback', () => {
  it('delivers one message to the given address with the exact codes', async () => {
    const mailer = nodemailerMailer(smtp.url, { from: 'Example <no-reply@example.test>' })
    const codes = ['abcd-efgh-2345', 'wxyz-9876-mnpq']
    await mailer.send({ to: 'alice@example.test', ...codesEmail({ siteName: 'Example', codes }) })
    const [mail] = await smtp.waitFor(1)
    expect(smtp.received).toHaveLength(1)
    expect(mail!.to).toEqual(['alice@example.test'])
    expect(mail!.from).toBe('no-reply@example.test')
    const parsed = await simpleParser(mail!.raw)
    expect(parsed.subject).toBe('Example: your recovery codes')
    for (const code of codes) {
      expect(parsed.text).toContain(code)
      expect(parsed.html).toContain(code)
    }
    mailer.close()
  })

  it('service: emailCodes sends once, to the stored address only, with the exact codes', async () => {
    const stored = 'stored.user@example.test'
    const mailer = nodemailerMailer(
      { host: '127.0.0.1', port: smtp.port, secure: false, ignoreTLS: true },
      {
        from: 'no-reply@example.test',
      },
    )
    const rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: TEST_PEPPER }],
      store: memoryStore(),
      clock: createManualClock(),
      mailer,
      email: { enabled: true, from: 'no-reply@example.test' },
      siteName: 'Example',
      resolveEmail: async (userId) => (userId === 'u1' ? stored : null),
    })
    const batch = await rc.generate({ userId: 'u1' })
    if (!batch.ok) throw new Error('generate failed')
    expect(await rc.emailCodes({ userId: 'u1', reveal: batch.reveal })).toEqual({
      sentTo: stored,
      queued: false,
    })
    await expect(rc.emailCodes({ userId: 'u1', reveal: batch.reveal })).rejects.toMatchObject({
      code: expect.stringMatching(/ALREADY_DONE|REVEAL_UNAVAILABLE/),
    })
    const [mail] = await smtp.waitFor(1)
    await new Promise((r) => setTimeout(r, 200))
    expect(smtp.received).toHaveLength(1)
    expect(mail!.to).toEqual([stored])
    const parsed = await simpleParser(mail!.raw)
    const lines = (parsed.text ?? '').split(/\r?\n/)
    for (const code of batch.codes) expect(lines).toContain(code)
    mailer.close()
  })

  it('rejects CR/LF/NUL in every header-bound field before anything reaches the server', async () => {
    expectInvalid(
      () => nodemailerMailer(smtp.url, { from: 'a@example.test\r\nBcc: evil@example.test' }),
      'from',
    )
    expectInvalid(() => nodemailerMailer(smtp.url, { from: 'a@example.test\0' }), 'from')
    const mailer = nodemailerMailer(smtp.url, { from: 'no-reply@example.test' })
    const base = { to: 'alice@example.test', subject: 'Hello', text: 'body' }
    await expectRejectsInvalid(
      mailer.send({ ...base, to: 'alice@example.test\r\nBcc: evil@example.test' }),
      'to',
    )
    await expectRejectsInvalid(mailer.send({ ...base, to: 'alice@example.test\nevil@example.test' }), 'to')
    await expectRejectsInvalid(mailer.send({ ...base, subject: 'Hi\r\nBcc: evil@example.test' }), 'subject')
    await expectRejectsInvalid(mailer.send({ ...base, subject: 'Hi\nX-Injected: 1' }), 'subject')
    await expectRejectsInvalid(mailer.send({ ...base, subject: 'Hi\0' }), 'subject')
    await expectRejectsInvalid(
      mailer.send({
        ...base,
        attachments: [
          { filename: 'a.txt\r\nX: y', contentType: 'text/plain', content: new Uint8Array([65]) },
        ],
      }),
      'attachments.0.filename',
    )
    // A second recipient is not a header break but would fan the codes out: refused too.
    await expectRejectsInvalid(mailer.send({ ...base, to: 'alice@example.test, evil@example.test' }), 'to')
    await expectRejectsInvalid(mailer.send({ ...base, to: 'not an address' }), 'to')
    expectInvalid(
      () => codesEmail({ siteName: 'Example\r\nBcc: evil@example.test', codes: ['a'] }),
      'siteName',
    )
    await new Promise((r) => setTimeout(r, 200))
    expect(smtp.received).toHaveLength(0)
    mailer.close()
  })

  it('never lets the transport log bodies: debug is forced off', async () => {
    const logged: string[] = []
    const log = (...args: unknown[]) => {
      logged.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '))
    }
    const logger = { trace: log, debug: log, info: log, warn: log, error: log, fatal: log, level: () => {} }
    const mailer = nodemailerMailer(
      { host: '127.0.0.1', port: smtp.port, ignoreTLS: true, logger, debug: true },
      {
        from: 'no-reply@example.test',
      },
    )
    await mailer.send({ to: 'alice@example.test', subject: 'codes', text: 'SECRET-BODY-zyxw-7531' })
    await smtp.waitFor(1)
    expect(logged.length).toBeGreaterThan(0) // the logger is wired: connection lines are logged …
    expect(logged.join('\n')).not.toContain('SECRET-BODY') // … but never the body
    mailer.close()
    // The same through a connection URL asking for debug.
    logged.length = 0
    const viaUrl = nodemailerMailer(`${smtp.url}?debug=true`, { from: 'no-reply@example.test' })
    await viaUrl.send({ to: 'alice@example.test', subject: 'codes', text: 'SECRET-BODY-2' })
    await smtp.waitFor(2)
    viaUrl.close()
  })

  it('accepts a ready transporter and wraps transport errors as MAIL_FAILED', async () => {
    const transporter = nodemailer.createTransport({ host: '127.0.0.1', port: 1, connectionTimeout: 1000 })
    const mailer = nodemailerMailer(transporter, { from: 'no-reply@example.test' })
    await expect(mailer.send({ to: 'alice@example.test', subject: 's', text: 't' })).rejects.toMatchObject({
      code: 'MAIL_FAILED',
      message: expect.not.stringContaining('alice'),
    })
  })
})
