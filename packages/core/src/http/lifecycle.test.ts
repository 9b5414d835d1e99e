/**
 * The recovery lifecycle routes of the JSON API (issue 16, NIST SP 800-63B-4): `POST /confirm`,
 * the redeem's `method`, `mustBindFactor` and replacement, and the "This wasn't me" routes
 * (`GET /repudiate` read-only, `POST /repudiate` once), against a real service and bad input on
 * every path.
 */
import { describe, expect, it, vi } from 'vitest'
// Core cannot depend on its own dependents; the store and the helpers are reached by path.
import { memoryStore } from '../../../store-memory/src/index.ts'
import { createManualClock } from '../../../testing/src/clock.ts'
import { randomPepperSecret } from '../../../testing/src/fixtures.ts'
import { createRecordingMailer } from '../../../testing/src/mailer.ts'
import type { RecoveryCodesConfig } from '../config.ts'
import { createServiceContext } from '../service/context.ts'
import { createRecoveryCodes } from '../service/create.ts'
import { createRepudiation } from '../service/repudiate.ts'
import { createHttpHandler } from './handler.ts'
import type { HttpHooks, HttpRequest, HttpResponse } from './types.ts'

interface Ctx {
  user?: string | null
  pending?: string | null
  reveal?: string | null
  calls: string[]
}

const hooks: HttpHooks<Ctx> = {
  getUserId: (ctx) => ctx.user ?? null,
  getPendingUserId: (ctx) => ctx.pending ?? null,
  getRevealToken: (ctx) => ctx.reveal ?? null,
  setRevealToken: (ctx, token) => {
    ctx.reveal = token
    ctx.calls.push(token === null ? 'setReveal:null' : 'setReveal:token')
  },
  regenerateSession: (ctx) => void ctx.calls.push('regenerate'),
  logIn: (ctx, userId) => {
    ctx.user = userId
    ctx.pending = null
    ctx.calls.push(`logIn:${userId}`)
  },
  isFreshlyAuthenticated: () => true,
  getClientKey: () => '192.0.2.1',
}

const CONTACT = 'Call the help desk on +1 555 0100.'

function make(overrides: Partial<RecoveryCodesConfig> = {}) {
  const clock = createManualClock()
  const store = memoryStore()
  const onRepudiated = vi.fn(async (_userId: string) => {})
  const rc = createRecoveryCodes({
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    store,
    clock,
    mailer: createRecordingMailer(),
    resolveEmail: async (userId) => `${userId}@example.test`,
    notifications: { contact: CONTACT, linkBaseUrl: 'https://app.example/wasnt-me', linkTtlSeconds: 3600 },
    onRepudiated,
    ...overrides,
  })
  const h = createHttpHandler(rc, hooks)
  const rep = createRepudiation(createServiceContext(rc.config))
  const mint = (userId: string) =>
    rep.mint({ userId, kind: 'recovery-login', batchId: null, now: clock.now() })
  return { rc, h, clock, store, mint, onRepudiated }
}

function req(
  method: string,
  path: string,
  init: { body?: unknown; headers?: Record<string, string>; query?: string } = {},
): HttpRequest {
  const headers: Record<string, string> = {
    ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
    ...Object.fromEntries(Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
  }
  return {
    method,
    path,
    headers: (name) => headers[name.toLowerCase()],
    query: new URLSearchParams(init.query ?? ''),
    origin: 'https://app.example',
    ...(init.body === undefined
      ? {}
      : { rawBody: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) }),
  }
}

const ctx = (over: Partial<Ctx> = {}): Ctx => ({ calls: [], ...over })
const body = (res: HttpResponse) => JSON.parse(res.body as string) as Record<string, unknown>
const code = (res: HttpResponse) => [res.status, (body(res).error as { code?: string } | undefined)?.code]

/** Generates over the API and shows the codes; returns them and the session. */
async function generateAndView(h: ReturnType<typeof make>['h'], c: Ctx) {
  const g = await h.handle(req('POST', '/generate', { body: {} }), c)
  expect(g.status).toBe(201)
  const v = await h.handle(req('POST', '/codes/view', { body: {} }), c)
  expect(v.status).toBe(200)
  return { generated: body(g), codes: body(v).codes as string[] }
}

