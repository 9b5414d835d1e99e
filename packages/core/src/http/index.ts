/**
 * The framework-neutral HTTP layer: {@link createHttpHandler} plus the wire helpers adapters use.
 */
export {
  createFetchHandler,
  type FetchHandler,
  type FetchHandlerOptions,
  type FetchRecoveryContext,
} from './fetch.ts'
export { createHttpHandler } from './handler.ts'
export { HTTP_MAX_CODE_LENGTH } from './schemas.ts'
export {
  asHostSession,
  type CallbackSessionLike,
  callbackSession,
  DEFAULT_FRESHNESS_MS,
  DEFAULT_PENDING_TTL_MS,
  type HostSession,
  isHostSession,
  markFirstFactor,
  markSignedIn,
  missingSession,
  SESSION_KEYS,
  type SessionDefaultsOptions,
  type SessionHooksOptions,
  sessionHooks,
  withSessionDefaults,
} from './session.ts'
export type {
  Awaitable,
  BodyReadError,
  HttpContext,
  HttpHandler,
  HttpHandlerOptions,
  HttpHooks,
  HttpRequest,
  HttpResponse,
  HttpRouteInfo,
  RouteAuth,
} from './types.ts'
export {
  DEFAULT_BODY_LIMIT,
  isCrossOrigin,
  type LimitedBody,
  readLimitedBody,
  SECURITY_HEADERS,
  safeFilename,
} from './wire.ts'
