/**
 * "Dependable under faults" on the Hono JSON API, mounted under `basePath('/account')`:
 *
 * 1. A 50 MB body is 413 `PAYLOAD_TOO_LARGE` on every POST operation of the served OpenAPI
 *    document (form and JSON, with a declared length and streamed without one). GET operations
 *    never read a body (the adapter reads one only for POST; core's dispatcher only for POST
 *    routes): a GET with a declared length or `Transfer-Encoding: chunked` (what Hono's Node
 *    server passes on; it hands no body to a GET) answers as the plain GET. A POST to a GET-only
 *    path is 405 `METHOD_NOT_ALLOWED` (the route table is consulted before the body).
 * 2. With a capture logger in the service and the adapter, console and the standard streams
 *    spied on, a full flow logs no plaintext code, pepper, session id, or reveal token.
 */
import {
  createRecoveryCodes,
  type HostSession,
  markFirstFactor,
  markSignedIn,
  SESSION_KEYS,
} from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import { createCaptureLogger, createManualClock, randomPepperSecret } from '@recovery-codes/testing'
import { type Context, Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { honoSession, recoveryCodes } from '../src/index.ts'

const FIFTY_MB = 50 * 1024 * 1024
const FILLER = new Uint8Array(1024 * 1024).fill(0x61)
const FORM = 'application/x-www-form-urlencoded'
const JSON_TYPE = 'application/json'
const SAME_SITE = { 'sec-fetch-site': 'same-origin' }
const EMAIL = 'user@example.test'

/** `prefix`, then views of {@link FILLER} up to `total` bytes; `pulled()` tells how much was read. */
function bigStream(prefix = '', total = FIFTY_MB) {
  let pulled = 0
  const head = new TextEncoder().encode(prefix)
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= total) return controller.close()
      if (pulled === 0 && head.length > 0) {
        pulled += head.length
        return controller.enqueue(head)
      }
      const n = Math.min(FILLER.length, total - pulled)
      pulled += n
      controller.enqueue(FILLER.subarray(0, n))
    },
  })
  return { stream, pulled: () => pulled }
}

/** A cookie session for Hono (`c.set('session', …)`), its data inspectable. */
function sessions() {
  const store = new Map<string, Map<string, unknown>>()
  const middleware = async (c: Context, next: () => Promise<void>) => {
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
  }
  return { store, middleware }
}

function appWith(
  rc: ReturnType<typeof createRecoveryCodes>,
  logger?: ReturnType<typeof createCaptureLogger>,
) {
  const s = sessions()
  const app = new Hono().basePath('/account')
  app.use('*', s.middleware)
  // The host's own first factor.
  app.post('/test/sign-in', (c) => {
    markSignedIn(honoSession(c), 'u1', Date.now())
    return c.json({ ok: true })
  })
  app.post('/test/password', (c) => {
    markFirstFactor(honoSession(c), 'u1', Date.now())
    return c.json({ ok: true })
  })
  app.route('/recovery', recoveryCodes(rc, {}, logger ? { logger } : {}))
  if (logger)
    app.onError((err, c) => {
      logger.error('host: unhandled error', { err } as never)
      return c.text('host error', 500)
    })
  return { app, store: s.store }
}

const VARIANTS = [
  { name: 'form + content-length', contentType: FORM, chunked: false, prefix: 'code=' },
  { name: 'form streamed', contentType: FORM, chunked: true, prefix: 'code=' },
  { name: 'json + content-length', contentType: JSON_TYPE, chunked: false, prefix: '{"code":"' },
  { name: 'json streamed', contentType: JSON_TYPE, chunked: true, prefix: '{"code":"' },
] as const

