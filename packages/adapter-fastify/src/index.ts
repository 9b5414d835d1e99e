/**
 * `@recovery-codes/fastify`: the recovery-codes JSON API as a Fastify 5 plugin. It only
 * translates the request and reply to and from the neutral handler of `@recovery-codes/core`.
 */
import {
  type BodyReadError,
  callbackSession,
  createHttpHandler,
  type HostSession,
  type HttpContext,
  type HttpHandlerOptions,
  type HttpHooks,
  missingSession,
  type RecoveryCodes,
  type SessionHooksOptions,
  withSessionDefaults,
} from '@recovery-codes/core'
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'

/** What the hooks receive: Fastify's `request` and `reply` plus the adapter-neutral helpers. */
export interface FastifyRecoveryContext extends HttpContext {
  request: FastifyRequest
  reply: FastifyReply
}

/** Options of {@link recoveryCodesFastify}: those of the neutral handler and of the session defaults. */
export interface FastifyRecoveryOptions extends HttpHandlerOptions, SessionHooksOptions {
  /** The session the default hooks use. @default @fastify/session's `request.session` ({@link fastifyHostSession}) */
  session?: (ctx: FastifyRecoveryContext) => HostSession
}

const SESSION_PLUGIN = '@fastify/session'
/** Bridges @fastify/session's `request.session` (read on each access: `regenerate()` replaces it). */
export function fastifyHostSession(request: FastifyRequest): HostSession {
  return callbackSession(() => (request as { session?: unknown }).session, SESSION_PLUGIN)
}

/**
 * The recovery-codes JSON API as an encapsulated Fastify plugin, for `app.register(…, { prefix })`
 * after @fastify/cookie and @fastify/session. With no hooks it keeps its state in
 * `request.session` under `SESSION_KEYS` and limits guesses per `request.ip` (honours
 * `trustProxy`); each hook you pass replaces its default. Without @fastify/session registered
 * first, registration fails, naming it. It reads the body itself within `bodyLimit`, whatever
 * content-type parsers the host has, so every body error gets core's answer.
 *
 * @example
 * ```ts
 * await app.register(fastifyCookie)
 * await app.register(fastifySession, { secret, cookie: { secure: true, sameSite: 'lax' } })
 * await app.register(recoveryCodesFastify(rc), { prefix: '/account/recovery' })
 * ```
 */
export function recoveryCodesFastify(
  rc: RecoveryCodes,
  hooks: Partial<HttpHooks<FastifyRecoveryContext>> = {},
  options: FastifyRecoveryOptions = {},
): FastifyPluginAsync {
  const { hooks: merged, needsSession } = withSessionDefaults<FastifyRecoveryContext>(
    hooks,
    ({ request }) => fastifyHostSession(request),
    ({ request }) => request.ip,
    options,
  )
  const handler = createHttpHandler(rc, merged, options)

  return async (instance) => {
    if (needsSession && !instance.hasRequestDecorator('session')) throw missingSession(SESSION_PLUGIN)
    // Strip as many segments as the prefix has, so `/t/:tenant/recovery` yields its concrete value.
    const depth = instance.prefix.split('/').filter(Boolean).length
    const mountRe = new RegExp(`^(?:/[^/]*){${depth}}`)

    async function serve(request: FastifyRequest, reply: FastifyReply, bodyError?: BodyReadError) {
      const q = request.url.indexOf('?')
      const pathname = q === -1 ? request.url : request.url.slice(0, q)
      const mountPath = mountRe.exec(pathname)?.[0] ?? ''
      const header = (name: string) => {
        const v = request.headers[name.toLowerCase()]
        return Array.isArray(v) ? v.join(', ') : v
      }
      const ctx: FastifyRecoveryContext = {
        request,
        reply,
        header,
        appendResponseHeader: (name, value) => {
          // Fastify appends only Set-Cookie; other names would be replaced.
          const prev = name.toLowerCase() === 'set-cookie' ? undefined : reply.getHeader(name)
          reply.header(name, prev === undefined ? value : [prev, value].flat().map(String))
        },
      }
      const out = await handler.handle(
        {
          method: request.method,
          path: pathname.slice(mountPath.length) || '/',
          headers: header,
          query: new URLSearchParams(q === -1 ? '' : request.url.slice(q + 1)),
          origin: `${request.protocol}://${request.host}`,
          mountPath,
          ...(bodyError
            ? { bodyError }
            : request.body instanceof Uint8Array
              ? { rawBody: request.body }
              : {}),
        },
        ctx,
      )
      // Bytes, so a host reply serializer never re-encodes core's JSON.
      return reply
        .code(out.status)
        .headers(out.headers)
        .send(typeof out.body === 'string' ? Buffer.from(out.body) : out.body)
    }

    // Only this plugin's context: every body arrives as bytes within the limit, for core to parse.
    instance.removeAllContentTypeParsers()
    instance.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: handler.bodyLimit },
      (_r, body, done) => done(null, body),
    )
    // Body-reading errors (over the limit, bad length, bad media type) go to core, which picks the status.
    instance.setErrorHandler((error: FastifyError, request, reply) => {
      if (!error.code?.startsWith('FST_ERR_CTP_')) throw error
      return serve(request, reply, error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'too-large' : 'unreadable')
    })
    instance.all('/', (request, reply) => serve(request, reply))
    instance.all('/*', (request, reply) => serve(request, reply))
  }
}
