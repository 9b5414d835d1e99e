/**
 * The demo over plain HTTP (no browser): CSRF and same-origin checks, methods, headers, cookie
 * attributes, session regeneration and destruction, the re-authentication detour, the opt-in
 * email + code login (same answer for unknown emails, cooldown keyed like the limiter), the pepper
 * file mode.
 */
import { mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningDemo, startDemo } from '../src/app.ts'

function client(base: string) {
  let cookie = ''
  const seen: string[] = []
  async function req(path: string, init: RequestInit = {}) {
    const res = await fetch(base + path, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
    })
    for (const c of res.headers.getSetCookie()) {
      seen.push(c)
      cookie = c.split(';')[0]!
    }
    return res
  }
  return {
    seen,
    cookie: () => cookie,
    setCookie: (c: string) => {
      cookie = c
    },
    get: (path: string) => req(path),
    post: (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
      req(path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams(fields).toString(),
      }),
    async csrf(path: string): Promise<string> {
      const html = await (await req(path)).text()
      const m = /name="_csrf" value="([^"]+)"/.exec(html)
      if (!m) throw new Error(`no CSRF token on ${path}`)
      return m[1]!
    },
  }
}
type Client = ReturnType<typeof client>

async function signIn(c: Client, password = 'demo-password') {
  const token = await c.csrf('/signin')
  return c.post('/signin', { _csrf: token, email: 'demo@example.com', password })
}

async function generate(c: Client): Promise<string[]> {
  const token = await c.csrf('/')
  const r = await c.post('/generate', { _csrf: token })
  expect(r.headers.get('location')).toBe('/codes')
  // The page offers the codes; one POST shows them.
  const shown = await c.post('/codes', { _csrf: await c.csrf('/codes') })
  const html = await shown.text()
  // "I have saved my codes": the demo runs with activation 'confirm' (the default).
  expect(html).toContain('action="/confirm"')
  const token2 = /name="_csrf" value="([^"]+)"/.exec(html)![1]!
  expect((await c.post('/confirm', { _csrf: token2 })).headers.get('location')).toBe('/')
  return [...html.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!)
}

function start(env: Record<string, string>, logs: string[]) {
  return startDemo({
    dataDir: mkdtempSync(join(tmpdir(), 'rc-demo-http-')),
    port: 0,
    env: { RECOVERY_CODES_COOLDOWN_BASE_SECONDS: '1', RECOVERY_CODES_COOLDOWN_CUTOFF_SECONDS: '4', ...env },
    log: (l) => logs.push(l),
  })
}

describe('second factor cannot be switched off by failing on purpose', () => {
  let demo: RunningDemo
  beforeAll(async () => {
    demo = await start({ RECOVERY_CODES_MAX_LOGIN_ATTEMPTS: '3', RECOVERY_CODES_HARD_FAILURE_CAP: '3' }, [])
  })
  afterAll(() => demo?.close())

  it('after the hard cap disables the batch, the password alone does not sign in', async () => {
    const owner = client(demo.url)
    await signIn(owner)
    const codes = await generate(owner)
    expect(codes).toHaveLength(10)
    const attacker = client(demo.url)
    expect((await signIn(attacker)).headers.get('location')).toBe('/login')
    for (let i = 0; i < 3; i++) {
      const token = await attacker.csrf('/login')
      await attacker.post('/login', { _csrf: token, code: 'AAAAA-AAAAA-AAAAA-AAAAA-AAAAA' })
    }
    const again = await signIn(attacker)
    expect(again.status).toBe(403)
    expect(await again.text()).toContain('can no longer be used')
    expect((await attacker.get('/')).headers.get('location')).toBe('/signin')
  })
})

