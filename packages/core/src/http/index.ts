/**
 * The framework-neutral HTTP layer: {@link createHttpHandler} plus the wire helpers adapters use.
 */
export { createHttpHandler } from './handler.ts'
export { HTTP_MAX_CODE_LENGTH } from './schemas.ts'
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
