/**
 * "Dependable under faults" on the Fastify JSON API, with @fastify/cookie + @fastify/session,
 * registered at `/account/recovery`, over a real socket:
 *
 * 1. A 50 MB body (streamed from one reused buffer; form and JSON; with a Content-Length and
 *    chunked without one) is 413 `PAYLOAD_TOO_LARGE` on every POST operation of the served
 *    OpenAPI document. GET operations never read a body (Fastify parses none for GET; core's
 *    dispatcher reads one only for POST routes): a GET with a 50 MB body answers as the plain
 *    GET. A POST to a GET-only path is 405 `METHOD_NOT_ALLOWED` (the method is checked first).
 * 2. With a capture logger in the service and the plugin, Fastify's own logger (pino, debug
 *    level) written into it, console and the standard streams spied on, a full flow logs no
 *    plaintext code, pepper, session secret, session cookie or id, or reveal token.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { createRecoveryCodes, markFirstFactor, markSignedIn, SESSION_KEYS } from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import { createCaptureLogger, createManualClock, randomPepperSecret } from '@recovery-codes/testing'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { fastifyHostSession, recoveryCodesFastify } from '../src/index.ts'

const FIFTY_MB = 50 * 1024 * 1024
const FILLER = Buffer.alloc(1024 * 1024, 'a')
const FORM = 'application/x-www-form-urlencoded'
const JSON_TYPE = 'application/json'
const SAME_SITE = { 'sec-fetch-site': 'same-origin' }
const EMAIL = 'user@example.test'

interface Sent {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/**
 * Sends `prefix` then filler up to `total` bytes with node:http (a body with GET too), streamed
 * from {@link FILLER}; stops sending once the answer arrives.
 */
function send(
  origin: string,
  path: string,
  o: {
    method: string
    contentType?: string
    chunked?: boolean
    headers?: Record<string, string>
    prefix?: string
    total?: number
    body?: string
  },
): Promise<Sent> {
  const head = Buffer.from(o.body ?? o.prefix ?? '')
  const total = o.body !== undefined ? head.length : (o.total ?? FIFTY_MB)
  const url = new URL(path, origin)
  return new Promise<Sent>((resolve, reject) => {
    let answered = false
    let sent = 0
    let status = 0
    let headers: IncomingHttpHeaders = {}
    const parts: Buffer[] = []
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      method: o.method,
      agent: false,
      headers: {
        ...o.headers,
        ...(o.contentType ? { 'content-type': o.contentType } : {}),
        ...(o.chunked
          ? { 'transfer-encoding': 'chunked' }
          : total > 0
            ? { 'content-length': String(total) }
            : {}),
      },
    })
    const done = () => {
      req.destroy()
      resolve({ status, headers, body: Buffer.concat(parts).toString('utf8') })
    }
    req.on('response', (res) => {
      answered = true
      status = res.statusCode ?? 0
      headers = res.headers
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('end', done)
      res.on('error', done)
    })
    req.on('error', (error) => (answered ? done() : reject(error)))
    const pump = async () => {
      if (head.length > 0) {
        req.write(head)
        sent += head.length
      }
      while (sent < total && !answered && !req.destroyed) {
        const n = Math.min(FILLER.length, total - sent)
        const ok = req.write(n === FILLER.length ? FILLER : FILLER.subarray(0, n))
        sent += n
        if (!ok) {
          await new Promise<void>((go) => {
            const wake = () => {
              for (const e of ['drain', 'close', 'response']) req.off(e, wake)
              go()
            }
            for (const e of ['drain', 'close', 'response']) req.on(e, wake)
          })
        }
      }
      if (!answered && !req.destroyed) req.end()
    }
    pump().catch(reject)
  })
}

/** @fastify/session's store contract over a Map, so the test can read the sessions. */
function mapStore() {
  const sessions = new Map<string, Record<string, unknown>>()
  return {
    sessions,
    set: (sid: string, s: Record<string, unknown>, cb: (e?: unknown) => void) => {
      sessions.set(sid, JSON.parse(JSON.stringify(s)) as Record<string, unknown>)
      cb()
    },
    get: (sid: string, cb: (e: unknown, s?: Record<string, unknown> | null) => void) =>
      cb(null, sessions.get(sid) ?? null),
    destroy: (sid: string, cb: (e?: unknown) => void) => {
      sessions.delete(sid)
      cb()
    },
  }
}

