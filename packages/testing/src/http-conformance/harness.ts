/**
 * What every group of the HTTP adapter conformance suite shares: the in-test session model, a
 * service mounted through the adapter under test (`setup`), and small readers of responses.
 */
import {
  createRecoveryCodes,
  type HttpContext,
  type HttpHooks,
  type RecoveryCodes,
  type RecoveryCodesConfig,
} from '@recovery-codes/core'
import { pdfExport } from '@recovery-codes/pdf'
import { expect } from 'vitest'
import { createManualClock, type ManualClock } from '../clock.ts'
import type { HttpAdapterConformanceOptions, MountedAdapter } from '../http-conformance.ts'
import { createRecordingMailer, type RecordingMailer } from '../mailer.ts'

export const DAY = 86_400_000
const COOKIE = 'sid'
/** The one cross-site origin the hooks allow. */
export const ALLOWED_ORIGIN = 'https://app.example'

/** The in-test session model: a map keyed by the `sid` cookie. */
export interface Session {
  userId?: string
  pendingUserId?: string
  reveal?: string | null
  fresh?: boolean
  /** Some pre-authentication datum that must not survive a recovery login. */
  preAuth?: string
}

export interface Harness {
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
  /**
   * Generates a batch for the session, shows its codes (via `/codes/view`) and confirms it
   * (`/confirm`: the default `activation: 'confirm'`; skipped under `'immediate'`), as a user would.
   */
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
export function wrongCode(code: string): string {
  const i = code.search(/[A-Z0-9]/)
  return code.slice(0, i) + (code[i] === 'A' ? 'B' : 'A') + code.slice(i + 1)
}

/** Headers minus the ones that legitimately differ between two responses (Date). */
export function comparableHeaders(res: Response): [string, string][] {
  return [...res.headers].filter(([k]) => k !== 'date').sort((a, b) => a[0].localeCompare(b[0]))
}

/** The `error.code` of a JSON error body, or `(none)`. */
export async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { error?: { code?: string } }
  return body.error?.code ?? '(none)'
}

/** A fresh harness for one test: `overrides` go to the service config, `hookOverrides` to the hooks. */
export type HarnessSetup = (
  overrides?: Partial<RecoveryCodesConfig>,
  hookOverrides?: Partial<HttpHooks<HttpContext>>,
) => Promise<Harness>

/**
 * The `setup` of every test: a service over a fresh store, mounted by `options.mount`, with an
 * in-memory session model behind the hooks. Each mounted adapter goes into `open`, which the
 * suite's `afterEach` closes.
 */
export function harnessSetup(options: HttpAdapterConformanceOptions, open: MountedAdapter[]): HarnessSetup {
  return async function setup(
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
      const { pending } = (await g.json()) as { pending: boolean }
      const v = await post('/codes/view', {}, { cookie })
      expect(v.status).toBe(200)
      const codes = ((await v.json()) as { codes: string[] }).codes
      if (pending) expect((await post('/confirm', {}, { cookie })).status).toBe(200)
      return codes
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
}
