/**
 * The Express pieces the JSON router and the pages share: the express-session bridge, the
 * mounted sub-app that checks for a session middleware at start-up, and body/URL helpers.
 */
import { callbackSession, type HostSession, RecoveryCodesError } from '@recovery-codes/core'
import express, { type ErrorRequestHandler, type Express, type Request, type Router } from 'express'

/** The session middleware the defaults read (`req.session`). */
const SESSION_MIDDLEWARE = 'express-session'

/**
 * Bridges `req.session` of express-session to a {@link HostSession}. It reads `req.session`
 * lazily, because `regenerate()` replaces it.
 */
export function expressSession(req: Request): HostSession {
  return callbackSession(() => (req as { session?: unknown }).session, SESSION_MIDDLEWARE)
}

interface LayerLike {
  name?: string
}
interface AppLike {
  router?: { stack?: readonly LayerLike[] }
  parent?: AppLike
  use?: (path: unknown, handler: ErrorRequestHandler) => unknown
}

/**
 * Wraps `router` in a sub-app, so it learns where it is mounted: `app.use(path, it)` emits
 * `mount`, and when `requireSession` is set and no express-session middleware was mounted
 * before it (on that app or an app above), the `app.use` call throws, naming what is missing,
 * instead of every request failing later. The sub-app inherits every setting of its parent
 * (`trust proxy`, `x-powered-by`, …). Mounted inside a plain `Router`, no `mount` event fires;
 * the first request without `req.session` then fails with the same message.
 *
 * Express never hands a mounted app an error raised before it (the mount layer takes no error),
 * so a host's global body parser that rejects a body on our path would answer with its own error
 * page (HTML, with a stack trace outside production). `parentErrors`, when given, is added to the
 * parent at the same path right after the mount layer, so it sees those errors.
 */
export function mountable(
  router: Router,
  requireSession: boolean,
  what: string,
  parentErrors?: ErrorRequestHandler,
): Express {
  const app = express()
  app.use(router)
  app.on('mount', (parent: AppLike) => {
    // Express gave the sub-app its own defaults; drop them so the parent's settings show through.
    for (const key of Object.keys(app.settings)) delete app.settings[key]
    if (requireSession && !hasSessionBefore(parent)) {
      throw new RecoveryCodesError(
        'CONFIG_INVALID',
        `${what}: no session middleware is mounted before it. Add app.use(session({ … })) from ${SESSION_MIDDLEWARE} first, or pass a \`session\` hook.`,
      )
    }
    if (parentErrors) parent.use?.(app.mountpath, parentErrors)
  })
  return app
}

function hasSessionBefore(app: AppLike | undefined): boolean {
  for (let a = app; a; a = a.parent) {
    if (a.router?.stack?.some((layer) => layer.name === 'session')) return true
  }
  return false
}

/** The query string of `req`, parsed. */
export function queryOf(req: Request): URLSearchParams {
  const i = req.url.indexOf('?')
  return new URLSearchParams(i === -1 ? '' : req.url.slice(i + 1))
}

/** `scheme://host[:port]` as Express sees it (honours `trust proxy`). */
export function originOf(req: Request): string {
  return `${req.protocol}://${req.host}`
}

/**
 * A body-parser error as core's body error: every 413 of a parser (`entity.too.large`,
 * `parameters.too.many`, ours or a host's global one) is too large, anything else unreadable.
 */
export function bodyErrorOf(err: { type?: unknown; status?: unknown }): 'too-large' | 'unreadable' {
  return err.type === 'entity.too.large' || err.status === 413 ? 'too-large' : 'unreadable'
}
