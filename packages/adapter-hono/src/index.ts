/**
 * `@recovery-codes/hono`: the recovery-codes JSON API as a Hono sub-app. It only translates the
 * Hono context to and from the neutral handler of `@recovery-codes/core`.
 */
import {
  createHttpHandler,
  type HttpContext,
  type HttpHandlerOptions,
  type HttpHooks,
  type RecoveryCodes,
  readLimitedBody,
} from '@recovery-codes/core'
import { type Context, Hono } from 'hono'
import { basePath } from 'hono/route'

/** What the hooks receive: the Hono context `c` plus the adapter-neutral helpers. */
export interface HonoRecoveryContext extends HttpContext {
  c: Context
}

/** Options of {@link recoveryCodes}: those of the neutral handler. */
export type HonoRecoveryOptions = HttpHandlerOptions

/**
 * The recovery-codes API as a Hono app, to mount with `app.route(path, …)`. Hono has no portable
 * client address: `getClientKey` should use your runtime's `getConnInfo(c)` (or a trusted proxy's
 * header you configured), never a raw `X-Forwarded-For`.
 *
 * @example
 * ```ts
 * app.route('/recovery', recoveryCodes(rc, {
 *   getUserId: ({ c }) => c.get('session').userId ?? null,
 *   getClientKey: ({ c }) => getConnInfo(c).remote.address,
 *   // …
 * }))
 * ```
 */
export function recoveryCodes(
  rc: RecoveryCodes,
  hooks: HttpHooks<HonoRecoveryContext>,
  options: HonoRecoveryOptions = {},
): Hono {
  const handler = createHttpHandler(rc, hooks, options)
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
