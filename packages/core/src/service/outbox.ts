/**
 * Emailing codes: the recipient, the send itself with its log, audit row and event, and the queued
 * path. A queued job carries an outbox id only; the codes wait in the cache, sealed under a key
 * derived from the pepper, and are deleted once sent.
 */
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { RecoveryCodesError } from '../errors.ts'
import type { JobHandler } from '../ports/queue.ts'
import { errorName, type ServiceContext } from './context.ts'
import { newNonce, openReveal, sealCodes } from './reveal.ts'
import type { RequestContext } from './types.ts'

/** Job name of a queued codes email. The payload carries ids, never codes. */
export const EMAIL_JOB = 'recovery-codes.email-codes'

const OUTBOX_TTL_MS = 86_400_000

/** What {@link createOutbox} returns. */
export interface Outbox {
  /** The user's stored address. Throws `NOT_FOUND` when there is none usable. */
  recipientOf(userId: string): Promise<string>
  /** Sends the codes email once; records the email log, the audit row and the event. */
  deliverCodes(input: {
    userId: string
    to: string
    batchId: string
    codes: readonly string[]
    now: number
    ctx?: RequestContext
  }): Promise<boolean>
  /** Seals the codes into the outbox, enqueues an {@link EMAIL_JOB} and audits it. */
  queueCodes(input: {
    userId: string
    batchId: string
    codes: readonly string[]
    now: number
    ctx: RequestContext
  }): Promise<void>
  /** The {@link EMAIL_JOB} handler: delivers from the outbox; throws so the queue retries. */
  handleEmailJob: JobHandler
}

/** Builds the email delivery of one service. Only used with a mailer configured. */
export function createOutbox(sc: ServiceContext): Outbox {
  const { config, store, cache, clock, random, logger, labelKey, userLabel, newId, guardStore, audit, emit } =
    sc

  const outboxSlotKey = (outboxId: string) => `rc:outbox:${outboxId}`
  const outboxKey = (outboxId: string) =>
    hmac(sha256, labelKey, new TextEncoder().encode(`rc1-outbox\0${outboxId}`))

  async function recipientOf(userId: string): Promise<string> {
    const to = usableAddress(
      config.resolveEmail ? await guardStore(() => config.resolveEmail!(userId)) : null,
    )
    if (to === null)
      throw new RecoveryCodesError('NOT_FOUND', 'No email address is on file for this account.')
    return to
  }

  async function deliverCodes(input: {
    userId: string
    to: string
    batchId: string
    codes: readonly string[]
    now: number
    ctx?: RequestContext
  }): Promise<boolean> {
    const { userId, to, batchId, now } = input
    let outcome: 'sent' | 'failed' = 'sent'
    try {
      await config.mailer!.send({
        to,
        subject: `${config.siteName}: your recovery codes`,
        text: [
          `Your ${config.siteName} recovery codes. Each works once; keep them private.`,
          '',
          ...input.codes,
          '',
        ].join('\n'),
      })
    } catch (error) {
      outcome = 'failed'
      logger.error('recovery-codes: mail failed', { error: errorName(error) })
    }
    if (config.audit.storeEmailLog) {
      // After a send nothing may throw: a retried job would email the codes a second time.
      try {
        await store.appendEmailLog({
          id: newId(now),
          at: now,
          userId,
          batchId,
          kind: 'codes',
          recipient: to,
          outcome,
        })
      } catch (error) {
        logger.error('recovery-codes: email log append failed', { error: errorName(error) })
      }
    }
    await audit({
      at: now,
      event: 'batch.emailed',
      userId,
      batchId,
      outcome: outcome === 'sent' ? 'success' : 'failure',
      ...(input.ctx ? { ctx: input.ctx } : {}),
    })
    if (outcome === 'sent') await emit('emailed', now, userId, batchId)
    return outcome === 'sent'
  }

  async function queueCodes(input: {
    userId: string
    batchId: string
    codes: readonly string[]
    now: number
    ctx: RequestContext
  }): Promise<void> {
    const { userId, batchId, now } = input
    const outboxId = newId()
    const owner = userLabel(userId)
    const slot = sealCodes({
      key: outboxKey(outboxId),
      nonce: newNonce(random),
      owner,
      batchId,
      codes: input.codes,
      expiresAt: now + OUTBOX_TTL_MS,
    })
    await cache.setItem(outboxSlotKey(outboxId), slot, { ttl: OUTBOX_TTL_MS / 1000 })
    await config.queue!.enqueue({
      name: EMAIL_JOB,
      payload: { outboxId, userId, batchId },
    })
    await audit({
      at: now,
      event: 'batch.email.queued',
      userId,
      batchId,
      outcome: 'info',
      ctx: input.ctx,
    })
  }

  async function handleEmailJob(payload: Parameters<JobHandler>[0]): Promise<void> {
    const { outboxId, userId, batchId } = payload
    if (typeof outboxId !== 'string' || typeof userId !== 'string' || typeof batchId !== 'string') return
    const now = clock.now()
    const raw = await cache.getItem(outboxSlotKey(outboxId))
    const content = openReveal({ key: outboxKey(outboxId) }, raw, userLabel(userId), now)
    if (!content || content.batchId !== batchId) {
      logger.warn('recovery-codes: queued email expired before delivery', { batchId })
      return
    }
    const sent = await deliverCodes({
      userId,
      to: await recipientOf(userId),
      batchId,
      codes: content.codes,
      now,
    })
    // A failure throws so the queue retries with backoff; the outbox expires on its own.
    if (!sent) throw new RecoveryCodesError('MAIL_FAILED', 'The email could not be sent.')
    try {
      await cache.removeItem(outboxSlotKey(outboxId))
    } catch (error) {
      // Sent already: a failed removal must not fail the job (a retry would send again); the
      // outbox entry expires on its own.
      logger.warn('recovery-codes: outbox removal failed', { error: errorName(error) })
    }
  }

  return { recipientOf, deliverCodes, queueCodes, handleEmailJob }
}

/** What `resolveEmail` returned, when it is an address a message can go to; else `null`. */
export function usableAddress(to: unknown): string | null {
  return typeof to === 'string' && to.length > 0 && to.length <= 254 && !/[\r\n\0]/.test(to) ? to : null
}
