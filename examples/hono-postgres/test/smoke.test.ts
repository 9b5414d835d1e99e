/**
 * Smoke test of the Hono + PostgreSQL example against the real server (own schema): sign in with
 * the password, generate, read the codes once, log out, sign in again with the password and a
 * recovery code, and see the count drop in the pages and in the JSON API. Under CI=true an
 * unreachable server fails the run.
 */
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { probePostgres } from '@recovery-codes/testing'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHonoDemo, type HonoDemo } from '../src/app.ts'

const URL_ = process.env.DATABASE_URL ?? process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const isCI = process.env.CI === 'true' || process.env.CI === '1'
const SCHEMA = `rc_hono_smoke_${process.pid}_${Date.now().toString(36)}`

const unavailable = await probePostgres(URL_)

/** A tiny cookie-keeping client that does not follow redirects. */
function client(base: string) {
  let cookie = ''
  const cookiesSeen: string[] = []
  async function req(path: string, init: RequestInit = {}) {
    const res = await fetch(base + path, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
    })
    for (const c of res.headers.getSetCookie()) {
      cookiesSeen.push(c)
      const [pair] = c.split(';')
      if (/Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(c)) cookie = ''
      else cookie = pair!
    }
    return res
  }
  return {
    cookiesSeen,
    get: (path: string) => req(path),
    async post(path: string, fields: Record<string, string>) {
      return req(path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
        body: new URLSearchParams(fields).toString(),
      })
    },
    async csrf(path: string): Promise<string> {
      const html = await (await req(path)).text()
      const m = /name="_csrf" value="([^"]+)"/.exec(html)
      if (!m) throw new Error(`no CSRF token on ${path}`)
      return m[1]!
    },
  }
}

if (unavailable !== null) {
  describe('hono-postgres smoke', () => {
    it.runIf(isCI)(`requires PostgreSQL at ${URL_} under CI=true`, () => {
      throw new Error(`PostgreSQL unreachable under CI=true: ${unavailable}`)
    })
    it.skipIf(isCI)(`SKIPPED: PostgreSQL at ${URL_} unreachable (${unavailable})`, () => {})
  })
} else {
  describe('hono-postgres smoke', () => {
    let demo: HonoDemo
    let server: ReturnType<typeof serve>
    let base: string

    beforeAll(async () => {
      demo = await createHonoDemo({ databaseUrl: URL_, schema: SCHEMA, env: {} })
      server = serve({ fetch: demo.app.fetch, port: 0, hostname: '127.0.0.1' })
      await new Promise<void>((ok) => server.once('listening', () => ok()))
      base = `http://localhost:${(server.address() as AddressInfo).port}`
    })

    afterAll(async () => {
      await new Promise<void>((ok) => server?.close(() => ok()))
      await demo?.close()
      const admin = new pg.Client({ connectionString: URL_ })
      await admin.connect()
      await admin.query(`drop schema if exists "${SCHEMA}" cascade`)
      await admin.end()
    })

    it('migrates into its own schema', async () => {
      const admin = new pg.Client({ connectionString: URL_ })
      await admin.connect()
      const { rows } = await admin.query(
        'select table_name from information_schema.tables where table_schema = $1 order by 1',
        [SCHEMA],
      )
      await admin.end()
      const names = rows.map((r: { table_name: string }) => r.table_name)
      expect(names).toEqual(expect.arrayContaining(['rc_batches', 'rc_codes', 'demo_users']))
    })

    it('signs in, generates, and logs in again with a recovery code', async () => {
      const c = client(base)
      expect((await c.get('/')).headers.get('location')).toBe('/signin')
      let token = await c.csrf('/signin')
      // Without the token the form is refused.
      expect((await c.post('/signin', { email: 'demo@example.com', password: 'demo-password' })).status).toBe(
        403,
      )
      const signedIn = await c.post('/signin', {
        _csrf: token,
        email: 'demo@example.com',
        password: 'demo-password',
      })
      expect(signedIn.status).toBe(303)
      expect(signedIn.headers.get('location')).toBe('/')
      token = await c.csrf('/')
      const gen = await c.post('/generate', { _csrf: token, expiresInDays: '30' })
      expect(gen.headers.get('location')).toBe('/codes')
      // The page after generating offers the codes; its form (a POST) shows them once.
      const codesPage = await c.post('/codes', { _csrf: await c.csrf('/codes') })
      expect(codesPage.status).toBe(200)
      expect(codesPage.headers.get('cache-control')).toBe('no-store')
      expect(codesPage.headers.get('referrer-policy')).toBe('no-referrer')
      expect(codesPage.headers.get('x-content-type-options')).toBe('nosniff')
      const codes = [...(await codesPage.text()).matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map(
        (m) => m[1]!,
      )
      expect(codes).toHaveLength(10)
      // Shown once only.
      expect((await c.get('/codes')).headers.get('location')).toBe('/')
      // "I have saved my codes" (activation 'confirm', the default) turns them on.
      token = await c.csrf('/')
      expect((await c.post('/confirm', { _csrf: token })).headers.get('location')).toBe('/')

      token = await c.csrf('/')
      expect((await c.post('/logout', { _csrf: token })).headers.get('location')).toBe('/signin')
      token = await c.csrf('/signin')
      const pw = await c.post('/signin', {
        _csrf: token,
        email: 'demo@example.com',
        password: 'demo-password',
      })
      expect(pw.headers.get('location')).toBe('/login')
      token = await c.csrf('/login')
      const bad = await c.post('/login', { _csrf: token, code: 'not-a-code' })
      expect(bad.status).toBe(401)
      const ok = await c.post('/login', { _csrf: token, code: codes[0]! })
      expect(ok.status).toBe(303)
      expect(ok.headers.get('location')).toBe('/')
      const dash = await (await c.get('/')).text()
      expect(dash).toContain('<span class="big" id="remaining">9</span>')
      const status = await c.get('/api/recovery/status')
      expect(status.status).toBe(200)
      expect(((await status.json()) as { remaining: number }).remaining).toBe(9)
      for (const cookie of c.cookiesSeen) {
        expect(cookie).toMatch(/HttpOnly/i)
        expect(cookie).toMatch(/SameSite=Lax/i)
        for (const code of codes) expect(cookie).not.toContain(code)
      }
    })
  })
}
