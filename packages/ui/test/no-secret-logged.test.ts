/**
 * "Dependable under faults": nothing is logged with a secret in it. A capture logger is wired into
 * the service, the pages and the JSON API; console.* and process.stdout/stderr are spied on; a
 * host error handler logs whatever reaches it (errors with their causes) and Express runs in
 * `development`, where its final handler prints every unhandled error's stack to stderr. Then a
 * full flow runs over HTTP: sign in, bad CSRF token, generate, show codes, a failing mail
 * transport whose error carries the codes, download, oversize bodies (with a code and the token
 * in them), malformed JSON (a code in it), failed redeems, a redeem at login (pages and API), a
 * regenerate + view + download through the API. No captured line, serialised with error
 * messages, stacks and causes, may contain a plaintext code (as shown, without separators,
 * lower/upper case, and any 10-character run of it), the pepper (base64, base64url, hex), the session secret, a session cookie
 * (signed value, id, signature), a CSRF token or a reveal token.
 */
import type { AddressInfo } from 'node:net'
import { createRecoveryCodes, type HostSession, type Mailer, SESSION_KEYS } from '@recovery-codes/core'
import { recoveryCodesRouter } from '@recovery-codes/express'
import { memoryStore } from '@recovery-codes/store-memory'
import {
  type CaptureLogger,
  createCaptureLogger,
  createManualClock,
  randomPepperSecret,
} from '@recovery-codes/testing'
import express, { type Response as ExpressResponse, type NextFunction, type Request } from 'express'
import session from 'express-session'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { recoveryCodesPages } from '../src/express.ts'
import { recoveryCodesPages as honoPages } from '../src/hono.ts'
import { bigStream, sendBig } from './oversize-fixtures.ts'

const EMAIL = 'user@example.test'
const PASSWORD = 'correct horse battery'
const FORM = 'application/x-www-form-urlencoded'
const SAME_SITE = { 'sec-fetch-site': 'same-origin' }
const users = {
  signInWithPassword: async (e: string, p: string) => (e === EMAIL && p === PASSWORD ? 'u1' : null),
  verifyPassword: async (id: string, p: string) => id === 'u1' && p === PASSWORD,
}

/** The shortest run of a code's characters that counts as leaked. */
const FRAGMENT = 10

/** Every secret of the run, by value, with what it is. */
class Secrets {
  readonly byValue = new Map<string, string>()
  add(label: string, value: string | null | undefined): void {
    if (typeof value === 'string' && value.length >= FRAGMENT - 2) this.byValue.set(value, label)
  }
  code(code: string): void {
    const bare = code.replace(/[^0-9A-Za-z]/g, '')
    for (const v of [
      code,
      bare,
      code.toLowerCase(),
      bare.toLowerCase(),
      code.toUpperCase(),
      bare.toUpperCase(),
    ])
      this.add('plaintext code', v)
    this.add('plaintext code (spaces)', code.replace(/[^0-9A-Za-z]/g, ' '))
    // Fragments too: a parser's message quotes only the start of a body (V8: 10 characters).
    for (const form of [code, bare])
      for (let i = 0; i + FRAGMENT <= form.length; i++) {
        const part = form.slice(i, i + FRAGMENT)
        for (const v of [part, part.toLowerCase()]) if (!this.byValue.has(v)) this.add('code fragment', v)
      }
  }
  pepper(base64: string): void {
    const bytes = Buffer.from(base64, 'base64')
    this.add('pepper (base64)', base64)
    this.add('pepper (base64, unpadded)', base64.replace(/=+$/, ''))
    this.add('pepper (base64url)', bytes.toString('base64url'))
    this.add('pepper (hex)', bytes.toString('hex'))
    this.add('pepper (HEX)', bytes.toString('hex').toUpperCase())
  }
  /** An express-session cookie value (`s%3A<id>.<signature>`), or a plain session id. */
  cookie(value: string): void {
    this.add('session cookie', value)
    const decoded = decodeURIComponent(value)
    this.add('session cookie (decoded)', decoded)
    const m = /^s:([^.]+)\.(.+)$/.exec(decoded)
    if (m) {
      this.add('session id', m[1])
      this.add('session cookie signature', m[2])
    }
  }
  /** The labels of the secrets found in `text`. */
  foundIn(text: string): string[] {
    const found: string[] = []
    for (const [value, label] of this.byValue) if (text.includes(value)) found.push(`${label}: ${value}`)
    return found
  }
}

