/**
 * Shared by the oversize tests: bodies streamed from one reused 1 MiB buffer (never a 50 MB
 * string), over node:http (which, unlike fetch, sends a body with GET too) or as a web stream for
 * fetch-style apps; and the Express host set up the usual way.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRecoveryCodes } from '@recovery-codes/core'
import { recoveryCodesRouter } from '@recovery-codes/express'
import { memoryStore } from '@recovery-codes/store-memory'
import { createRecordingMailer, randomPepperSecret } from '@recovery-codes/testing'
import express from 'express'
import session from 'express-session'
import { afterAll, beforeAll } from 'vitest'
import { recoveryCodesPages } from '../src/express.ts'

export const FIFTY_MB = 50 * 1024 * 1024
/** The one buffer every oversize body is streamed from. */
export const FILLER = Buffer.alloc(1024 * 1024, 'a')
export const FORM = 'application/x-www-form-urlencoded'
export const JSON_TYPE = 'application/json'
export const SAME_SITE = { 'sec-fetch-site': 'same-origin' }

export interface Sent {
  status: number
  headers: IncomingHttpHeaders
  body: string
  /** Bytes written before the answer arrived (the rest was never sent). */
  sent: number
}

/**
 * Sends a `total`-byte body with node:http (which, unlike fetch, sends a body with GET), streamed
 * from {@link FILLER}; stops sending once the answer arrives.
 */
export function sendBig(
  origin: string,
  path: string,
  o: {
    method: string
    contentType: string
    chunked: boolean
    headers?: Record<string, string>
    prefix?: string
    total?: number
  },
): Promise<Sent> {
  const total = o.total ?? FIFTY_MB
  const url = new URL(path, origin)
  return new Promise<Sent>((resolve, reject) => {
    let answered = false
    let sent = 0
    let status = 0
    let resHeaders: IncomingHttpHeaders = {}
    const parts: Buffer[] = []
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      method: o.method,
      agent: false,
      headers: {
        ...o.headers,
        'content-type': o.contentType,
        ...(o.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(total) }),
      },
    })
    const done = () => {
      req.destroy()
      resolve({ status, headers: resHeaders, body: Buffer.concat(parts).toString('utf8'), sent })
    }
    req.on('response', (res) => {
      answered = true
      status = res.statusCode ?? 0
      resHeaders = res.headers
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('end', done)
      res.on('error', done)
    })
    // The server may answer and close before the whole body is sent: the answer is what counts.
    req.on('error', (error) => (answered ? done() : reject(error)))
    const pump = async () => {
      const head = Buffer.from(o.prefix ?? '')
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
              req.off('drain', wake)
              req.off('close', wake)
              req.off('response', wake)
              go()
            }
            req.on('drain', wake)
            req.on('close', wake)
            req.on('response', wake)
          })
        }
      }
      if (!answered && !req.destroyed) req.end()
    }
    pump().catch(reject)
  })
}

/** A body-less request over node:http, for baselines. */
export function sendSmall(
  origin: string,
  path: string,
  method: string,
  headers: Record<string, string> = {},
) {
  return sendBig(origin, path, { method, contentType: FORM, chunked: false, headers, total: 0 })
}

/** A stream of `prefix` then filler up to `total` bytes for fetch-style apps (Hono), views of {@link FILLER}. */
export function bigStream(
  total = FIFTY_MB,
  prefix = '',
): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
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
      controller.enqueue(new Uint8Array(FILLER.buffer, FILLER.byteOffset, n))
    },
  })
  return { stream, pulled: () => pulled }
}

/** The variants every route gets: form and JSON, with a length and chunked. */
export const VARIANTS = [
  { name: 'form + content-length', contentType: FORM, chunked: false, prefix: '_csrf=x&code=' },
  { name: 'form chunked', contentType: FORM, chunked: true, prefix: '_csrf=x&code=' },
  { name: 'json + content-length', contentType: JSON_TYPE, chunked: false, prefix: '{"code":"' },
  { name: 'json chunked', contentType: JSON_TYPE, chunked: true, prefix: '{"code":"' },
] as const
/** For GETs with a body: one of each content type and framing. */
export const GET_VARIANTS = [VARIANTS[0], VARIANTS[3]] as const

const users = {
  signInWithPassword: async () => null,
  verifyPassword: async () => false,
}

/**
 * A service whose API serves every route of the table (`/login` needs identifier-and-code, the
 * "This wasn't me" routes need notifications).
 */
export const newRc = () =>
  createRecoveryCodes({
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    store: memoryStore(),
    loginMode: 'identifier-and-code',
    resolveUserId: async () => null,
    mailer: createRecordingMailer(),
    resolveEmail: async () => null,
    notifications: { contact: 'Contact support.', linkBaseUrl: 'http://localhost/account/wasnt-me' },
  })

/**
 * The usual Express 5 host, started before the tests of the calling `describe` and closed after:
 * express-session, global `express.json()` and `express.urlencoded()`, the pages at `/account`,
 * the JSON API at `/account/recovery`, a host 404.
 */
export function expressHost(): { origin(): string } {
  let origin = ''
  let server: ReturnType<express.Express['listen']>
  beforeAll(async () => {
    const rc = newRc()
    const a = express()
    a.use(session({ secret: 'oversize test session secret', resave: false, saveUninitialized: false }))
    a.use(express.json())
    a.use(express.urlencoded({ extended: false }))
    a.use('/account', recoveryCodesPages(rc, users))
    a.use('/account/recovery', recoveryCodesRouter(rc))
    a.use((_req, res) => void res.status(404).send('host 404'))
    server = a.listen(0, '127.0.0.1')
    await new Promise((ok) => server.once('listening', ok))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(
    () =>
      new Promise<void>((ok) => {
        server.close(() => ok())
        server.closeAllConnections()
      }),
  )
  return { origin: () => origin }
}
