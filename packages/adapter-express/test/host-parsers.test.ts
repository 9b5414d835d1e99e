/**
 * Regression: behind a host's global body parsers, the router answers their failures with core's
 * JSON errors. Express never hands a mounted sub-app an error raised before it, so a global
 * `express.json()` rejecting an oversize or malformed body on an API path used to reach the
 * host's final handler (an HTML page, a stack trace outside production, and the parser's
 * message, which for malformed JSON quotes the start of the body, in the host's error log).
 */
import type { AddressInfo } from 'node:net'
import { createRecoveryCodes } from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import { randomPepperSecret, signedInHooks } from '@recovery-codes/testing'
import express, { type NextFunction, type Request, type Response } from 'express'
import { afterEach, describe, expect, it } from 'vitest'
import { recoveryCodesRouter } from '../src/index.ts'

const servers: { close(cb: () => void): void; closeAllConnections(): void }[] = []
afterEach(() =>
  Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((ok) => {
          s.close(() => ok())
          s.closeAllConnections()
        }),
    ),
  ),
)

async function start() {
  const rc = createRecoveryCodes({
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    store: memoryStore(),
  })
  const hostErrors: unknown[] = []
  const app = express()
  app.use(express.json())
  app.use(express.urlencoded({ extended: false }))
  app.use('/account/recovery', recoveryCodesRouter(rc, signedInHooks()))
  app.post('/host', (_req, res) => void res.json({ ok: true }))
  app.use((err: { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    hostErrors.push(err)
    res.status(err.status ?? 500).send('host error page')
  })
  const server = app.listen(0, '127.0.0.1')
  servers.push(server)
  await new Promise((ok) => server.once('listening', ok))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const post = (path: string, body: string, type = 'application/json') =>
    fetch(origin + path, { method: 'POST', headers: { 'content-type': type }, body })
  return { post, hostErrors }
}

const errorCode = async (res: globalThis.Response) =>
  ((await res.json()) as { error: { code: string } }).error.code

describe('express adapter behind global express.json() / express.urlencoded()', () => {
  it("a body the host's parser refused as too large is 413 PAYLOAD_TOO_LARGE, as JSON", async () => {
    const { post, hostErrors } = await start()
    const big = 'a'.repeat(200_000) // over the host parsers' 100 kB default
    const json = await post('/account/recovery/verify-setup', `{"code":"${big}"}`)
    expect(json.status).toBe(413)
    expect(json.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await errorCode(json)).toBe('PAYLOAD_TOO_LARGE')
    const form = await post(
      '/account/recovery/verify-setup',
      `code=${big}`,
      'application/x-www-form-urlencoded',
    )
    expect(form.status).toBe(413)
    expect(await errorCode(form)).toBe('PAYLOAD_TOO_LARGE')
    expect(hostErrors).toEqual([])
  })

  it("malformed JSON the host's parser refused is 400 INVALID_INPUT; the host never sees its message", async () => {
    const { post, hostErrors } = await start()
    const res = await post('/account/recovery/verify-setup', '{"code":ABCDE-FGHJK-KMNPQ}')
    expect(res.status).toBe(400)
    expect(await errorCode(res)).toBe('INVALID_INPUT')
    expect(hostErrors).toEqual([])
  })

  it("the host's own routes keep their parser errors", async () => {
    const { post, hostErrors } = await start()
    const res = await post('/host', '{"broken"')
    expect(res.status).toBe(400)
    expect(await res.text()).toBe('host error page')
    expect(hostErrors).toHaveLength(1)
    expect((await post('/host', '{}')).status).toBe(200)
  })
})
