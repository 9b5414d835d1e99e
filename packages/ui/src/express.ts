/**
 * `@recovery-codes/ui/express`: the pages as an Express 5 app to mount with `app.use(path, …)`,
 * on express-session by default.
 */
import type { RecoveryCodes } from '@recovery-codes/core'
import { bodyErrorOf, expressSession, mountable, originOf, queryOf } from '@recovery-codes/express'
import express, {
  type Express,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express'
import { createPagesHandler, type PageRequest, type PagesHooks, type PagesOptions } from './handler.ts'

/** What the hooks receive. */
export interface ExpressPagesContext {
  req: Request
  res: Response
}

/** The hooks of the Express pages: `session` and `getClientKey` have Express defaults. */
export type ExpressPagesHooks = Omit<PagesHooks<ExpressPagesContext>, 'session' | 'getClientKey'> &
  Partial<Pick<PagesHooks<ExpressPagesContext>, 'session' | 'getClientKey'>>

/** The pages app, with the 404 page for the host's catch-all. */
export type ExpressPages = Express & {
  /**
   * Answers any request with the pages' 404 page (layout, `lang`, title, landmark). Mount it last:
   * `app.use(pages.notFoundPage)`.
   */
  notFoundPage: RequestHandler
}

/**
 * The recovery-code pages as an Express app. Mount it with `app.use('/account', …)` (links and
 * redirects follow the mount path; nothing is claimed at the site root unless you mount it
 * there) after express-session; `app.use` throws when no session middleware was mounted before
 * it, unless you pass a `session` hook. Works after global `express.json()` /
 * `express.urlencoded()`. Paths it does not know fall through to `next()` with their bodies
 * unread. On its own paths a body over `bodyLimit` is 413 whatever the method or content type,
 * also when a global parser rejected it first or read it under a larger limit (by its
 * `Content-Length`).
 *
 * @example
 * ```ts
 * app.use(session({ secret, resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax' } }))
 * app.use(express.urlencoded({ extended: false }))
 * app.use('/account', recoveryCodesPages(rc, {
 *   signInWithPassword: users.signIn,
 *   verifyPassword: users.verify,
 * }))
 * // … the host's own routes, then its catch-all:
 * app.use(pages.notFoundPage)
 * ```
 */
export function recoveryCodesPages(
  rc: RecoveryCodes,
  hooks: ExpressPagesHooks = {},
  options: PagesOptions = {},
): ExpressPages {
  const handler = createPagesHandler(
    rc,
    {
      session: ({ req }) => expressSession(req),
      getClientKey: ({ req }) => req.ip,
      ...hooks,
    },
    options,
  )
  const router = express.Router()
  const base = (options.basePath ?? '').replace(/\/+$/, '')
  // Every body sent to one of our routes is read within the limit, whatever its content type or
  // method, so an oversize body is 413 everywhere (a small non-form POST is refused by the handler).
  const body = express.raw({ type: () => true, limit: handler.bodyLimit })
  const routes = new Set(Object.values(handler.paths).map((p) => p.slice(base.length) || '/'))
  // Only our routes: a host's own routes keep their bodies and their parsers' errors.
  const isOurs = (path: string) =>
    (!base || path.startsWith(`${base}/`) || path === base) && routes.has(path.slice(base.length) || '/')

  async function serve(
    req: Request,
    res: Response,
    next: NextFunction,
    bodyError?: 'too-large' | 'unreadable',
  ) {
    const path = req.path
    if (!isOurs(path)) return next()
    // A body a host's parser already read (with a larger limit) still counts by its declared size.
    if (bodyError === 'too-large' || declaredLength(req.get('content-length')) > handler.bodyLimit) {
      res.status(413).set(TOO_LARGE_HEADERS).end(TOO_LARGE_BODY)
      return
    }
    const isForm = req.is('application/x-www-form-urlencoded') === 'application/x-www-form-urlencoded'
    const formData = req.method === 'POST' && isForm && !bodyError ? formOf(req.body) : null
    const out = await handler.handle(
      {
        method: req.method,
        path: path.slice(base.length) || '/',
        query: queryOf(req),
        form: formData,
        ...(bodyError
          ? { bodyError }
          : req.method === 'POST' && !isForm
            ? { bodyError: 'unsupported' as const }
            : {}),
        header: (name) => req.get(name),
        origin: originOf(req),
        mountPath: req.baseUrl,
      },
      { req, res },
    )
    if (out === null) return next()
    res.status(out.status).set(out.headers)
    res.end(typeof out.body === 'string' ? out.body : Buffer.from(out.body))
  }

  router.use(
    (req, res, next) => (isOurs(req.path) ? body(req, res, next) : next()),
    (req, res, next) => {
      serve(req, res, next).catch(next)
    },
  )
  // Body-parser errors, ours or those of a host's global parser mounted before us (its 413s:
  // `entity.too.large`, `parameters.too.many`): `mountable` hands the host's to it too.
  const bodyErrors = (
    err: { type?: unknown; status?: unknown },
    req: Request,
    res: Response,
    next: NextFunction,
  ) => {
    if (res.headersSent || typeof err?.type !== 'string' || !isOurs(req.path)) return next(err)
    serve(req, res, next, bodyErrorOf(err)).catch(next)
  }
  router.use(bodyErrors)
  const app = mountable(router, hooks.session === undefined, '@recovery-codes/ui', bodyErrors)
  const notFoundPage: RequestHandler = (req, res, next) => {
    // The pages' own mount path (not the catch-all's), so its links point into the pages.
    const mount = typeof app.mountpath === 'string' && app.mountpath !== '/' ? app.mountpath : ''
    const request: PageRequest = {
      method: req.method,
      path: req.path,
      query: queryOf(req),
      form: null,
      header: (name) => req.get(name),
      origin: originOf(req),
      mountPath: mount,
    }
    handler
      .notFound(request, { req, res })
      .then((out) => {
        res.status(out.status).set(out.headers)
        res.end(req.method === 'HEAD' || typeof out.body !== 'string' ? undefined : out.body)
      })
      .catch(next)
  }
  return Object.assign(app, { notFoundPage })
}

/** The 413 of every route: the body was not read, so the connection is not kept for another request. */
const TOO_LARGE_HEADERS = {
  'Content-Type': 'text/plain; charset=utf-8',
  'Cache-Control': 'no-store',
  Connection: 'close',
}
const TOO_LARGE_BODY = 'The request body is too large.'

/** A `Content-Length` as a number; 0 when absent or malformed (the body read then decides). */
function declaredLength(header: string | undefined): number {
  const n = header === undefined ? 0 : Number(header)
  return Number.isSafeInteger(n) && n > 0 ? n : 0
}

/**
 * The form fields of a POST: the raw bytes when this router read them, or the object a global
 * `express.urlencoded()` already parsed (string values; repeated fields as arrays; nested
 * `extended` objects are not form fields of these pages and are dropped).
 */
function formOf(body: unknown): URLSearchParams | null {
  if (Buffer.isBuffer(body)) return new URLSearchParams(body.toString('utf8'))
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null
  const out = new URLSearchParams()
  for (const [key, value] of Object.entries(body)) {
    for (const v of Array.isArray(value) ? value : [value]) if (typeof v === 'string') out.append(key, v)
  }
  return out
}

export { expressSession as session, expressSession }