describe('second-factor mode (default)', () => {
  let demo: RunningDemo
  const logs: string[] = []
  beforeAll(async () => {
    demo = await start({}, logs)
  })
  afterAll(() => demo?.close())

  it('stores a fresh pepper with mode 0600', () => {
    expect(demo.pepperCreated).toBe(true)
    expect(statSync(join(demo.dataDir, 'pepper')).mode & 0o777).toBe(0o600)
  })

  it('refuses forms without the session token, from other sites, and with a GET', async () => {
    const c = client(demo.url)
    const token = await c.csrf('/signin')
    const fields = { email: 'demo@example.com', password: 'demo-password' }
    expect((await c.post('/signin', fields)).status).toBe(403)
    expect((await c.post('/signin', { ...fields, _csrf: 'x'.repeat(token.length) })).status).toBe(403)
    expect(
      (await c.post('/signin', { ...fields, _csrf: token }, { 'sec-fetch-site': 'cross-site' })).status,
    ).toBe(403)
    expect(
      (await c.post('/signin', { ...fields, _csrf: token }, { origin: 'https://evil.example' })).status,
    ).toBe(403)
    expect((await c.post('/signin', { ...fields, _csrf: token }, { origin: 'null' })).status).toBe(403)
    expect((await c.get('/generate')).status).toBe(405)
    expect((await c.get('/logout')).status).toBe(405)
    const jsonBody = await fetch(`${demo.url}/signin`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/json', cookie: c.cookie() },
      body: JSON.stringify({ _csrf: token, ...fields }),
    })
    expect(jsonBody.status).toBe(400)
    // Same-origin browsers under `Referrer-Policy: no-referrer` send `Origin: null` plus Sec-Fetch-Site.
    const ok = await c.post(
      '/signin',
      { ...fields, _csrf: token },
      { origin: 'null', 'sec-fetch-site': 'same-origin' },
    )
    expect(ok.status).toBe(303)
  })

  it('sends the security headers and HttpOnly, SameSite=Lax cookies', async () => {
    const c = client(demo.url)
    const r = await c.get('/signin')
    expect(r.headers.get('cache-control')).toBe('no-store')
    expect(r.headers.get('x-content-type-options')).toBe('nosniff')
    expect(r.headers.get('referrer-policy')).toBe('no-referrer')
    expect(r.headers.get('content-security-policy')).toContain("default-src 'none'")
    expect(r.headers.get('x-frame-options')).toBe('DENY')
    const html = await r.text()
    expect(html).not.toMatch(/<link|src="http|href="http/)
    for (const s of c.seen) expect(s).toMatch(/HttpOnly; SameSite=Lax/)
  })

  it('regenerates the session id at login and destroys it at logout', async () => {
    const c = client(demo.url)
    await c.csrf('/signin')
    const before = c.cookie()
    expect((await signIn(c)).headers.get('location')).toBe('/')
    const after = c.cookie()
    expect(after).not.toBe(before)
    // The pre-login cookie is worth nothing now.
    const stale = client(demo.url)
    stale.setCookie(before)
    expect((await stale.get('/')).headers.get('location')).toBe('/signin')
    const token = await c.csrf('/')
    const out = await c.post('/logout', { _csrf: token })
    expect(out.headers.get('location')).toBe('/signin')
    const old = client(demo.url)
    old.setCookie(after)
    expect((await old.get('/')).headers.get('location')).toBe('/signin')
  })

  it('wrong passwords and unknown emails get the same answer', async () => {
    const c = client(demo.url)
    const a = await signIn(c, 'wrong-password')
    const token = await c.csrf('/signin')
    const b = await c.post('/signin', {
      _csrf: token,
      email: 'nobody@example.com',
      password: 'demo-password',
    })
    expect(a.status).toBe(401)
    expect(b.status).toBe(401)
    expect(await a.text()).toContain('Incorrect email or password.')
    expect(await b.text()).toContain('Incorrect email or password.')
  })

  it('never logs a code, a token or a form field', async () => {
    const c = client(demo.url)
    await signIn(c)
    const codes = await generate(c)
    const token = await c.csrf('/')
    await c.post('/verify-setup', { _csrf: token, code: codes[0]! })
    await new Promise((r) => setTimeout(r, 50)) // the request line is written on 'finish'
    const all = logs.join('\n')
    expect(all).toContain('"path":"/verify-setup"')
    for (const code of codes) expect(all).not.toContain(code)
    expect(all).not.toContain(token)
    expect(all).not.toContain('demo-password')
  })
})

