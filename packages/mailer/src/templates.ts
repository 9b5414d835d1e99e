/**
 * Email templates: small pure functions from data to `{ subject, text, html? }`. No I/O, no clock:
 * times come in as epoch ms. Every header-bound value (the site name, hence the subject) is checked
 * for CR, LF and NUL (R-PT-6); every value put into `html` is escaped.
 */
import { type PurgeReport, RecoveryCodesError } from '@recovery-codes/core'
import { assertHeaderSafe } from './headers.ts'

/** Whether `value` holds a C0 control character or DEL. */
function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}

/** A rendered email, ready for `Mailer.send({ to, ...email })`. */
export interface EmailContent {
  subject: string
  text: string
  html?: string
}

/** The notifications a host sends to every notification address (R-AUD-4). */
export type NotificationKind = 'recovery-login' | 'regenerated' | 'low-codes' | 'locked' | 'disabled'

/** Longest site name accepted, as in the core config. */
const MAX_SITE_NAME = 100

function invalid(path: string, message: string): RecoveryCodesError {
  return new RecoveryCodesError('INVALID_INPUT', `${path} ${message}`, { issues: [{ path, message }] })
}

function siteNameOf(value: unknown): string {
  const name = assertHeaderSafe('siteName', value)
  if (name.length === 0 || name.length > MAX_SITE_NAME)
    throw invalid('siteName', `must be 1–${MAX_SITE_NAME} characters`)
  // Any other control character (tab, ESC, DEL …) has no business in a subject line either.
  if (hasControlCharacter(name)) throw invalid('siteName', 'must not contain control characters')
  return name
}

function subjectOf(text: string): string {
  return assertHeaderSafe('subject', text)
}

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;')
}

function isoUtc(at: unknown, path: string): string {
  if (typeof at !== 'number' || !Number.isFinite(at)) throw invalid(path, 'must be epoch milliseconds')
  const date = new Date(at)
  if (Number.isNaN(date.getTime())) throw invalid(path, 'must be epoch milliseconds')
  return `${date
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, '')} UTC`
}

function count(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw invalid(path, 'must be a non-negative integer')
  return value
}

function page(title: string, paragraphs: string[], pre?: string[]): string {
  const body = paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')
  const block = pre ? `\n<pre style="font-size:1.1em">${pre.map(escapeHtml).join('\n')}</pre>` : ''
  return `<!doctype html>\n<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>\n<body>\n${body}${block}\n</body></html>\n`
}

/**
 * The one-time email of a fresh batch (opt-in, R-PT-4: it lowers the codes to "mailbox control").
 * Send it only to the user's stored, verified address.
 *
 * @example
 * ```ts
 * const mail = codesEmail({ siteName: 'Example', codes })
 * await mailer.send({ to: storedAddress, ...mail })
 * ```
 * @throws RecoveryCodesError `INVALID_INPUT` for a bad site name or a code that is not a short
 *   printable string.
 */
export function codesEmail(input: { siteName: string; codes: readonly string[] }): EmailContent {
  const siteName = siteNameOf(input?.siteName)
  const codes = input.codes
  if (!Array.isArray(codes) || codes.length === 0 || codes.length > 1000)
    throw invalid('codes', 'must be a non-empty array')
  for (const code of codes) {
    if (typeof code !== 'string' || code.length === 0 || code.length > 64 || hasControlCharacter(code))
      throw invalid('codes', 'must be printable strings of 1–64 characters')
  }
  const lines = [
    `Here are your ${siteName} recovery codes. Each code works once.`,
    'Keep them somewhere safe and private, and delete this email once you have stored them.',
  ]
  const subject = subjectOf(`${siteName}: your recovery codes`)
  return {
    subject,
    text: [
      ...lines,
      '',
      ...codes,
      '',
      'If you did not ask for this email, change your password now.',
      '',
    ].join('\n'),
    html: page(
      subject,
      [...lines, 'If you did not ask for this email, change your password now.'],
      [...codes],
    ),
  }
}

