/** The input checks every method of the service shares: ids, the request context, dates. */
import { RecoveryCodesError } from '../errors.ts'
import type { RequestContext } from './types.ts'

/** The user id, or a thrown `INVALID_INPUT`. */
export function requireUserId(userId: unknown): string {
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > 255 || userId.includes('\0')) {
    throw invalidInput('userId', 'must be a non-empty string of at most 255 characters without NUL')
  }
  return userId
}

/** `INVALID_INPUT` naming the field. */
export function invalidInput(path: string, message: string): RecoveryCodesError {
  return new RecoveryCodesError('INVALID_INPUT', `${path} ${message}`, { issues: [{ path, message }] })
}

/**
 * The request context kept for limiter keys and the audit row's source (NIST SP 800-63B-4 §4.1):
 * the client key (at most 256 characters; hashed before it is stored) and the user agent
 * (printable ASCII, at most 256 characters).
 */
export function context(inp: RequestContext | undefined): RequestContext {
  const clientKey =
    typeof inp?.clientKey === 'string' && inp.clientKey.length > 0 ? inp.clientKey.slice(0, 256) : undefined
  const userAgent =
    typeof inp?.userAgent === 'string' ? inp.userAgent.replace(/[^\x20-\x7e]/g, '').slice(0, 256) : ''
  if (!clientKey) return userAgent ? { userAgent } : {}
  return userAgent ? { clientKey, userAgent } : { clientKey }
}

/** An epoch-ms time as an ISO 8601 UTC string. */
export function isoDate(ms: number): string {
  return new Date(ms).toISOString()
}
