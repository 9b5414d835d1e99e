import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isRecoveryCodesError } from '@recovery-codes/core'
import { simpleParser } from 'mailparser'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { codesEmail, emlFileMailer, notificationEmail } from '../src/index.ts'

let dir: string

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rc-eml-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('emlFileMailer', () => {
  it('writes one RFC 5322 file per message that parses back', async () => {
    const out = join(dir, 'mail', 'nested')
    const mailer = emlFileMailer({ dir: out, from: 'Example <no-reply@example.test>' })
    const codes = ['abcd-efgh-2345', 'wxyz-9876-mnpq']
    await mailer.send({
      to: 'alice@example.test',
      ...codesEmail({ siteName: 'Example & Co', codes }),
      attachments: [
        {
          filename: 'codes.txt',
          contentType: 'text/plain',
          content: new TextEncoder().encode(codes.join('\n')),
        },
      ],
    })
    await mailer.send({
      to: 'bob@example.test',
      ...notificationEmail({ siteName: 'Example', kind: 'locked', at: Date.UTC(2030, 0, 2, 3, 4, 5) }),
    })
    const files = readdirSync(out).sort()
    expect(files).toHaveLength(2)
    expect(files.every((f) => f.endsWith('.eml'))).toBe(true)
    expect(mailer.files.map((f) => f.split('/').at(-1)).sort()).toEqual(files)

    const raw = readFileSync(join(out, files[0]!))
    const text = raw.toString('utf8')
    // RFC 5322: CRLF line ends only.
    expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/)
    expect(statSync(join(out, files[0]!)).mode & 0o777).toBe(0o600)
    const parsed = await simpleParser(raw)
    expect(parsed.subject).toBe('Example & Co: your recovery codes')
    expect(parsed.from?.value[0]).toMatchObject({ name: 'Example', address: 'no-reply@example.test' })
    const to = Array.isArray(parsed.to) ? parsed.to[0] : parsed.to
    expect(to?.value.map((a) => a.address)).toEqual(['alice@example.test'])
    expect(parsed.messageId).toBeTruthy()
    expect(parsed.date).toBeInstanceOf(Date)
    for (const code of codes) expect(parsed.text).toContain(code)
    expect(parsed.html).toContain('Example &amp; Co')
    expect(parsed.attachments).toHaveLength(1)
    expect(parsed.attachments[0]!.filename).toBe('codes.txt')
    expect(parsed.attachments[0]!.content.toString('utf8')).toBe(codes.join('\n'))

    const second = await simpleParser(readFileSync(join(out, files[1]!)))
    expect(second.subject).toBe('Example: recovery-code sign-in locked')
    expect(second.text).toContain('2030-01-02 03:04:05 UTC')
  })

  it('refuses header injection and writes nothing', async () => {
    const mailer = emlFileMailer({ dir })
    const e = await mailer
      .send({ to: 'a@example.test', subject: 'x\r\nBcc: evil@example.test', text: 't' })
      .catch((error: unknown) => error)
    expect(isRecoveryCodesError(e, 'INVALID_INPUT')).toBe(true)
    expect(() => emlFileMailer({ dir, from: 'x@example.test\nBcc: y@example.test' })).toThrow(/from/)
    expect(readdirSync(dir)).toEqual([])
  })
})
