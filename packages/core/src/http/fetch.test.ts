import { describe, expect, it } from 'vitest'
// Core cannot depend on its own dependents; the suite and the store are reached by path.
import { memoryStore } from '../../../store-memory/src/index.ts'
import { randomPepperSecret, signedInHooks } from '../../../testing/src/fixtures.ts'
import { runHttpAdapterConformance } from '../../../testing/src/http-conformance.ts'
import { RecoveryCodesError } from '../errors.ts'
import { createRecoveryCodes } from '../service/create.ts'
import { createFetchHandler } from './fetch.ts'

runHttpAdapterConformance({
  name: 'fetch',
  store: () => memoryStore(),
  mount: (rc, hooks, options) => {
    const handler = createFetchHandler(rc, hooks, { ...options, basePath: '/recovery' })
    return {
      fetch: (path, init) => handler(new Request(`http://localhost/recovery${path}`, init)),
      close: () => {},
      mountPath: '/recovery',
    }
  },
})

const hooks = signedInHooks()

const rc = () =>
  createRecoveryCodes({
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    store: memoryStore(),
  })

const at = (path: string, init?: RequestInit) => new Request(`https://app.example${path}`, init)
const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code

describe('createFetchHandler', () => {
  it('puts headers appended by hooks (Set-Cookie) on the Response; core headers win', async () => {
    const handler = createFetchHandler(rc(), {
      ...hooks,
      getUserId: (ctx) => {
        ctx.appendResponseHeader('Set-Cookie', 'sid=new; Path=/; HttpOnly; Secure; SameSite=Lax')
        ctx.appendResponseHeader('Set-Cookie', 'seen=1; Path=/')
        ctx.appendResponseHeader('Cache-Control', 'public, max-age=60')
        return 'u1'
      },
    })
    const res = await handler(at('/status'))
    expect(res.status).toBe(200)
    expect(res.headers.getSetCookie()).toEqual([
      'sid=new; Path=/; HttpOnly; Secure; SameSite=Lax',
      'seen=1; Path=/',
    ])
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
  })

  it('gives hooks the request and the runtime argument', async () => {
    const seen: unknown[] = []
    const handler = createFetchHandler<{ remoteAddr: string }>(rc(), {
      ...hooks,
      getUserId: ({ request, platform, header }) => {
        seen.push(request.url, platform?.remoteAddr, header('x-test'))
        return 'u1'
      },
    })
    await handler(at('/status', { headers: { 'x-test': 'yes' } }), { remoteAddr: '198.51.100.7' })
    expect(seen).toEqual(['https://app.example/status', '198.51.100.7', 'yes'])
  })

  it('strips basePath; outside it, the same 404 ROUTE_NOT_FOUND JSON as an unknown route', async () => {
    const handler = createFetchHandler(rc(), hooks, { basePath: '/api/recovery/' })
    expect((await handler(at('/api/recovery/status?'))).status).toBe(200)
    const unknown = await handler(at('/api/recovery/nope'))
    expect(unknown.status).toBe(404)
    const body = await unknown.text()
    for (const path of ['/status', '/api/recoveryx/status', '/api', '/']) {
      const res = await handler(at(path))
      expect(res.status, path).toBe(404)
      expect(await res.text(), path).toBe(body)
      expect([...res.headers], path).toEqual([...unknown.headers])
    }
    expect(JSON.parse(body)).toEqual({ error: { code: 'ROUTE_NOT_FOUND', message: expect.any(String) } })
    // The OpenAPI document names where the API lives.
    const doc = (await (await handler(at('/api/recovery/openapi.json'))).json()) as {
      servers: { url: string }[]
    }
    expect(doc.servers[0]!.url).toBe('/api/recovery')
  })

  it('rejects a basePath without a leading slash', () => {
    expect(() => createFetchHandler(rc(), hooks, { basePath: 'api/recovery' })).toThrow(RecoveryCodesError)
  })

  it('exports GET and POST for a Next.js route file', async () => {
    const { GET, POST } = createFetchHandler(rc(), hooks, { basePath: '/api/recovery' })
    expect((await GET(at('/api/recovery/status'))).status).toBe(200)
    const res = await POST(
      at('/api/recovery/generate', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      }),
    )
    expect(res.status).toBe(201)
  })

  it('reads the body within bodyLimit: a 2 MB stream is 413; a consumed body is 400', async () => {
    const handler = createFetchHandler(rc(), hooks)
    const big = new Blob([JSON.stringify({ code: 'A'.repeat(2_000_000) })]).stream()
    const res = await handler(
      at('/verify-setup', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: big,
        duplex: 'half',
      } as RequestInit),
    )
    expect(res.status).toBe(413)
    expect(await errorCode(res)).toBe('PAYLOAD_TOO_LARGE')
    const used = at('/verify-setup', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"code":"ABCDE"}',
    })
    await used.text()
    const again = await handler(used)
    expect(again.status).toBe(400)
    expect(await errorCode(again)).toBe('INVALID_INPUT')
  })
})
