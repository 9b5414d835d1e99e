/**
 * Service conformance, delivery: a batch downloads and emails once under concurrency, the reveal
 * slot answers `REVEAL_UNAVAILABLE` alike whatever closed it, a queued email carries ids only, and
 * the recipient is the host's, never the caller's.
 */
import { isRecoveryCodesError, normalize, type RecoveryCodes } from '@recovery-codes/core'
import { createStorage } from 'unstorage'
import { describe, expect, it } from 'vitest'
import { startTogether } from '../barrier.ts'
import { createRecordingMailer } from '../mailer.ts'
import { createInlineQueue } from '../queue.ts'
import { DAY, type ServiceSuite } from './harness.ts'

/** Registers the `download and email once` block inside the running `describe` block. */
export function deliveryTests(suite: ServiceSuite): void {
  const { make, batchFor } = suite

  describe('download and email once', () => {
    function withMail() {
      const mailer = createRecordingMailer()
      const h = make({
        email: { enabled: true, from: 'codes@example.test' },
        mailer,
        resolveEmail: async () => 'owner@example.test',
      })
      return { ...h, mailer }
    }

    it('20 concurrent downloads: exactly one succeeds; 20 concurrent emails: exactly one', async () => {
      const h = withMail()
      const b = await batchFor(h)
      const downloads = await startTogether(
        Array.from(
          { length: 20 },
          () => () => h.rc.exportCodes({ userId: b.userId, reveal: b.reveal, format: 'txt' }),
        ),
      )
      expect(downloads.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
      for (const r of downloads) {
        if (r.status === 'rejected') expect(isRecoveryCodesError(r.reason, 'ALREADY_DONE')).toBe(true)
      }
      const h2 = withMail()
      const b2 = await batchFor(h2)
      const emails = await startTogether(
        Array.from({ length: 20 }, () => () => h2.rc.emailCodes({ userId: b2.userId, reveal: b2.reveal })),
      )
      expect(emails.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
      expect(h2.mailer.messages).toHaveLength(1)
    })

    it('after logout, a new batch or the TTL the slot answers the same REVEAL_UNAVAILABLE', async () => {
      const h = withMail()
      const codeOf = async (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e) => (isRecoveryCodesError(e) ? e.code : 'other'),
        )
      const a = await batchFor(h)
      await h.rc.discardReveal({ reveal: a.reveal })
      expect(await codeOf(h.rc.exportCodes({ userId: a.userId, reveal: a.reveal }))).toBe(
        'REVEAL_UNAVAILABLE',
      )
      const b = await batchFor(h)
      h.clock.advance(DAY)
      await batchFor(h, b.userId)
      expect(await codeOf(h.rc.exportCodes({ userId: b.userId, reveal: b.reveal }))).toBe(
        'REVEAL_UNAVAILABLE',
      )
      expect(await codeOf(h.rc.emailCodes({ userId: b.userId, reveal: b.reveal }))).toBe('REVEAL_UNAVAILABLE')
      const c = await batchFor(h)
      h.clock.set(c.revealExpiresAt)
      expect(await codeOf(h.rc.exportCodes({ userId: c.userId, reveal: c.reveal }))).toBe(
        'REVEAL_UNAVAILABLE',
      )
      // Another user's token is no use either.
      const d = await batchFor(h)
      const e = await batchFor(h)
      expect(await codeOf(h.rc.exportCodes({ userId: e.userId, reveal: d.reveal }))).toBe(
        'REVEAL_UNAVAILABLE',
      )
    })

    it('through a queue: the job carries ids only, the mail goes once, the outbox is emptied', async () => {
      const mailer = createRecordingMailer()
      const queue = createInlineQueue()
      const cache = createStorage()
      const h = make({
        email: { enabled: true, from: 'codes@example.test' },
        mailer,
        queue,
        cache,
        resolveEmail: async () => 'owner@example.test',
      })
      const b = await batchFor(h)
      expect(await h.rc.emailCodes({ userId: b.userId, reveal: b.reveal })).toEqual({
        sentTo: 'owner@example.test',
        queued: true,
      })
      await queue.idle()
      expect(mailer.messages).toHaveLength(1)
      expect(b.codes.every((c) => mailer.messages[0]!.text.includes(c))).toBe(true)
      const payloads = JSON.stringify(queue.jobs)
      for (const c of b.codes)
        expect(payloads.includes(c) || payloads.includes(normalize(c, h.rc.config.format)!)).toBe(false)
      expect((await cache.getKeys()).filter((k) => k.includes('outbox'))).toEqual([])
    })

    it('a recipient passed by the caller is ignored', async () => {
      const h = withMail()
      const b = await batchFor(h)
      const input = {
        userId: b.userId,
        reveal: b.reveal,
        to: 'attacker@evil.test',
        email: 'attacker@evil.test',
      }
      await h.rc.emailCodes(input as Parameters<RecoveryCodes['emailCodes']>[0])
      expect(h.mailer.messages.map((m) => m.to)).toEqual(['owner@example.test'])
    })
  })
}
