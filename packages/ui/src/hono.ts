/** `@recovery-codes/ui/hono`: the pages as a Hono app. */
import { type RecoveryCodes, readLimitedBody } from '@recovery-codes/core'
import { type Context, Hono } from 'hono'
import { createPagesHandler, type PagesHooks, type PagesOptions } from './handler.ts'

/** What the hooks receive. */
export interface HonoPagesContext {
  c: Context
}

/**
 * The recovery-code pages as a Hono app. Mount it with `app.route(options.basePath ?? '/', …)`
 * after your session middleware; unknown paths answer 404 from Hono.
 */
export function recoveryCodesPages(
  rc: RecoveryCodes,
  hooks: PagesHooks<HonoPagesContext>,
  options: PagesOptions = {},
): Hono {
  const handler = createPagesHandler(rc, hooks, options)
  const base = (options.basePath ?? '').replace(/\/+$/, '')
  const app = new Hono()
  app.all('*', async (c, next) => {
    const url = new URL(c.req.url)
    const path = url.pathname
    if (base && !path.startsWith(`${base}/`) && path !== base) return next()
    const isPost = c.req.method === 'POST'
    const isForm =
      (c.req.header('content-type') ?? '').split(';', 1)[0]!.trim().toLowerCase() ===
      'application/x-www-form-urlencoded'
    let form: URLSearchParams | null = null
    let bodyError: 'too-large' | 'unreadable' | 'unsupported' | undefined
    if (isPost && isForm) {
      const read = await readLimitedBody(c.req.raw.body, handler.bodyLimit, c.req.header('content-length'))
      if (read.ok) form = new URLSearchParams(new TextDecoder().decode(read.bytes))
      else bodyError = read.reason
    } else if (isPost) bodyError = 'unsupported'
    const out = await handler.handle(
      {
        method: c.req.method,
        path: path.slice(base.length) || '/',
        query: url.searchParams,
        form,
        ...(bodyError ? { bodyError } : {}),
        header: (name) => c.req.header(name),
        origin: url.origin,
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
  return app
}
