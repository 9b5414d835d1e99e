import { describe, expect, it, vi } from 'vitest'
import type { ResolvedConfig } from '../config.ts'
import { RecoveryCodesError } from '../errors.ts'
import type { RecoveryCodes } from '../service/create.ts'
import { createHttpHandler } from './handler.ts'
import type { HttpHooks, HttpRequest, HttpResponse } from './types.ts'

interface Ctx {
  calls: string[]
  user?: string | null
  pending?: string | null
  fresh?: boolean
  reveal?: string | null
}

function stubService(
  overrides: Partial<RecoveryCodes> = {},
  config: Partial<ResolvedConfig> = {},
): RecoveryCodes {
  const batch = { ok: true as const, batchId: 'b1' }
  return {
    config: {
      store: { getActiveBatch: vi.fn(async () => null) },
      maxBatchSize: 50,
      loginMode: 'second-factor',
      logger: null,
      email: { successMessage: 'Sent.' },
      ...config,
    } as unknown as ResolvedConfig,
    generate: vi.fn(async () => ({
      ok: true as const,
      batchId: 'b1',
      codes: ['AAAAA', 'BBBBB'],
      createdAt: 1,
      expiresAt: null,
      reveal: 'tok',
      revealExpiresAt: 2,
      pending: true,
    })),
    status: vi.fn(async () => ({
      active: null,
      remaining: 0,
      lowCodes: true,
      lowCodesThreshold: 3,
      shouldRegenerate: true,
      generateRetryAfterMs: 0,
    })),
    redeem: vi.fn(async () => ({ ok: false as const, reason: 'INVALID_CODE' as const, retryAfterMs: 0 })),
    verifySetup: vi.fn(async () => batch),
    invalidateCode: vi.fn(async () => batch),
    deleteCode: vi.fn(async () => batch),
    deleteBatch: vi.fn(async () => ({ batchId: 'b1' })),
    history: vi.fn(async () => ({ items: [], page: 1, perPage: 10, total: 0, totalPages: 1 })),
    viewCodes: vi.fn(async () => ({ batchId: 'b1', codes: ['AAAAA'] })),
    exportCodes: vi.fn(async () => ({
      filename: 'recovery_codes.txt',
      contentType: 'text/plain; charset=utf-8',
      body: new Uint8Array([65]),
    })),
    emailCodes: vi.fn(async () => ({ sentTo: 'ada@example.com' })),
    discardReveal: vi.fn(async () => {}),
    purge: vi.fn(),
    purgeAudit: vi.fn(),
    ...overrides,
  } as RecoveryCodes
}

