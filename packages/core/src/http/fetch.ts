/**
 * The neutral handler as a web-standard `(Request) => Promise<Response>`, for runtimes and
 * frameworks that speak the Fetch API: Next.js route handlers, Bun.serve, Deno.serve, Cloudflare
 * Workers. Web globals only (`Request`, `Response`, `Headers`, `URL`).
 */
import { ERROR_HTTP_STATUS, RecoveryCodesError } from '../errors.ts'
import type { RecoveryCodes } from '../service/create.ts'
import { createHttpHandler } from './handler.ts'
import type { HttpContext, HttpHandlerOptions, HttpHooks, HttpResponse } from './types.ts'
import { jsonResponse, readLimitedBody } from './wire.ts'

/**
 * What the hooks receive: the `Request`, the second argument the runtime passed (`platform`:
 * Bun's `Server`, Deno's `ServeHandlerInfo`, a Next.js route context, a Worker's `env`), plus
 * the adapter-neutral helpers. Headers appended with `appendResponseHeader` (e.g. `Set-Cookie`)
 * are added to the `Response`.
 */
export interface FetchRecoveryContext<P = unknown> extends HttpContext {
  request: Request
  platform: P | undefined
}

/** Options of {@link createFetchHandler}: those of the neutral handler, plus `basePath`. */
export interface FetchHandlerOptions extends HttpHandlerOptions {
  /**
   * The path prefix the API is served under, as it appears in `request.url` (e.g.
   * `/api/recovery`); it is stripped before routing and reported as the mount path. A request
   * outside it gets the same `404 ROUTE_NOT_FOUND` JSON as an unknown route. @default '' (the root)
   */
  basePath?: string
}

/**
 * A fetch handler. Callable as is (`Deno.serve(handler)`, `{ fetch: handler }`), and also as
 * `GET` and `POST`, so a Next.js route file can `export const { GET, POST } = handler`.
 */
export interface FetchHandler<P = unknown> {
  (request: Request, platform?: P): Promise<Response>
  readonly GET: (request: Request, platform?: P) => Promise<Response>
  readonly POST: (request: Request, platform?: P) => Promise<Response>
}

/** Responses that must not carry a body (`new Response` throws otherwise). */
const NULL_BODY = new Set([101, 103, 204, 205, 304])

/**
 * The recovery-codes JSON API as a Fetch API handler. Nothing about sessions is assumed: pass
 * every hook (see {@link HttpHooks}). Fetch runtimes report no client address on the `Request`:
 * take it from `platform` in `getClientKey` (Bun `server.requestIP(request)`, Deno
 * `info.remoteAddr`, Workers `CF-Connecting-IP`), never from a raw `X-Forwarded-For`. The
 * same-origin check uses the origin of `request.url`; behind a proxy that rewrites the host, list
 * the public origin in `allowedOrigins`.
 *
 * @example Next.js (app/api/recovery/[...path]/route.ts)
 * ```ts
 * import { createFetchHandler } from '@recovery-codes/core'
 * import { rc, hooks } from '@/lib/recovery-codes'
 *
 * export const { GET, POST } = createFetchHandler(rc, hooks, { basePath: '/api/recovery' })
 * ```
 *
 * @example Bun
 * ```ts
 * const handler = createFetchHandler<Server>(rc, {
 *   ...hooks,
 *   getClientKey: ({ request, platform }) => platform?.requestIP(request)?.address,
 * }, { basePath: '/recovery' })
 * Bun.serve({ fetch: (request, server) => handler(request, server) })
 * ```
 *
 * @example Deno
 * ```ts
 * const handler = createFetchHandler<Deno.ServeHandlerInfo<Deno.NetAddr>>(rc, {
 *   ...hooks,
 *   getClientKey: ({ platform }) => platform?.remoteAddr.hostname,
 * }, { basePath: '/recovery' })
 * Deno.serve(handler)
 * ```
 *
 * @example Cloudflare Workers (Cloudflare sets `CF-Connecting-IP`; clients cannot)
 * ```ts
 * const handler = createFetchHandler<Env>(rc, { ...hooks, getClientKey: ({ header }) => header('cf-connecting-ip') })
 * export default { fetch: (request: Request, env: Env) => handler(request, env) }
 * ```
 */
export function createFetchHandler<P = unknown>(
  rc: RecoveryCodes,
  hooks: HttpHooks<FetchRecoveryContext<P>>,
  options: FetchHandlerOptions = {},
): FetchHandler<P> {
  const basePath = (options.basePath ?? '').replace(/\/+$/, '')
  if (basePath !== '' && !basePath.startsWith('/')) {
    throw new RecoveryCodesError('CONFIG_INVALID', 'basePath must start with "/"', {
      issues: [{ path: 'basePath', message: 'must start with "/"' }],
    })
  }
  const handler = createHttpHandler(rc, hooks, options)
  const notFound = () =>
    jsonResponse(
      ERROR_HTTP_STATUS.ROUTE_NOT_FOUND,
      new RecoveryCodesError('ROUTE_NOT_FOUND', 'No such route.').toJSON(),
    )

  async function handle(request: Request, platform?: P): Promise<Response> {
    const url = new URL(request.url)
    const inside = url.pathname === basePath || url.pathname.startsWith(`${basePath}/`)
    const appended = new Headers()
    const ctx: FetchRecoveryContext<P> = {
      request,
      platform,
      header: (name) => request.headers.get(name) ?? undefined,
      appendResponseHeader: (name, value) => appended.append(name, value),
    }
    let out: HttpResponse
    if (!inside) out = notFound()
    else {
      const read =
        request.method !== 'POST'
          ? null
          : request.bodyUsed
            ? ({ ok: false, reason: 'unreadable' } as const)
            : await readLimitedBody(
                request.body,
                handler.bodyLimit,
                request.headers.get('content-length') ?? undefined,
              )
      out = await handler.handle(
        {
          method: request.method,
          path: url.pathname.slice(basePath.length) || '/',
          headers: ctx.header,
          query: url.searchParams,
          origin: url.origin,
          mountPath: basePath,
          ...(read === null ? {} : read.ok ? { rawBody: read.bytes } : { bodyError: read.reason }),
        },
        ctx,
      )
    }
    // As in the other adapters, core's headers win over a hook's of the same name; Set-Cookie adds up.
    for (const [name, value] of Object.entries(out.headers)) appended.set(name, value)
    const body = typeof out.body === 'string' ? out.body : new Uint8Array(out.body)
    return new Response(NULL_BODY.has(out.status) ? null : body, { status: out.status, headers: appended })
  }

  return Object.assign(handle, { GET: handle, POST: handle })
}
