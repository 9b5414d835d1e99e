/**
 * HTTP adapter conformance, the reveal routes: the view, each download format and the email work
 * once each, in every order (200, then 409 `ALREADY_DONE` on a repeat); 410 `REVEAL_UNAVAILABLE`
 * once the slot is gone (every channel used, logout, a newer batch, the TTL); 20 concurrent uses of
 * one channel give exactly one 200.
 */
import { expect, it } from 'vitest'
import { permutations } from '../permutations.ts'
import { DAY, errorCode, type Harness, type HarnessSetup } from './harness.ts'

type Channel = 'view' | 'txt' | 'csv' | 'pdf' | 'email'
/** Every channel in the harness's setup (pdf is configured, email enabled). */
const CHANNELS: readonly Channel[] = ['view', 'txt', 'csv', 'pdf', 'email']

const CONTENT_TYPES: Record<Channel, RegExp> = {
  view: /^application\/json/,
  txt: /^text\/plain/,
  csv: /^text\/csv/,
  pdf: /^application\/pdf/,
  email: /^application\/json/,
}

function request(h: Harness, cookie: string, channel: Channel): Promise<Response> {
  if (channel === 'view') return h.post('/codes/view', {}, { cookie })
  if (channel === 'email') return h.post('/email', {}, { cookie })
  return h.post('/download', { format: channel }, { cookie })
}

/** Generates a batch for the session without viewing it (the harness's `batch` views it). */
async function generate(h: Harness, cookie: string): Promise<void> {
  const g = await h.post('/generate', {}, { cookie })
  expect(g.status).toBe(201)
}

/** Registers the reveal-route tests inside the running `describe` block. */
export function onceOnlyTests(setup: HarnessSetup): void {
  it('every order of view, .txt, .pdf and email: 200 once each, a repeat 409 ALREADY_DONE, then 410 once all are used and confirmed', async () => {
    const h = await setup()
    const orders = permutations(['view', 'txt', 'pdf', 'email'] as const)
    expect(orders).toHaveLength(24)
    for (const [i, order] of orders.entries()) {
      const cookie = h.login(`user-${i}`)
      await generate(h, cookie)
      const label = order.join(' → ')
      for (const channel of order) {
        const r = await request(h, cookie, channel)
        expect(r.status, `${label}: ${channel}`).toBe(200)
        expect(r.headers.get('content-type'), `${label}: ${channel}`).toMatch(CONTENT_TYPES[channel])
        expect(r.headers.get('cache-control')).toBe('no-store')
        await r.arrayBuffer()
      }
      for (const channel of order) {
        const r = await request(h, cookie, channel)
        expect([r.status, await errorCode(r)], `${label}: ${channel} again`).toEqual([409, 'ALREADY_DONE'])
      }
      // `.csv` was the last open channel; the confirm was the slot's last use: after it the slot
      // is gone for every route.
      expect((await request(h, cookie, 'csv')).status).toBe(200)
      expect((await h.post('/confirm', {}, { cookie })).status, `${label}: confirm`).toBe(200)
      for (const channel of CHANNELS) {
        const r = await request(h, cookie, channel)
        expect([r.status, await errorCode(r)], `${label}: ${channel} after all`).toEqual([
          410,
          'REVEAL_UNAVAILABLE',
        ])
      }
    }
    expect(h.mailer.messages).toHaveLength(24)
  })

  it('after logout, a newer batch or the TTL, every reveal route is 410 REVEAL_UNAVAILABLE', async () => {
    const h = await setup()
    const allGone = async (cookie: string, why: string) => {
      for (const channel of CHANNELS) {
        const r = await request(h, cookie, channel)
        expect([r.status, await errorCode(r)], `${why}: ${channel}`).toEqual([410, 'REVEAL_UNAVAILABLE'])
      }
    }
    // Logout: the host's logout helper discards the slot (the token left in the session is no use).
    const alice = h.login('alice')
    await generate(h, alice)
    expect((await request(h, alice, 'view')).status).toBe(200)
    const session = h.sessions.get(alice.split('=')[1]!)!
    await h.rc.discardReveal({ reveal: session.reveal })
    await allGone(alice, 'logout')
    // A newer batch, generated from another session of the same user.
    const bob = h.login('bob')
    await generate(h, bob)
    expect((await request(h, bob, 'txt')).status).toBe(200)
    h.clock.advance(DAY)
    const bobElsewhere = h.login('bob')
    await generate(h, bobElsewhere)
    await allGone(bob, 'newer batch')
    expect((await request(h, bobElsewhere, 'txt')).status).toBe(200)
    // The TTL.
    const carol = h.login('carol')
    const g = await h.post('/generate', {}, { cookie: carol })
    const { revealExpiresAt } = (await g.json()) as { revealExpiresAt: number }
    h.clock.set(revealExpiresAt)
    await allGone(carol, 'ttl')
  })

  it('20 concurrent downloads of one format: exactly one 200, the other 19 are 409', async () => {
    const h = await setup()
    const alice = h.login('alice')
    await h.batch(alice)
    const results = await Promise.all(
      Array.from({ length: 20 }, () => h.post('/download', { format: 'txt' }, { cookie: alice })),
    )
    expect(results.filter((r) => r.status === 200)).toHaveLength(1)
    for (const r of results) if (r.status !== 200) expect(r.status).toBe(409)
    // The other formats are other channels.
    expect((await h.post('/download', { format: 'csv' }, { cookie: alice })).status).toBe(200)
  })

  it('20 concurrent emails of one batch: exactly one 200, one message, the other 19 are 409', async () => {
    const h = await setup()
    const alice = h.login('alice')
    await h.batch(alice)
    const results = await Promise.all(
      Array.from({ length: 20 }, () => h.post('/email', {}, { cookie: alice })),
    )
    expect(results.filter((r) => r.status === 200)).toHaveLength(1)
    for (const r of results) if (r.status !== 200) expect(r.status).toBe(409)
    expect(h.mailer.messages).toHaveLength(1)
  })

  it('every channel at once, 4 requests each: exactly one 200 per channel, one message', async () => {
    const h = await setup()
    const alice = h.login('alice')
    await generate(h, alice)
    const calls = CHANNELS.flatMap((channel) => Array.from({ length: 4 }, () => channel))
    const results = await Promise.all(calls.map((channel) => request(h, alice, channel)))
    for (const channel of CHANNELS) {
      const mine = results.filter((_, i) => calls[i] === channel)
      expect(
        mine.filter((r) => r.status === 200),
        channel,
      ).toHaveLength(1)
      for (const r of mine) expect([200, 409, 410], channel).toContain(r.status)
    }
    expect(h.mailer.messages).toHaveLength(1)
  })
}
