import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { createRecoveryCodes, markFirstFactor } from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import { randomPepperSecret, signedInHooks } from '@recovery-codes/testing'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { fastifyHostSession, recoveryCodesFastify } from '../src/index.ts'

const hooks = signedInHooks()

const rc = () =>
  createRecoveryCodes({
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    store: memoryStore(),
  })

const json = { 'content-type': 'application/json' }
const errorCode = (res: LightMyRequestResponse) => (res.json() as { error: { code: string } }).error.code
/** The `name=value` part of the session cookie a response set. */
const sessionCookie = (res: LightMyRequestResponse) =>
  String(res.headers['set-cookie'] ?? '').match(/sessionId=[^;]+/)?.[0]

const apps: FastifyInstance[] = []
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()))
})
function fastify(options: { trustProxy?: boolean } = {}): FastifyInstance {
  const app = Fastify(options)
  apps.push(app)
  return app
}

/** An app with @fastify/session, the plugin with its default hooks, and two host routes. */
async function withSession() {
  const app = fastify()
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: 'a'.repeat(32), cookie: { secure: false } })
  await app.register(recoveryCodesFastify(rc()), { prefix: '/recovery' })
  app.post('/test/sign-in', async (request) => {
    ;(request.session as unknown as Record<string, unknown>).rc_uid = 'alice'
    return { ok: true }
  })
  app.post('/test/password', async (request) => {
    markFirstFactor(fastifyHostSession(request), 'alice', Date.now())
    return { ok: true }
  })
  return app
}

describe('fastify adapter: default @fastify/session hooks', () => {
  it('reads the signed-in user from request.session', async () => {
    const app = await withSession()
    expect((await app.inject({ url: '/recovery/status' })).statusCode).toBe(401)
    const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/test/sign-in' }))
    expect(cookie).toBeDefined()
    const res = await app.inject({ url: '/recovery/status', headers: { cookie } })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ remaining: 0, active: null })
  })

  it('a recovery login regenerates the session; the old cookie is dead', async () => {
    const app = await withSession()
    const alice = sessionCookie(await app.inject({ method: 'POST', url: '/test/sign-in' }))
    const headers = { ...json, cookie: alice }
    expect(
      (await app.inject({ method: 'POST', url: '/recovery/generate', headers, body: '{}' })).statusCode,
    ).toBe(201)
    const view = await app.inject({ method: 'POST', url: '/recovery/codes/view', headers, body: '{}' })
    const [code] = (view.json() as { codes: string[] }).codes
    expect(
      (await app.inject({ method: 'POST', url: '/recovery/confirm', headers, body: '{}' })).statusCode,
    ).toBe(200)

    const pending = sessionCookie(await app.inject({ method: 'POST', url: '/test/password' }))
    const redeem = await app.inject({
      method: 'POST',
      url: '/recovery/redeem',
      headers: { ...json, cookie: pending },
      body: JSON.stringify({ code }),
    })
    expect(redeem.statusCode).toBe(200)
    const fresh = sessionCookie(redeem)
    expect(fresh).toBeDefined()
    expect(fresh).not.toBe(pending)
    expect((await app.inject({ url: '/recovery/status', headers: { cookie: fresh } })).statusCode).toBe(200)
    expect((await app.inject({ url: '/recovery/status', headers: { cookie: pending } })).statusCode).toBe(401)
  })

  it('refuses to register without @fastify/session, naming it', async () => {
    await expect(fastify().register(recoveryCodesFastify(rc())).ready()).rejects.toThrow(/@fastify\/session/)
    // With every session hook given, no session plugin is needed.
    await expect(fastify().register(recoveryCodesFastify(rc(), hooks)).ready()).resolves.toBeDefined()
  })
})

