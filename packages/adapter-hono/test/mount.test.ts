import { createRecoveryCodes, type HttpContext, type HttpHooks } from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { recoveryCodes } from '../src/index.ts'

const hooks = {
  getUserId: () => 'u1',
  getPendingUserId: () => null,
  getRevealToken: () => null,
  setRevealToken: () => {},
  regenerateSession: () => {},
  logIn: () => {},
  isFreshlyAuthenticated: () => true,
  getClientKey: () => '192.0.2.1',
} satisfies HttpHooks<HttpContext>

describe('hono adapter: mount points', () => {
  const rc = createRecoveryCodes({
    peppers: [{ id: 'k1', secret: btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))) }],
    store: memoryStore(),
  })

  for (const [mount, url] of [
    ['/recovery', '/recovery/status'],
    ['/t/:tenant/recovery', '/t/acme/recovery/status'],
    ['/', '/status'],
  ] as const) {
    it(`routes relative to ${mount}`, async () => {
      const app = new Hono().route(mount, recoveryCodes(rc, hooks))
      const res = await app.request(url)
      expect(res.status).toBe(200)
      expect(await res.json()).toMatchObject({ remaining: 0, active: null })
    })
  }

  it('works standalone (not mounted)', async () => {
    expect((await recoveryCodes(rc, hooks).request('/status')).status).toBe(200)
  })
})