describe('identifier-and-code mode (DEMO_LOGIN_MODE)', () => {
  let demo: RunningDemo
  beforeAll(async () => {
    demo = await start({ DEMO_LOGIN_MODE: 'identifier-and-code' }, [])
  })
  afterAll(() => demo?.close())

  async function codeLogin(c: Client, email: string, code: string) {
    const token = await c.csrf('/login')
    return c.post('/login', { _csrf: token, identifier: email, code })
  }

  it('logs in with email + code; a code login is not fresh, so regenerating asks for the password', async () => {
    const c = client(demo.url)
    expect((await signIn(c)).headers.get('location')).toBe('/')
    const codes = await generate(c)
    let token = await c.csrf('/')
    await c.post('/logout', { _csrf: token })

    const page = await (await c.get('/login')).text()
    expect(page).toContain('autocomplete="one-time-code"')
    expect(page).toContain('autocapitalize="none"')
    expect(page).toContain('spellcheck="false"')
    expect(page).toMatch(/<label for="identifier">Email<\/label>/)
    const ok = await codeLogin(c, 'Demo@Example.com', codes[0]!)
    expect(ok.headers.get('location')).toBe('/')

    await new Promise((r) => setTimeout(r, 1100)) // the generate cooldown (1 s here)
    token = await c.csrf('/')
    const regen = await c.post('/generate', { _csrf: token })
    expect(regen.headers.get('location')).toBe('/reauth')
    token = await c.csrf('/reauth')
    expect((await c.post('/reauth', { _csrf: token, password: 'nope', next: '/' })).status).toBe(401)
    const re = await c.post('/reauth', {
      _csrf: token,
      password: 'demo-password',
      next: 'https://evil.example/',
    })
    expect(re.headers.get('location')).toBe('/')
    token = await c.csrf('/')
    expect((await c.post('/generate', { _csrf: token })).headers.get('location')).toBe('/codes')
  })

  it('answers unknown emails exactly like known ones, cooldown included', async () => {
    const known = client(demo.url)
    const unknown = client(demo.url)
    for (let i = 1; i <= 5; i++) {
      const a = await codeLogin(known, 'demo@example.com', 'AAAAA-AAAAA-AAAAA-AAAAA-AAAAA')
      const b = await codeLogin(unknown, 'ghost@example.com', 'AAAAA-AAAAA-AAAAA-AAAAA-AAAAA')
      expect(a.status).toBe(b.status)
      const ta = (await a.text()).replace(/value="[^"]*"/g, '')
      const tb = (await b.text())
        .replace(/value="[^"]*"/g, '')
        .replace(/ghost@example\.com/g, 'demo@example.com')
      const msg = (t: string) => /<div class="flash error"[^>]*>([^<]*)<\/div>/.exec(t)?.[1]
      expect(msg(ta)).toBe(msg(tb))
      if (i === 5) {
        expect(a.status).toBe(429)
        expect(msg(ta)).toMatch(/Too many failed attempts: wait \d+ seconds? before trying again/)
      } else expect(msg(ta)).toBe('That recovery code did not work. Check it and try again.')
    }
  })
})

describe('password guessing is throttled per account', () => {
  let demo: RunningDemo
  beforeAll(async () => {
    demo = await start({}, [])
  })
  afterAll(() => demo?.close())

  it('after 5 wrong passwords even the right one answers like a wrong one; the answer does not change', async () => {
    const c = client(demo.url)
    for (let i = 0; i < 5; i++) expect((await signIn(c, `wrong-${i}`)).status).toBe(401)
    const refused = await signIn(c, 'demo-password')
    expect(refused.status).toBe(401)
    expect(await refused.text()).toContain('Incorrect email or password.')
  })
})
