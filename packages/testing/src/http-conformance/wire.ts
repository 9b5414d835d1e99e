/**
 * HTTP adapter conformance, wire rules: 415, 413 and 400 bodies, 401 without a user, 403 for a stale
 * session or a cross-site request, 429 with Retry-After, 404/405 routing, and a bare 500.
 */
import { createHttpHandler } from '@recovery-codes/core'
import { expect, it } from 'vitest'
import { ALLOWED_ORIGIN, DAY, errorCode, type HarnessSetup, wrongCode } from './harness.ts'

/** Registers the wire-rule tests inside the running `describe` block. */
export function wireTests(setup: HarnessSetup): void {
  it('415 for non-JSON bodies on every POST route', async () => {
    const h = await setup()
    const alice = h.login('alice')
    for (const route of createHttpHandler(h.rc, h.hooks).routes.filter((r) => r.method === 'POST')) {
      for (const type of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        null,
      ]) {
        const res = await h.app.fetch(route.path, {
          method: 'POST',
          headers: { cookie: alice, ...(type ? { 'content-type': type } : {}) },
          body: type === null ? undefined : 'code=ABC',
        })
        expect(res.status, `${route.path} ${type}`).toBe(415)
        expect(await errorCode(res)).toBe('UNSUPPORTED_MEDIA_TYPE')
      }
    }
  })

  it('413 over the body limit; 400 for malformed JSON', async () => {
    const h = await setup()
    const alice = h.login('alice')
    for (const size of [8193, 100_000, 1_100_000]) {
      const res = await h.post('/verify-setup', { code: 'A'.repeat(size) }, { cookie: alice })
      expect(res.status).toBe(413)
      expect(await errorCode(res)).toBe('PAYLOAD_TOO_LARGE')
    }
    for (const bad of ['{', '{"code":', "{'code':'x'}", '\u0000', 'nul']) {
      const res = await h.post('/verify-setup', bad, { cookie: alice })
      expect(res.status).toBe(400)
      expect(await errorCode(res)).toBe('INVALID_INPUT')
    }
    // Invalid UTF-8 is malformed too.
    const res = await h.app.fetch('/verify-setup', {
      method: 'POST',
      headers: { cookie: alice, 'content-type': 'application/json' },
      body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    })
    expect(res.status).toBe(400)
  })

  it('401 without a user on every authenticated route', async () => {
    const h = await setup()
    for (const route of createHttpHandler(h.rc, h.hooks).routes.filter((r) => r.auth !== 'none')) {
      const body =
        route.path === '/download'
          ? { format: 'txt' }
          : route.path.includes('code') || route.path === '/redeem' || route.path === '/verify-setup'
            ? { code: 'ABCDE' }
            : {}
      const res = route.method === 'GET' ? await h.get(route.path) : await h.post(route.path, body)
      expect(res.status, route.path).toBe(401)
      expect(await errorCode(res)).toBe('UNAUTHENTICATED')
    }
  })

  it('403 REAUTH_REQUIRED without a fresh re-authentication on sensitive routes', async () => {
    const h = await setup()
    const stale = h.login('alice', { fresh: false })
    // A first batch needs no re-authentication; replacing it does.
    const codes = await h.batch(stale)
    h.clock.advance(DAY)
    for (const [path, body] of [
      ['/generate', {}],
      ['/email', {}],
      ['/download', { format: 'txt' }],
      ['/codes/invalidate', { code: codes[0] }],
      ['/codes/delete', { code: codes[0] }],
      ['/batch/delete', {}],
    ] as const) {
      const res = await h.post(path, body, { cookie: stale })
      expect(res.status, path).toBe(403)
      expect(await errorCode(res)).toBe('REAUTH_REQUIRED')
    }
    expect(((await (await h.get('/status', stale)).json()) as { remaining: number }).remaining).toBe(
      codes.length,
    )
  })

  it('403 CSRF_REJECTED for cross-site requests; same-origin and allowed origins pass', async () => {
    const h = await setup()
    const alice = h.login('alice')
    for (const route of createHttpHandler(h.rc, h.hooks).routes.filter((r) => r.method === 'POST')) {
      for (const headers of <Record<string, string>[]>[
        { origin: 'https://evil.example' },
        { origin: 'null' },
        { 'sec-fetch-site': 'cross-site' },
        { 'sec-fetch-site': 'same-site' },
        { origin: 'https://evil.example', 'sec-fetch-site': 'same-origin' },
      ]) {
        const res = await h.post(route.path, {}, { cookie: alice, headers })
        expect(res.status, `${route.path} ${JSON.stringify(headers)}`).toBe(403)
        expect(await errorCode(res)).toBe('CSRF_REJECTED')
      }
    }
    expect(
      (await h.post('/generate', {}, { cookie: alice, headers: { 'sec-fetch-site': 'same-origin' } })).status,
    ).toBe(201)
    h.clock.advance(DAY)
    expect(
      (await h.post('/generate', {}, { cookie: alice, headers: { origin: ALLOWED_ORIGIN } })).status,
    ).toBe(201)
  })

  it('429 COOLDOWN_ACTIVE with Retry-After when regenerating too soon', async () => {
    const h = await setup()
    const alice = h.login('alice')
    expect((await h.post('/generate', {}, { cookie: alice })).status).toBe(201)
    const res = await h.post('/generate', {}, { cookie: alice })
    expect(res.status).toBe(429)
    expect(await errorCode(res)).toBe('COOLDOWN_ACTIVE')
    const retry = res.headers.get('retry-after')
    expect(retry).toMatch(/^[1-9][0-9]*$/)
  })

  it('429 RATE_LIMITED with Retry-After for a locked authenticated code action', async () => {
    const h = await setup({ maxLoginAttempts: 2 })
    const alice = h.login('alice')
    const codes = await h.batch(alice)
    for (let i = 0; i < 2; i++)
      await h.post('/verify-setup', { code: wrongCode(codes[0]!) }, { cookie: alice })
    const res = await h.post('/verify-setup', { code: codes[0] }, { cookie: alice })
    expect(res.status).toBe(429)
    expect(await errorCode(res)).toBe('RATE_LIMITED')
    expect(res.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/)
  })

  it('unknown routes 404, wrong methods 405 with Allow', async () => {
    const h = await setup()
    const nf = await h.get('/nope')
    expect(nf.status).toBe(404)
    expect(await errorCode(nf)).toBe('ROUTE_NOT_FOUND')
    const m = await h.get('/generate', h.login('alice'))
    expect(m.status).toBe(405)
    expect(m.headers.get('allow')).toBe('POST')
    expect(await errorCode(m)).toBe('METHOD_NOT_ALLOWED')
  })

  it('unexpected errors: 500 INTERNAL with a correlation id and nothing else', async () => {
    const h = await setup(
      {},
      {
        getUserId: () => {
          throw new Error('db password hunter2 at users.sql:12')
        },
      },
    )
    const res = await h.get('/status', 'sid=whatever')
    expect(res.status).toBe(500)
    const text = await res.text()
    expect(text).not.toMatch(/hunter2|users\.sql|Error:|at /)
    const body = JSON.parse(text) as { error: { code: string; correlationId: string } }
    expect(body.error.code).toBe('INTERNAL')
    expect(body.error.correlationId).toMatch(/^[0-9a-f]{16}$/)
  })
}
