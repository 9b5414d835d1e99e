/**
 * The pages as a user mounts them: Express with express-session, global body parsers and a
 * mount path; Hono with the path given once. Links and redirects stay under the mount.
 */
import type { AddressInfo } from 'node:net'
import { createRecoveryCodes, type HostSession, isRecoveryCodesError } from '@recovery-codes/core'
import { recoveryCodesRouter } from '@recovery-codes/express'
import { memoryStore } from '@recovery-codes/store-memory'
import express from 'express'
import session from 'express-session'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import { recoveryCodesPages } from '../src/express.ts'
import { recoveryCodesPages as honoPages } from '../src/hono.ts'

const PEPPER = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 73 + 19) % 251)).toString('base64')
const EMAIL = 'user@example.test'
const PASSWORD = 'correct horse'
const users = {
  signInWithPassword: async (e: string, p: string) => (e === EMAIL && p === PASSWORD ? 'u1' : null),
  verifyPassword: async (id: string, p: string) => id === 'u1' && p === PASSWORD,
}
const newRc = () => createRecoveryCodes({ peppers: [{ id: 'k1', secret: PEPPER }], store: memoryStore() })

type Fetcher = (path: string, init?: RequestInit) => Promise<Response>

/** A cookie jar over `fetcher` that never follows redirects by itself. */
function browser(fetcher: Fetcher) {
  let cookie = ''
  const req = async (path: string, init: RequestInit = {}) => {
    const res = await fetcher(path, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
    })
    for (const c of res.headers.getSetCookie()) cookie = c.split(';')[0]!
    return res
  }
  const csrf = async (path: string) => {
    const m = /name="_csrf" value="([^"]+)"/.exec(await (await req(path)).text())
    if (!m) throw new Error(`no CSRF token on ${path}`)
    return m[1]!
  }
  const post = (path: string, fields: Record<string, string>) =>
    req(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams(fields).toString(),
    })
  return { req, csrf, post }
}