/** JSON with every Error expanded (name, message, stack, cause, own fields) and bytes decoded. */
function serialise(value: unknown): string {
  const seen = new WeakSet<object>()
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return String(v)
    if (v instanceof Uint8Array)
      return { utf8: Buffer.from(v).toString('utf8'), hex: Buffer.from(v).toString('hex') }
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[seen]'
      seen.add(v)
      if (v instanceof Error) {
        return {
          ...v,
          name: v.name,
          message: v.message,
          stack: v.stack,
          cause: (v as { cause?: unknown }).cause,
        }
      }
    }
    return v
  })
}

/** Starts capturing; the returned check asserts the spies saw canaries and no secret. */
function capture() {
  const logger = createCaptureLogger()
  const restore = logger.captureConsole()
  let restored = false
  const stop = () => {
    if (!restored) restore()
    restored = true
  }
  return {
    logger,
    stop,
    check(secrets: Secrets) {
      // The spies are live: a canary on each channel is seen.
      console.error('canary-console-error')
      process.stderr.write('canary-stderr\n')
      process.stdout.write('canary-stdout\n')
      stop()
      const text = serialise(logger.lines)
      expect(text).toContain('canary-console-error')
      expect(text).toContain('canary-stderr')
      expect(text).toContain('canary-stdout')
      expect(secrets.foundIn(text)).toEqual([])
      // The detector itself: a secret deep in an error's cause is found.
      const [first] = secrets.byValue.keys()
      const planted = serialise([{ fields: { err: new Error('x', { cause: new Error(`y ${first}`) }) } }])
      expect(secrets.foundIn(planted)).not.toEqual([])
      return logger.lines
    },
  }
}

/** A mail transport that fails once with an error carrying the message (codes included) in its message and cause. */
function leakyFailingMailer(): Mailer & { sent: number; failed: number } {
  const m = {
    sent: 0,
    failed: 0,
    async send(message: { text: string; html?: string }) {
      if (m.failed === 0) {
        m.failed++
        throw new Error(`554 transaction failed for message: ${message.text}`, {
          cause: Object.assign(new Error(`smtp said no to ${message.html ?? message.text}`), { message }),
        })
      }
      m.sent++
    },
  }
  return m
}

type Fetcher = (path: string, init: RequestInit) => Promise<Response>

interface Got {
  status: number
  location: string | null
  contentType: string
  text: string
}

/** A cookie jar over `fetcher` that records every cookie value and CSRF token it sees. */
function browser(fetcher: Fetcher, cookieName: string, secrets: Secrets) {
  let cookie = ''
  const req = async (path: string, init: RequestInit = {}): Promise<Got> => {
    const res = await fetcher(path, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
    })
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0]!
      if (pair.startsWith(`${cookieName}=`)) {
        cookie = pair
        secrets.cookie(pair.slice(cookieName.length + 1))
      }
    }
    const text = await res.text()
    for (const m of text.matchAll(/name="_csrf" value="([^"]+)"/g)) secrets.add('CSRF token', m[1])
    return {
      status: res.status,
      location: res.headers.get('location'),
      contentType: res.headers.get('content-type') ?? '',
      text,
    }
  }
  const csrf = async (path: string) => {
    const m = /name="_csrf" value="([^"]+)"/.exec((await req(path)).text)
    if (!m) throw new Error(`no CSRF token on ${path}`)
    return m[1]!
  }
  const post = (path: string, fields: Record<string, string>) =>
    req(path, {
      method: 'POST',
      headers: { 'content-type': FORM, ...SAME_SITE },
      body: new URLSearchParams(fields).toString(),
    })
  const postJson = (path: string, body: string) =>
    req(path, { method: 'POST', headers: { 'content-type': 'application/json', ...SAME_SITE }, body })
  return { req, csrf, post, postJson, cookie: () => cookie }
}

type Browser = ReturnType<typeof browser>
const codesIn = (html: string) => [...html.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!)

/**
 * The pages' part of the flow, under `base`: returns the codes of the batch it generated.
 * `oversize(path, prefix)` sends a 50 MB form post starting with `prefix` and resolves its status.
 */