describe('Hono API (basePath): 50 MB on every OpenAPI operation', () => {
  it('POST operations → 413 PAYLOAD_TOO_LARGE; GET operations ignore the body; POST to a GET path → 405', async () => {
    const rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: randomPepperSecret() }],
      store: memoryStore(),
      loginMode: 'identifier-and-code',
      resolveUserId: async () => null,
    })
    const { app } = appWith(rc)
    const url = (p: string) => `http://localhost${p}`
    const doc = (await (await app.request(url('/account/recovery/openapi.json'))).json()) as {
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
        const { stream, pulled } = bigStream(v.prefix)
        const res = await app.request(url(path), {
          method: 'POST',
          headers: {
            ...SAME_SITE,
            'content-type': v.contentType,
            ...(v.chunked ? {} : { 'content-length': String(FIFTY_MB) }),
          },
          body: stream,
          duplex: 'half',
        } as RequestInit)
        const label = `POST ${path} ${v.name}`
        expect(res.status, label).toBe(413)
        expect(res.headers.get('content-type'), label).toMatch(/^application\/json/)
        expect(await res.json(), label).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } })
        // Reading stopped at the limit (plus what the stream had queued).
        expect(pulled(), label).toBeLessThan(4 * FILLER.length)
      }
    }
    for (const { path } of gets) {
      const plain = await app.request(url(path))
      const plainBody = await plain.text()
      for (const headers of [
        { 'content-length': String(FIFTY_MB), 'content-type': FORM },
        { 'transfer-encoding': 'chunked', 'content-type': JSON_TYPE },
      ] as Record<string, string>[]) {
        const res = await app.request(url(path), { headers })
        expect(res.status, `GET ${path} ${JSON.stringify(headers)}`).toBe(plain.status)
        expect(res.status).not.toBe(413)
        if (plain.status !== 200) expect(await res.text()).toBe(plainBody)
      }
      const { stream } = bigStream()
      const post = await app.request(url(path), {
        method: 'POST',
        headers: { ...SAME_SITE, 'content-type': FORM },
        body: stream,
        duplex: 'half',
      } as RequestInit)
      expect(post.status, `POST ${path}`).toBe(405)
      expect(await post.json()).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' } })
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

describe('Hono API: no secret is logged', () => {
  it('a full flow logs no code (or 10-character run of one), pepper, session id or reveal token', async () => {
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
      const { app, store } = appWith(rc, logger)
      let cookie = ''
      const req = async (path: string, init: RequestInit = {}) => {
        const res = await app.request(`http://localhost/account${path}`, {
          ...init,
          headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
        })
        for (const c of res.headers.getSetCookie()) cookie = c.split(';')[0]!
        for (const [sid, data] of store) {
          add('session id', sid)
          add('reveal token', data.get(SESSION_KEYS.reveal))
        }
        return { status: res.status, text: await res.text() }
      }
      const post = (path: string, body: string, contentType = JSON_TYPE) =>
        req(path, { method: 'POST', headers: { ...SAME_SITE, 'content-type': contentType }, body })
      const big = async (path: string, prefix: string, contentType: string) => {
        const { stream } = bigStream(prefix)
        return (
          await req(path, {
            method: 'POST',
            headers: { ...SAME_SITE, 'content-type': contentType },
            body: stream,
            duplex: 'half',
          } as RequestInit)
        ).status
      }
      const code = (r: { text: string }) => (JSON.parse(r.text) as { error: { code: string } }).error.code

      expect((await post('/test/sign-in', '')).status).toBe(200)
      expect((await post('/recovery/generate', '{}')).status).toBe(201)
      const view = await post('/recovery/codes/view', '{}')
      const codes = (JSON.parse(view.text) as { codes: string[] }).codes
      expect(codes).toHaveLength(10)
      codes.forEach(addCode)
      expect(code(await post('/recovery/email', '{}'))).toBe('MAIL_FAILED')
      expect((await post('/recovery/download', '{"format":"txt"}')).status).toBe(200)
      // "I have saved my codes" (activation 'confirm', the default): the batch is active from here.
      expect((await post('/recovery/confirm', '{}')).status).toBe(200)
      expect(await big('/recovery/verify-setup', `{"code":"${codes[1]}","pad":"`, JSON_TYPE)).toBe(413)
      expect(await big('/recovery/codes/delete', `code=${codes[1]}&pad=`, FORM)).toBe(413)
      expect(code(await post('/recovery/verify-setup', `{"code":${codes[1]}}`))).toBe('INVALID_INPUT')
      expect(code(await post('/recovery/verify-setup', `code=${codes[1]}`, FORM))).toBe(
        'UNSUPPORTED_MEDIA_TYPE',
      )
      const cross = await req('/recovery/verify-setup', {
        method: 'POST',
        headers: { 'content-type': JSON_TYPE, 'sec-fetch-site': 'cross-site' },
        body: JSON.stringify({ code: codes[1] }),
      })
      expect(code(cross)).toBe('CSRF_REJECTED')
      expect((await post('/recovery/verify-setup', JSON.stringify({ code: codes[1] }))).status).toBe(200)
      // A new sign-in: the password, failed redeems, a good one.
      cookie = ''
      expect((await post('/test/password', '')).status).toBe(200)
      for (const wrong of [codes[0]!.split('').reverse().join(''), `${codes[0]}${codes[2]}`]) {
        addCode(wrong)
        expect(code(await post('/recovery/redeem', JSON.stringify({ code: wrong })))).toBe('INVALID_CODE')
      }
      expect(await big('/recovery/redeem', `{"code":"${codes[0]}","pad":"`, JSON_TYPE)).toBe(413)
      expect((await post('/recovery/redeem', JSON.stringify({ code: codes[0] }))).status).toBe(200)
      expect(code(await post('/recovery/redeem', JSON.stringify({ code: codes[0] })))).toBe('UNAUTHENTICATED')
      // Regenerate after the cooldown, view, email.
      clock.advance(3 * 3600_000)
      expect((await post('/test/sign-in', '')).status).toBe(200)
      expect((await post('/recovery/generate', '{}')).status).toBe(201)
      const second = JSON.parse((await post('/recovery/codes/view', '{}')).text) as { codes: string[] }
      second.codes.forEach(addCode)
      expect((await post('/recovery/email', '{}')).status).toBe(200)
      expect((await req('/recovery/status')).status).toBe(200)
    } finally {
      restore()
    }
    const text = serialise(logger.lines)
    const found = [...secrets].filter(([v]) => text.includes(v)).map(([v, label]) => `${label}: ${v}`)
    expect(found).toEqual([])
    // What was looked for: 20 codes in 4 forms, 2 reveal tokens, the session ids, the pepper.
    const labels = [...secrets.values()]
    expect(labels.filter((l) => l === 'plaintext code').length).toBeGreaterThanOrEqual(80)
    expect(labels.filter((l) => l === 'reveal token')).toHaveLength(2)
    expect(labels.filter((l) => l === 'session id').length).toBeGreaterThanOrEqual(3)
    // The logger was wired (the failed transport was logged, by name); no host error was raised.
    expect(logger.lines.some((l) => /mail failed/.test(l.message))).toBe(true)
    expect(logger.lines.filter((l) => /host: unhandled/.test(l.message))).toEqual([])
  })
})