const apps: FastifyInstance[] = []
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()))
})

async function start(
  rc: ReturnType<typeof createRecoveryCodes>,
  o: { secret: string; store: ReturnType<typeof mapStore>; logger?: ReturnType<typeof createCaptureLogger> },
) {
  const app = Fastify(
    o.logger
      ? {
          logger: {
            level: 'debug',
            stream: { write: (line: string) => o.logger!.info('fastify', { line }) },
          },
        }
      : {},
  )
  apps.push(app)
  await app.register(fastifyCookie)
  await app.register(fastifySession, {
    secret: o.secret,
    store: o.store as never,
    cookie: { secure: false },
    saveUninitialized: false,
  })
  await app.register(recoveryCodesFastify(rc, {}, o.logger ? { logger: o.logger } : {}), {
    prefix: '/account/recovery',
  })
  // The host's own first factor.
  app.post('/account/test/sign-in', async (request) => {
    markSignedIn(fastifyHostSession(request), 'u1', Date.now())
    return { ok: true }
  })
  app.post('/account/test/password', async (request) => {
    markFirstFactor(fastifyHostSession(request), 'u1', Date.now())
    return { ok: true }
  })
  return app.listen({ port: 0, host: '127.0.0.1' })
}

const VARIANTS = [
  { name: 'form + content-length', contentType: FORM, chunked: false, prefix: 'code=' },
  { name: 'form chunked', contentType: FORM, chunked: true, prefix: 'code=' },
  { name: 'json + content-length', contentType: JSON_TYPE, chunked: false, prefix: '{"code":"' },
  { name: 'json chunked', contentType: JSON_TYPE, chunked: true, prefix: '{"code":"' },
] as const

describe('Fastify API (@fastify/session): 50 MB on every OpenAPI operation', () => {
  it('POST operations → 413 PAYLOAD_TOO_LARGE; GET operations ignore the body; POST to a GET path → 405', async () => {
    const rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: randomPepperSecret() }],
      store: memoryStore(),
      loginMode: 'identifier-and-code',
      resolveUserId: async () => null,
    })
    const origin = await start(rc, { secret: 'x'.repeat(32), store: mapStore() })
    const doc = JSON.parse(
      (await send(origin, '/account/recovery/openapi.json', { method: 'GET' })).body,
    ) as {
      servers: { url: string }[]
      paths: Record<string, Record<string, unknown>>
    }
    const base = doc.servers[0]!.url
    expect(base).toBe('/account/recovery')
    const ops = Object.entries(doc.paths).flatMap(([p, item]) =>
      Object.keys(item).map((m) => ({ method: m.toUpperCase(), path: base + p })),
    )
    const posts = ops.filter((o) => o.method === 'POST')
    const gets = ops.filter((o) => o.method === 'GET')
    expect(posts).toHaveLength(11)
    expect(gets).toHaveLength(3)
    expect(posts.length + gets.length).toBe(ops.length)

    for (const { path } of posts) {
      for (const v of VARIANTS) {
        const r = await send(origin, path, { method: 'POST', ...v, headers: SAME_SITE })
        const label = `POST ${path} ${v.name}`
        expect(r.status, label).toBe(413)
        expect(r.headers['content-type'], label).toMatch(/^application\/json/)
        expect(JSON.parse(r.body), label).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } })
      }
    }
    for (const { path } of gets) {
      const plain = await send(origin, path, { method: 'GET' })
      for (const v of VARIANTS) {
        const r = await send(origin, path, { method: 'GET', ...v })
        const label = `GET ${path} ${v.name}`
        expect(r.status, label).toBe(plain.status)
        expect(r.status, label).not.toBe(413)
        if (plain.status !== 200) expect(r.body, label).toBe(plain.body)
      }
      const post = await send(origin, path, { method: 'POST', contentType: FORM, headers: SAME_SITE })
      expect(post.status, `POST ${path}`).toBe(405)
      expect(JSON.parse(post.body)).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' } })
    }
  })
})

