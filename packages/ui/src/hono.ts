/** `@recovery-codes/ui/hono`: the pages as a Hono app. */
import { asHostSession, type RecoveryCodes, readLimitedBody } from '@recovery-codes/core'
import { type Context, Hono } from 'hono'
import { basePath as mountOf } from 'hono/route'
import { createPagesHandler, type PagesHooks, type PagesOptions } from './handler.ts'

/** What the hooks receive. */
export interface HonoPagesContext {
  c: Context
}

const HONO_SESSION_MIDDLEWARE = "a session middleware that calls c.set('session', …)"

/** The pages app, with the 404 page for the host's `app.notFound(pages.notFoundPage)`. */
export type HonoPages = Hono & {
  /** Answers with the pages' 404 page (layout, `lang`, title, landmark). */
  notFoundPage: (c: Context) => Promise<Response>
}

/** The hooks of the Hono pages: `session` defaults to the context's `session`, `getClientKey` to none. */
export type HonoPagesHooks = Omit<PagesHooks<HonoPagesContext>, 'session' | 'getClientKey'> &
  Partial<Pick<PagesHooks<HonoPagesContext>, 'session' | 'getClientKey'>>

/**
 * The recovery-code pages as a Hono app. Mount it with `app.route('/account', …)`: the path is
 * given once, links and redirects follow the concrete mount. The session defaults to what your
 * middleware put in `c.set('session', …)` (`get`, `set`, `regenerate`, `destroy`); pass
 * `getClientKey` with your runtime's `getConnInfo(c)` (without it all clients share one limiter
 * key). Unknown paths answer 404 from Hono. On its own paths a body over `bodyLimit` is 413
 * whatever the method or content type.
 */
export function recoveryCodesPages(
  rc: RecoveryCodes,
  hooks: HonoPagesHooks = {},
  options: PagesOptions = {},
): HonoPages {
  const handler = createPagesHandler(
    rc,
    {
      session: ({ c }) => asHostSession(c.get('session' as never), HONO_SESSION_MIDDLEWARE),
      getClientKey: () => null,
      ...hooks,
    },
    options,
  )
  const base = (options.basePath ?? '').replace(/\/+$/, '')
  const routes = new Set(Object.values(handler.paths).map((p) => p.slice(base.length) || '/'))
  const app = new Hono()
  app.all('*', async (c, next) => {
    const url = new URL(c.req.url)
    const mount = mountOf(c) === '/' ? '' : mountOf(c)
    const path = c.req.path.slice(mount.length) || '/'
    if (base && !path.startsWith(`${base}/`) && path !== base) return next()
    if (!routes.has(path.slice(base.length) || '/')) return next()
    const isPost = c.req.method === 'POST'
    const isForm =
      (c.req.header('content-type') ?? '').split(';', 1)[0]!.trim().toLowerCase() ===
      'application/x-www-form-urlencoded'
    let form: URLSearchParams | null = null
    let bodyError: 'too-large' | 'unreadable' | 'unsupported' | undefined
    // Every body is read within the limit, whatever its method or content type: an oversize one
    // is 413 on every route (a declared length over the limit is refused before reading).
    const declared = c.req.header('content-length')
    if (isPost || c.req.raw.body !== null || (declared !== undefined && declared !== '0')) {
      const read = await readLimitedBody(c.req.raw.body, handler.bodyLimit, declared)
      if (!read.ok && read.reason === 'too-large') {
        return c.body(TOO_LARGE_BODY, 413, TOO_LARGE_HEADERS)
      }
      // Only a POST's body is used; for the other methods its size was all that mattered.
      if (isPost) {
        if (!read.ok) bodyError = read.reason
        else if (isForm) form = new URLSearchParams(new TextDecoder().decode(read.bytes))
        else bodyError = 'unsupported'
      }
    }
    const out = await handler.handle(
      {
        method: c.req.method,
        path: path.slice(base.length) || '/',
        query: url.searchParams,
        form,
        ...(bodyError ? { bodyError } : {}),
        header: (name) => c.req.header(name),
        origin: url.origin,
        mountPath: mount,
      },
      { c },
    )
    if (out === null) return next()
    return c.body(
      typeof out.body === 'string' ? out.body : new Uint8Array(out.body),
      out.status as 200,
      out.headers,
    )
  })
  const notFoundPage = async (c: Context): Promise<Response> => {
    const url = new URL(c.req.url)
    const out = await handler.notFound(
      {
        method: c.req.method,
        path: c.req.path,
        query: url.searchParams,
        form: null,
        header: (name) => c.req.header(name),
        origin: url.origin,
        // Called from the host's app: the pages' links follow `basePath` under the site root.
        mountPath: '',
      },
      { c },
    )
    return c.body(typeof out.body === 'string' ? out.body : new Uint8Array(out.body), 404, out.headers)
  }
  return Object.assign(app, { notFoundPage })
}

/** The 413 of every route. */
const TOO_LARGE_HEADERS = { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }
const TOO_LARGE_BODY = 'The request body is too large.'
