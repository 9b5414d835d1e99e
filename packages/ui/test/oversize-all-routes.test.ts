/**
 * "Dependable under faults": a 50 MB body gets 413 on every route of the pages, on Express
 * (mounted the usual way: Express 5, express-session, global `express.json()` /
 * `express.urlencoded()`, pages at `/account`, the JSON API beside them at `/account/recovery`)
 * and on Hono (`basePath('/account')`). Routes are enumerated from the pages' path table
 * (`pagePaths`, the table the page router and controller serve), so a new route cannot escape.
 * Bodies are streamed from one reused buffer (never a 50 MB string), as form and as JSON, with a
 * `Content-Length` and chunked without one. The pages' 413 is a plain-text page
 * (`The request body is too large.`, `no-store`), whatever the method: the pages read every body
 * within their limit, GETs included. Hono's Node server hands a GET no body, so there only a
 * declared `Content-Length` counts; a chunked GET is served as a plain GET (asserted).
 *
 * The JSON API's routes: oversize-api-express.test.ts (Express), the adapters' own tests (Hono,
 * Fastify).
 *
 * Regression: a global parser's 413 used to bypass the pages (Express never hands a mounted
 * sub-app an error raised before it), so the host's final handler answered with its HTML error
 * page, a stack trace included outside production.
 */
import type { HostSession } from '@recovery-codes/core'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { recoveryCodesPages as honoPages } from '../src/hono.ts'
import { pagePaths } from '../src/index.ts'
import {
  bigStream,
  expressHost,
  FIFTY_MB,
  FILLER,
  FORM,
  GET_VARIANTS,
  newRc,
  SAME_SITE,
  sendBig,
  VARIANTS,
} from './oversize-fixtures.ts'

const PAGES_413_BODY = 'The request body is too large.'
const users = {
  signInWithPassword: async () => null,
  verifyPassword: async () => false,
}

/** The pages' routes, from the table the page router serves, under `mount`. */
function pageRoutes(mount: string): string[] {
  return Object.values(pagePaths(mount))
}

describe('Express 5 pages (express-session, global json + urlencoded): 50 MB is 413 on every route', () => {
  const host = expressHost()

  it('every path × POST {form, json} × {content-length, chunked}, and GET with a body → 413', async () => {
    const routes = pageRoutes('/account')
    expect(routes).toHaveLength(15)
    expect(routes).toContain('/account/')
    const seen: string[] = []
    for (const path of routes) {
      for (const [method, variants] of [
        ['POST', VARIANTS],
        ['GET', GET_VARIANTS],
      ] as const) {
        for (const v of variants) {
          const r = await sendBig(host.origin(), path, { method, ...v, headers: SAME_SITE })
          const label = `${method} ${path} ${v.name}`
          expect(r.status, label).toBe(413)
          expect(r.headers['content-type'], label).toMatch(/^text\/plain/)
          expect(r.headers['cache-control'], label).toBe('no-store')
          expect(r.body, label).toBe(PAGES_413_BODY)
          seen.push(label)
        }
      }
    }
    expect(seen).toHaveLength(15 * (4 + 2))
  })
})

describe('Hono (basePath): 50 MB is 413 on every page route', () => {
  function app() {
    const a = new Hono().basePath('/account')
    a.use('*', async (c, next) => {
      const data = new Map<string, unknown>()
      const s: HostSession = {
        get: (k) => data.get(k),
        set: (k, v) => void (v === undefined ? data.delete(k) : data.set(k, v)),
        regenerate: async () => data.clear(),
        destroy: async () => data.clear(),
      }
      c.set('session' as never, s as never)
      await next()
    })
    a.route('/', honoPages(newRc(), users))
    return a
  }

  it('every path × POST {form, json} × {content-length, streamed without a length}; GET with a declared length', async () => {
    const a = app()
    const routes = pageRoutes('/account')
    expect(routes).toHaveLength(15)
    const statuses = new Set<string>()
    // Mounted where we think: a small GET of the sign-in page renders.
    expect((await a.request('http://localhost/account/signin')).status).toBe(200)
    for (const path of routes) {
      for (const v of VARIANTS) {
        const { stream, pulled } = bigStream()
        const res = await a.request(`http://localhost${path}`, {
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
        expect(await res.text(), label).toBe(PAGES_413_BODY)
        expect(res.headers.get('cache-control'), label).toBe('no-store')
        // Read no further than the limit (plus what the stream had buffered).
        expect(pulled(), label).toBeLessThan(4 * FILLER.length)
      }
      // fetch sends no body with a GET; a server adapter passes the declared length on.
      const get = await a.request(`http://localhost${path}`, {
        headers: { 'content-length': String(FIFTY_MB), 'content-type': FORM },
      })
      expect(get.status, `GET ${path}`).toBe(413)
      expect(await get.text()).toBe(PAGES_413_BODY)
      // A chunked GET: Hono's Node server hands the app the headers but no body for a GET, so
      // there is nothing to measure and the GET is served as one without a body.
      const chunkedGet = await a.request(`http://localhost${path}`, {
        headers: { 'transfer-encoding': 'chunked', 'content-type': FORM },
      })
      const plain = await a.request(`http://localhost${path}`)
      expect(chunkedGet.status, `chunked GET ${path}`).toBe(plain.status)
      expect(chunkedGet.status, `chunked GET ${path}`).not.toBe(413)
      statuses.add(`${path}:${plain.status}`)
    }
    expect(statuses.size).toBe(15)
  })
})
