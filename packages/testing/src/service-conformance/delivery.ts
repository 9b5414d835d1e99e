/**
 * Service conformance, delivery: the reveal slot's channels (the view, each download format, the
 * email) each work once, in any order, under concurrency and across instances sharing one cache;
 * the slot answers `REVEAL_UNAVAILABLE` alike whatever closed it; a queued email carries ids only;
 * the recipient is the host's, never the caller's.
 */
import {
  isRecoveryCodesError,
  normalize,
  type RecoveryCodes,
  type RecoveryCodesConfig,
  type RevealChannel,
} from '@recovery-codes/core'
import { createStorage } from 'unstorage'
import { describe, expect, it } from 'vitest'
import { startTogether } from '../barrier.ts'
import { createEventRecorder } from '../events.ts'
import { createRecordingMailer } from '../mailer.ts'
import { permutations } from '../permutations.ts'
import { createInlineQueue } from '../queue.ts'
import { DAY, type ServiceSuite } from './harness.ts'

/** Every channel of a slot in the suite's setup (pdf is configured, email enabled). */
const CHANNELS: readonly RevealChannel[] = ['view', 'txt', 'csv', 'pdf', 'email']

/** One use of `channel` of the slot behind `reveal`. */
export function useChannel(
  rc: RecoveryCodes,
  input: { userId: string; reveal: string },
  channel: RevealChannel,
): Promise<unknown> {
  const { userId, reveal } = input
  if (channel === 'view') return rc.viewCodes({ userId, reveal })
  if (channel === 'email') return rc.emailCodes({ userId, reveal })
  return rc.exportCodes({ userId, reveal, format: channel })
}

/** `'ok'`, or the error code of a rejection (`'other'` for a foreign error). */
export function outcomeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (e) => (isRecoveryCodesError(e) ? e.code : 'other'),
  )
}

