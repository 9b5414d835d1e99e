/**
 * Security notifications (NIST SP 800-63B-4 §4.2.3, §4.6): each event of a notifying kind sends
 * one email, with a "This wasn't me" link, through the queue when one is configured. Never a code.
 *
 * Once per event: every event gets an id, and the send claims a store counter with a budget of one
 * keyed by a keyed label of that id before it mails. A failed send gives the claim back and throws
 * (the queue retries); a redelivered job whose claim is taken sends nothing. The link token is
 * minted when the message is built, so no queue row ever holds it.
 */
import { RecoveryCodesError } from '../errors.ts'
import type { RecoveryEvent, RecoveryEventName } from '../ports/events.ts'
import type { Job } from '../ports/queue.ts'
import { errorName, type ServiceContext } from './context.ts'
import { renderNotification, repudiationLink } from './notify-templates.ts'
import { usableAddress } from './outbox.ts'
import type { Repudiation } from './repudiate.ts'
import { NOTIFICATION_KINDS, type NotificationKind } from './repudiation-token.ts'

/** Job name of a queued notification. The payload carries ids and the event kind, never a code. */
export const NOTIFY_JOB = 'recovery-codes.notify'

/** The notification kind of each notifying event. */
const KIND_OF: Partial<Record<RecoveryEventName, NotificationKind>> = {
  generated: 'codes-generated',
  used: 'recovery-login',
  low: 'low-codes',
  exhausted: 'exhausted',
  locked: 'locked',
  disabled: 'disabled',
}

/** One notification to send: what a queued job carries. Ids, the kind, small counts; no secret. */
interface Notice {
  id: string
  kind: NotificationKind
  userId: string
  batchId: string | null
  at: number
  remaining: number | null
  replaced: boolean
  retryAfterMs: number | null
}

const ID = /^[0-9a-f]{32}$/
const count = (v: unknown): number | null =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null

/** The notice of a queued payload, or `null` when it is not one of ours. */
function noticeOf(p: Job['payload']): Notice | null {
  const { id, kind, userId, batchId, at } = p
  if (typeof id !== 'string' || !ID.test(id)) return null
  if (typeof kind !== 'string' || !(NOTIFICATION_KINDS as readonly string[]).includes(kind)) return null
  if (typeof userId !== 'string' || userId.length === 0) return null
  if (!(batchId === null || typeof batchId === 'string')) return null
  if (typeof at !== 'number' || !Number.isSafeInteger(at)) return null
  return {
    id,
    kind: kind as NotificationKind,
    userId,
    batchId,
    at,
    remaining: count(p.remaining),
    replaced: p.replaced === true,
    retryAfterMs: count(p.retryAfterMs),
  }
}

function payloadOf(n: Notice): Job['payload'] {
  return {
    id: n.id,
    kind: n.kind,
    userId: n.userId,
    batchId: n.batchId,
    at: n.at,
    ...(n.remaining !== null ? { remaining: n.remaining } : {}),
    ...(n.replaced ? { replaced: true } : {}),
    ...(n.retryAfterMs !== null ? { retryAfterMs: n.retryAfterMs } : {}),
  }
}

/**
 * The service context whose `emit` also notifies: with `notifications` configured, every
 * `generated`, `used`, `low`, `exhausted`, `locked` and `disabled` event is sent to the user.
 * Without it, `sc` unchanged.
 */
