// A Fastify 5 host on the installed tarballs: @fastify/cookie + @fastify/session, the JSON API
// under /api/recovery with the default (session) hooks, the memory store, and a test-only route
// that signs `u1` in the way the host's own login would. Prints `listening <url>`.
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { createRecoveryCodes, SESSION_KEYS } from '@recovery-codes/core'
import { recoveryCodesFastify } from '@recovery-codes/fastify'
import { memoryStore } from '@recovery-codes/store-memory'
import Fastify from 'fastify'

const { RC_PEPPER, SESSION_SECRET } = process.env
if (!RC_PEPPER || !SESSION_SECRET) {
  console.error('fastify.mjs: RC_PEPPER and SESSION_SECRET are required')
  process.exit(2)
}

const rc = createRecoveryCodes({ peppers: [{ id: 'k1', secret: RC_PEPPER }], store: memoryStore() })

const app = Fastify()
await app.register(fastifyCookie)
await app.register(fastifySession, {
  secret: SESSION_SECRET,
  saveUninitialized: false,
  // Plain http on loopback in this test; a real deployment keeps the default `secure: true`.
  cookie: { secure: false, httpOnly: true, sameSite: 'lax', path: '/' },
})
await app.register(recoveryCodesFastify(rc), { prefix: '/api/recovery' })

// The host's own sign-in, reduced to what the default hooks read.
app.post('/test/login', async (request) => {
  request.session.rc_uid = 'u1'
  request.session.rc_auth_at = Date.now()
  // The keys the default hooks read, as documented (SESSION_KEYS.user / .authAt).
  return { ok: true, keys: [SESSION_KEYS.user, SESSION_KEYS.authAt] }
})

const address = await app.listen({ port: 0, host: '127.0.0.1' })
console.log(`listening ${address}`)

const stop = () => app.close().finally(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
