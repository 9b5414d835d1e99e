/**
 * `@recovery-codes/hono`: the recovery-codes JSON API as a Hono sub-app. It only translates the
 * Hono context to and from the neutral handler of `@recovery-codes/core`.
 */
import {
  asHostSession,
  createHttpHandler,
  type HostSession,
  type HttpContext,
  type HttpHandlerOptions,
  type HttpHooks,
  type RecoveryCodes,
  readLimitedBody,
  type SessionHooksOptions,
  withSessionDefaults,
} from '@recovery-codes/core'
import { type Context, Hono } from 'hono'
import { basePath } from 'hono/route'

/** What the hooks receive: the Hono context `c` plus the adapter-neutral helpers. */
export interface HonoRecoveryContext extends HttpContext {
  c: Context
}

/** Options of {@link recoveryCodes}: those of the neutral handler and of the session defaults. */
export interface HonoRecoveryOptions extends HttpHandlerOptions, SessionHooksOptions {
  /** The session the default hooks use. @default {@link honoSession}: the context variable `session` */
  session?: (ctx: HonoRecoveryContext) => HostSession
}

/**
 * The session a host middleware put in the context with `c.set('session', s)`, where `s` has
 * `get`, `set`, `regenerate` and `destroy` (a `HostSession`). Throws a typed error naming the
 * missing middleware when there is none.
 */
export function honoSession(c: Context): HostSession {
  return asHostSession(c.get('session' as never), "a session middleware that calls c.set('session', …)")
}

/**
 * The recovery-codes API as a Hono app, to mount with `app.route(path, …)` (the path is given
 * once: the routes and the OpenAPI `servers` entry follow the concrete mount). With no hooks it
 * keeps its state in the context's `session` (see {@link honoSession}) under `SESSION_KEYS`,
 * the keys the pages use. Hono has no portable client address: pass `getClientKey` with your
 * runtime's `getConnInfo(c)` (or a trusted proxy's header you configured), never a raw
 * `X-Forwarded-For`; without it every client shares one limiter key (fail safe).
 *
 * @example
 * ```ts
 * app.use('*', sessions) // sets c.set('session', …)
 * app.route('/recovery', recoveryCodes(rc, { getClientKey: ({ c }) => getConnInfo(c).remote.address }))
 * ```
 */
export function recoveryCodes(
  rc: RecoveryCodes,
  hooks: Partial<HttpHooks<HonoRecoveryContext>> = {},
  options: HonoRecoveryOptions = {},
): Hono {
  const { hooks: merged } = withSessionDefaults<HonoRecoveryContext>(
    hooks,
    ({ c }) => honoSession(c),
    () => null,
    options,
  )
  const handler = createHttpHandler(rc, merged, options)
  const app = new Hono()
  app.all('*', async (c) => {
    const url = new URL(c.req.url)
    // The concrete mount path (`/recovery`, or `/t/acme/recovery` for `/t/:tenant/recovery`).
    const mount = basePath(c)
    const isPost = c.req.method === 'POST'
    const read = isPost
      ? await readLimitedBody(c.req.raw.body, handler.bodyLimit, c.req.header('content-length'))
      : null
    const ctx: HonoRecoveryContext = {
      c,
      header: (name) => c.req.header(name),
      appendResponseHeader: (name, value) => c.header(name, value, { append: true }),
    }
    const out = await handler.handle(
      {
        method: c.req.method,
        path: c.req.path.slice(mount === '/' ? 0 : mount.length) || '/',
        headers: (name) => c.req.header(name),
        query: url.searchParams,
        origin: url.origin,
        mountPath: mount === '/' ? '' : mount,
        ...(read === null ? {} : read.ok ? { rawBody: read.bytes } : { bodyError: read.reason }),
      },
      ctx,
    )
    return c.body(
      typeof out.body === 'string' ? out.body : new Uint8Array(out.body),
      out.status as 200,
      out.headers,
    )
  })
  return app
}
