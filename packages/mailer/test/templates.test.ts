import { isRecoveryCodesError } from '@recovery-codes/core'
import { describe, expect, it } from 'vitest'
import { codesEmail, type NotificationKind, notificationEmail, purgeReportEmail } from '../src/index.ts'

const KINDS: NotificationKind[] = ['recovery-login', 'regenerated', 'low-codes', 'locked', 'disabled']
const BAD_NAMES = [
  'Ex\rample',
  'Ex\nample',
  'Ex\r\nBcc: evil@example.test',
  'Ex\0ample',
  '',
  'x'.repeat(101),
  'a\tb',
]

function invalidPath(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    if (isRecoveryCodesError(e, 'INVALID_INPUT')) return e.issues[0]?.path
    throw e
  }
  return undefined
}

describe('templates', () => {
  it('codesEmail lists every code, one per line, and escapes HTML', () => {
    const codes = ['abcd-efgh', 'jkmn-pqrs', '<b>-&"']
    const mail = codesEmail({ siteName: '<Shop>', codes })
    expect(mail.subject).toBe('<Shop>: your recovery codes')
    const lines = mail.text.split('\n')
    for (const code of codes) expect(lines).toContain(code)
    expect(mail.html).toContain('&lt;Shop&gt;')
    expect(mail.html).toContain('&lt;b&gt;-&amp;&quot;')
    expect(mail.html).not.toContain('<Shop>')
  })

  it('is pure: same input, same output', () => {
    const input = { siteName: 'Example', kind: 'low-codes' as const, at: 1_700_000_000_000, remaining: 2 }
    expect(notificationEmail(input)).toEqual(notificationEmail(input))
  })

  it('purgeReportEmail carries counts only', () => {
    const mail = purgeReportEmail({
      siteName: 'Example',
      report: { deleted: 1234, batchesDeleted: 5, attemptsDeleted: 7, rounds: 25, done: false },
    })
    expect(mail.subject).toBe('Example: recovery-code purge report')
    expect(mail.text).toContain('Codes deleted: 1234')
    expect(mail.text).toContain('Empty batches deleted: 5')
    expect(mail.text).toContain('Expired limiter counters deleted: 7')
    expect(mail.text).toContain('per-run cap')
    const failed = purgeReportEmail({
      siteName: 'Example',
      report: {
        deleted: 1,
        batchesDeleted: 0,
        attemptsDeleted: 0,
        rounds: 1,
        done: false,
        error: 'STORE_UNAVAILABLE\r\nX',
      },
    })
    expect(failed.text).toContain('stopped by an error (STORE_UNAVAILABLEX)')
  })

  it.each(KINDS)('notificationEmail %s: subject, UTC time, no control characters', (kind) => {
    const mail = notificationEmail({
      siteName: 'Example',
      kind,
      at: Date.UTC(2031, 5, 7, 8, 9, 10),
      remaining: 3,
    })
    expect(mail.subject.startsWith('Example: ')).toBe(true)
    expect(mail.subject).not.toMatch(/[\r\n\0]/)
    expect(mail.text).toContain('2031-06-07 08:09:10 UTC')
    expect(mail.html).toContain('2031-06-07 08:09:10 UTC')
  })

  it('every template rejects a site name with CR, LF, NUL or other control characters', () => {
    for (const siteName of BAD_NAMES) {
      expect(
        invalidPath(() => codesEmail({ siteName, codes: ['a'] })),
        JSON.stringify(siteName),
      ).toBe('siteName')
      expect(
        invalidPath(() =>
          purgeReportEmail({
            siteName,
            report: { deleted: 0, batchesDeleted: 0, attemptsDeleted: 0, rounds: 0, done: true },
          }),
        ),
      ).toBe('siteName')
      expect(invalidPath(() => notificationEmail({ siteName, kind: 'locked', at: 0 }))).toBe('siteName')
    }
  })

  it('rejects malformed data', () => {
    expect(invalidPath(() => codesEmail({ siteName: 'x', codes: [] }))).toBe('codes')
    expect(invalidPath(() => codesEmail({ siteName: 'x', codes: ['ok', 'bad\ncode'] }))).toBe('codes')
    expect(
      invalidPath(() => notificationEmail({ siteName: 'x', kind: 'nope' as NotificationKind, at: 0 })),
    ).toBe('kind')
    expect(invalidPath(() => notificationEmail({ siteName: 'x', kind: 'locked', at: Number.NaN }))).toBe('at')
    expect(
      invalidPath(() => notificationEmail({ siteName: 'x', kind: 'low-codes', at: 0, remaining: -1 })),
    ).toBe('remaining')
  })
})