const hooks: HttpHooks<Ctx> = {
  getUserId: (ctx) => (ctx.user === undefined ? 'u1' : ctx.user),
  getPendingUserId: (ctx) => ctx.pending ?? null,
  getRevealToken: (ctx) => ctx.reveal ?? null,
  setRevealToken: (ctx, token) => {
    ctx.calls.push(`setReveal:${token}`)
    ctx.reveal = token
  },
  regenerateSession: (ctx) => void ctx.calls.push('regenerate'),
  logIn: (ctx, userId) => void ctx.calls.push(`logIn:${userId}`),
  isFreshlyAuthenticated: (ctx) => ctx.fresh ?? true,
  getClientKey: () => '192.0.2.1',
  onRecoveryLogin: (ctx, userId) => void ctx.calls.push(`onRecoveryLogin:${userId}`),
  allowedOrigins: ['https://spa.example'],
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
const json = (res: HttpResponse) =>
  JSON.parse(res.body as string) as {
    error: { code: string; message: string; issues?: unknown[]; correlationId?: string }
  }

describe('createHttpHandler: routing and wire rules', () => {
  it('404 ROUTE_NOT_FOUND and 405 METHOD_NOT_ALLOWED with Allow, all with the security headers', async () => {
    const h = createHttpHandler(stubService(), hooks)
    const nf = await h.handle(req('GET', '/nope'), ctx())
    expect(nf.status).toBe(404)
    expect(json(nf).error.code).toBe('ROUTE_NOT_FOUND')
    const m = await h.handle(req('DELETE', '/generate'), ctx())
    expect(m.status).toBe(405)
    expect(m.headers.Allow).toBe('POST')
    for (const res of [nf, m]) {
      expect(res.headers['Cache-Control']).toBe('no-store')
      expect(res.headers['X-Content-Type-Options']).toBe('nosniff')
      expect(res.headers['Referrer-Policy']).toBe('no-referrer')
    }
  })

  it('415 without application/json, 413 over the limit, 400 on malformed JSON or UTF-8', async () => {
    const h = createHttpHandler(stubService(), hooks, { bodyLimit: 100 })
    const noType = await h.handle({ ...req('POST', '/verify-setup'), rawBody: '{"code":"x"}' }, ctx())
    expect(noType.status).toBe(415)
    const textPlain = await h.handle(
      req('POST', '/verify-setup', { body: {}, headers: { 'content-type': 'text/plain' } }),
      ctx(),
    )
    expect(json(textPlain).error.code).toBe('UNSUPPORTED_MEDIA_TYPE')
    const jsonish = await h.handle(
      req('POST', '/verify-setup', { body: {}, headers: { 'content-type': 'application/jsonx' } }),
      ctx(),
    )
    expect(jsonish.status).toBe(415)
    const big = await h.handle(req('POST', '/verify-setup', { body: { code: 'A'.repeat(200) } }), ctx())
    expect(big.status).toBe(413)
    const flagged = await h.handle(
      { ...req('POST', '/verify-setup', { body: {} }), bodyError: 'too-large' },
      ctx(),
    )
    expect(json(flagged).error.code).toBe('PAYLOAD_TOO_LARGE')
    const declared = await h.handle(
      { ...req('POST', '/verify-setup'), body: {}, rawBodyLength: 101, contentType: 'application/json' },
      ctx(),
    )
    expect(declared.status).toBe(413)
    const bad = await h.handle(req('POST', '/verify-setup', { body: '{"code":' }), ctx())
    expect(bad.status).toBe(400)
    expect(json(bad).error.code).toBe('INVALID_INPUT')
    const utf8 = await h.handle(
      { ...req('POST', '/verify-setup', { body: {} }), rawBody: new Uint8Array([0x22, 0xff, 0x22]) },
      ctx(),
    )
    expect(utf8.status).toBe(400)
    const unreadable = await h.handle(
      { ...req('POST', '/verify-setup', { body: {} }), bodyError: 'unreadable' },
      ctx(),
    )
    expect(unreadable.status).toBe(400)
  })

  it('an empty JSON body is {}; a host-parsed body is used when no raw body is given', async () => {
    const rc = stubService()
    const h = createHttpHandler(rc, hooks)
    expect((await h.handle(req('POST', '/batch/delete', { body: '' }), ctx())).status).toBe(200)
    const parsed = await h.handle(
      {
        ...req('POST', '/verify-setup'),
        contentType: 'application/json; charset=utf-8',
        body: { code: 'ABCDE' },
      },
      ctx(),
    )
    expect(parsed.status).toBe(200)
    expect(rc.verifySetup).toHaveBeenCalledWith({ userId: 'u1', clientKey: '192.0.2.1', code: 'ABCDE' })
  })

  it('CSRF: cross-site, same-site, foreign or null Origin → 403; same origin, allowed origin or no browser headers pass', async () => {
    const h = createHttpHandler(stubService(), hooks)
    const post = (headers: Record<string, string>) =>
      h.handle(req('POST', '/batch/delete', { body: {}, headers }), ctx())
    for (const headers of <Record<string, string>[]>[
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { origin: 'null', 'sec-fetch-site': 'cross-site' },
      { origin: 'null', 'sec-fetch-site': 'same-site' },
      { origin: 'https://app.example/' },
      { origin: 'https://app.example.evil.example' },
      { origin: 'http://app.example' },
      { origin: 'https://app.example', 'sec-fetch-site': 'cross-site' },
    ]) {
      const res = await post(headers)
      expect(res.status, JSON.stringify(headers)).toBe(403)
      expect(json(res).error.code).toBe('CSRF_REJECTED')
    }
    for (const headers of <Record<string, string>[]>[
      {},
      { 'sec-fetch-site': 'same-origin' },
      { 'sec-fetch-site': 'none' },
      { origin: 'https://app.example' },
      { origin: 'https://spa.example', 'sec-fetch-site': 'cross-site' },
      // A same-origin form post from a no-referrer page: Chromium sends `Origin: null`.
      { origin: 'null', 'sec-fetch-site': 'same-origin' },
    ]) {
      expect((await post(headers)).status, JSON.stringify(headers)).toBe(200)
    }
    // Without the adapter's origin, the Host header decides.
    const viaHost = await h.handle(
      {
        ...req('POST', '/batch/delete', {
          body: {},
          headers: { origin: 'http://localhost:3000', host: 'localhost:3000' },
        }),
        origin: undefined,
      },
      ctx(),
    )
    expect(viaHost.status).toBe(200)
  })

  it('CSRF is checked before authentication and body parsing; GETs are not checked', async () => {
    const h = createHttpHandler(stubService(), hooks)
    const res = await h.handle(
      req('POST', '/generate', { body: '{', headers: { origin: 'https://evil.example' } }),
      ctx({ user: null }),
    )
    expect(res.status).toBe(403)
    expect(
      (await h.handle(req('GET', '/status', { headers: { 'sec-fetch-site': 'cross-site' } }), ctx())).status,
    ).toBe(200)
  })
})

describe('createHttpHandler: validation', () => {
  it('strict bodies: unknown keys, wrong types, NUL, over-long strings → 400 without echoing input', async () => {
    const rc = stubService()
    const h = createHttpHandler(rc, hooks)
    for (const body of [
      { code: ['A'] },
      { code: { $ne: 1 } },
      { code: 1 },
      { code: null },
      { code: 'A\u0000B' },
      { code: 'A'.repeat(65) },
      { code: '' },
      { code: 'ABCDE', evil: 'secret-probe' },
      JSON.parse('{"code":"A","__proto__":{"polluted":"secret-probe"}}'),
      [],
      'ABCDE',
      null,
    ]) {
      const res = await h.handle(req('POST', '/verify-setup', { body: JSON.stringify(body) }), ctx())
      expect(res.status, JSON.stringify(body)).toBe(400)
      expect(json(res).error.code).toBe('INVALID_INPUT')
      expect(res.body).not.toContain('secret-probe')
      expect(res.body).not.toContain('evil')
    }
    expect(rc.verifySetup).not.toHaveBeenCalled()
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(
      (await h.handle(req('POST', '/verify-setup', { body: { code: 'A'.repeat(64) } }), ctx())).status,
    ).toBe(200)
  })

  it('generate: count and expiresInDays are bounded integers; strings are not coerced', async () => {
    const rc = stubService()
    const h = createHttpHandler(rc, hooks)
    for (const body of [
      { count: '5' },
      { count: 0 },
      { count: 51 },
      { count: 1.5 },
      { expiresInDays: 0 },
      { expiresInDays: 3651 },
      { expiresInDays: '1' },
    ]) {
      expect((await h.handle(req('POST', '/generate', { body }), ctx())).status, JSON.stringify(body)).toBe(
        400,
      )
    }
    const ok = await h.handle(req('POST', '/generate', { body: { count: 50, expiresInDays: null } }), ctx())
    expect(ok.status).toBe(201)
    expect(rc.generate).toHaveBeenCalledWith({
      userId: 'u1',
      clientKey: '192.0.2.1',
      count: 50,
    })
  })

  it('login identifiers: ≤ 254 characters, no control characters', async () => {
    const h = createHttpHandler(stubService({}, { loginMode: 'identifier-and-code' }), hooks)
    for (const identifier of ['a'.repeat(255), 'a\u0000b', 'a\nb', 'a\u0085b', 5, ['a']]) {
      const res = await h.handle(req('POST', '/login', { body: { identifier, code: 'ABCDE' } }), ctx())
      expect(res.status).toBe(400)
    }
  })

  it('queries are strict: unknown or repeated parameters and codes in URLs → 400', async () => {
    const rc = stubService()
    const h = createHttpHandler(rc, hooks)
    for (const query of [
      'page=1&page=2',
      'page=0',
      'page=abc',
      'page=1e3',
      'page=1234567',
      'code=ABCDE',
      '__proto__=1',
    ]) {
      expect((await h.handle(req('GET', '/history', { query }), ctx())).status, query).toBe(400)
    }
    expect((await h.handle(req('GET', '/status', { query: 'code=ABCDE' }), ctx())).status).toBe(400)
    expect((await h.handle(req('GET', '/history', { query: 'page=3' }), ctx())).status).toBe(200)
    expect(rc.history).toHaveBeenCalledWith({ userId: 'u1', page: 3 })
  })
})

describe('createHttpHandler: authentication and re-authentication', () => {
  it('401 UNAUTHENTICATED without a user; /redeem needs a pending user', async () => {
    const h = createHttpHandler(stubService(), hooks)
    for (const [method, path] of [
      ['GET', '/status'],
      ['GET', '/history'],
      ['POST', '/generate'],
      ['POST', '/codes/view'],
      ['POST', '/download'],
      ['POST', '/email'],
      ['POST', '/verify-setup'],
      ['POST', '/codes/invalidate'],
      ['POST', '/codes/delete'],
      ['POST', '/batch/delete'],
    ] as const) {
      const res = await h.handle(
        req(method, path, method === 'POST' ? { body: {} } : {}),
        ctx({ user: null }),
      )
      expect(res.status, path).toBe(401)
      expect(json(res).error.code).toBe('UNAUTHENTICATED')
    }
    const r = await h.handle(req('POST', '/redeem', { body: { code: 'ABCDE' } }), ctx({ pending: null }))
    expect(json(r).error.code).toBe('UNAUTHENTICATED')
  })

  it('403 REAUTH_REQUIRED on sensitive routes; generate needs it only over an existing batch', async () => {
    const rc = stubService()
    const h = createHttpHandler(rc, hooks)
    for (const [path, body] of [
      ['/download', {}],
      ['/email', {}],
      ['/codes/invalidate', { code: 'A' }],
      ['/codes/delete', { code: 'A' }],
      ['/batch/delete', {}],
    ] as const) {
      const res = await h.handle(req('POST', path, { body }), ctx({ fresh: false }))
      expect(res.status, path).toBe(403)
      expect(json(res).error.code).toBe('REAUTH_REQUIRED')
    }
    expect((await h.handle(req('POST', '/generate', { body: {} }), ctx({ fresh: false }))).status).toBe(201)
    // The store, not the cached status, says whether a batch exists.
    vi.mocked(rc.config.store.getActiveBatch).mockResolvedValueOnce({ id: 'b1' } as never)
    const again = await h.handle(req('POST', '/generate', { body: {} }), ctx({ fresh: false }))
    expect(again.status).toBe(403)
    expect(rc.generate).toHaveBeenCalledTimes(1)
    expect(rc.status).not.toHaveBeenCalled()
    vi.mocked(rc.config.store.getActiveBatch).mockRejectedValueOnce(new Error('connection refused'))
    const down = await h.handle(req('POST', '/generate', { body: {} }), ctx())
    expect([down.status, json(down).error.code]).toEqual([503, 'STORE_UNAVAILABLE'])
  })
})

describe('createHttpHandler: outcomes', () => {
  it('generate keeps the codes out of the response and the reveal token in the session', async () => {
    const h = createHttpHandler(stubService(), hooks)
    const c = ctx()
    const res = await h.handle(req('POST', '/generate', { body: {} }), c)
    expect(res.status).toBe(201)
    expect(res.body).not.toContain('AAAAA')
    expect(JSON.parse(res.body as string)).toEqual({
      batchId: 'b1',
      count: 2,
      createdAt: 1,
      expiresAt: null,
      revealExpiresAt: 2,
      pending: true,
    })
    expect(c.reveal).toBe('tok')
  })

  it('429 with Retry-After in whole seconds, rounded up', async () => {
    const rc = stubService({
      generate: vi.fn(async () => ({
        ok: false as const,
        reason: 'COOLDOWN_ACTIVE' as const,
        retryAfterMs: 1500,
      })),
    })
    const res = await createHttpHandler(rc, hooks).handle(req('POST', '/generate', { body: {} }), ctx())
    expect(res.status).toBe(429)
    expect(res.headers['Retry-After']).toBe('2')
    expect(json(res).error.code).toBe('COOLDOWN_ACTIVE')
  })

  it('failed redeems are byte-identical, lockout included; no Retry-After', async () => {
    const outcomes = [0, 0, 30_000, 3_600_000]
    const rc = stubService({
      redeem: vi.fn(async () => ({
        ok: false as const,
        reason: 'INVALID_CODE' as const,
        retryAfterMs: outcomes.shift()!,
      })),
    })
    const h = createHttpHandler(rc, hooks)
    const responses = []
    for (let i = 0; i < 4; i++)
      responses.push(
        await h.handle(req('POST', '/redeem', { body: { code: 'WRONG' } }), ctx({ pending: 'u1' })),
      )
    for (const r of responses) expect(r).toEqual(responses[0])
    expect(responses[0]!.status).toBe(401)
    expect(responses[0]!.headers['Retry-After']).toBeUndefined()
    expect(json(responses[0]!).error).toEqual({
      code: 'INVALID_CODE',
      message: 'The recovery code is not valid.',
    })
  })

  it('a successful redeem discards the reveal slot, regenerates the session, then logs in', async () => {
    const rc = stubService({
      redeem: vi.fn(async () => ({
        ok: true as const,
        userId: 'u1',
        batchId: 'b1',
        remaining: 4,
        shouldRegenerate: true,
        lowCodes: false,
        method: 'recovery_code' as const,
        mustBindFactor: false,
      })),
    })
    const c = ctx({ pending: 'u1', reveal: 'old-token' })
    const res = await createHttpHandler(rc, hooks).handle(
      req('POST', '/redeem', { body: { code: 'GOOD' } }),
      c,
    )
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body as string)).toEqual({
      remaining: 4,
      lowCodes: false,
      shouldRegenerate: true,
      method: 'recovery_code',
      mustBindFactor: false,
    })
    expect(rc.discardReveal).toHaveBeenCalledWith({ reveal: 'old-token' })
    expect(c.calls).toEqual(['regenerate', 'setReveal:null', 'logIn:u1', 'onRecoveryLogin:u1'])
    expect(rc.redeem).toHaveBeenCalledWith({ userId: 'u1', clientKey: '192.0.2.1', code: 'GOOD' })
  })

  it('/login exists only in identifier-and-code mode and redeems by identifier', async () => {
    expect(
      (await createHttpHandler(stubService(), hooks).handle(req('POST', '/login', { body: {} }), ctx()))
        .status,
    ).toBe(404)
    const rc = stubService({}, { loginMode: 'identifier-and-code' })
    const h = createHttpHandler(rc, hooks)
    expect(h.routes.map((r) => r.path)).toContain('/login')
    const res = await h.handle(
      req('POST', '/login', { body: { identifier: 'ada@example.com', code: 'X' } }),
      ctx({ user: null }),
    )
    expect(res.status).toBe(401)
    expect(rc.redeem).toHaveBeenCalledWith({
      identifier: 'ada@example.com',
      clientKey: '192.0.2.1',
      code: 'X',
    })
  })

  it('code actions: failure → 404 (invalidate/delete) or 401 (verify-setup); a lockout → 429 RATE_LIMITED', async () => {
    const failure = { ok: false as const, reason: 'INVALID_CODE' as const, retryAfterMs: 0 }
    const rc = stubService({
      invalidateCode: vi.fn(async () => failure),
      deleteCode: vi.fn(async () => ({ ...failure, retryAfterMs: 2001 })),
      verifySetup: vi.fn(async () => failure),
    })
    const h = createHttpHandler(rc, hooks)
    const inv = await h.handle(req('POST', '/codes/invalidate', { body: { code: 'X' } }), ctx())
    expect([inv.status, json(inv).error.code]).toEqual([404, 'NOT_FOUND'])
    const del = await h.handle(req('POST', '/codes/delete', { body: { code: 'X' } }), ctx())
    expect([del.status, json(del).error.code, del.headers['Retry-After']]).toEqual([429, 'RATE_LIMITED', '3'])
    const ver = await h.handle(req('POST', '/verify-setup', { body: { code: 'X' } }), ctx())
    expect([ver.status, json(ver).error.code]).toEqual([401, 'INVALID_CODE'])
  })

  it('download: attachment with a sanitised filename, the file bytes, no-store', async () => {
    const rc = stubService({
      exportCodes: vi.fn(async () => ({
        filename: 'a"b\r\nc;.pdf',
        contentType: 'application/pdf',
        body: new Uint8Array([1, 2]),
      })),
    })
    const res = await createHttpHandler(rc, hooks).handle(
      req('POST', '/download', { body: { format: 'pdf' } }),
      ctx({ reveal: 'tok' }),
    )
    expect(res.status).toBe(200)
    expect(res.headers['Content-Disposition']).toBe('attachment; filename="a_b__c_.pdf"')
    expect(res.headers['Content-Type']).toBe('application/pdf')
    expect(res.headers['Cache-Control']).toBe('no-store')
    expect(res.body).toEqual(new Uint8Array([1, 2]))
    expect(rc.exportCodes).toHaveBeenCalledWith({
      userId: 'u1',
      clientKey: '192.0.2.1',
      reveal: 'tok',
      format: 'pdf',
    })
  })

  it('email masks the address; delete batch forgets the reveal token', async () => {
    const h = createHttpHandler(stubService(), hooks)
    const e = await h.handle(req('POST', '/email', { body: {} }), ctx({ reveal: 'tok' }))
    expect(JSON.parse(e.body as string)).toEqual({ sent: true, sentTo: 'a***@example.com', message: 'Sent.' })
    const c = ctx({ reveal: 'tok' })
    expect((await h.handle(req('POST', '/batch/delete', { body: {} }), c)).status).toBe(200)
    expect(c.reveal).toBeNull()
  })

  it('service errors keep their status; 5xx get a correlation id', async () => {
    const rc = stubService({
      viewCodes: vi.fn(async () => {
        throw new RecoveryCodesError('REVEAL_UNAVAILABLE', 'Gone.')
      }),
      status: vi.fn(async () => {
        throw new RecoveryCodesError('STORE_UNAVAILABLE', 'The store is unavailable.')
      }),
    })
    const h = createHttpHandler(rc, hooks)
    const gone = await h.handle(req('POST', '/codes/view', { body: {} }), ctx())
    expect([gone.status, json(gone).error.code]).toEqual([410, 'REVEAL_UNAVAILABLE'])
    const down = await h.handle(req('GET', '/status'), ctx())
    expect(down.status).toBe(503)
    expect(json(down).error.correlationId).toMatch(/^[0-9a-f]{16}$/)
  })

  it('unknown exceptions: 500 INTERNAL, generic message, correlation id; logged by name only', async () => {
    const logger = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
    const onError = vi.fn()
    const rc = stubService({
      history: vi.fn(async () => {
        throw new TypeError('SELECT * FROM codes WHERE digest = x')
      }),
    })
    const res = await createHttpHandler(rc, hooks, { logger, onError }).handle(req('GET', '/history'), ctx())
    expect(res.status).toBe(500)
    const body = json(res)
    expect(body.error.code).toBe('INTERNAL')
    expect(res.body).not.toContain('SELECT')
    expect(logger.error).toHaveBeenCalledWith('recovery-codes: request failed', {
      correlationId: body.error.correlationId,
      operationId: 'history',
      error: 'TypeError',
    })
    expect(JSON.stringify(logger.error.mock.calls)).not.toContain('SELECT')
    expect(onError).toHaveBeenCalledWith(expect.any(TypeError), {
      correlationId: body.error.correlationId,
      operationId: 'history',
    })
  })

  it('a throwing hook is an unexpected error, not a crash', async () => {
    const h = createHttpHandler(stubService(), {
      ...hooks,
      getUserId: () => {
        throw new Error('boom')
      },
    })
    const res = await h.handle(req('GET', '/status'), ctx())
    expect(res.status).toBe(500)
  })

  it('refuses a silly body limit at construction', () => {
    expect(() => createHttpHandler(stubService(), hooks, { bodyLimit: 1 })).toThrow(RecoveryCodesError)
  })
})
