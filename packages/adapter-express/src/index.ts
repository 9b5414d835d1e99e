/**
 * `@recovery-codes/express`: the recovery-codes JSON API as an Express 5 router. It only
 * translates `req`/`res` to and from the neutral handler of `@recovery-codes/core`.
 */
import {
  createHttpHandler,
  type HttpContext,
  type HttpHandlerOptions,
  type HttpHooks,
  type HttpRequest,
  type RecoveryCodes,
} from '@recovery-codes/core'
import express, { type Request, type Response, type Router } from 'express'

/** What the hooks receive: Express's `req` and `res` plus the adapter-neutral helpers. */
export interface ExpressRecoveryContext extends HttpContext {
  req: Request
  res: Response
}

/** Options of {@link recoveryCodesRouter}: those of the neutral handler. */
export type ExpressRecoveryOptions = HttpHandlerOptions

/**
 * The recovery-codes API as an Express 5 `Router`. Mount it before any global body parser (it
 * reads the body itself, within `bodyLimit`); session middleware must run first.
 *
 * @example
 * ```ts
 * app.use(session({ ... }))
 * app.use('/recovery', recoveryCodesRouter(rc, {
 *   getUserId: ({ req }) => req.session.userId ?? null,
 *   getClientKey: ({ req }) => req.ip, // honours `app.set('trust proxy', …)`
 *   // …
 * }))
 * ```
 */
export function recoveryCodesRouter(
  rc: RecoveryCodes,
  hooks: HttpHooks<ExpressRecoveryContext>,
  options: ExpressRecoveryOptions = {},
): Router {
  const handler = createHttpHandler(rc, hooks, options)
  const router = express.Router()
  const raw = express.raw({ type: () => true, limit: handler.bodyLimit })

  async function serve(req: Request, res: Response, extra: Partial<HttpRequest>): Promise<void> {
    const ctx: ExpressRecoveryContext = {
      req,
      res,
      header: (name) => req.get(name),
      appendResponseHeader: (name, value) => void res.append(name, value),
    }
    const body: unknown = req.body
    const out = await handler.handle(
      {
        method: req.method,
        path: req.path,
        headers: (name) => req.get(name),
        query: new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : ''),
        origin: `${req.protocol}://${req.host}`,
        ...(body instanceof Uint8Array ? { rawBody: body } : body === undefined ? {} : { body }),
        ...extra,
      },
      ctx,
    )
    res
      .status(out.status)
      .set(out.headers)
      .end(typeof out.body === 'string' ? out.body : Buffer.from(out.body))
  }

  router.use(raw, (req, res, next) => serve(req, res, {}).catch(next))
  // Body-parser errors (over the limit, aborted, bad encoding) go to core, which picks the status.
  router.use((err: { type?: unknown }, req: Request, res: Response, next: (e?: unknown) => void) => {
    if (res.headersSent || typeof err?.type !== 'string') return next(err)
    serve(req, res, { bodyError: err.type === 'entity.too.large' ? 'too-large' : 'unreadable' }).catch(next)
  })
  return router
}
