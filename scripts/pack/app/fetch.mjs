// The web-standard handler of core, `(Request) => Promise<Response>`, with hooks written by hand
// over an in-memory Map of sessions keyed by a `sid` cookie: what a Bun, Deno, Workers or Next.js
// host does. Called directly with `new Request(...)`; prints one JSON line per request.
import { randomUUID } from 'node:crypto'
import { createFetchHandler, createRecoveryCodes } from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'

const rc = createRecoveryCodes({
  peppers: [{ id: 'k1', secret: process.env.RC_PEPPER ?? Buffer.alloc(32, 9).toString('base64') }],
  store: memoryStore(),
})

/** sid → { uid, authAt, reveal } */
const sessions = new Map()
const sidOf = (request) => /(?:^|;\s*)sid=([^;]+)/.exec(request.headers.get('cookie') ?? '')?.[1]
const sessionOf = ({ request }) => sessions.get(sidOf(request)) ?? {}
const FRESH_MS = 10 * 60_000

const handler = createFetchHandler(
  rc,
  {
    getUserId: (ctx) => sessionOf(ctx).uid ?? null,
    getPendingUserId: (ctx) => sessionOf(ctx).pending ?? null,
    getRevealToken: (ctx) => sessionOf(ctx).reveal ?? null,
    setRevealToken: (ctx, token) => {
      const sid = sidOf(ctx.request)
      if (sessions.has(sid)) sessions.get(sid).reveal = token ?? undefined
    },
    regenerateSession: (ctx) => {
      const old = sidOf(ctx.request)
      sessions.delete(old)
      const sid = randomUUID()
      sessions.set(sid, {})
      ctx.appendResponseHeader('Set-Cookie', `sid=${sid}; Path=/; HttpOnly; SameSite=Lax`)
    },
    logIn: (ctx, userId) => {
      const s = sessions.get(sidOf(ctx.request))
      if (s) Object.assign(s, { uid: userId, authAt: Date.now(), pending: undefined })
    },
    isFreshlyAuthenticated: (ctx) => Date.now() - (sessionOf(ctx).authAt ?? 0) < FRESH_MS,
    getClientKey: () => '192.0.2.1',
  },
  { basePath: '/api/recovery' },
)

const ORIGIN = 'https://app.example'
async function call(name, method, path, { cookie, body } = {}) {
  const headers = new Headers()
  if (cookie) headers.set('cookie', cookie)
  if (body !== undefined) {
    headers.set('content-type', 'application/json')
    headers.set('origin', ORIGIN)
  }
  const response = await handler(
    new Request(`${ORIGIN}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
  )
  const text = await response.text()
  let json = null
  try {
    json = JSON.parse(text)
  } catch {}
  console.log(
    JSON.stringify({ name, status: response.status, headers: Object.fromEntries(response.headers), json }),
  )
}

await call('openapi', 'GET', '/api/recovery/openapi.json')
await call('status-anonymous', 'GET', '/api/recovery/status')
// A signed-in session, as the host's own login would leave it.
sessions.set('s1', { uid: 'u1', authAt: Date.now() })
await call('generate', 'POST', '/api/recovery/generate', { cookie: 'sid=s1', body: {} })
await call('view', 'POST', '/api/recovery/codes/view', { cookie: 'sid=s1', body: {} })
await call('confirm', 'POST', '/api/recovery/confirm', { cookie: 'sid=s1', body: {} })
await call('status', 'GET', '/api/recovery/status', { cookie: 'sid=s1' })
await call('outside-base', 'GET', '/elsewhere/status', { cookie: 'sid=s1' })