async function pagesFlow(
  b: Browser,
  base: string,
  secrets: Secrets,
  oversize: (path: string, prefix: string) => Promise<number>,
  revealTokens: () => Promise<void>,
): Promise<string[]> {
  // A bad CSRF token, then a good sign-in.
  const token = await b.csrf(`${base}/signin`)
  const forged = await b.post(`${base}/signin`, { _csrf: `${token}x`, email: EMAIL, password: PASSWORD })
  expect(forged.status).toBe(403)
  expect(
    await b.post(`${base}/signin`, { _csrf: token, email: EMAIL, password: 'wrong password' }),
  ).toMatchObject({ status: 401 })
  expect(
    (
      await b.post(`${base}/signin`, {
        _csrf: await b.csrf(`${base}/signin`),
        email: EMAIL,
        password: PASSWORD,
      })
    ).location,
  ).toBe(`${base}/`)

  // Generate, show.
  expect((await b.post(`${base}/generate`, { _csrf: await b.csrf(`${base}/`) })).location).toBe(
    `${base}/codes`,
  )
  await revealTokens()
  const shown = await b.post(`${base}/codes`, { _csrf: await b.csrf(`${base}/codes`) })
  const codes = codesIn(shown.text)
  expect(codes).toHaveLength(10)
  for (const c of codes) secrets.code(c)
  const csrf = /name="_csrf" value="([^"]+)"/.exec(shown.text)![1]!

  // The mail transport fails with the codes in its error; then the download.
  expect((await b.post(`${base}/email`, { _csrf: csrf })).location).toBe(`${base}/`)
  expect((await b.req(`${base}/`)).text).toContain('The email could not be sent')
  const file = await b.post(`${base}/download`, { _csrf: await b.csrf(`${base}/`), format: 'txt' })
  expect(file.status).toBe(200)
  expect(file.text).toContain(codes[0])
  // "I have saved my codes" (activation 'confirm', the default).
  expect((await b.post(`${base}/confirm`, { _csrf: await b.csrf(`${base}/`) })).location).toBe(`${base}/`)

  // Oversize posts carrying the token and a code; a bad token with a code; a small JSON post.
  const fresh = await b.csrf(`${base}/`)
  for (const path of [`${base}/verify-setup`, `${base}/code`, `${base}/login`]) {
    expect(await oversize(path, `_csrf=${fresh}&code=${codes[3]}&action=delete&pad=`)).toBe(413)
  }
  expect((await b.post(`${base}/verify-setup`, { _csrf: `${fresh}0`, code: codes[3]! })).status).toBe(403)
  expect((await b.postJson(`${base}/verify-setup`, `{"_csrf":"${fresh}","code":${codes[3]}}`)).status).toBe(
    400,
  )
  expect((await b.post(`${base}/verify-setup`, { _csrf: fresh, code: codes[3]! })).location).toBe(`${base}/`)

  // Log out; password, then failed redeems, then a good one.
  expect((await b.post(`${base}/logout`, { _csrf: await b.csrf(`${base}/`) })).status).toBe(303)
  expect(
    (
      await b.post(`${base}/signin`, {
        _csrf: await b.csrf(`${base}/signin`),
        email: EMAIL,
        password: PASSWORD,
      })
    ).location,
  ).toBe(`${base}/login`)
  const wrong = [
    codes[0]!.replace(/^./, (ch) => (ch === 'A' ? 'B' : 'A')),
    codes[0]!.split('').reverse().join(''),
    `${codes[0]}${codes[1]}`,
  ]
  for (const code of wrong) {
    secrets.code(code)
    expect((await b.post(`${base}/login`, { _csrf: await b.csrf(`${base}/login`), code })).status).toBe(401)
  }
  expect(
    (await b.post(`${base}/login`, { _csrf: await b.csrf(`${base}/login`), code: codes[0]! })).location,
  ).toBe(`${base}/`)
  // A used code, as the second factor of a new sign-in.
  expect((await b.post(`${base}/logout`, { _csrf: await b.csrf(`${base}/`) })).status).toBe(303)
  await b.post(`${base}/signin`, { _csrf: await b.csrf(`${base}/signin`), email: EMAIL, password: PASSWORD })
  expect(
    (await b.post(`${base}/login`, { _csrf: await b.csrf(`${base}/login`), code: codes[0]! })).status,
  ).toBe(401)
  return codes
}

