/**
 * "Dependable under faults": a 50 MB body gets 413 `PAYLOAD_TOO_LARGE` on every POST operation
 * of the Express JSON API, mounted the usual way (Express 5, express-session, global
 * `express.json()` / `express.urlencoded()`, pages at `/account`, API at `/account/recovery`).
 * Operations are enumerated from the served OpenAPI document, so a new route cannot escape.
 * Bodies: form and JSON, with a `Content-Length` and chunked without one, streamed.
 *
 * GET operations never read a body (core's dispatcher reads one only for POST routes; a global
 * parser's rejection of it is handed to core and ignored there): a GET with a 50 MB body answers
 * as the same GET without one (asserted against a body-less baseline). A POST to a GET-only path
 * is 405 METHOD_NOT_ALLOWED: the route table is consulted before the body.
 *
 * Regression: a global parser's 413 (and 400 for malformed JSON) used to bypass the API, which
 * Express mounts as a sub-app that is never handed errors raised before it, so the host's final
 * handler answered with an HTML page (with a stack trace outside production).
 */
import { describe, expect, it } from 'vitest'
import {
  expressHost,
  FORM,
  GET_VARIANTS,
  SAME_SITE,
  sendBig,
  sendSmall,
  VARIANTS,
} from './oversize-fixtures.ts'

describe('Express 5 JSON API (express-session, global json + urlencoded): 50 MB on every operation', () => {
  const host = expressHost()

  it('API: every OpenAPI operation × {form, json} × {content-length, chunked}', async () => {
    const doc = JSON.parse(
      (await sendSmall(host.origin(), '/account/recovery/openapi.json', 'GET')).body,
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
    expect(posts.length + gets.length).toBe(ops.length)
    expect(posts).toHaveLength(12)
    expect(gets).toHaveLength(4)

    for (const { path } of posts) {
      for (const v of VARIANTS) {
        const r = await sendBig(host.origin(), path, { method: 'POST', ...v, headers: SAME_SITE })
        const label = `POST ${path} ${v.name}`
        expect(r.status, label).toBe(413)
        expect(r.headers['content-type'], label).toMatch(/^application\/json/)
        expect(JSON.parse(r.body), label).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } })
      }
    }
    // GET routes never read a body (core dispatches a body only for POST routes): the answer is
    // the one of the same GET without a body.
    const postPaths = new Set(posts.map((o) => o.path))
    for (const { path } of gets) {
      const baseline = await sendSmall(host.origin(), path, 'GET')
      for (const v of GET_VARIANTS) {
        const r = await sendBig(host.origin(), path, { method: 'GET', ...v })
        const label = `GET ${path} ${v.name}`
        expect(r.status, label).toBe(baseline.status)
        expect(r.status, label).not.toBe(413)
        if (baseline.status !== 200) expect(JSON.parse(r.body), label).toEqual(JSON.parse(baseline.body))
      }
      // A 50 MB POST to a GET-only path: the method is refused before any body is looked at.
      // (`/repudiate` takes both methods: its POST is checked above.)
      if (postPaths.has(path)) continue
      const post = await sendBig(host.origin(), path, {
        method: 'POST',
        contentType: FORM,
        chunked: false,
        headers: SAME_SITE,
      })
      expect(post.status, `POST ${path}`).toBe(405)
      expect(JSON.parse(post.body)).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' } })
    }
  })
})
