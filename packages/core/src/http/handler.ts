/**
 * The framework-neutral HTTP handler: routing, wire checks, validation, hooks and the mapping of
 * outcomes to responses. Statuses come only from {@link ERROR_HTTP_STATUS}; adapters copy the
 * response through.
 */
import { bytesToHex } from '@noble/hashes/utils.js'
import type { z } from 'zod'
import { ERROR_HTTP_STATUS, RecoveryCodesError, type RecoveryCodesErrorCode } from '../errors.ts'
import type { Logger } from '../ports/logger.ts'
import { systemRandom } from '../runtime.ts'
import type { RecoveryCodes } from '../service/create.ts'
import type { CodeFailure, RedeemResult } from '../service/types.ts'
import { buildOpenApiDocument } from './openapi.ts'
import { ROUTE_SPECS, type RouteSpec } from './routes.ts'
import { type RequestSchemas, requestSchemas } from './schemas.ts'
import type {
  HttpContext,
  HttpHandler,
  HttpHandlerOptions,
  HttpHooks,
  HttpRequest,
  HttpResponse,
  HttpRouteInfo,
} from './types.ts'
import {
  byteLength,
  DEFAULT_BODY_LIMIT,
  isCrossOrigin,
  isJsonMediaType,
  jsonResponse,
  maskEmail,
  parseJsonBody,
  queryObject,
  retryAfterSeconds,
  SECURITY_HEADERS,
  safeFilename,
} from './wire.ts'

/** What an operation receives after the common checks. */
interface Call<Ctx> {
  ctx: Ctx
  request: HttpRequest
  /** The validated body or query. */
  input: Record<string, unknown>
  /** The authenticated user (`auth: 'user'`) or the pending one (`auth: 'pending'`); '' for `none`. */
  userId: string
  clientKey: string
}

type Operation<Ctx> = (call: Call<Ctx>) => Promise<HttpResponse>

/**
 * The message of every failed redeem. One constant, so status, body and headers are identical
 * whatever the reason (unknown identifier, wrong, used, expired, invalidated code, lockout).
 */
const INVALID_CODE_MESSAGE = 'The recovery code is not valid.'

/** A mount path as given by an adapter (`/account/recovery`), or '' for none or the root. */
function normalizeMount(path: string | undefined): string {
  if (!path) return ''
  const trimmed = path.replace(/\/+$/, '')
  return trimmed.startsWith('/') && trimmed.length <= 512 ? trimmed : ''
}

const fail = (code: RecoveryCodesErrorCode, message: string, retryAfterMs?: number) =>
  new RecoveryCodesError(code, message, retryAfterMs === undefined ? {} : { retryAfterMs })

/**
 * Creates the framework-neutral handler. Adapters (`@recovery-codes/express`,
 * `@recovery-codes/hono`) wrap it; use it directly for any other framework.
 *
 * Security behaviour (see the adapters' READMEs): every response carries `Cache-Control: no-store`,
 * `nosniff` and `Referrer-Policy: no-referrer`; POSTs need `application/json`, a body within
 * `bodyLimit` and a same-origin (or allowed) `Origin`/`Sec-Fetch-Site`; every failed redeem or
 * login is the same `401 INVALID_CODE`, lockouts included (no `Retry-After` there, by design:
 * telling a lockout apart would tell which identifiers are being attacked); a successful
 * recovery login discards the reveal slot and regenerates the session before logging in.
 *
 * @example
 * ```ts
 * const handler = createHttpHandler(rc, hooks, { bodyLimit: 8192 })
 * const res = await handler.handle({ method: 'GET', path: '/status', headers, query }, ctx)
 * ```
 */