describe('no secret is logged: Express 5 (express-session, global parsers) pages + JSON API', () => {
  it('a full flow over HTTP logs no code, pepper, session secret, cookie, CSRF or reveal token', async () => {
    const cap = capture()
    try {
      const secrets = new Secrets()
      const pepper = randomPepperSecret()
      secrets.pepper(pepper)
      const sessionSecret = `session-secret-${crypto.randomUUID()}`
      secrets.add('session secret', sessionSecret)
      const logger: CaptureLogger = cap.logger
      const clock = createManualClock(Date.now())
      const mailer = leakyFailingMailer()
      const rc = createRecoveryCodes({
        peppers: [{ id: 'k1', secret: pepper }],
        store: memoryStore(),
        logger,
        clock,
        mailer,
        email: { enabled: true, from: 'noreply@example.test' },
        resolveEmail: async () => EMAIL,
      })
      const sessions = new session.MemoryStore()
      const a = express()
      a.set('env', 'development') // the final handler prints unhandled errors' stacks
      a.use(session({ secret: sessionSecret, store: sessions, resave: false, saveUninitialized: false }))
      a.use(express.json())
      a.use(express.urlencoded({ extended: false }))
      a.use('/account', recoveryCodesPages(rc, users, { logger }))
      a.use('/account/recovery', recoveryCodesRouter(rc, {}, { logger }))
      a.use((_req, res) => void res.status(404).send('host 404'))
      // What a host typically does with errors: log them, causes and all.
      a.use((err: unknown, req: Request, _res: ExpressResponse, next: NextFunction) => {
        logger.error('host: unhandled error', { url: req.originalUrl, err } as never)
        next(err)
      })
      const server = a.listen(0, '127.0.0.1')
      await new Promise((ok) => server.once('listening', ok))
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      try {
        const b = browser((path, init) => fetch(origin + path, init), 'connect.sid', secrets)
        const revealTokens = () =>
          new Promise<void>((ok) =>
            sessions.all((_e, all) => {
              for (const [sid, s] of Object.entries(all ?? {})) {
                secrets.add('session id', sid)
                const data = s as unknown as Record<string, unknown>
                secrets.add('reveal token', data[SESSION_KEYS.reveal] as string)
                secrets.add('CSRF token', data[SESSION_KEYS.csrf] as string)
              }
              ok()
            }),
          )
        const oversize = async (path: string, prefix: string, contentType = FORM) =>
          (
            await sendBig(origin, path, {
              method: 'POST',
              contentType,
              chunked: false,
              prefix,
              headers: { ...SAME_SITE, cookie: b.cookie() },
            })
          ).status
        const codes = await pagesFlow(b, '/account', secrets, oversize, revealTokens)
        expect(mailer.failed).toBe(1)

        // The JSON API, same session: failed and good redeem of the pending user.
        const api = '/account/recovery'
        const bad = await b.postJson(`${api}/redeem`, JSON.stringify({ code: codes[0] }))
        expect(bad.status).toBe(401)
        expect(JSON.parse(bad.text)).toMatchObject({ error: { code: 'INVALID_CODE' } })
        const malformed = await b.postJson(`${api}/redeem`, `{"code":${codes[1]}}`)
        expect(malformed.status).toBe(400)
        expect(JSON.parse(malformed.text)).toMatchObject({ error: { code: 'INVALID_INPUT' } })
        expect(await oversize(`${api}/redeem`, `{"code":"${codes[1]}","pad":"`, 'application/json')).toBe(413)
        expect(await oversize(`${api}/redeem`, `code=${codes[1]}&pad=`)).toBe(413)
        expect((await b.postJson(`${api}/redeem`, JSON.stringify({ code: codes[1] }))).status).toBe(200)
        // Cross-site and token-less JSON posts.
        const cross = await b.req(`${api}/verify-setup`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' },
          body: JSON.stringify({ code: codes[2] }),
        })
        expect(JSON.parse(cross.text)).toMatchObject({ error: { code: 'CSRF_REJECTED' } })
        // Regenerate through the API (past the regeneration cooldown), view, download, email.
        clock.advance(3 * 3600_000)
        const gen = await b.postJson(`${api}/generate`, '{}')
        expect(gen.status, gen.text).toBe(201)
        await revealTokens()
        const view = await b.postJson(`${api}/codes/view`, '{}')
        expect(view.status).toBe(200)
        const second = (JSON.parse(view.text) as { codes: string[] }).codes
        expect(second).toHaveLength(10)
        for (const c of second) secrets.code(c)
        expect((await b.postJson(`${api}/download`, JSON.stringify({ format: 'csv' }))).status).toBe(200)
        expect((await b.postJson(`${api}/email`, '{}')).status).toBe(200)
        expect((await b.postJson(`${api}/confirm`, '{}')).status).toBe(200)
        expect((await b.postJson(`${api}/verify-setup`, JSON.stringify({ code: codes[2] }))).status).toBe(401)
        expect((await b.postJson(`${api}/verify-setup`, `{"code":"${second[0]}",}`)).status).toBe(400)
        expect((await b.postJson(`${api}/verify-setup`, JSON.stringify({ code: second[0] }))).status).toBe(
          200,
        )
        expect((await b.req(`${api}/status`)).status).toBe(200)
        await revealTokens()
      } finally {
        await new Promise<void>((ok) => {
          server.close(() => ok())
          server.closeAllConnections()
        })
      }
      const lines = cap.check(secrets)
      // The logger was wired: the failed mail transport was logged, by name only.
      expect(lines.some((l) => l.level === 'error' && /mail failed/.test(l.message))).toBe(true)
      // Nothing reached the host's error handler or its final handler.
      expect(lines.filter((l) => /host: unhandled/.test(l.message))).toEqual([])
      // What was looked for: 20 codes (+ wrong ones) in 4 forms, the reveal tokens, tokens, cookies.
      const labels = [...secrets.byValue.values()]
      expect(labels.filter((l) => l === 'plaintext code').length).toBeGreaterThanOrEqual(80)
      expect(labels.filter((l) => l === 'reveal token')).toHaveLength(2)
      expect(labels.filter((l) => l === 'CSRF token').length).toBeGreaterThanOrEqual(3)
      expect(labels.filter((l) => l.startsWith('session cookie')).length).toBeGreaterThanOrEqual(6)
    } finally {
      cap.stop()
    }
  })
})