describe('POST /confirm', () => {
  it('generate says pending; the old batch works until confirm, then the new one does', async () => {
    const { h, store, clock } = make()
    const alice = ctx({ user: 'alice' })
    const first = await generateAndView(h, alice)
    expect(first.generated.pending).toBe(true)
    expect(await store.getActiveBatch('alice')).toBeNull()
    const c1 = await h.handle(req('POST', '/confirm', { body: {} }), alice)
    expect(c1.status).toBe(200)
    expect(body(c1)).toEqual({ batchId: first.generated.batchId, supersededBatchId: null })
    expect((await store.getActiveBatch('alice'))?.id).toBe(first.generated.batchId)

    clock.advance(86_400_000)
    const second = await generateAndView(h, alice)
    // Not confirmed yet: the first batch still redeems.
    const redeem = (c: string) =>
      h.handle(req('POST', '/redeem', { body: { code: c } }), ctx({ pending: 'alice' }))
    expect((await redeem(first.codes[0]!)).status).toBe(200)
    expect((await redeem(second.codes[0]!)).status).toBe(401)
    const c2 = await h.handle(req('POST', '/confirm', { body: {} }), alice)
    expect(body(c2)).toEqual({
      batchId: second.generated.batchId,
      supersededBatchId: first.generated.batchId,
    })
    expect((await redeem(first.codes[1]!)).status).toBe(401)
    expect((await redeem(second.codes[0]!)).status).toBe(200)
  })

  it('a second confirm is 409 ALREADY_DONE; the reveal channels still work after confirm', async () => {
    const { h } = make()
    const alice = ctx({ user: 'alice' })
    await h.handle(req('POST', '/generate', { body: {} }), alice)
    expect((await h.handle(req('POST', '/confirm', { body: {} }), alice)).status).toBe(200)
    expect(code(await h.handle(req('POST', '/confirm', { body: {} }), alice))).toEqual([409, 'ALREADY_DONE'])
    expect((await h.handle(req('POST', '/codes/view', { body: {} }), alice)).status).toBe(200)
    expect((await h.handle(req('POST', '/download', { body: { format: 'txt' } }), alice)).status).toBe(200)
  })

  it("under activation 'immediate' generate says pending: false and confirm is 409", async () => {
    const { h, store } = make({ activation: 'immediate' })
    const alice = ctx({ user: 'alice' })
    const g = await h.handle(req('POST', '/generate', { body: {} }), alice)
    expect(body(g).pending).toBe(false)
    expect(await store.getActiveBatch('alice')).not.toBeNull()
    expect(code(await h.handle(req('POST', '/confirm', { body: {} }), alice))).toEqual([409, 'ALREADY_DONE'])
  })

  it('an expired slot is 410 REVEAL_UNAVAILABLE and the batch never activates', async () => {
    const { h, clock, store } = make()
    const alice = ctx({ user: 'alice' })
    const g = await h.handle(req('POST', '/generate', { body: {} }), alice)
    clock.set(body(g).revealExpiresAt as number)
    expect(code(await h.handle(req('POST', '/confirm', { body: {} }), alice))).toEqual([
      410,
      'REVEAL_UNAVAILABLE',
    ])
    expect(await store.getActiveBatch('alice')).toBeNull()
  })

  it('bad input: no session 401, no token 410, garbled or foreign token 410/400, wrong type 415, unknown key 400', async () => {
    const { h, store } = make()
    const alice = ctx({ user: 'alice' })
    await h.handle(req('POST', '/generate', { body: {} }), alice)
    const token = alice.reveal!
    const post = (b: unknown, c: Ctx, headers?: Record<string, string>) =>
      h.handle(req('POST', '/confirm', { body: b, ...(headers ? { headers } : {}) }), c)
    expect(code(await post({}, ctx()))).toEqual([401, 'UNAUTHENTICATED'])
    expect(code(await post({}, ctx({ user: 'alice' })))).toEqual([410, 'REVEAL_UNAVAILABLE'])
    expect(code(await post({ reveal: 'AAAA' }, ctx({ user: 'alice' })))).toEqual([410, 'REVEAL_UNAVAILABLE'])
    expect(code(await post({ reveal: 'not a token!' }, ctx({ user: 'alice' })))).toEqual([
      400,
      'INVALID_INPUT',
    ])
    expect(code(await post({ reveal: 42 }, ctx({ user: 'alice' })))).toEqual([400, 'INVALID_INPUT'])
    expect(code(await post({ extra: true }, alice))).toEqual([400, 'INVALID_INPUT'])
    expect(code(await post('{"', alice))).toEqual([400, 'INVALID_INPUT'])
    expect(code(await post({}, alice, { 'content-type': 'text/plain' }))).toEqual([
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ])
    expect(code(await post({}, alice, { 'sec-fetch-site': 'cross-site' }))).toEqual([403, 'CSRF_REJECTED'])
    // Another user cannot confirm alice's batch with her token.
    expect(code(await post({ reveal: token }, ctx({ user: 'mallory' })))).toEqual([410, 'REVEAL_UNAVAILABLE'])
    expect(await store.getActiveBatch('alice')).toBeNull()
    // The token in the body works for an API client that kept it (the session has none here).
    expect((await post({ reveal: token }, ctx({ user: 'alice' }))).status).toBe(200)
    expect(code(await h.handle(req('GET', '/confirm'), alice))).toEqual([405, 'METHOD_NOT_ALLOWED'])
  })
})

