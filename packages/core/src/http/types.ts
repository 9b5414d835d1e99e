/**
 * Types of the framework-neutral HTTP handler. Adapters turn their framework's request into an
 * {@link HttpRequest}, build an {@link HttpContext} for the host hooks, call
 * {@link HttpHandler.handle}, and write the {@link HttpResponse} back unchanged.
 */
import type { Logger } from '../ports/logger.ts'
import type { RandomReader } from '../ports/random.ts'
import type { RevealToken } from '../service/types.ts'

/** Why an adapter could not read the request body. Core picks the status. */
export type BodyReadError = 'too-large' | 'unreadable'

/** A request as the neutral handler sees it. */
export interface HttpRequest {
  /** Upper-case HTTP method. */
  method: string
  /** Path relative to the mount point, starting with `/` (e.g. `/generate`); no query string. */
  path: string
  /** Reads a request header, case-insensitively. */
  headers: (name: string) => string | undefined
  /** The query string. */
  query: URLSearchParams
  /**
   * The raw body bytes as read by the adapter (preferred: core parses the JSON, so malformed
   * JSON, wrong media types and sizes get the same answer from every adapter).
   */
  rawBody?: Uint8Array | string
  /** A body the host already parsed (e.g. a global `express.json()`); used when `rawBody` is absent. */
  body?: unknown
  /** Body size in bytes, when known without reading (e.g. after a host parser ran). */
  rawBodyLength?: number
  /** Set when the adapter could not read the body (over the limit, aborted, bad encoding). */
  bodyError?: BodyReadError
  /** The `Content-Type` header; read from `headers` when omitted. */
  contentType?: string
  /**
   * The origin this request was addressed to as the framework sees it (scheme, host and port,
   * e.g. `https://app.example`), honouring the framework's trusted-proxy setting. Used for the
   * same-origin check; falls back to the `Host` header.
   */
  origin?: string
  /**
   * The concrete path the adapter is mounted at (`req.baseUrl` in Express, the route prefix in
   * Hono or Fastify), e.g. `/account/recovery`; '' or absent at the site root. The OpenAPI
   * document served at `/openapi.json` names it in `servers`, so generated clients call the
   * mounted paths. `HttpHandlerOptions.mountPath` overrides it.
   */
  mountPath?: string
}

/** A response for the adapter to write back as is. */
export interface HttpResponse {
  status: number
  headers: Record<string, string>
  body: string | Uint8Array
}

/**
 * The minimum every adapter's context offers, so hooks can be written once for every framework.
 * Adapters add their native objects (`req`/`res` for Express, `c` for Hono).
 */
export interface HttpContext {
  /** Reads a request header, case-insensitively. */
  header(name: string): string | undefined
  /** Appends a header to the response being built (use it for `Set-Cookie`). */
  appendResponseHeader(name: string, value: string): void
}

/** A value or a promise of it. */
export type Awaitable<T> = T | Promise<T>

/**
 * What the host application tells the handler. One object, passed to the adapter factory.
 * Every hook receives the adapter's context (`Ctx`), e.g. `{ req, res }` for Express or `{ c }`
 * for Hono, plus {@link HttpContext}.
 *
 * @example
 * ```ts
 * const hooks: HttpHooks<ExpressRecoveryContext> = {
 *   getUserId: ({ req }) => req.session.userId ?? null,
 *   getPendingUserId: ({ req }) => req.session.pending2faUserId ?? null,
 *   getRevealToken: ({ req }) => req.session.rcReveal ?? null,
 *   setRevealToken: ({ req }, token) => { req.session.rcReveal = token ?? undefined },
 *   regenerateSession: ({ req }) => new Promise((ok, ko) => req.session.regenerate((e) => (e ? ko(e) : ok()))),
 *   logIn: ({ req }, userId) => { req.session.userId = userId },
 *   isFreshlyAuthenticated: ({ req }) => Date.now() - (req.session.authAt ?? 0) < 10 * 60_000,
 *   getClientKey: ({ req }) => req.ip,
 * }
 * ```
 */
