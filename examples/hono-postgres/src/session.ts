/**
 * A minimal in-memory session for Hono (the demo runs one process): an opaque random id in an
 * HttpOnly, SameSite=Lax cookie, data in a Map. Use a shared store for several instances.
 */
import type { PageSession } from '@recovery-codes/ui'
import type { Context, MiddlewareHandler } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'

type Data = Record<string, unknown>

export interface MemorySessions {
  middleware: MiddlewareHandler
  /** The session of the request `c` (after the middleware ran). */
  of(c: Context): PageSession
}

export function memorySessions(options: { cookieName?: string; ttlMs?: number } = {}): MemorySessions {
  const name = options.cookieName ?? 'rc_hono_sid'
  const ttlMs = options.ttlMs ?? 8 * 3600_000
  const store = new Map<string, { data: Data; expires: number }>()
  const state = new WeakMap<Context, { id: string | null; data: Data; dirty: boolean }>()

  const newId = () => {
    const b = new Uint8Array(32)
    crypto.getRandomValues(b)
    return Buffer.from(b).toString('base64url')
  }
  const cookieOptions = (c: Context) => ({
    httpOnly: true,
    sameSite: 'Lax' as const,
    path: '/',
    secure: new URL(c.req.url).protocol === 'https:',
  })

  const middleware: MiddlewareHandler = async (c, next) => {
    const id = getCookie(c, name)
    const now = Date.now()
    const found = id ? store.get(id) : undefined
    const live = found && found.expires > now ? found : undefined
    if (found && !live && id) store.delete(id)
    state.set(c, { id: live ? id! : null, data: live ? live.data : Object.create(null), dirty: false })
    // Where recovery-codes' Hono adapters look for the session by default.
    c.set('session' as never, sessions.of(c) as never)
    await next()
    const s = state.get(c)!
    if (s.dirty && s.id) store.set(s.id, { data: s.data, expires: now + ttlMs })
  }

  const sessions: MemorySessions = {
    middleware,
    of(c) {
      const s = state.get(c)
      if (!s) throw new Error('memorySessions: middleware must run first')
      return {
        get: (key) => s.data[key],
        set: (key, value) => {
          if (!s.id && value !== undefined) {
            // The cookie goes out with the response being built, before the handler returns it.
            s.id = newId()
            setCookie(c, name, s.id, cookieOptions(c))
          }
          if (value === undefined) delete s.data[key]
          else s.data[key] = value
          s.dirty = true
        },
        async regenerate() {
          if (s.id) store.delete(s.id)
          s.id = newId()
          s.data = Object.create(null)
          s.dirty = true
          setCookie(c, name, s.id, cookieOptions(c))
        },
        async destroy() {
          if (s.id) store.delete(s.id)
          s.id = null
          s.data = Object.create(null)
          s.dirty = false
          deleteCookie(c, name, cookieOptions(c))
        },
      }
    },
  }
  return sessions
}