describe('fastify adapter: bodies are read and judged by core', () => {
  it('413 PAYLOAD_TOO_LARGE for a 2 MB body (declared or chunked), beside the host JSON parser', async () => {
    const app = fastify()
    await app.register(recoveryCodesFastify(rc(), hooks), { prefix: '/recovery' })
    const body = JSON.stringify({ code: 'A'.repeat(2_000_000) })
    const declared = await app.inject({ method: 'POST', url: '/recovery/verify-setup', headers: json, body })
    expect(declared.statusCode).toBe(413)
    expect(errorCode(declared)).toBe('PAYLOAD_TOO_LARGE')
    expect(declared.headers['cache-control']).toBe('no-store')
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    const chunked = await fetch(`${url}/recovery/verify-setup`, {
      method: 'POST',
      headers: json,
      body: new Blob([body]).stream(),
      duplex: 'half',
    } as RequestInit)
    expect(chunked.status).toBe(413)
    expect(((await chunked.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE')
  })

  it("malformed JSON gets core's 400 INVALID_INPUT, not Fastify's error", async () => {
    const app = fastify()
    await app.register(recoveryCodesFastify(rc(), hooks), { prefix: '/recovery' })
    for (const bad of ['{', '{"code":', 'nul']) {
      const res = await app.inject({
        method: 'POST',
        url: '/recovery/verify-setup',
        headers: json,
        body: bad,
      })
      expect(res.statusCode).toBe(400)
      expect(res.json()).toEqual({ error: { code: 'INVALID_INPUT', message: expect.any(String) } })
    }
    // A media type Fastify cannot even parse is core's 415 too.
    const res = await app.inject({
      method: 'POST',
      url: '/recovery/verify-setup',
      headers: { 'content-type': 'not a type' },
      body: '{}',
    })
    expect(res.statusCode).toBe(415)
    expect(errorCode(res)).toBe('UNSUPPORTED_MEDIA_TYPE')
  })

  it('leaves the host routes and error handler alone', async () => {
    const app = fastify()
    await app.register(recoveryCodesFastify(rc(), hooks), { prefix: '/recovery' })
    app.post('/echo', async (request) => request.body)
    const res = await app.inject({ method: 'POST', url: '/echo', headers: json, body: '{"a":1}' })
    expect(res.json()).toEqual({ a: 1 })
    expect(
      (await app.inject({ method: 'POST', url: '/echo', headers: json, body: '{' })).json(),
    ).toMatchObject({
      code: 'FST_ERR_CTP_INVALID_JSON_BODY',
    })
  })
})

describe('fastify adapter: mount points', () => {
  for (const [prefix, url, mount] of [
    ['/account/recovery', '/account/recovery/status', '/account/recovery'],
    ['/t/:tenant/recovery', '/t/acme/recovery/status', '/t/acme/recovery'],
    ['', '/status', '/'],
  ] as const) {
    it(`routes relative to ${prefix || 'the root'}`, async () => {
      const app = fastify()
      await app.register(recoveryCodesFastify(rc(), hooks), { prefix })
      const res = await app.inject({ url })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toMatchObject({ remaining: 0, active: null })
      const doc = await app.inject({ url: url.replace(/status$/, 'openapi.json') })
      expect((doc.json() as { servers: { url: string }[] }).servers[0]!.url).toBe(mount)
      const nf = await app.inject({ url: url.replace(/status$/, 'nope') })
      expect(nf.statusCode).toBe(404)
      expect(errorCode(nf)).toBe('ROUTE_NOT_FOUND')
    })
  }

  it('origin honours trustProxy for the same-origin check', async () => {
    const app = fastify({ trustProxy: true })
    await app.register(recoveryCodesFastify(rc(), hooks), { prefix: '/recovery' })
    const post = (origin: string) =>
      app.inject({
        method: 'POST',
        url: '/recovery/generate',
        headers: { ...json, origin, 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example' },
        body: '{}',
      })
    expect((await post('https://evil.example')).statusCode).toBe(403)
    expect((await post('https://app.example')).statusCode).toBe(201)
  })
})