export interface HttpHooks<Ctx = HttpContext> {
  /** The authenticated user (full login), or `null`. Every route but `/redeem`, `/login` and `/openapi.json` needs one. */
  getUserId(ctx: Ctx): Awaitable<string | null | undefined>
  /**
   * The user who passed the host's first factor and awaits the second (the host marks this in
   * its session when the password check succeeds), or `null`. `/redeem` needs one.
   */
  getPendingUserId(ctx: Ctx): Awaitable<string | null | undefined>
  /** Reads the reveal token kept in the host session after `/generate`. */
  getRevealToken(ctx: Ctx): Awaitable<RevealToken | null | undefined>
  /** Stores (or, with `null`, forgets) the reveal token in the host session. It holds no code. */
  setRevealToken(ctx: Ctx, token: RevealToken | null): Awaitable<void>
  /**
   * Replaces the session id and drops every pre-authentication datum (R-SES-1): called after a
   * successful recovery login, before {@link HttpHooks.logIn}. Express: `req.session.regenerate`;
   * cookie sessions: issue a new cookie. A cookie valid before must not be valid after.
   */
  regenerateSession(ctx: Ctx): Awaitable<void>
  /** Destroys the session (server side and cookie). Not called by the routes; offered for host logout helpers. */
  destroySession?(ctx: Ctx): Awaitable<void>
  /** Marks `userId` as logged in on the (already regenerated) session. Called after the code was consumed. */
  logIn(ctx: Ctx, userId: string): Awaitable<void>
  /**
   * Whether the user re-authenticated recently enough for a sensitive action (regenerate over an
   * existing batch, email, download, invalidate, delete a code or the batch). R-SES-2.
   */
  isFreshlyAuthenticated(ctx: Ctx): Awaitable<boolean>
  /**
   * The client key for the per-client limiter: the socket address, or the framework's
   * trusted-proxy result (Express `req.ip` with `trust proxy`). Never a raw `X-Forwarded-For`.
   * When it returns nothing, all such clients share the key `unknown` (fail safe, not open).
   */
  getClientKey(ctx: Ctx): Awaitable<string | null | undefined>
  /** Called after a recovery login completed (e.g. revoke the user's other sessions, notify). R-SES-7. */
  onRecoveryLogin?(ctx: Ctx, userId: string): Awaitable<void>
  /**
   * Origins, besides the request's own, allowed to send state-changing requests (exact
   * `scheme://host[:port]` strings). @default []
   */
  allowedOrigins?: readonly string[]
}

/** Options of {@link createHttpHandler}. */
export interface HttpHandlerOptions {
  /** Largest accepted request body in bytes; larger gives 413 `PAYLOAD_TOO_LARGE`. @default 8192 */
  bodyLimit?: number
  /** Where unexpected errors are logged (name, route and correlation id only). @default the service logger */
  logger?: Logger
  /**
   * Receives every unexpected error with its correlation id, for the host's own error tracking.
   * Whatever it does is the host's responsibility: the error may carry request data.
   */
  onError?: (error: unknown, info: { correlationId: string; operationId: string }) => void
  /** Source of correlation ids. @default the platform CSPRNG */
  random?: RandomReader
  /** `info.title` of the OpenAPI document. @default 'recovery-codes' */
  title?: string
  /**
   * The public path the API is mounted at, for the OpenAPI `servers` entry (behind a proxy that
   * rewrites paths). @default the mount path the adapter reports per request
   */
  mountPath?: string
}

/** Who may call a route. */
export type RouteAuth = 'none' | 'user' | 'pending'

/** One route the handler serves. */
export interface HttpRouteInfo {
  method: 'GET' | 'POST'
  /** Path relative to the mount point. */
  path: string
  /** Stable operation id, also used in the OpenAPI document. */
  operationId: string
  summary: string
  auth: RouteAuth
  /** Whether a fresh re-authentication is needed: always, never, or only when a batch exists. */
  fresh: 'always' | 'never' | 'when-batch-exists'
}

/** The neutral handler returned by {@link createHttpHandler}. */
export interface HttpHandler<Ctx = HttpContext> {
  /** Handles one request. Never throws: every failure becomes a JSON error response. */
  handle(request: HttpRequest, ctx: Ctx): Promise<HttpResponse>
  /** Every route served, in the order of the OpenAPI document. */
  readonly routes: readonly HttpRouteInfo[]
  /** The OpenAPI 3.1 document served at `GET /openapi.json`. */
  readonly openapi: Readonly<Record<string, unknown>>
  /** The body limit in force, for adapters that read the body themselves. */
  readonly bodyLimit: number
}
