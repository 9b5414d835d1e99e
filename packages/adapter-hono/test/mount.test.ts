import { createRecoveryCodes } from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import { randomPepperSecret, signedInHooks } from '@recovery-codes/testing'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { recoveryCodes } from '../src/index.ts'

const hooks = signedInHooks()

describe('hono adapter: mount points', () => {
  const rc = createRecoveryCodes({
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
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