describe('no secret is logged: Hono pages (basePath)', () => {
  it('the pages flow logs no code, pepper, session id, CSRF or reveal token', async () => {
    const cap = capture()
    try {
      const secrets = new Secrets()
      const pepper = randomPepperSecret()
      secrets.pepper(pepper)
      const logger = cap.logger
      const rc = createRecoveryCodes({
        peppers: [{ id: 'k1', secret: pepper }],
        store: memoryStore(),
        logger,
        mailer: leakyFailingMailer(),
        email: { enabled: true, from: 'noreply@example.test' },
        resolveEmail: async () => EMAIL,
      })
      const store = new Map<string, Map<string, unknown>>()
      const app = new Hono().basePath('/account')
      app.use('*', async (c, next) => {
        const sid = /sid=([\w-]+)/.exec(c.req.header('cookie') ?? '')?.[1]
        let id = sid && store.has(sid) ? sid : null
        const data = () => store.get(id!) ?? new Map()
        const fresh = () => {
          id = crypto.randomUUID()
          store.set(id, new Map())
          c.header('set-cookie', `sid=${id}; Path=/; HttpOnly`, { append: true })
        }
        const s: HostSession = {
          get: (k) => (id ? data().get(k) : undefined),
          set: (k, v) => {
            if (!id) fresh()
            if (v === undefined) data().delete(k)
            else data().set(k, v)
          },
          regenerate: async () => {
            if (id) store.delete(id)
            fresh()
          },
          destroy: async () => {
            if (id) store.delete(id)
            id = null
          },
        }
        c.set('session' as never, s as never)
        await next()
      })
      app.route('/', honoPages(rc, users, { logger }))
      app.onError((err, c) => {
        logger.error('host: unhandled error', { err } as never)
        return c.text('host error', 500)
      })
      const fetcher: Fetcher = async (path, init) => app.request(`http://localhost${path}`, init)
      const b = browser(fetcher, 'sid', secrets)
      const revealTokens = async () => {
        for (const [sid, data] of store) {
          secrets.add('session id', sid)
          secrets.add('reveal token', data.get(SESSION_KEYS.reveal) as string)
          secrets.add('CSRF token', data.get(SESSION_KEYS.csrf) as string)
        }
      }
      const oversize = async (path: string, prefix: string) => {
        const { stream } = bigStream(undefined, prefix)
        const res = await b.req(path, {
          method: 'POST',
          headers: { 'content-type': FORM, ...SAME_SITE },
          body: stream,
          duplex: 'half',
        } as RequestInit)
        return res.status
      }
      await pagesFlow(b, '/account', secrets, oversize, revealTokens)
      await revealTokens()
      const lines = cap.check(secrets)
      const labels = [...secrets.byValue.values()]
      expect(labels.filter((l) => l === 'plaintext code').length).toBeGreaterThanOrEqual(40)
      expect(labels.filter((l) => l === 'reveal token')).toHaveLength(1)
      expect(labels.filter((l) => l === 'CSRF token').length).toBeGreaterThanOrEqual(3)
      expect(lines.some((l) => l.level === 'error' && /mail failed/.test(l.message))).toBe(true)
      expect(lines.filter((l) => /host: unhandled/.test(l.message))).toEqual([])
    } finally {
      cap.stop()
    }
  })
})