/** JSON with every Error expanded (name, message, stack, cause, own fields). */
function serialise(value: unknown): string {
  const seen = new WeakSet<object>()
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return String(v)
    if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8')
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[seen]'
      seen.add(v)
      if (v instanceof Error)
        return {
          ...v,
          name: v.name,
          message: v.message,
          stack: v.stack,
          cause: (v as { cause?: unknown }).cause,
        }
    }
    return v
  })
}

describe('Fastify API: no secret is logged', () => {
  it('a full flow logs no code (or 10-character run of one), pepper, session secret, cookie, session id or reveal token', async () => {
    const logger = createCaptureLogger()
    const restore = logger.captureConsole()
    const secrets = new Map<string, string>()
    const add = (label: string, v: unknown) => {
      if (typeof v === 'string' && v.length >= 8) secrets.set(v, label)
    }
    const addCode = (c: string) => {
      const bare = c.replace(/[^0-9A-Za-z]/g, '')
      for (const v of [c, bare, c.toLowerCase(), bare.toLowerCase(), c.toUpperCase(), bare.toUpperCase()])
        add('plaintext code', v)
      // Any 10-character run too: a parser's message quotes only the start of a body.
      for (const form of [c, bare])
        for (let i = 0; i + 10 <= form.length; i++) {
          const part = form.slice(i, i + 10)
          for (const v of [part, part.toLowerCase()]) if (!secrets.has(v)) add('code fragment', v)
        }
    }
    try {
      const pepper = randomPepperSecret()
      const bytes = Buffer.from(pepper, 'base64')
      add('pepper', pepper)
      add('pepper (unpadded)', pepper.replace(/=+$/, ''))
      add('pepper (base64url)', bytes.toString('base64url'))
      add('pepper (hex)', bytes.toString('hex'))
      add('pepper (HEX)', bytes.toString('hex').toUpperCase())
      const sessionSecret = `fastify-session-secret-${crypto.randomUUID()}`
      add('session secret', sessionSecret)
      let mailFailures = 0
      const clock = createManualClock(Date.now())
      const rc = createRecoveryCodes({
        peppers: [{ id: 'k1', secret: pepper }],
        store: memoryStore(),
        logger,
        clock,
        email: { enabled: true, from: 'noreply@example.test' },
        resolveEmail: async () => EMAIL,
        mailer: {
          async send(message) {
            if (mailFailures++ === 0)
              throw new Error(`554 rejected: ${message.text}`, { cause: new Error(String(message.html)) })
          },
        },
      })
      const store = mapStore()
      const origin = await start(rc, { secret: sessionSecret, store, logger })
      let cookie = ''
      const note = (r: Sent) => {
        for (const c of [r.headers['set-cookie'] ?? []].flat()) {
          const m = /^sessionId=([^;]+)/.exec(c)
          if (!m) continue
          cookie = `sessionId=${m[1]}`
          add('session cookie', m[1])
          const decoded = decodeURIComponent(m[1]!)
          add('session cookie (decoded)', decoded)
          const dot = decoded.lastIndexOf('.')
          if (dot > 0) add('session cookie signature', decoded.slice(dot + 1))
        }
        for (const [sid, data] of store.sessions) {
          add('session id', sid)
          add('reveal token', data[SESSION_KEYS.reveal])
        }
        return r
      }
      const post = async (path: string, body: string, contentType = JSON_TYPE) =>
        note(
          await send(origin, `/account${path}`, {
            method: 'POST',
            contentType,
            body,
            headers: { ...SAME_SITE, ...(cookie ? { cookie } : {}) },
          }),
        )
      const big = async (path: string, prefix: string, contentType: string, chunked = false) =>
        note(
          await send(origin, `/account${path}`, {
            method: 'POST',
            contentType,
            chunked,
            prefix,
            headers: { ...SAME_SITE, ...(cookie ? { cookie } : {}) },
          }),
        ).status
      const code = (r: Sent) => (JSON.parse(r.body) as { error: { code: string } }).error.code

      expect((await post('/test/sign-in', '{}')).status).toBe(200)
      expect((await post('/recovery/generate', '{}')).status).toBe(201)
      const codes = (JSON.parse((await post('/recovery/codes/view', '{}')).body) as { codes: string[] }).codes
      expect(codes).toHaveLength(10)
      codes.forEach(addCode)
      expect(code(await post('/recovery/email', '{}'))).toBe('MAIL_FAILED')
      expect((await post('/recovery/download', '{"format":"txt"}')).status).toBe(200)
      // "I have saved my codes" (activation 'confirm', the default): the batch is active from here.
      expect((await post('/recovery/confirm', '{}')).status).toBe(200)
      expect(await big('/recovery/verify-setup', `{"code":"${codes[1]}","pad":"`, JSON_TYPE)).toBe(413)
      expect(await big('/recovery/codes/delete', `code=${codes[1]}&pad=`, FORM, true)).toBe(413)
      expect(code(await post('/recovery/verify-setup', `{"code":${codes[1]}}`))).toBe('INVALID_INPUT')
      expect(code(await post('/recovery/verify-setup', `code=${codes[1]}`, FORM))).toBe(
        'UNSUPPORTED_MEDIA_TYPE',
      )
      const cross = await send(origin, '/account/recovery/verify-setup', {
        method: 'POST',
        contentType: JSON_TYPE,
        body: JSON.stringify({ code: codes[1] }),
        headers: { 'sec-fetch-site': 'cross-site', cookie },
      })
      expect(code(cross)).toBe('CSRF_REJECTED')
      expect((await post('/recovery/verify-setup', JSON.stringify({ code: codes[1] }))).status).toBe(200)
      // A new sign-in: the password, failed redeems, a good one.
      cookie = ''
      expect((await post('/test/password', '{}')).status).toBe(200)
      for (const wrong of [codes[0]!.split('').reverse().join(''), `${codes[0]}${codes[2]}`]) {
        addCode(wrong)
        expect(code(await post('/recovery/redeem', JSON.stringify({ code: wrong })))).toBe('INVALID_CODE')
      }
      expect(await big('/recovery/redeem', `{"code":"${codes[0]}","pad":"`, JSON_TYPE, true)).toBe(413)
      expect((await post('/recovery/redeem', JSON.stringify({ code: codes[0] }))).status).toBe(200)
      expect(code(await post('/recovery/redeem', JSON.stringify({ code: codes[0] })))).toBe('UNAUTHENTICATED')
      // Regenerate after the cooldown, view, email.
      clock.advance(3 * 3600_000)
      expect((await post('/test/sign-in', '{}')).status).toBe(200)
      expect((await post('/recovery/generate', '{}')).status).toBe(201)
      const second = JSON.parse((await post('/recovery/codes/view', '{}')).body) as { codes: string[] }
      second.codes.forEach(addCode)
      expect((await post('/recovery/email', '{}')).status).toBe(200)
      note(await send(origin, '/account/recovery/status', { method: 'GET', headers: { cookie } }))
      // Closed inside the capture, so its shutdown lines are scanned too.
      await Promise.all(apps.splice(0).map((a) => a.close()))
    } finally {
      restore()
    }
    const text = serialise(logger.lines)
    const found = [...secrets].filter(([v]) => text.includes(v)).map(([v, label]) => `${label}: ${v}`)
    expect(found).toEqual([])
    const labels = [...secrets.values()]
    expect(labels.filter((l) => l === 'plaintext code').length).toBeGreaterThanOrEqual(80)
    expect(labels.filter((l) => l === 'reveal token')).toHaveLength(2)
    expect(labels.filter((l) => l.startsWith('session cookie')).length).toBeGreaterThanOrEqual(6)
    // The loggers were wired: Fastify's request lines and the failed transport (by name) are there.
    expect(
      logger.lines.some((l) => l.message === 'fastify' && /incoming request/.test(String(l.fields?.line))),
    ).toBe(true)
    expect(logger.lines.some((l) => /mail failed/.test(l.message))).toBe(true)
  })
})
