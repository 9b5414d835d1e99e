/**
 * `runHttpAdapterConformance`: one suite every HTTP adapter runs, so every framework serves the
 * same API byte for byte (statuses, bodies, security headers), with the same security properties.
 */
import {
  createHttpHandler,
  createRecoveryCodes,
  type HttpContext,
  type HttpHandlerOptions,
  type HttpHooks,
  type RecoveryCodeStore,
  type RecoveryCodes,
  type RecoveryCodesConfig,
} from '@recovery-codes/core'
import { pdfExport } from '@recovery-codes/pdf'
import { afterEach, describe, expect, it } from 'vitest'
import { createManualClock, type ManualClock } from './clock.ts'
import { createRecordingMailer, type RecordingMailer } from './mailer.ts'

/** A mounted adapter: requests go to paths relative to the mount point (e.g. `/status`). */
export interface MountedAdapter {
  fetch(path: string, init?: RequestInit): Promise<Response>
  close(): Promise<void> | void
  /** The public path it is mounted at (`/recovery`): the OpenAPI `servers` entry must name it. */
  mountPath: string
}

/** Options of {@link runHttpAdapterConformance}. */
export interface HttpAdapterConformanceOptions {
  /** Shown in the describe block. */
  name: string
  /** Mounts the adapter for `rc` and `hooks` (with `options`) under some path. */
  mount: (
    rc: RecoveryCodes,
    hooks: HttpHooks<HttpContext>,
    options: HttpHandlerOptions,
  ) => Promise<MountedAdapter> | MountedAdapter
  /** A fresh store for one test (e.g. `memoryStore`). */
  store: () => Promise<RecoveryCodeStore> | RecoveryCodeStore
}

const DAY = 86_400_000
const COOKIE = 'sid'
const ALLOWED_ORIGIN = 'https://app.example'
const STABLE_CODES = new Set([
  'INVALID_INPUT',
  'UNSUPPORTED_MEDIA_TYPE',
  'PAYLOAD_TOO_LARGE',
  'UNAUTHENTICATED',
  'INVALID_CODE',
  'FORBIDDEN',
  'REAUTH_REQUIRED',
  'CSRF_REJECTED',
  'NOT_FOUND',
  'ROUTE_NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'ALREADY_DONE',
  'ILLEGAL_TRANSITION',
  'REVEAL_UNAVAILABLE',
  'COOLDOWN_ACTIVE',
  'RATE_LIMITED',
])

/** The in-test session model: a map keyed by the `sid` cookie. */
interface Session {
  userId?: string
  pendingUserId?: string
  reveal?: string | null
  fresh?: boolean
  /** Some pre-authentication datum that must not survive a recovery login. */
  preAuth?: string
}

interface Harness {
  rc: RecoveryCodes
  clock: ManualClock
  mailer: RecordingMailer
  sessions: Map<string, Session>
  recoveryLogins: string[]
  app: MountedAdapter
  mountPath: string
  hooks: HttpHooks<HttpContext>
  /** A session cookie header for a fully logged-in user. */
  login(userId: string, opts?: { fresh?: boolean }): string
  /** A session cookie header for a user who passed the first factor only. */
  pending(userId: string): string
  post(
    path: string,
    body: unknown,
    opts?: { cookie?: string; headers?: Record<string, string> },
  ): Promise<Response>
  get(path: string, cookie?: string): Promise<Response>
  /** Generates a batch for the session and returns its codes (via `/codes/view`). */
  batch(cookie: string, body?: Record<string, unknown>): Promise<string[]>
}

function cookieOf(ctx: HttpContext): string | undefined {
  const header = ctx.header('cookie') ?? ''
  for (const part of header.split(';')) {
    const [k, v] = part.trim().split('=')
    if (k === COOKIE && v) return v
  }
  return undefined
}

function randomBase64(bytes: number): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))))
}

/** Flips one symbol of a display-formatted code into another valid one. */
function wrongCode(code: string): string {
  const i = code.search(/[A-Z0-9]/)
  return code.slice(0, i) + (code[i] === 'A' ? 'B' : 'A') + code.slice(i + 1)
}

/** Headers minus the ones that legitimately differ between two responses (Date). */
function comparableHeaders(res: Response): [string, string][] {
  return [...res.headers].filter(([k]) => k !== 'date').sort((a, b) => a[0].localeCompare(b[0]))
}

async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { error?: { code?: string } }
  return body.error?.code ?? '(none)'
}