describe('POST /redeem: method, mustBindFactor and the replacement', () => {
  it('replaceOnUse: the replacement reveal token goes to the session, never the code to the body', async () => {
    const { h } = make({ replaceOnUse: true, mustBindFactor: () => true })
    const alice = ctx({ user: 'alice' })
    const { codes } = await generateAndView(h, alice)
    expect((await h.handle(req('POST', '/confirm', { body: {} }), alice)).status).toBe(200)
    const login = ctx({ pending: 'alice' })
    const r = await h.handle(req('POST', '/redeem', { body: { code: codes[0] } }), login)
    expect(r.status).toBe(200)
    const b = body(r)
    expect(b).toMatchObject({ method: 'recovery_code', mustBindFactor: true, remaining: codes.length })
    expect(Object.keys(b.replacement as object)).toEqual(['revealExpiresAt'])
    expect(login.calls).toEqual(['regenerate', 'setReveal:null', 'logIn:alice', 'setReveal:token'])
    const view = await h.handle(req('POST', '/codes/view', { body: {} }), login)
    expect(view.status).toBe(200)
    const replacement = body(view).codes as string[]
    expect(replacement).toHaveLength(1)
    expect(r.body as string).not.toContain(replacement[0]!)
    expect(code(await h.handle(req('POST', '/codes/view', { body: {} }), login))[0]).toBeGreaterThanOrEqual(
      409,
    )
    // The replacement is a working code of the batch.
    const again = await h.handle(
      req('POST', '/redeem', { body: { code: replacement[0] } }),
      ctx({ pending: 'alice' }),
    )
    expect(again.status).toBe(200)
  })

  it('without replaceOnUse there is no replacement and mustBindFactor is false', async () => {
    const { h } = make({ activation: 'immediate' })
    const alice = ctx({ user: 'alice' })
    const { codes } = await generateAndView(h, alice)
    const login = ctx({ pending: 'alice' })
    const r = await h.handle(req('POST', '/redeem', { body: { code: codes[0] } }), login)
    expect(body(r)).toEqual({
      remaining: codes.length - 1,
      lowCodes: false,
      shouldRegenerate: true,
      method: 'recovery_code',
      mustBindFactor: false,
    })
    expect(login.calls).not.toContain('setReveal:token')
  })
})