/** Sign-in → generate → show → logout → password → code, asserting each redirect stays under `base`. */
async function walkthrough(fetcher: Fetcher, base: string) {
  const b = browser(fetcher)
  const location = (r: Response) => {
    expect(r.status, `redirect expected, got ${r.status}`).toBe(303)
    const to = r.headers.get('location')!
    expect(to.startsWith(`${base}/`), to).toBe(true)
    return to
  }
  const signIn = async () =>
    b.post(`${base}/signin`, { _csrf: await b.csrf(`${base}/signin`), email: EMAIL, password: PASSWORD })
  expect(location(await signIn())).toBe(`${base}/`)
  const dashboard = await (await b.req(`${base}/`)).text()
  expect(dashboard).toContain(`action="${base}/generate"`)
  expect(dashboard).not.toMatch(/action="\/(?!account)/)
  expect(location(await b.post(`${base}/generate`, { _csrf: await b.csrf(`${base}/`) }))).toBe(
    `${base}/codes`,
  )
  const shown = await (await b.post(`${base}/codes`, { _csrf: await b.csrf(`${base}/codes`) })).text()
  const codes = [...shown.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!)
  expect(codes).toHaveLength(10)
  // "I have saved my codes" turns them on (activation 'confirm', the default).
  expect(shown).toContain(`action="${base}/confirm"`)
  expect(location(await b.post(`${base}/confirm`, { _csrf: await b.csrf(`${base}/`) }))).toBe(`${base}/`)
  expect(await (await b.req(`${base}/`)).text()).toContain('Your recovery codes are active.')
  location(await b.post(`${base}/logout`, { _csrf: await b.csrf(`${base}/`) }))
  expect(location(await signIn())).toBe(`${base}/login`)
  const done = await b.post(`${base}/login`, { _csrf: await b.csrf(`${base}/login`), code: codes[0]! })
  expect(location(done)).toBe(`${base}/`)
  expect(await (await b.req(`${base}/`)).text()).toMatch(/9 (of 10 )?(codes? )?(left|remaining|unused)/i)
  return b
}

describe('Express: mounted with app.use(path) after global body parsers', () => {
  const servers: { close(cb: () => void): void }[] = []
  afterEach(() => Promise.all(servers.splice(0).map((s) => new Promise<void>((ok) => s.close(ok)))))

  async function start(app: express.Express): Promise<Fetcher> {
    const server = app.listen(0, '127.0.0.1')
    servers.push(server)
    await new Promise((ok) => server.once('listening', ok))
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    return (path, init) => fetch(origin + path, init)
  }

  function app() {
    const rc = newRc()
    const a = express()
    a.use(session({ secret: 'test secret of the session', resave: false, saveUninitialized: false }))
    a.use(express.json())
    a.use(express.urlencoded({ extended: true }))
    a.use('/account', recoveryCodesPages(rc, users))
    a.use('/account/recovery', recoveryCodesRouter(rc))
    a.get('/', (_req, res) => void res.send('host home'))
    return a
  }

  it('completes sign-in → generate → show → sign in with a code, every link under /account', async () => {
    const f = await start(app())
    const b = await walkthrough(f, '/account')
    // The JSON API shares the session and its keys with the pages.
    const status = await b.req('/account/recovery/status')
    expect(status.status).toBe(200)
    expect(((await status.json()) as { remaining: number }).remaining).toBe(9)
    // Nothing claimed at the site root.
    expect(await (await f('/')).text()).toBe('host home')
    expect((await f('/signin')).status).toBe(404)
  })

  it('serves OpenAPI with the concrete mount path in servers', async () => {
    const f = await start(app())
    const doc = (await (await f('/account/recovery/openapi.json')).json()) as { servers: { url: string }[] }
    expect(doc.servers[0]!.url).toBe('/account/recovery')
  })

  it('without a session middleware, app.use throws at start-up naming express-session', () => {
    for (const mountIt of [
      (a: express.Express) => a.use('/account', recoveryCodesPages(newRc(), users)),
      (a: express.Express) => a.use('/api', recoveryCodesRouter(newRc())),
    ]) {
      let caught: unknown
      try {
        mountIt(express())
      } catch (e) {
        caught = e
      }
      expect(isRecoveryCodesError(caught, 'CONFIG_INVALID')).toBe(true)
      expect((caught as Error).message).toMatch(/express-session/)
    }
    // A session mounted on the parent app of a nested app counts; custom hooks need none.
    const outer = express().use(session({ secret: 's', resave: false, saveUninitialized: false }))
    const inner = express()
    outer.use('/x', inner)
    expect(() => inner.use('/account', recoveryCodesPages(newRc(), users))).not.toThrow()
    const custom: HostSession = {
      get: () => undefined,
      set: () => {},
      regenerate: async () => {},
      destroy: async () => {},
    }
    expect(() =>
      express().use(recoveryCodesPages(newRc(), { ...users, session: () => custom })),
    ).not.toThrow()
  })

  it('a nested form field from an extended parser is not a field; an oversize form is 413', async () => {
    const f = await start(app())
    const b = browser(f)
    const token = await b.csrf('/account/signin')
    const nested = await b.req('/account/signin', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      body: `_csrf=${token}&email[x]=a&password=b`,
    })
    expect(nested.status).toBe(401) // the form again, with the failure message
    expect(await nested.text()).toContain('Incorrect email or password')
    const big = await b.req('/account/signin', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      body: `_csrf=${token}&email=${'a'.repeat(200_000)}`,
    })
    // The host's global parser (100 kB default) answers first: its 413 stands.
    expect(big.status).toBe(413)
  })
})

describe('Hono: the path is given once', () => {
  it('app.route("/account", pages) serves and links under /account', async () => {
    const rc = newRc()
    const store = new Map<string, Map<string, unknown>>()
    const app = new Hono()
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
    app.route('/account', honoPages(rc, users))
    await walkthrough(async (path, init) => app.request(`http://localhost${path}`, init), '/account')
  })

  it('without a session in the context, a request fails with a message naming it', async () => {
    const app = new Hono().route('/account', honoPages(newRc(), users))
    const res = await app.request('http://localhost/account/signin')
    expect(res.status).toBe(500)
  })
})
