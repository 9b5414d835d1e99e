/**
 * HTTP adapter conformance, the confirm step (`activation: 'confirm'`, the default; NIST SP
 * 800-63B-4): a regenerated batch waits until `POST /confirm`, the old batch keeps working until
 * then and stops at once after; a second confirm is 409, an expired slot 410 (and never activates).
 */
import { expect, it } from 'vitest'
import { errorCode, type HarnessSetup } from './harness.ts'

/** Registers the confirm tests inside the running `describe` block. */
export function confirmTests(setup: HarnessSetup): void {
  it('generate → the old code still redeems → confirm → the old code is refused, the new one works', async () => {
    const h = await setup()
    const alice = h.login('alice')
    const oldCodes = await h.batch(alice)
    h.clock.advance(86_400_000)
    const g = await h.post('/generate', {}, { cookie: alice })
    expect(g.status).toBe(201)
    const generated = (await g.json()) as { batchId: string; pending: boolean }
    expect(generated.pending).toBe(true)
    const v = await h.post('/codes/view', {}, { cookie: alice })
    const newCodes = ((await v.json()) as { codes: string[] }).codes
    const redeem = (code: string) => h.post('/redeem', { code }, { cookie: h.pending('alice') })

    expect((await redeem(oldCodes[0]!)).status, 'old code before confirm').toBe(200)
    expect((await redeem(newCodes[0]!)).status, 'new code before confirm').toBe(401)

    const c = await h.post('/confirm', {}, { cookie: alice })
    expect(c.status).toBe(200)
    const confirmed = (await c.json()) as { batchId: string; supersededBatchId: string | null }
    expect(confirmed.batchId).toBe(generated.batchId)
    expect(confirmed.supersededBatchId).not.toBeNull()

    const refused = await redeem(oldCodes[1]!)
    expect([refused.status, await errorCode(refused)], 'old code after confirm').toEqual([
      401,
      'INVALID_CODE',
    ])
    expect((await redeem(newCodes[0]!)).status, 'new code after confirm').toBe(200)
  })

  it('confirm twice is 409 ALREADY_DONE; without a session 401; after the reveal TTL 410 and nothing changes', async () => {
    const h = await setup()
    const alice = h.login('alice')
    await h.post('/generate', {}, { cookie: alice })
    expect((await h.post('/confirm', {}, { cookie: alice })).status).toBe(200)
    const twice = await h.post('/confirm', {}, { cookie: alice })
    expect([twice.status, await errorCode(twice)]).toEqual([409, 'ALREADY_DONE'])
    const anon = await h.post('/confirm', {})
    expect([anon.status, await errorCode(anon)]).toEqual([401, 'UNAUTHENTICATED'])

    const bob = h.login('bob')
    const g = await h.post('/generate', {}, { cookie: bob })
    const { revealExpiresAt } = (await g.json()) as { revealExpiresAt: number }
    h.clock.set(revealExpiresAt)
    const late = await h.post('/confirm', {}, { cookie: bob })
    expect([late.status, await errorCode(late)]).toEqual([410, 'REVEAL_UNAVAILABLE'])
    const status = (await (await h.get('/status', bob)).json()) as { active: unknown }
    expect(status.active).toBeNull()
  })
}
