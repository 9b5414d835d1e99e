/**
 * The security notification messages (issue 16, NIST SP 800-63B-4 §4.2.3, §4.6): pure functions
 * from what happened to a subject, a plain-text body and an HTML body. A message says what
 * happened and when, what to do, and carries the "This wasn't me" link, its expiry and the host's
 * contact instructions. It never holds a code, a digest or a secret: nothing here receives one.
 */
import type { NotificationKind } from './repudiation-token.ts'

/** What a message is built from. Every field is safe to show; none is a code or a secret. */
export interface NotificationContent {
  readonly kind: NotificationKind
  readonly siteName: string
  /** When the event happened (epoch ms). */
  readonly at: number
  /** Usable codes left, when the event says. */
  readonly remaining?: number | null
  /** A replacement code was issued (NIST SP 800-63B-4 §4.2.1.1). */
  readonly replaced?: boolean
  /** How long the lockout lasts (ms), for `locked`. */
  readonly retryAfterMs?: number | null
  /** The full "This wasn't me" URL. */
  readonly link: string
  /** When the link stops working (epoch ms). */
  readonly linkExpiresAt: number
  /** The host's instructions and contact, shown in every message. */
  readonly contact: string
  /** The link also ends the user's sessions (the host set `onRepudiated`). @default false */
  readonly endsSessions?: boolean
}

/** A rendered message. */
export interface NotificationMessage {
  readonly subject: string
  readonly text: string
  readonly html: string
}

/** `2026-12-07 11:09:59 UTC`: the time in UTC, to the second. */
export function formatUtc(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`
}

/** A duration in words, rounded up to the minute (`15 minutes`, `2 hours`, `1 hour 5 minutes`). */
export function formatDuration(ms: number): string {
  const minutes = Math.max(1, Math.ceil(ms / 60_000))
  const hours = Math.floor(minutes / 60)
  const rest = minutes % 60
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`
  if (hours === 0) return unit(rest, 'minute')
  return rest === 0 ? unit(hours, 'hour') : `${unit(hours, 'hour')} ${unit(rest, 'minute')}`
}

/** HTML-escapes text for an element body or a double-quoted attribute. */
export function escapeHtml(s: string): string {
  return s
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;')
}

/** The "This wasn't me" URL: `base?token=…` (`&token=…` when the base has a query already). */
export function repudiationLink(linkBaseUrl: string, token: string): string {
  return `${linkBaseUrl}${linkBaseUrl.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`
}

/** Removes control characters (a header-bound subject never carries CR/LF). */
function oneLine(s: string): string {
  let out = ''
  for (const ch of s) {
    const c = ch.charCodeAt(0)
    out += c < 0x20 || c === 0x7f || c === 0x2028 || c === 0x2029 ? ' ' : ch
  }
  return out
}

const codesLeft = (n: number) => (n === 1 ? '1 recovery code left' : `${n} recovery codes left`)

/** Subject, what happened (paragraphs) and what to do when it was you, per kind. */
function partsOf(c: NotificationContent): { subject: string; happened: string[]; todo: string[] } {
  const remaining = typeof c.remaining === 'number' ? c.remaining : null
  switch (c.kind) {
    case 'recovery-login':
      return {
        subject: 'a recovery code was used to sign in',
        happened: [
          'A recovery code was used to sign in to your account.',
          ...(c.replaced
            ? ['A replacement recovery code was issued in its place; it was shown once, at that sign-in.']
            : []),
          ...(remaining !== null ? [`You have ${codesLeft(remaining)}.`] : []),
        ],
        todo: [
          'If this was you, there is nothing more to do. Consider setting up your usual sign-in method again.',
        ],
      }
    case 'codes-generated':
      return {
        subject: c.replaced ? 'a replacement recovery code was issued' : 'new recovery codes were generated',
        happened: c.replaced
          ? ['A replacement recovery code was issued for your account.']
          : [
              'New recovery codes were generated for your account. Any recovery codes you had before no longer work.',
            ],
        todo: ['If this was you, keep the new codes somewhere safe and private.'],
      }
    case 'low-codes':
      return {
        subject: 'you are running low on recovery codes',
        happened: [
          remaining !== null ? `You have ${codesLeft(remaining)}.` : 'You are running low on recovery codes.',
        ],
        todo: ['Sign in and generate a new set of recovery codes before you run out.'],
      }
    case 'exhausted':
      return {
        subject: 'you have used all your recovery codes',
        happened: ['The last of your recovery codes was used. You have no recovery codes left.'],
        todo: ['Sign in and generate a new set of recovery codes.'],
      }
    case 'locked':
      return {
        subject: 'sign-in with recovery codes was locked',
        happened: [
          'Too many wrong recovery codes were entered for your account, so signing in with a recovery code was locked' +
            (typeof c.retryAfterMs === 'number' && c.retryAfterMs > 0
              ? ` for ${formatDuration(c.retryAfterMs)}.`
              : ' for a while.'),
        ],
        todo: ['If this was you, wait until the lock ends and try again with an unused code.'],
      }
    case 'disabled':
      return {
        subject: 'your recovery codes were disabled',
        happened: [
          'Too many wrong recovery codes were entered for your account, so your recovery codes were disabled. None of them works any more.',
        ],
        todo: ['Sign in another way and generate a new set of recovery codes.'],
      }
  }
}

/**
 * The message of one notification.
 *
 * @example renderNotification({ kind: 'locked', siteName: 'Example', at, link, linkExpiresAt, contact })
 */
export function renderNotification(c: NotificationContent): NotificationMessage {
  const { subject, happened, todo } = partsOf(c)
  const when = formatUtc(c.at)
  const expires = formatUtc(c.linkExpiresAt)
  const wasntMe = `If this wasn't you, open the link below and confirm. It disables your recovery codes${
    c.endsSessions ? ' and signs you out everywhere' : ''
  }.`
  const linkNote = `The link works once, until ${expires}.`
  const never = 'We will never ask you for a recovery code by email or phone; do not share your codes.'
  const text = [
    `${c.siteName} security notice`,
    '',
    `When: ${when}`,
    '',
    ...happened,
    '',
    ...todo,
    '',
    wasntMe,
    '',
    c.link,
    '',
    linkNote,
    '',
    c.contact,
    '',
    never,
    '',
  ].join('\n')
  const p = (s: string) => `<p>${escapeHtml(s)}</p>`
  const href = escapeHtml(c.link)
  const html = [
    '<!doctype html>',
    `<html><head><meta charset="utf-8"><title>${escapeHtml(`${c.siteName}: ${subject}`)}</title></head><body>`,
    `<h1>${escapeHtml(`${c.siteName} security notice`)}</h1>`,
    p(`When: ${when}`),
    ...happened.map(p),
    ...todo.map(p),
    p(wasntMe),
    `<p><a href="${href}">This wasn't me</a></p>`,
    `<p>${href}</p>`,
    p(linkNote),
    p(c.contact),
    p(never),
    '</body></html>',
    '',
  ].join('\n')
  return { subject: oneLine(`${c.siteName}: ${subject}`), text, html }
}