export function createHttpHandler<Ctx = HttpContext>(
  rc: RecoveryCodes,
  hooks: HttpHooks<Ctx>,
  options: HttpHandlerOptions = {},
): HttpHandler<Ctx> {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT
  if (!Number.isSafeInteger(bodyLimit) || bodyLimit < 64 || bodyLimit > 1_048_576) {
    throw new RecoveryCodesError('CONFIG_INVALID', 'bodyLimit must be an integer from 64 to 1048576', {
      issues: [{ path: 'bodyLimit', message: 'must be an integer from 64 to 1048576' }],
    })
  }
  const random = options.random ?? systemRandom
  const logger: Logger | null = options.logger ?? rc.config.logger ?? null
  const allowedOrigins = Object.freeze([...(hooks.allowedOrigins ?? [])])
  const schemas = requestSchemas({ maxBatchSize: rc.config.maxBatchSize })
  const loginEnabled = rc.config.loginMode === 'identifier-and-code'
  // "This wasn't me" links exist only when this service sends notifications.
  const repudiationEnabled = rc.config.notifications != null
  const specs = ROUTE_SPECS.filter(
    (r) =>
      (r.operationId !== 'login' || loginEnabled) && (!r.path.startsWith('/repudiate') || repudiationEnabled),
  )
  const table = new Map(specs.map((r) => [`${r.method} ${r.path}`, r]))
  const title = options.title ?? 'recovery-codes'
  const openapiFor = (mountPath: string | undefined) =>
    Object.freeze(buildOpenApiDocument(specs, schemas, { title, ...(mountPath ? { mountPath } : {}) }))
  const openapi = openapiFor(options.mountPath)
  // One serialised document per concrete mount path the adapters report (a handful; bounded).
  const openapiBodies = new Map<string, string>()
  function openapiBody(request: HttpRequest): string {
    const mount = options.mountPath ?? normalizeMount(request.mountPath)
    let body = openapiBodies.get(mount)
    if (body === undefined) {
      body = JSON.stringify(mount === (options.mountPath ?? '') ? openapi : openapiFor(mount))
      if (openapiBodies.size < 64) openapiBodies.set(mount, body)
    }
    return body
  }

  const json = (status: number, value: unknown) => jsonResponse(status, value)
  const reveal = async (ctx: Ctx) => (await hooks.getRevealToken(ctx)) ?? ''

  async function completeLogin(ctx: Ctx, result: Extract<RedeemResult, { ok: true }>): Promise<HttpResponse> {
    // R-SES-1 / R-PT-3: the old session and its reveal slot die before the user is logged in.
    await rc.discardReveal({ reveal: await hooks.getRevealToken(ctx) })
    await hooks.regenerateSession(ctx)
    await hooks.setRevealToken(ctx, null)
    await hooks.logIn(ctx, result.userId)
    // `replaceOnUse`: the replacement code waits in its own reveal slot, kept in the new session
    // like a new batch's (`/codes/view` shows it once); the code itself never travels here.
    if (result.replacement) await hooks.setRevealToken(ctx, result.replacement.reveal)
    await hooks.onRecoveryLogin?.(ctx, result.userId)
    return json(200, {
      remaining: result.remaining,
      lowCodes: result.lowCodes,
      shouldRegenerate: result.shouldRegenerate,
      method: result.method,
      mustBindFactor: result.mustBindFactor,
      ...(result.replacement ? { replacement: { revealExpiresAt: result.replacement.revealExpiresAt } } : {}),
    })
  }

  /** A refused "This wasn't me" link: `used` is 409, a forged, garbled or expired one 400. */
  function repudiationFailure(reason: 'invalid' | 'expired' | 'used'): never {
    if (reason === 'used') throw fail('ALREADY_DONE', 'This link has already been used.')
    throw new RecoveryCodesError(
      'INVALID_INPUT',
      reason === 'expired' ? 'This link has expired.' : 'This link is not valid.',
      { issues: [{ path: 'token', message: reason }] },
    )
  }

  /**
   * Whether generating would replace a batch (then it needs a fresh re-authentication). Read from
   * the store, not through the service's cached status: a cache is never authoritative (R-CACHE-1).
   */
  async function hasActiveBatch(userId: string): Promise<boolean> {
    try {
      return (await rc.config.store.getActiveBatch(userId)) !== null
    } catch (error) {
      throw new RecoveryCodesError(
        'STORE_UNAVAILABLE',
        'The recovery-code store is unavailable; the request was denied.',
        {
          cause: error,
        },
      )
    }
  }

  /** Authenticated code actions may say "locked" (429): the limiter key is the user's own. */
  function codeFailure(r: CodeFailure, code: 'INVALID_CODE' | 'NOT_FOUND'): never {
    if (r.retryAfterMs > 0) throw fail('RATE_LIMITED', 'Too many attempts. Try again later.', r.retryAfterMs)
    throw code === 'NOT_FOUND'
      ? fail('NOT_FOUND', 'No such code in your active batch.')
      : fail('INVALID_CODE', INVALID_CODE_MESSAGE)
  }

  const operations: Record<string, Operation<Ctx>> = {
    async generate({ ctx, input, userId, clientKey }) {
      if ((await hasActiveBatch(userId)) && !(await hooks.isFreshlyAuthenticated(ctx))) throw reauth()
      const r = await rc.generate({
        userId,
        clientKey,
        ...(input.count === undefined ? {} : { count: input.count as number }),
        // `null` from a request means the configured default: users never override the host's policy.
        ...(input.expiresInDays == null ? {} : { expiresInDays: input.expiresInDays as number }),
      })
      if (!r.ok)
        throw fail('COOLDOWN_ACTIVE', 'New codes were generated recently. Try again later.', r.retryAfterMs)
      await hooks.setRevealToken(ctx, r.reveal)
      return json(201, {
        batchId: r.batchId,
        count: r.codes.length,
        createdAt: r.createdAt,
        expiresAt: r.expiresAt,
        revealExpiresAt: r.revealExpiresAt,
        pending: r.pending,
      })
    },
    async confirm({ ctx, input, userId, clientKey }) {
      const token = typeof input.reveal === 'string' ? input.reveal : await reveal(ctx)
      const r = await rc.confirm({ userId, reveal: token, clientKey })
      return json(200, { batchId: r.batchId, supersededBatchId: r.supersededBatchId })
    },
    async inspectRepudiation({ input }) {
      const r = await rc.inspectRepudiation({ token: input.token })
      if (!r.ok) repudiationFailure(r.reason)
      return json(200, { kind: r.kind, expiresAt: r.expiresAt })
    },
    async repudiate({ input, clientKey }) {
      const r = await rc.repudiate({ token: input.token, clientKey })
      if (!r.ok) repudiationFailure(r.reason)
      return json(200, {
        revoked: true,
        batchDisabled: r.batchDisabled,
        contact: rc.config.notifications?.contact ?? null,
      })
    },
    status: async ({ userId }) => json(200, await rc.status({ userId })),
    history: async ({ input, userId }) =>
      json(200, await rc.history({ userId, page: input.page === undefined ? 1 : Number(input.page) })),
    async viewCodes({ ctx, userId }) {
      const r = await rc.viewCodes({ userId, reveal: await reveal(ctx) })
      return json(200, { batchId: r.batchId, codes: r.codes })
    },
    async download({ ctx, input, userId, clientKey }) {
      const file = await rc.exportCodes({
        userId,
        clientKey,
        reveal: await reveal(ctx),
        ...(input.format === undefined ? {} : { format: input.format as 'txt' | 'csv' | 'pdf' }),
      })
      return {
        status: 200,
        headers: {
          ...SECURITY_HEADERS,
          'Content-Type': file.contentType,
          'Content-Disposition': `attachment; filename="${safeFilename(file.filename)}"`,
        },
        body: file.body,
      }
    },
    async email({ ctx, userId, clientKey }) {
      const r = await rc.emailCodes({ userId, clientKey, reveal: await reveal(ctx) })
      return json(200, { sent: true, sentTo: maskEmail(r.sentTo), message: rc.config.email.successMessage })
    },
    async verifySetup({ input, userId, clientKey }) {
      const r = await rc.verifySetup({ userId, clientKey, code: input.code as string })
      if (!r.ok) codeFailure(r, 'INVALID_CODE')
      return json(200, { batchId: r.batchId, verified: true })
    },
    async invalidateCode({ input, userId, clientKey }) {
      const r = await rc.invalidateCode({ userId, clientKey, code: input.code as string })
      if (!r.ok) codeFailure(r, 'NOT_FOUND')
      return json(200, { batchId: r.batchId })
    },
    async deleteCode({ input, userId, clientKey }) {
      const r = await rc.deleteCode({ userId, clientKey, code: input.code as string })
      if (!r.ok) codeFailure(r, 'NOT_FOUND')
      return json(200, { batchId: r.batchId })
    },
    async deleteBatch({ ctx, userId, clientKey }) {
      const r = await rc.deleteBatch({ userId, clientKey })
      await hooks.setRevealToken(ctx, null)
      return json(200, { batchId: r.batchId })
    },
    async redeem({ ctx, input, userId, clientKey }) {
      const r = await rc.redeem({ userId, clientKey, code: input.code as string })
      return r.ok ? completeLogin(ctx, r) : invalidCode()
    },
    async login({ ctx, input, clientKey }) {
      const r = await rc.redeem({
        identifier: input.identifier as string,
        clientKey,
        code: input.code as string,
      })
      return r.ok ? completeLogin(ctx, r) : invalidCode()
    },
    openapi: async ({ request }) => ({
      status: 200,
      headers: { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8' },
      body: openapiBody(request),
    }),
  }

  function readBody(request: HttpRequest): unknown {
    const size = request.rawBody === undefined ? (request.rawBodyLength ?? 0) : byteLength(request.rawBody)
    if (request.bodyError === 'too-large' || size > bodyLimit) {
      throw fail('PAYLOAD_TOO_LARGE', `The request body exceeds ${bodyLimit} bytes.`)
    }
    if (!isJsonMediaType(request.contentType ?? request.headers('content-type'))) {
      throw fail('UNSUPPORTED_MEDIA_TYPE', 'The request body must be application/json.')
    }
    if (request.bodyError === 'unreadable') throw fail('INVALID_INPUT', 'The request body could not be read.')
    if (request.rawBody === undefined) return request.body === undefined ? {} : request.body
    const parsed = parseJsonBody(request.rawBody)
    if (!parsed.ok) throw fail('INVALID_INPUT', 'The request body is not valid JSON.')
    return parsed.value
  }

  function validate(schema: z.ZodType, value: unknown): Record<string, unknown> {
    const r = schema.safeParse(value)
    if (r.success) return r.data as Record<string, unknown>
    // Messages are ours: nothing from the input (values, unknown key names) is echoed back.
    const issues = r.error.issues.slice(0, 10).map((i) => ({
      path: i.path
        .filter((p) => typeof p === 'string' || typeof p === 'number')
        .join('.')
        .slice(0, 64),
      message:
        i.code === 'unrecognized_keys'
          ? 'unknown field'
          : i.code === 'invalid_type'
            ? 'wrong type'
            : i.code === 'too_big'
              ? 'too long or too large'
              : i.code === 'too_small'
                ? 'too short or too small'
                : 'invalid value',
    }))
    throw new RecoveryCodesError('INVALID_INPUT', 'The request is not valid.', { issues })
  }

  async function dispatch(request: HttpRequest, ctx: Ctx, route: RouteSpec): Promise<HttpResponse> {
    let raw: unknown = queryObject(request.query)
    if (route.method === 'POST') {
      if (isCrossOrigin(request, allowedOrigins)) throw fail('CSRF_REJECTED', 'Cross-site request rejected.')
      raw = readBody(request)
    }
    let userId = ''
    if (route.auth !== 'none') {
      const id = route.auth === 'user' ? await hooks.getUserId(ctx) : await hooks.getPendingUserId(ctx)
      if (typeof id !== 'string' || id.length === 0) throw fail('UNAUTHENTICATED', 'Authentication required.')
      userId = id
    }
    const schema = schemas[(route.method === 'POST' ? route.body : route.query) as keyof RequestSchemas]
    const input = validate(schema, raw)
    if (route.fresh === 'always' && !(await hooks.isFreshlyAuthenticated(ctx))) throw reauth()
    const key = route.auth === 'none' && route.operationId === 'openapi' ? '' : await hooks.getClientKey(ctx)
    const clientKey = typeof key === 'string' && key.length > 0 ? key : 'unknown'
    return operations[route.operationId]!({ ctx, request, input, userId, clientKey })
  }

  function errorResponse(error: unknown, operationId: string): HttpResponse {
    if (error instanceof RecoveryCodesError && error.code !== 'INTERNAL') {
      const status = ERROR_HTTP_STATUS[error.code]
      const body = error.toJSON()
      if (status >= 500) {
        const correlationId = newCorrelationId()
        log(error, operationId, correlationId)
        return jsonResponse(status, { error: { ...body.error, correlationId } })
      }
      return jsonResponse(
        status,
        body,
        status === 429 ? { 'Retry-After': retryAfterSeconds(error.retryAfterMs ?? 1000) } : undefined,
      )
    }
    const correlationId = newCorrelationId()
    log(error, operationId, correlationId)
    return jsonResponse(ERROR_HTTP_STATUS.INTERNAL, {
      error: { code: 'INTERNAL', message: 'An unexpected error occurred.', correlationId },
    })
  }

  function newCorrelationId(): string {
    const bytes = new Uint8Array(8)
    random.read(bytes)
    return bytesToHex(bytes)
  }

  function log(error: unknown, operationId: string, correlationId: string): void {
    // Name and code only: messages of foreign errors may carry request data or secrets.
    const name =
      error instanceof RecoveryCodesError ? error.code : error instanceof Error ? error.name : typeof error
    try {
      logger?.error('recovery-codes: request failed', {
        correlationId,
        operationId,
        error: name.slice(0, 64),
      })
      options.onError?.(error, { correlationId, operationId })
    } catch {
      // A failing logger must not turn an error response into a crash.
    }
  }

  return Object.freeze({
    routes: Object.freeze(
      specs.map(
        (r): HttpRouteInfo =>
          Object.freeze({
            method: r.method,
            path: r.path,
            operationId: r.operationId,
            summary: r.summary,
            auth: r.auth,
            fresh: r.fresh,
          }),
      ),
    ),
    openapi,
    bodyLimit,
    async handle(request: HttpRequest, ctx: Ctx): Promise<HttpResponse> {
      const method = request.method.toUpperCase()
      const route = table.get(`${method} ${request.path}`)
      if (!route) {
        const allowed = specs.filter((r) => r.path === request.path).map((r) => r.method)
        if (allowed.length === 0)
          return jsonResponse(
            ERROR_HTTP_STATUS.ROUTE_NOT_FOUND,
            fail('ROUTE_NOT_FOUND', 'No such route.').toJSON(),
          )
        return jsonResponse(
          ERROR_HTTP_STATUS.METHOD_NOT_ALLOWED,
          fail('METHOD_NOT_ALLOWED', 'Method not allowed.').toJSON(),
          {
            Allow: allowed.join(', '),
          },
        )
      }
      try {
        return await dispatch(request, ctx, route)
      } catch (error) {
        return errorResponse(error, route.operationId)
      }
    },
  })
}

function reauth(): RecoveryCodesError {
  return fail('REAUTH_REQUIRED', 'Please re-authenticate to continue.')
}

/** The one response of every failed redeem and login. */
function invalidCode(): HttpResponse {
  return jsonResponse(ERROR_HTTP_STATUS.INVALID_CODE, fail('INVALID_CODE', INVALID_CODE_MESSAGE).toJSON())
}