/**
 * Registers the HTTP adapter conformance suite: every route's success and error answers, wire
 * rules (415, 413, CSRF, security headers), re-authentication, enumeration-safe redeems, session
 * regeneration, hostile inputs, once-only races and the OpenAPI document.
 *
 * @example
 * ```ts
 * runHttpAdapterConformance({ name: 'hono', store: memoryStore, mount: (rc, hooks, o) => honoMount(rc, hooks, o) })
 * ```
 */
export function runHttpAdapterConformance(options: HttpAdapterConformanceOptions): void {
  describe(`HTTP adapter conformance: ${options.name}`, () => {
    const open: MountedAdapter[] = []
    afterEach(async () => {
      await Promise.all(open.splice(0).map((a) => a.close()))
    })

    async function setup(
      overrides: Partial<RecoveryCodesConfig> = {},
      hookOverrides: Partial<HttpHooks<HttpContext>> = {},
    ): Promise<Harness> {
      const clock = createManualClock()
      const mailer = createRecordingMailer()
      const sessions = new Map<string, Session>()
      const current = new WeakMap<HttpContext, string>()
      const recoveryLogins: string[] = []
      let next = 0
      const newSid = () => `s${++next}-${randomBase64(12).replace(/[^A-Za-z0-9]/g, '')}`
      const sessionOf = (ctx: HttpContext) => {
        const sid = current.get(ctx) ?? cookieOf(ctx)
        return sid === undefined ? undefined : sessions.get(sid)
      }
      const hooks: HttpHooks<HttpContext> = {
        getUserId: (ctx) => sessionOf(ctx)?.userId ?? null,
        getPendingUserId: (ctx) => sessionOf(ctx)?.pendingUserId ?? null,
        getRevealToken: (ctx) => sessionOf(ctx)?.reveal ?? null,
        setRevealToken(ctx, token) {
          const s = sessionOf(ctx)
          if (s) s.reveal = token
        },
        regenerateSession(ctx) {
          const old = current.get(ctx) ?? cookieOf(ctx)
          if (old !== undefined) sessions.delete(old)
          const sid = newSid()
          sessions.set(sid, {})
          current.set(ctx, sid)
          ctx.appendResponseHeader('Set-Cookie', `${COOKIE}=${sid}; Path=/; HttpOnly; Secure; SameSite=Lax`)
        },
        logIn(ctx, userId) {
          const s = sessionOf(ctx)
          if (s) Object.assign(s, { userId, fresh: true })
        },
        isFreshlyAuthenticated: (ctx) => sessionOf(ctx)?.fresh === true,
        getClientKey: (ctx) => ctx.header('x-test-client') ?? '192.0.2.1',
        onRecoveryLogin(_ctx, userId) {
          recoveryLogins.push(userId)
        },
        allowedOrigins: [ALLOWED_ORIGIN],
        ...hookOverrides,
      }
      const rc = createRecoveryCodes({
        peppers: [{ id: 'k1', secret: randomBase64(32) }],
        store: await options.store(),
        clock,
        mailer,
        email: { enabled: true, from: 'noreply@example.test' },
        resolveEmail: async (userId) => `${userId}@example.test`,
        export: { pdf: pdfExport() },
        ...overrides,
      })
      const app = await options.mount(rc, hooks, {})
      open.push(app)
      const login = (userId: string, opts: { fresh?: boolean } = {}) => {
        const sid = newSid()
        sessions.set(sid, { userId, fresh: opts.fresh ?? true })
        return `${COOKIE}=${sid}`
      }
      const pending = (userId: string) => {
        const sid = newSid()
        sessions.set(sid, { pendingUserId: userId, preAuth: 'csrf-token-of-the-login-form' })
        return `${COOKIE}=${sid}`
      }
      const post = (
        path: string,
        body: unknown,
        opts: { cookie?: string; headers?: Record<string, string> } = {},
      ) =>
        app.fetch(path, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(opts.cookie ? { cookie: opts.cookie } : {}),
            ...opts.headers,
          },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        })
      const get = (path: string, cookie?: string) => app.fetch(path, cookie ? { headers: { cookie } } : {})
      const batch = async (cookie: string, body: Record<string, unknown> = {}) => {
        const g = await post('/generate', body, { cookie })
        expect(g.status).toBe(201)
        const v = await post('/codes/view', {}, { cookie })
        expect(v.status).toBe(200)
        return ((await v.json()) as { codes: string[] }).codes
      }
      return {
        rc,
        clock,
        mailer,
        sessions,
        recoveryLogins,
        app,
        hooks,
        mountPath: app.mountPath,
        login,
        pending,
        post,
        get,
        batch,
      }
    }

    // ---- success paths -------------------------------------------------------------------------

    it('generate (201), view once, status, history', async () => {
      const h = await setup()
      const alice = h.login('alice')
      const g = await h.post('/generate', { count: 6 }, { cookie: alice })
      expect(g.status).toBe(201)
      const gb = (await g.json()) as Record<string, unknown>
      expect(Object.keys(gb).sort()).toEqual([
        'batchId',
        'count',
        'createdAt',
        'expiresAt',
        'revealExpiresAt',
      ])
      expect(gb.count).toBe(6)
      expect(JSON.stringify(gb)).not.toMatch(/codes/)

      const v = await h.post('/codes/view', {}, { cookie: alice })
      expect(v.status).toBe(200)
      const vb = (await v.json()) as { batchId: string; codes: string[] }
      expect(vb.batchId).toBe(gb.batchId)
      expect(vb.codes).toHaveLength(6)
      const again = await h.post('/codes/view', {}, { cookie: alice })
      expect(again.status).toBe(409)
      expect(await errorCode(again)).toBe('ALREADY_DONE')

      const s = await h.get('/status', alice)
      expect(s.status).toBe(200)
      const sb = (await s.json()) as { remaining: number; active: { id: string; viewed: boolean } }
      expect(sb.remaining).toBe(6)
      expect(sb.active.id).toBe(gb.batchId)
      expect(sb.active.viewed).toBe(true)

      const hist = await h.get('/history?page=1', alice)
      expect(hist.status).toBe(200)
      const hb = (await hist.json()) as { items: unknown[]; page: number }
      expect(hb.page).toBe(1)
      expect(hb.items).toHaveLength(1)
      expect((await h.get('/history', alice)).status).toBe(200)
    })

    it('every response carries no-store, nosniff and no-referrer', async () => {
      const h = await setup()
      const alice = h.login('alice')
      const responses = [
        await h.post('/generate', {}, { cookie: alice }),
        await h.post('/codes/view', {}, { cookie: alice }),
        await h.get('/status', alice),
        await h.get('/status'),
        await h.get('/nope'),
        await h.get('/openapi.json'),
        await h.post('/download', { format: 'csv' }, { cookie: alice }),
      ]
      for (const res of responses) {
        expect(res.headers.get('cache-control')).toBe('no-store')
        expect(res.headers.get('x-content-type-options')).toBe('nosniff')
        expect(res.headers.get('referrer-policy')).toBe('no-referrer')
      }
    })

    it('download once per batch, as an attachment with a generated filename', async () => {
      const h = await setup()
      const alice = h.login('alice')
      const codes = await h.batch(alice)
      const d = await h.post('/download', { format: 'txt' }, { cookie: alice })
      expect(d.status).toBe(200)
      expect(d.headers.get('content-type')).toMatch(/^text\/plain/)
      expect(d.headers.get('content-disposition')).toMatch(/^attachment; filename="[A-Za-z0-9._-]+\.txt"$/)
      const text = await d.text()
      for (const c of codes) expect(text).toContain(c)
      const again = await h.post('/download', { format: 'pdf' }, { cookie: alice })
      expect([409, 410]).toContain(again.status)
      expect(['ALREADY_DONE', 'REVEAL_UNAVAILABLE']).toContain(await errorCode(again))
    })

    it('download as pdf and csv', async () => {
      const h = await setup()
      for (const format of ['pdf', 'csv'] as const) {
        const cookie = h.login(`u-${format}`)
        await h.batch(cookie)
        const d = await h.post('/download', { format }, { cookie })
        expect(d.status).toBe(200)
        expect(d.headers.get('content-disposition')).toMatch(
          new RegExp(`^attachment; filename="[A-Za-z0-9._-]+\\.${format}"$`),
        )
        const bytes = new Uint8Array(await d.arrayBuffer())
        if (format === 'pdf') expect(new TextDecoder().decode(bytes.slice(0, 5))).toBe('%PDF-')
      }
    })

    it('pdf without a renderer: 501 FEATURE_DISABLED, and the download stays available', async () => {
      const h = await setup({ export: { pdf: null } })
      expect(h.rc.exportFormats).toEqual(['txt', 'csv'])
      const alice = h.login('alice')
      const codes = await h.batch(alice)
      const refused = await h.post('/download', { format: 'pdf' }, { cookie: alice })
      expect(refused.status).toBe(501)
      expect(await errorCode(refused)).toBe('FEATURE_DISABLED')
      const d = await h.post('/download', { format: 'txt' }, { cookie: alice })
      expect(d.status).toBe(200)
      const text = await d.text()
      for (const c of codes) expect(text).toContain(c)
    })

    it('email once to the stored address; 501 when email is off', async () => {
      const h = await setup()
      const alice = h.login('alice')
      const codes = await h.batch(alice)
      const e = await h.post('/email', {}, { cookie: alice })
      expect(e.status).toBe(200)
      const eb = (await e.json()) as { sent: boolean; sentTo: string }
      expect(eb.sent).toBe(true)
      expect(eb.sentTo).not.toBe('alice@example.test')
      expect(h.mailer.messages).toHaveLength(1)
      expect(h.mailer.messages[0]!.to).toBe('alice@example.test')
      expect(h.mailer.messages[0]!.text).toContain(codes[0])
      const again = await h.post('/email', {}, { cookie: alice })
      expect(again.status).toBe(409)
      expect(await errorCode(again)).toBe('ALREADY_DONE')

      const off = await setup({ email: { enabled: false } })
      const bob = off.login('bob')
      await off.batch(bob)
      const r = await off.post('/email', {}, { cookie: bob })
      expect(r.status).toBe(501)
      expect(await errorCode(r)).toBe('FEATURE_DISABLED')
    })

    it('view, download and email without a reveal slot: 410', async () => {
      const h = await setup()
      const alice = h.login('alice')
      await h.batch(alice)
      const other = h.login('alice') // a second session of the same user holds no reveal token
      for (const [path, body] of [
        ['/codes/view', {}],
        ['/download', {}],
        ['/email', {}],
      ] as const) {
        const r = await h.post(path, body, { cookie: other })
        expect(r.status).toBe(410)
        expect(await errorCode(r)).toBe('REVEAL_UNAVAILABLE')
      }
    })

    it('verify-setup: wrong code 401, right code 200 once, then 409', async () => {
      const h = await setup()
      const alice = h.login('alice')
      const codes = await h.batch(alice)
      const wrong = await h.post('/verify-setup', { code: wrongCode(codes[0]!) }, { cookie: alice })
      expect(wrong.status).toBe(401)
      expect(await errorCode(wrong)).toBe('INVALID_CODE')
      const ok = await h.post('/verify-setup', { code: codes[0] }, { cookie: alice })
      expect(ok.status).toBe(200)
      expect(await ok.json()).toMatchObject({ verified: true })
      const again = await h.post('/verify-setup', { code: codes[1] }, { cookie: alice })
      expect(again.status).toBe(409)
      expect(await errorCode(again)).toBe('ALREADY_DONE')
    })

    it('invalidate and delete a code (200), then it no longer redeems; unknown code 404', async () => {
      const h = await setup()
      const alice = h.login('alice')
      const codes = await h.batch(alice)
      const inv = await h.post('/codes/invalidate', { code: codes[0] }, { cookie: alice })
      expect(inv.status).toBe(200)
      const del = await h.post('/codes/delete', { code: codes[1] }, { cookie: alice })
      expect(del.status).toBe(200)
      for (const code of [codes[0], codes[1]]) {
        const r = await h.post('/redeem', { code }, { cookie: h.pending('alice') })
        expect(r.status).toBe(401)
        expect(await errorCode(r)).toBe('INVALID_CODE')
      }
      const gone = await h.post('/codes/invalidate', { code: codes[0] }, { cookie: alice })
      expect(gone.status).toBe(404)
      expect(await errorCode(gone)).toBe('NOT_FOUND')
      const s = (await (await h.get('/status', alice)).json()) as { remaining: number }
      expect(s.remaining).toBe(codes.length - 2)
    })

    it('delete the batch (200), then 404; status shows no active batch', async () => {
      const h = await setup()
      const alice = h.login('alice')
      await h.batch(alice)
      const d = await h.post('/batch/delete', {}, { cookie: alice })
      expect(d.status).toBe(200)
      expect(((await (await h.get('/status', alice)).json()) as { active: unknown }).active).toBeNull()
      const again = await h.post('/batch/delete', {}, { cookie: alice })
      expect(again.status).toBe(404)
      expect(await errorCode(again)).toBe('NOT_FOUND')
    })

    it("another user's code or batch is 404, never touched", async () => {
      const h = await setup()
      const alice = h.login('alice')
      const bob = h.login('bob')
      const aliceCodes = await h.batch(alice)
      for (const path of ['/codes/invalidate', '/codes/delete']) {
        const r = await h.post(path, { code: aliceCodes[0] }, { cookie: bob })
        expect(r.status).toBe(404)
        expect(await errorCode(r)).toBe('NOT_FOUND')
      }
      const b = await h.post('/batch/delete', {}, { cookie: bob })
      expect(b.status).toBe(404)
      expect(((await (await h.get('/status', alice)).json()) as { remaining: number }).remaining).toBe(
        aliceCodes.length,
      )
    })

    // ---- recovery login ------------------------------------------------------------------------

    it('redeem completes the login on a regenerated session; the old cookie is dead', async () => {
      const h = await setup()
      const codes = await h.batch(h.login('alice'))
      const before = h.pending('alice')
      const r = await h.post('/redeem', { code: codes[0] }, { cookie: before })
      expect(r.status).toBe(200)
      expect(await r.json()).toEqual({ remaining: codes.length - 1, lowCodes: false, shouldRegenerate: true })
      const setCookie = r.headers.get('set-cookie') ?? ''
      const after = setCookie.split(';')[0]!
      expect(after).toMatch(/^sid=/)
      expect(after).not.toBe(before)
      expect(h.recoveryLogins).toEqual(['alice'])
      // The pre-login session is gone, with everything in it.
      const old = await h.get('/status', before)
      expect(old.status).toBe(401)
      expect(await errorCode(old)).toBe('UNAUTHENTICATED')
      expect([...h.sessions.values()].some((s) => s.preAuth !== undefined)).toBe(false)
      expect((await h.get('/status', after)).status).toBe(200)
      // The code is spent.
      const reuse = await h.post('/redeem', { code: codes[0] }, { cookie: h.pending('alice') })
      expect(reuse.status).toBe(401)
    })

    it('redeem without a pending second factor: 401 UNAUTHENTICATED', async () => {
      const h = await setup()
      const codes = await h.batch(h.login('alice'))
      const r = await h.post('/redeem', { code: codes[0] })
      expect(r.status).toBe(401)
      expect(await errorCode(r)).toBe('UNAUTHENTICATED')
    })

    it('/login is absent unless loginMode is identifier-and-code', async () => {
      const h = await setup()
      const r = await h.post('/login', { identifier: 'alice@example.test', code: 'X' })
      expect(r.status).toBe(404)
      expect(await errorCode(r)).toBe('ROUTE_NOT_FOUND')
    })

    it('identifier + code login (opt-in) logs in on a regenerated session', async () => {
      const users = new Map([['alice@example.test', 'alice']])
      const h = await setup({
        loginMode: 'identifier-and-code',
        resolveUserId: async (id) => users.get(id) ?? null,
      })
      const codes = await h.batch(h.login('alice'))
      const r = await h.post('/login', { identifier: 'Alice@Example.test ', code: codes[0] })
      expect(r.status).toBe(200)
      expect(r.headers.get('set-cookie')).toMatch(/^sid=/)
      expect(h.recoveryLogins).toEqual(['alice'])
    })

    it('every failed redeem is byte-identical: unknown, wrong, used, expired, invalidated, locked', async () => {
      const users = new Map(
        ['known', 'used', 'expired', 'invalidated', 'locked'].map((u) => [`${u}@example.test`, u]),
      )
      const h = await setup({
        loginMode: 'identifier-and-code',
        resolveUserId: async (id) => users.get(id) ?? null,
        maxLoginAttempts: 3,
        hardFailureCap: 50,
      })
      const codes: Record<string, string[]> = {}
      for (const u of users.values()) {
        codes[u] = await h.batch(h.login(u), u === 'expired' ? { expiresInDays: 1 } : {})
      }
      expect((await h.post('/login', { identifier: 'used@example.test', code: codes.used![0] })).status).toBe(
        200,
      )
      expect(
        (
          await h.post(
            '/codes/invalidate',
            { code: codes.invalidated![0] },
            { cookie: h.login('invalidated') },
          )
        ).status,
      ).toBe(200)
      h.clock.advance(DAY + 1)
      const login = (identifier: string, code: string) =>
        h.post('/login', { identifier, code }, { headers: { 'x-test-client': `client-${identifier}` } })
      for (let i = 0; i < 3; i++) await login('locked@example.test', wrongCode(codes.locked![1]!))
      for (let i = 0; i < 3; i++) await login('ghost-locked@example.test', wrongCode(codes.known![1]!))

      const failures = [
        await login('ghost@example.test', codes.known![0]!), // unknown identifier
        await login('known@example.test', wrongCode(codes.known![0]!)), // wrong code
        await login('used@example.test', codes.used![0]!), // used code
        await login('expired@example.test', codes.expired![0]!), // expired batch
        await login('invalidated@example.test', codes.invalidated![0]!), // invalidated code
        await login('locked@example.test', codes.locked![0]!), // right code, known identifier locked
        await login('ghost-locked@example.test', codes.known![0]!), // unknown identifier locked
      ]
      // The second factor answers the same way.
      failures.push(
        await h.post('/redeem', { code: wrongCode(codes.known![2]!) }, { cookie: h.pending('known') }),
      )
      const first = failures[0]!
      const firstBody = await first.clone().text()
      expect(first.status).toBe(401)
      expect(JSON.parse(firstBody)).toEqual({ error: { code: 'INVALID_CODE', message: expect.any(String) } })
      for (const res of failures) {
        expect(res.status).toBe(first.status)
        expect(await res.text()).toBe(firstBody)
        expect(comparableHeaders(res)).toEqual(comparableHeaders(first))
        expect(res.headers.get('retry-after')).toBeNull()
        expect(res.headers.get('set-cookie')).toBeNull()
      }
      // And the locked account really is locked: the right code did not log in.
      expect((await login('locked@example.test', codes.locked![2]!)).status).toBe(401)
    })

    // ---- wire rules ----------------------------------------------------------------------------

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
        (await h.post('/generate', {}, { cookie: alice, headers: { 'sec-fetch-site': 'same-origin' } }))
          .status,
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

    // ---- hostile input -------------------------------------------------------------------------

    it('hostile inputs on every route: 4xx with a stable code, never 5xx, no prototype pollution', async () => {
      const users = new Map([['alice@example.test', 'alice']])
      const h = await setup({
        loginMode: 'identifier-and-code',
        resolveUserId: async (id) => users.get(id) ?? null,
      })
      const alice = h.login('alice')
      await h.batch(alice)
      const strings = [
        '\u0000',
        'ABCDE\u0000FGHJK',
        'A'.repeat(65),
        'Ａ'.repeat(25),
        'ＡＢＣＤＥ-ＦＧＨＪＫ-ＭＮＰＱＲ-ＳＴＶＷＸ-ＹＺ０１２',
        'АВСDЕ-FGНJK-MNРQR-SТVWX-YZ012',
        "' OR 1=1 --",
        "'; DROP TABLE recovery_codes; --",
        '" OR ""="',
        '1; SELECT pg_sleep(10)',
        '../../etc/passwd',
        '%00',
        '\r\nSet-Cookie: x=1',
        '<script>alert(1)</script>',
        '',
        ' ',
      ]
      const wrongTypes: unknown[] = [
        ['ABCDE'],
        { $ne: null },
        { __proto__: { polluted: true } },
        12345,
        1e308,
        -1,
        true,
        null,
      ]
      const values = [...strings, ...wrongTypes]
      const bodies: unknown[] = [
        [],
        null,
        'string',
        42,
        JSON.parse('{"__proto__":{"polluted":true}}'),
        JSON.parse('{"constructor":{"prototype":{"polluted":true}}}'),
        JSON.parse('{"code":"ABCDE","__proto__":{"polluted":true}}'),
        { code: 'ABCDE', extra: 1 },
        { code: 'A'.repeat(1_000_000) },
      ]
      const fields: Record<string, string[]> = {
        '/generate': ['count', 'expiresInDays'],
        '/download': ['format'],
        '/verify-setup': ['code'],
        '/codes/invalidate': ['code'],
        '/codes/delete': ['code'],
        '/redeem': ['code'],
        '/login': ['identifier', 'code'],
        '/codes/view': ['reveal'],
        '/email': ['to'],
        '/batch/delete': ['batchId'],
      }
      const seen: string[] = []
      const check = async (res: Response, what: string) => {
        expect(res.status, what).toBeGreaterThanOrEqual(400)
        expect(res.status, what).toBeLessThan(500)
        const code = await errorCode(res)
        expect(STABLE_CODES.has(code), `${what}: ${code}`).toBe(true)
        seen.push(code)
      }
      for (const route of createHttpHandler(h.rc, h.hooks).routes) {
        const cookie =
          route.path === '/redeem' ? h.pending('alice') : route.auth === 'none' ? undefined : alice
        if (route.method === 'GET') {
          for (const q of [
            '?page=0',
            '?page=-1',
            '?page=1e3',
            '?page=__proto__',
            '?__proto__[polluted]=1',
            '?page=1&page=2',
            '?page[]=1',
            '?code=ABCDE',
            `?page=${'9'.repeat(400)}`,
            '?constructor=x',
          ]) {
            if (route.path === '/openapi.json' && q === '?page=1&page=2') continue
            await check(await h.get(route.path + q, cookie), `${route.path}${q}`)
          }
          continue
        }
        for (const body of bodies) {
          await check(
            await h.post(route.path, body, cookie ? { cookie } : {}),
            `${route.path} ${JSON.stringify(body)?.slice(0, 40)}`,
          )
        }
        for (const field of fields[route.path] ?? []) {
          for (const value of values) {
            const body: Record<string, unknown> =
              route.path === '/login' ? { identifier: 'alice@example.test', code: 'ABCDE' } : {}
            // `expiresInDays: null` is valid (the configured default), so not hostile.
            if (field === 'expiresInDays' && value === null) continue
            body[field] = value
            if (route.path === '/generate') h.clock.advance(DAY) // a valid-looking body must not end in a cooldown
            const res = await h.post(route.path, body, cookie ? { cookie } : {})
            await check(res, `${route.path} ${field}=${JSON.stringify(value)?.slice(0, 40)}`)
          }
        }
      }
      expect(seen).not.toContain(undefined)
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined()
    })

    // ---- once-only races -----------------------------------------------------------------------

    it('20 concurrent downloads of one batch: exactly one 200', async () => {
      const h = await setup()
      const alice = h.login('alice')
      await h.batch(alice)
      const results = await Promise.all(
        Array.from({ length: 20 }, () => h.post('/download', { format: 'txt' }, { cookie: alice })),
      )
      expect(results.filter((r) => r.status === 200)).toHaveLength(1)
      for (const r of results) if (r.status !== 200) expect([409, 410]).toContain(r.status)
    })

    it('20 concurrent emails of one batch: exactly one 200, one message', async () => {
      const h = await setup()
      const alice = h.login('alice')
      await h.batch(alice)
      const results = await Promise.all(
        Array.from({ length: 20 }, () => h.post('/email', {}, { cookie: alice })),
      )
      expect(results.filter((r) => r.status === 200)).toHaveLength(1)
      for (const r of results) if (r.status !== 200) expect([409, 410]).toContain(r.status)
      expect(h.mailer.messages).toHaveLength(1)
    })

    // ---- OpenAPI -------------------------------------------------------------------------------

    it('serves the OpenAPI 3.1 document generated in core, listing exactly the routes served', async () => {
      for (const overrides of [
        {},
        { loginMode: 'identifier-and-code' as const, resolveUserId: async () => null },
      ]) {
        const h = await setup(overrides)
        const res = await h.get('/openapi.json')
        expect(res.status).toBe(200)
        expect(res.headers.get('content-type')).toMatch(/^application\/json/)
        const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> }
        const handler = createHttpHandler(h.rc, h.hooks, { mountPath: h.mountPath })
        expect(doc).toEqual(JSON.parse(JSON.stringify(handler.openapi)))
        // Generated clients resolve the paths against `servers`: it must be the mount path.
        expect((doc as { servers?: { url: string }[] }).servers?.[0]?.url).toBe(h.mountPath)
        expect(doc.openapi).toMatch(/^3\.1\./)
        const documented = Object.entries(doc.paths)
          .flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`))
          .sort()
        const served = handler.routes.map((r) => `${r.method} ${r.path}`).sort()
        expect(documented).toEqual(served)
        // Each documented route is really served by this adapter (no router 404/405 for it).
        for (const route of handler.routes) {
          const r = route.method === 'GET' ? await h.get(route.path) : await h.post(route.path, {})
          expect([404, 405], `${route.method} ${route.path}`).not.toContain(r.status)
        }
      }
    })
  })
}