export function withNotifications(sc: ServiceContext, repudiation: Repudiation): ServiceContext {
  const options = sc.config.notifications
  if (options === null) return sc
  const { config, store, clock, logger, newId, label, guardStore, audit } = sc
  const kinds = new Set<NotificationKind>(options.kinds)
  const queue = config.queue
  const { linkBaseUrl, contact } = options
  const linkTtlMs = options.linkTtlSeconds * 1000
  // Required with `notifications` (checked by the config).
  const mailer = config.mailer!
  const claimKey = (id: string) => `notify:${label('notify-event', id)}`

  /** The user's stored address, or `null` when there is none usable (a hook failure throws). */
  async function recipientOf(userId: string): Promise<string | null> {
    return usableAddress(config.resolveEmail ? await config.resolveEmail(userId) : null)
  }

  async function emailLog(n: Notice, to: string, now: number, outcome: 'sent' | 'failed'): Promise<void> {
    if (!config.audit.storeEmailLog) return
    try {
      await store.appendEmailLog({
        id: newId(now),
        at: now,
        userId: n.userId,
        // The log's batch id is required: a notice about no batch (a lockout) logs it empty.
        batchId: n.batchId ?? '',
        kind: `notification:${n.kind}`,
        recipient: to,
        outcome,
      })
    } catch (error) {
      logger.error('recovery-codes: email log append failed', { error: errorName(error) })
    }
  }

  async function giveBack(key: string): Promise<void> {
    try {
      await store.settleAttempts({ reset: [key], release: [] })
    } catch (error) {
      // The claim stays taken: a retry finds it and sends nothing (this notice is lost, logged).
      logger.error('recovery-codes: notification claim not released', { error: errorName(error) })
    }
  }

  /**
   * Sends the notice once. Resolves when it was sent, sent before, or has no recipient; throws
   * when it should be retried (a store, hook or mail failure), after giving its claim back.
   */
  async function deliver(n: Notice): Promise<void> {
    const now = clock.now()
    const key = claimKey(n.id)
    const keys = [{ key, maxAttempts: 1 }]
    const claimed = (await guardStore(() => store.reserveAttempts({ keys, now }))).allowed
    if (!claimed) {
      logger.debug('recovery-codes: notification sent already', { kind: n.kind })
      return
    }
    let to: string | null = null
    try {
      to = await recipientOf(n.userId)
      if (to === null) {
        // Nothing to retry: the claim stays taken, the skip is audited.
        logger.warn('recovery-codes: no address for a notification', { kind: n.kind })
        await audit({
          at: now,
          event: 'notification.skipped',
          userId: n.userId,
          batchId: n.batchId,
          outcome: 'info',
          reason: n.kind,
          data: { eventId: n.id, why: 'no-address' },
        })
        return
      }
      const token = repudiation.mint({ userId: n.userId, kind: n.kind, batchId: n.batchId, now })
      const message = renderNotification({
        kind: n.kind,
        siteName: config.siteName,
        at: n.at,
        remaining: n.remaining,
        replaced: n.replaced,
        retryAfterMs: n.retryAfterMs,
        link: repudiationLink(linkBaseUrl, token),
        linkExpiresAt: now + linkTtlMs,
        contact,
        endsSessions: config.onRepudiated !== null,
      })
      await mailer.send({ to, subject: message.subject, text: message.text, html: message.html })
    } catch (error) {
      await giveBack(key)
      logger.error('recovery-codes: notification failed', { kind: n.kind, error: errorName(error) })
      if (to !== null) {
        await emailLog(n, to, now, 'failed')
        await audit({
          at: now,
          event: 'notification.sent',
          userId: n.userId,
          batchId: n.batchId,
          outcome: 'failure',
          reason: n.kind,
          data: { eventId: n.id, error: errorName(error) },
        })
      }
      throw error instanceof RecoveryCodesError
        ? error
        : new RecoveryCodesError('MAIL_FAILED', 'The notification could not be sent.', { cause: error })
    }
    // Sent: from here nothing throws, so the queue records the job as done.
    await emailLog(n, to, now, 'sent')
    await audit({
      at: now,
      event: 'notification.sent',
      userId: n.userId,
      batchId: n.batchId,
      outcome: 'success',
      reason: n.kind,
      data: { eventId: n.id },
    })
  }

  async function handleNotifyJob(payload: Job['payload']): Promise<void> {
    const n = noticeOf(payload)
    if (n === null) {
      logger.warn('recovery-codes: malformed notification job dropped')
      return
    }
    await deliver(n)
  }

  if (queue) queue.handle(NOTIFY_JOB, handleNotifyJob)

  async function notify(
    kind: NotificationKind,
    at: number,
    userId: string,
    batchId: string | null,
    data: RecoveryEvent['data'],
  ): Promise<void> {
    try {
      const n: Notice = {
        id: newId(at),
        kind,
        userId,
        batchId,
        at,
        remaining: count(data?.remaining),
        replaced: data?.replaced === true,
        retryAfterMs: count(data?.retryAfterMs),
      }
      if (queue) await queue.enqueue({ name: NOTIFY_JOB, payload: payloadOf(n) })
      else await deliver(n)
    } catch (error) {
      logger.error('recovery-codes: notification not delivered', { kind, error: errorName(error) })
    }
  }

  function emit(
    name: RecoveryEventName,
    at: number,
    userId: string | null,
    batchId: string | null,
    data?: RecoveryEvent['data'],
  ): Promise<void> {
    const sent = sc.emit(name, at, userId, batchId, data)
    const kind = KIND_OF[name]
    // Not a notifying event (or no user, or a kind not chosen): the sink's promise as it is.
    if (kind === undefined || userId === null || !kinds.has(kind)) return sent
    return sent.then(() => notify(kind, at, userId, batchId, data))
  }

  return { ...sc, emit }
}
