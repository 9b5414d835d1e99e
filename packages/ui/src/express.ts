/**
 * `@recovery-codes/ui/express`: the pages as an Express 5 router, plus a session bridge for
 * `express-session`.
 */
import type { RecoveryCodes } from '@recovery-codes/core'
import express, { type NextFunction, type Request, type Response, type Router } from 'express'
import { createPagesHandler, type PageSession, type PagesHooks, type PagesOptions } from './handler.ts'

/** What the hooks receive. */
export interface ExpressPagesContext {
  req: Request
  res: Response
}

/** The parts of an `express-session` session the bridge uses (structural: no type dependency). */
interface SessionLike {
  regenerate(cb: (err?: unknown) => void): void
  destroy(cb: (err?: unknown) => void): void
  [key: string]: unknown
}

/**
 * Bridges `req.session` of `express-session` to {@link PageSession}. Reads `req.session` lazily,
 * because `regenerate()` replaces it.
 */
export function expressSession(req: Request): PageSession {
  const current = () => {
    const s = (req as unknown as { session?: SessionLike }).session
    if (!s) throw new Error('@recovery-codes/ui: session middleware (express-session) must run first')
    return s
  }
  return {
    get: (key) => current()[key],
    set: (key, value) => {
      const s = current()
      if (value === undefined) delete s[key]
      else s[key] = value
    },
    regenerate: () => new Promise<void>((ok, ko) => current().regenerate((e) => (e ? ko(e) : ok()))),
    destroy: () =>
      new Promise<void>((ok, ko) => {
        const s = (req as unknown as { session?: SessionLike }).session
        if (!s) return ok()
        s.destroy((e) => (e ? ko(e) : ok()))
      }),
  }
}

/**
 * The recovery-code pages as an Express router. Mount it at `options.basePath` (default: the site
 * root) after the session middleware; paths it does not know fall through to `next()`.
 *
 * @example
 * ```ts
 * app.use(session({ secret, resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax' } }))
 * app.use(recoveryCodesPages(rc, {
 *   session: ({ req }) => expressSession(req),
 *   getClientKey: ({ req }) => req.ip,
 *   signInWithPassword: users.signIn,
 *   verifyPassword: users.verify,
 * }))
 * ```
 */
export function recoveryCodesPages(
  rc: RecoveryCodes,
  hooks: PagesHooks<ExpressPagesContext>,
  options: PagesOptions = {},
): Router {
  const handler = createPagesHandler(rc, hooks, options)
  const router = express.Router()
  const base = (options.basePath ?? '').replace(/\/+$/, '')
  const form = express.raw({ type: 'application/x-www-form-urlencoded', limit: handler.bodyLimit })

  async function serve(
    req: Request,
    res: Response,
    next: NextFunction,
    bodyError?: 'too-large' | 'unreadable',
  ) {
    const path = req.path
    if (base && !path.startsWith(`${base}/`) && path !== base) return next()
    const rel = path.slice(base.length) || '/'
    const isForm = req.is('application/x-www-form-urlencoded') === 'application/x-www-form-urlencoded'
    const body: unknown = req.body
    const formData =
      req.method === 'POST' && isForm && !bodyError && Buffer.isBuffer(body)
        ? new URLSearchParams(body.toString('utf8'))
        : null
    const out = await handler.handle(
      {
        method: req.method,
        path: rel,
        query: new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : ''),
        form: formData,
        ...(bodyError
          ? { bodyError }
          : req.method === 'POST' && !isForm
            ? { bodyError: 'unsupported' as const }
            : {}),
        header: (name) => req.get(name),
        origin: `${req.protocol}://${req.host}`,
      },
      { req, res },
    )
    if (out === null) return next()
    res.status(out.status).set(out.headers)
    res.end(typeof out.body === 'string' ? out.body : Buffer.from(out.body))
  }

  router.use(form, (req, res, next) => {
    serve(req, res, next).catch(next)
  })
  router.use((err: { type?: unknown }, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent || typeof err?.type !== 'string') return next(err)
    serve(req, res, next, err.type === 'entity.too.large' ? 'too-large' : 'unreadable').catch(next)
  })
  return router
}

export { expressSession as session }