describe('/repudiate', () => {
  it('GET inspects and never changes anything; POST revokes once with the contact text', async () => {
    const { h, store, mint, onRepudiated } = make({ activation: 'immediate' })
    const alice = ctx({ user: 'alice' })
    await generateAndView(h, alice)
    const active = await store.getActiveBatch('alice')
    const token = mint('alice')
    const query = new URLSearchParams({ token }).toString()
    for (let i = 0; i < 3; i++) {
      const g = await h.handle(req('GET', '/repudiate', { query }), ctx())
      expect(g.status).toBe(200)
      expect(body(g)).toEqual({ kind: 'recovery-login', expiresAt: expect.any(Number) })
    }
    expect(await store.getActiveBatch('alice')).toEqual(active)
    expect(onRepudiated).not.toHaveBeenCalled()
    const p = await h.handle(req('POST', '/repudiate', { body: { token } }), ctx())
    expect(p.status).toBe(200)
    expect(body(p)).toEqual({ revoked: true, batchDisabled: true, contact: CONTACT })
    expect(await store.getActiveBatch('alice')).toBeNull()
    expect(onRepudiated).toHaveBeenCalledWith('alice')
    expect(code(await h.handle(req('POST', '/repudiate', { body: { token } }), ctx()))).toEqual([
      409,
      'ALREADY_DONE',
    ])
    expect(code(await h.handle(req('GET', '/repudiate', { query }), ctx()))).toEqual([409, 'ALREADY_DONE'])
  })

  it('bad input: missing, garbled, tampered, expired tokens; wrong content type; cross-site', async () => {
    const { h, store, mint, clock, onRepudiated } = make({ activation: 'immediate' })
    await generateAndView(h, ctx({ user: 'alice' }))
    const token = mint('alice')
    const get = (query: string) => h.handle(req('GET', '/repudiate', { query }), ctx())
    const post = (b: unknown, headers?: Record<string, string>) =>
      h.handle(req('POST', '/repudiate', { body: b, ...(headers ? { headers } : {}) }), ctx())
    expect(code(await get(''))).toEqual([400, 'INVALID_INPUT'])
    expect(code(await get('token=a&token=b'))).toEqual([400, 'INVALID_INPUT'])
    expect(code(await get('token=garbled'))).toEqual([400, 'INVALID_INPUT'])
    expect(code(await get(`token=${encodeURIComponent(token)}&x=1`))).toEqual([400, 'INVALID_INPUT'])
    const tampered = `${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`
    expect(code(await get(`token=${tampered}`))).toEqual([400, 'INVALID_INPUT'])
    expect(code(await post({}))).toEqual([400, 'INVALID_INPUT'])
    expect(code(await post({ token: 7 }))).toEqual([400, 'INVALID_INPUT'])
    expect(code(await post({ token: 'x'.repeat(5000) }))).toEqual([400, 'INVALID_INPUT'])
    expect(code(await post({ token: tampered }))).toEqual([400, 'INVALID_INPUT'])
    expect(body(await post({ token: tampered })).error).toMatchObject({
      issues: [{ path: 'token', message: 'invalid' }],
    })
    expect(code(await post('token=x'))).toEqual([400, 'INVALID_INPUT'])
    expect(code(await post({ token }, { 'content-type': 'application/x-www-form-urlencoded' }))).toEqual([
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ])
    expect(code(await post({ token }, { 'sec-fetch-site': 'cross-site' }))).toEqual([403, 'CSRF_REJECTED'])
    expect(code(await post({ token }, { origin: 'https://evil.example' }))).toEqual([403, 'CSRF_REJECTED'])
    expect(await store.getActiveBatch('alice')).not.toBeNull()
    clock.advance(3601_000)
    expect(code(await get(`token=${token}`))).toEqual([400, 'INVALID_INPUT'])
    const expired = await post({ token })
    expect(body(expired).error).toMatchObject({
      code: 'INVALID_INPUT',
      issues: [{ path: 'token', message: 'expired' }],
    })
    expect(await store.getActiveBatch('alice')).not.toBeNull()
    expect(onRepudiated).not.toHaveBeenCalled()
  })

  it('is not served (404, not in the route table) without notifications', async () => {
    const rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: randomPepperSecret() }],
      store: memoryStore(),
    })
    const h = createHttpHandler(rc, hooks)
    expect(h.routes.map((r) => r.path)).not.toContain('/repudiate')
    expect(h.routes.map((r) => r.path)).toContain('/confirm')
    expect(code(await h.handle(req('GET', '/repudiate', { query: 'token=x' }), ctx()))).toEqual([
      404,
      'ROUTE_NOT_FOUND',
    ])
  })
})