/**
 * The purge report for the administrator (`purge.reportToAdmin`). Counts only.
 *
 * @example
 * ```ts
 * const report = await rc.purge()
 * await mailer.send({ to: adminEmail, ...purgeReportEmail({ siteName, report }) })
 * ```
 */
export function purgeReportEmail(input: { siteName: string; report: PurgeReport }): EmailContent {
  const siteName = siteNameOf(input?.siteName)
  const r = input.report
  if (!r || typeof r !== 'object') throw invalid('report', 'must be a purge report')
  const deleted = count(r.deleted, 'report.deleted')
  const batches = count(r.batchesDeleted ?? 0, 'report.batchesDeleted')
  const attempts = count(r.attemptsDeleted ?? 0, 'report.attemptsDeleted')
  const rounds = count(r.rounds, 'report.rounds')
  const error = typeof r.error === 'string' ? r.error.replace(/[^\w.:-]/g, '').slice(0, 64) : undefined
  const status = error ? `stopped by an error (${error})` : r.done ? 'complete' : 'stopped at the per-run cap'
  const lines = [
    `Recovery-code purge on ${siteName}: ${status}.`,
    `Codes deleted: ${deleted}`,
    `Empty batches deleted: ${batches}`,
    `Expired limiter counters deleted: ${attempts}`,
    `Rounds: ${rounds}`,
  ]
  const subject = subjectOf(`${siteName}: recovery-code purge report`)
  return { subject, text: `${lines.join('\n')}\n`, html: page(subject, lines) }
}

const NOTIFICATION_TEXT: Record<NotificationKind, { subject: string; line: (remaining?: number) => string }> =
  {
    'recovery-login': {
      subject: 'a recovery code was used to sign in',
      line: (n) =>
        `A recovery code was used to sign in to your account${n === undefined ? '' : `; ${n} codes remain`}. Consider generating a new set.`,
    },
    regenerated: {
      subject: 'new recovery codes were generated',
      line: () =>
        'A new set of recovery codes was generated for your account. The previous codes no longer work.',
    },
    'low-codes': {
      subject: 'you are running low on recovery codes',
      line: (n) =>
        `Your account has ${n === undefined ? 'only a few' : n} recovery codes left. Generate a new set soon.`,
    },
    locked: {
      subject: 'recovery-code sign-in locked',
      line: () =>
        'Too many wrong recovery codes were entered for your account; sign-in with a code is paused for a while.',
    },
    disabled: {
      subject: 'your recovery codes were disabled',
      line: () =>
        'Too many wrong recovery codes were entered for your account, so the codes were disabled. Sign in another way and generate a new set.',
    },
  }

/**
 * A security notification (R-AUD-4): recovery login, regeneration, low codes, lockout, disable.
 * Carries no code, no IP and no identifier: only what happened and when.
 *
 * @example
 * ```ts
 * events: { emit: async (e) => {
 *   if (e.name === 'low') await mailer.send({ to, ...notificationEmail({ siteName, kind: 'low-codes', at: e.at, remaining: e.data?.remaining }) })
 * } }
 * ```
 */
export function notificationEmail(input: {
  siteName: string
  kind: NotificationKind
  at: number
  remaining?: number
}): EmailContent {
  const siteName = siteNameOf(input?.siteName)
  const entry = Object.hasOwn(NOTIFICATION_TEXT, input.kind) ? NOTIFICATION_TEXT[input.kind] : undefined
  if (!entry) throw invalid('kind', `must be one of ${Object.keys(NOTIFICATION_TEXT).join(', ')}`)
  const when = isoUtc(input.at, 'at')
  const remaining = input.remaining === undefined ? undefined : count(input.remaining, 'remaining')
  const lines = [
    entry.line(remaining),
    `When: ${when}`,
    'If this was not you, secure your account and contact support.',
  ]
  const subject = subjectOf(`${siteName}: ${entry.subject}`)
  return { subject, text: `${lines.join('\n')}\n`, html: page(subject, lines) }
}
