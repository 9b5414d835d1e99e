/**
 * `@recovery-codes/express`: the recovery-codes JSON API as an Express 5 router. It only
 * translates `req`/`res` to and from the neutral handler of `@recovery-codes/core`.
 */
import {
  createHttpHandler,
  type HostSession,
  type HttpContext,
  type HttpHandlerOptions,
  type HttpHooks,
  type HttpRequest,
  type RecoveryCodes,
  type SessionHooksOptions,
  withSessionDefaults,
} from '@recovery-codes/core'
import express, { type Express, type Request, type Response } from 'express'
import { bodyErrorOf, expressSession, mountable, originOf, queryOf } from './mount.ts'

export { bodyErrorOf, expressSession, mountable, originOf, queryOf } from './mount.ts'

/** What the hooks receive: Express's `req` and `res` plus the adapter-neutral helpers. */
export interface ExpressRecoveryContext extends HttpContext {
  req: Request
  res: Response
}

/** Options of {@link recoveryCodesRouter}: those of the neutral handler and of the session defaults. */
export interface ExpressRecoveryOptions extends HttpHandlerOptions, SessionHooksOptions {
  /**
   * The session the default hooks read and write. @default express-session's `req.session`
   * (through {@link expressSession})
   */
  session?: (ctx: ExpressRecoveryContext) => HostSession
}

/**
 * The recovery-codes JSON API, to mount with `app.use(path, …)` after express-session. With no
 * hooks it keeps its state in `req.session` under `SESSION_KEYS` (the keys the pages use) and
 * limits guesses per `req.ip` (honours `app.set('trust proxy', …)`); each hook you pass replaces
 * its default. Mark your own password step with `markFirstFactor(expressSession(req), userId,
 * Date.now())`. Without a session middleware mounted first, `app.use` throws, naming it.
 *
 * It works beside global body parsers: a body the host already parsed (`express.json()`) is
 * used as is; otherwise it reads the raw body itself within `bodyLimit`.
 *
 * @example
 * ```ts
 * app.use(session({ secret, resave: false, saveUninitialized: false }))
 * app.use(express.json())
 * app.use('/account/recovery', recoveryCodesRouter(rc))
 * ```
 */
export function recoveryCodesRouter(
  rc: RecoveryCodes,
  hooks: Partial<HttpHooks<ExpressRecoveryContext>> = {},
  options: ExpressRecoveryOptions = {},
): Express {
  const merged = withSessionDefaults<ExpressRecoveryContext>(
    hooks,
    ({ req }) => expressSession(req),
    ({ req }) => req.ip,
    options,
  )
  const handler = createHttpHandler(rc, merged.hooks, options)
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
        query: queryOf(req),
        origin: originOf(req),
        mountPath: req.baseUrl,
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
  // Body-parser errors (over the limit, aborted, bad encoding), ours or a host's global parser's
  // (`mountable` hands those to it too), go to core, which picks the status.
  const bodyErrors = (err: { type?: unknown }, req: Request, res: Response, next: (e?: unknown) => void) => {
    if (res.headersSent || typeof err?.type !== 'string') return next(err)
    serve(req, res, { bodyError: bodyErrorOf(err) }).catch(next)
  }
  router.use(bodyErrors)
  return mountable(router, merged.needsSession, '@recovery-codes/express', bodyErrors)
}
