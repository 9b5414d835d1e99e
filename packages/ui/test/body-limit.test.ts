/**
 * Regression for "the UI form routes answer a 50 MB body with 400 (the JSON API answers 413)":
 * an oversize body is 413 on every route of the pages, whatever its content type and method, and
 * also when a host's global body parser already rejected it.
 */
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRecoveryCodes, type HostSession } from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import express from 'express'
import session from 'express-session'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import { recoveryCodesPages } from '../src/express.ts'
import { recoveryCodesPages as honoPages } from '../src/hono.ts'

const PEPPER = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 41 + 7) % 251)).toString('base64')
const newRc = () => createRecoveryCodes({ peppers: [{ id: 'k1', secret: PEPPER }], store: memoryStore() })
const users = {
  signInWithPassword: async () => null,
  verifyPassword: async () => false,
}
const BIG = Buffer.alloc(3 * 1024 * 1024, 'a')
const FORM = 'application/x-www-form-urlencoded'
const SAME_SITE = { 'sec-fetch-site': 'same-origin' }

/** Sends `body` with node:http (which, unlike fetch, sends a body with GET); resolves the status. */
function send(
  origin: string,
  path: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer,
  chunked = false,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, origin)
    let status: number | null = null
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method,
        headers: chunked ? headers : { ...headers, 'content-length': String(body.length) },
      },
      (res) => {
        status = res.statusCode ?? 0
        res.resume()
        res.on('end', () => resolve(status!))
        res.on('error', () => resolve(status!))
      },
    )
    // The server may answer and close before the whole body is sent: the status is what counts.
    req.on('error', (error) => (status === null ? reject(error) : resolve(status)))
    req.end(body)
  })
}

describe('Express pages: 413 for an oversize body on every route', () => {
  const servers: { close(cb: () => void): void; closeAllConnections?: () => void }[] = []
  afterEach(() =>
    Promise.all(
      servers.splice(0).map(
        (s) =>
          new Promise<void>((ok) => {
            s.close(ok)
            s.closeAllConnections?.()
          }),
      ),
    ),
  )

  async function start(globalParsers: boolean): Promise<string> {
    const a = express()
    a.use(session({ secret: 'test secret of the session', resave: false, saveUninitialized: false }))
    if (globalParsers) {
      a.use(express.json())
      a.use(express.urlencoded({ extended: false }))
      a.use(express.text())
    }
    a.use('/account', recoveryCodesPages(newRc(), users))
    a.use((_req, res) => void res.status(404).send('host 404'))
    const server = a.listen(0, '127.0.0.1')
    servers.push(server)
    await new Promise((ok) => server.once('listening', ok))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  for (const globalParsers of [false, true]) {
    const label = globalParsers ? 'after global express.json/urlencoded/text' : 'without global parsers'
    it(`${label}: POST form, POST text, POST JSON, chunked POST, GET with a 3 MB body`, async () => {
      const origin = await start(globalParsers)
      const cases: [string, string, Record<string, string>, boolean][] = [
        ['POST /generate form', 'POST', { 'content-type': FORM, ...SAME_SITE }, false],
        ['POST /generate text/plain', 'POST', { 'content-type': 'text/plain', ...SAME_SITE }, false],
        ['POST /generate json', 'POST', { 'content-type': 'application/json', ...SAME_SITE }, false],
        ['POST /generate no type', 'POST', { ...SAME_SITE }, false],
        ['POST /generate form chunked', 'POST', { 'content-type': FORM, ...SAME_SITE }, true],
        ['GET /signin form', 'GET', { 'content-type': FORM }, false],
        ['GET /signin octet-stream', 'GET', { 'content-type': 'application/octet-stream' }, false],
      ]
      for (const [name, method, headers, chunked] of cases) {
        const path = name.includes('POST') ? '/account/generate' : '/account/signin'
        expect(await send(origin, path, method, headers, BIG, chunked), name).toBe(413)
      }
      // A small GET still renders; a path that is not ours falls through to the host.
      expect(await send(origin, '/account/signin', 'GET', {}, Buffer.alloc(0))).toBe(200)
      expect(await send(origin, '/elsewhere', 'POST', { 'content-type': 'text/plain' }, BIG)).not.toBe(400)
    })
  }
})

describe('Hono pages: 413 for an oversize body on every route', () => {
  function app() {
    const a = new Hono()
    a.use('*', async (c, next) => {
      const s: HostSession = {
        get: () => undefined,
        set: () => {},
        regenerate: async () => {},
        destroy: async () => {},
      }
      c.set('session' as never, s as never)
      await next()
    })
    a.route('/account', honoPages(newRc(), users))
    return a
  }

  it('POST form, POST text, streamed POST without a length, GET with a declared 3 MB body', async () => {
    const a = app()
    const url = 'http://localhost/account/generate'
    const post = (headers: Record<string, string>, body: RequestInit['body']) =>
      a.request(url, { method: 'POST', headers: { ...SAME_SITE, ...headers }, body })
    expect((await post({ 'content-type': FORM }, BIG)).status).toBe(413)
    expect((await post({ 'content-type': 'text/plain' }, BIG)).status).toBe(413)
    expect((await post({ 'content-type': 'application/json' }, BIG)).status).toBe(413)
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 3; i++) controller.enqueue(new Uint8Array(1024 * 1024))
        controller.close()
      },
    })
    const streamed = await a.request(url, {
      method: 'POST',
      headers: { ...SAME_SITE, 'content-type': FORM },
      body: stream,
      duplex: 'half',
    } as RequestInit)
    expect(streamed.status).toBe(413)
    // fetch sends no body with GET; a server adapter passes the declared length on.
    const get = await a.request('http://localhost/account/signin', {
      headers: { 'content-length': String(BIG.length), 'content-type': FORM },
    })
    expect(get.status).toBe(413)
    expect((await a.request('http://localhost/account/signin')).status).toBe(200)
  })
})