/** Registers the `reveal channels` block inside the running `describe` block. */
export function deliveryTests(suite: ServiceSuite): void {
  const { make, batchFor } = suite

  describe('reveal channels: view, each format and email, once each', () => {
    function withMail(overrides: Partial<RecoveryCodesConfig> = {}) {
      const mailer = createRecordingMailer()
      const h = make({
        email: { enabled: true, from: 'codes@example.test' },
        mailer,
        resolveEmail: async () => 'owner@example.test',
        ...overrides,
      })
      return { ...h, mailer }
    }
    const text = (body: Uint8Array) => new TextDecoder('latin1').decode(body)

    it('every order of view, .txt, .pdf and email: each succeeds once, with the codes; a repeat is ALREADY_DONE', async () => {
      const h = withMail()
      const orders = permutations(['view', 'txt', 'pdf', 'email'] as const)
      expect(orders).toHaveLength(24)
      for (const order of orders) {
        const b = await batchFor(h)
        const sent = h.mailer.messages.length
        for (const channel of order) {
          const out = await useChannel(h.rc, b, channel).catch((e) => e)
          expect(isRecoveryCodesError(out), `${order.join(' → ')}: ${channel}`).toBe(false)
          if (channel === 'view') expect((out as { codes: string[] }).codes).toEqual(b.codes)
          if (channel === 'txt')
            for (const c of b.codes) expect(text((out as { body: Uint8Array }).body)).toContain(c)
          if (channel === 'pdf') expect(text((out as { body: Uint8Array }).body.slice(0, 5))).toBe('%PDF-')
          if (channel === 'email') {
            expect(h.mailer.messages).toHaveLength(sent + 1)
            for (const c of b.codes) expect(h.mailer.last()!.text).toContain(c)
          }
        }
        // `.csv` is still open, so the slot lives: each repeat is this channel's ALREADY_DONE.
        for (const channel of order) {
          expect(
            await outcomeOf(useChannel(h.rc, b, channel)),
            `${order.join(' → ')}: ${channel} again`,
          ).toBe('ALREADY_DONE')
        }
        expect(h.mailer.messages).toHaveLength(sent + 1)
        expect(await h.rc.revealStatus(b)).toMatchObject({
          open: ['csv'],
          used: CHANNELS.filter((c) => c !== 'csv'),
        })
        const active = (await h.rc.status({ userId: b.userId })).active
        expect(active).toMatchObject({ viewed: true, downloaded: true, emailed: true })
        // The last channel spends the slot: from then on every channel, and the status, say it is gone.
        expect(await outcomeOf(useChannel(h.rc, b, 'csv'))).toBe('ok')
        for (const channel of CHANNELS) {
          expect(await outcomeOf(useChannel(h.rc, b, channel))).toBe('REVEAL_UNAVAILABLE')
        }
        expect(await outcomeOf(h.rc.revealStatus(b))).toBe('REVEAL_UNAVAILABLE')
      }
    })

    it('downloadedAt is the first download of any format; every use is audited and emitted once', async () => {
      const events = createEventRecorder()
      const h = withMail({ events })
      const b = await batchFor(h)
      const first = h.clock.now()
      await h.rc.exportCodes({ userId: b.userId, reveal: b.reveal, format: 'pdf' })
      h.clock.advance(1_000)
      await h.rc.exportCodes({ userId: b.userId, reveal: b.reveal, format: 'txt' })
      await h.rc.viewCodes({ userId: b.userId, reveal: b.reveal })
      const batch = await h.store.getActiveBatch(b.userId)
      expect(batch).toMatchObject({ downloadedAt: first, viewedAt: first + 1_000, emailedAt: null })
      const downloads = (await h.store.listAudit({ limit: 100, userId: b.userId, event: 'batch.downloaded' }))
        .map((r) => r.data?.format)
        .sort()
      expect(downloads).toEqual(['pdf', 'txt'])
      expect(events.ofName('downloaded').map((e) => e.data?.format)).toEqual(['pdf', 'txt'])
      expect(events.ofName('viewed')).toHaveLength(1)
      await outcomeOf(h.rc.exportCodes({ userId: b.userId, reveal: b.reveal, format: 'txt' }))
      expect(events.ofName('downloaded')).toHaveLength(2)
    })

    it('20 concurrent uses of one channel: exactly one succeeds, the other 19 are ALREADY_DONE (each channel)', async () => {
      const h = withMail()
      for (const channel of CHANNELS) {
        const b = await batchFor(h)
        const sent = h.mailer.messages.length
        const results = await startTogether(
          Array.from({ length: 20 }, () => () => useChannel(h.rc, b, channel)),
        )
        expect(
          results.filter((r) => r.status === 'fulfilled'),
          channel,
        ).toHaveLength(1)
        for (const r of results) {
          if (r.status === 'rejected')
            expect(isRecoveryCodesError(r.reason, 'ALREADY_DONE'), channel).toBe(true)
        }
        if (channel === 'email') expect(h.mailer.messages).toHaveLength(sent + 1)
        // The other channels are untouched.
        expect((await h.rc.revealStatus(b)).used).toEqual([channel])
      }
    })

    it('every channel at once, 8 calls each: exactly one success per channel, then the slot is gone', async () => {
      const h = withMail()
      const b = await batchFor(h)
      const calls = CHANNELS.flatMap((channel) =>
        Array.from({ length: 8 }, () => ({ channel, run: () => useChannel(h.rc, b, channel) })),
      )
      const results = await startTogether(calls.map((c) => c.run))
      for (const channel of CHANNELS) {
        const mine = results.filter((_, i) => calls[i]!.channel === channel)
        expect(
          mine.filter((r) => r.status === 'fulfilled'),
          channel,
        ).toHaveLength(1)
        for (const r of mine) {
          if (r.status === 'rejected') {
            expect(
              isRecoveryCodesError(r.reason, 'ALREADY_DONE') ||
                isRecoveryCodesError(r.reason, 'REVEAL_UNAVAILABLE'),
              channel,
            ).toBe(true)
          }
        }
      }
      expect(h.mailer.messages).toHaveLength(1)
      for (const channel of CHANNELS) {
        expect(await outcomeOf(useChannel(h.rc, b, channel))).toBe('REVEAL_UNAVAILABLE')
      }
    })

    it('two instances over one store and one shared cache: exactly one success per channel', async () => {
      const cache = createStorage()
      const mailer = createRecordingMailer()
      const config = {
        email: { enabled: true, from: 'codes@example.test' },
        mailer,
        resolveEmail: async () => 'owner@example.test',
        cache,
      }
      const a = make(config)
      const b = make(config)
      const batch = await batchFor(a)
      // The slot written by one instance opens on the other.
      expect((await b.rc.revealStatus(batch)).open).toEqual(CHANNELS)
      const calls = CHANNELS.flatMap((channel) =>
        [a, b, a, b, a, b].map((h) => ({ channel, run: () => useChannel(h.rc, batch, channel) })),
      )
      const results = await startTogether(calls.map((c) => c.run))
      for (const channel of CHANNELS) {
        const wins = results.filter((r, i) => calls[i]!.channel === channel && r.status === 'fulfilled')
        expect(wins, channel).toHaveLength(1)
      }
      expect(mailer.messages).toHaveLength(1)
      expect((await cache.getKeys()).filter((k) => k.includes('reveal:'))).toEqual([])
    })

    it('a format or email that is refused (not offered, no address) uses nothing up', async () => {
      let address: string | null = null
      const h = withMail({ export: { pdf: null }, resolveEmail: async () => address })
      const b = await batchFor(h)
      expect(await outcomeOf(useChannel(h.rc, b, 'pdf'))).toBe('FEATURE_DISABLED')
      expect(await outcomeOf(useChannel(h.rc, b, 'email'))).toBe('NOT_FOUND')
      expect(await h.rc.revealStatus(b)).toMatchObject({ open: ['view', 'txt', 'csv', 'email'], used: [] })
      address = 'owner@example.test'
      for (const channel of ['email', 'txt', 'view', 'csv'] as const) {
        expect(await outcomeOf(useChannel(h.rc, b, channel)), channel).toBe('ok')
      }
      // Every offered channel used: the slot is gone.
      expect(await outcomeOf(useChannel(h.rc, b, 'view'))).toBe('REVEAL_UNAVAILABLE')
    })

    it('after logout, a new batch, deleting the batch or the TTL, every channel answers REVEAL_UNAVAILABLE', async () => {
      const h = withMail()
      const allGone = async (x: { userId: string; reveal: string }, why: string) => {
        for (const channel of CHANNELS) {
          expect(await outcomeOf(useChannel(h.rc, x, channel)), `${why}: ${channel}`).toBe(
            'REVEAL_UNAVAILABLE',
          )
        }
        expect(await outcomeOf(h.rc.revealStatus(x)), why).toBe('REVEAL_UNAVAILABLE')
      }
      // Logout (discardReveal), also after a channel was used: gone, not ALREADY_DONE.
      const a = await batchFor(h)
      await h.rc.viewCodes(a)
      await h.rc.discardReveal({ reveal: a.reveal })
      await allGone(a, 'logout')
      // A newer batch.
      const b = await batchFor(h)
      await h.rc.exportCodes({ userId: b.userId, reveal: b.reveal, format: 'txt' })
      h.clock.advance(DAY)
      const newer = await batchFor(h, b.userId)
      await allGone(b, 'new batch')
      expect(await outcomeOf(h.rc.viewCodes(newer))).toBe('ok')
      // The batch deleted.
      const d = await batchFor(h)
      await h.rc.deleteBatch({ userId: d.userId })
      await allGone(d, 'batch deleted')
      // The TTL: open until the instant before `revealExpiresAt`, gone from it on.
      const c = await batchFor(h)
      h.clock.set(c.revealExpiresAt - 1)
      expect(await outcomeOf(h.rc.exportCodes({ userId: c.userId, reveal: c.reveal, format: 'csv' }))).toBe(
        'ok',
      )
      h.clock.set(c.revealExpiresAt)
      await allGone(c, 'ttl')
      // Another user's token is no use either.
      const e = await batchFor(h)
      const f = await batchFor(h)
      await allGone({ userId: f.userId, reveal: e.reveal }, "another user's token")
      expect(await outcomeOf(h.rc.viewCodes(e))).toBe('ok')
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
      // The queued email used the email channel only.
      expect(await outcomeOf(h.rc.emailCodes({ userId: b.userId, reveal: b.reveal }))).toBe('ALREADY_DONE')
      expect(await outcomeOf(h.rc.viewCodes(b))).toBe('ok')
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
