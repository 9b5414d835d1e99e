import { RecoveryCodesError } from '@recovery-codes/core'
import addressparser from 'nodemailer/lib/addressparser'

const HEADER_BREAKERS = /[\r\n\0]/

/** Longest value accepted in any header-bound field; RFC 5322 lines stay short anyway. */
export const MAX_HEADER_LENGTH = 998

function invalid(path: string, message: string): RecoveryCodesError {
  return new RecoveryCodesError('INVALID_INPUT', `${path} ${message}`, { issues: [{ path, message }] })
}

/**
 * Checks one header-bound field (R-PT-6): a string of at most {@link MAX_HEADER_LENGTH}
 * characters with no CR, LF or NUL. Returns it unchanged.
 *
 * @throws RecoveryCodesError `INVALID_INPUT` naming `path` (never echoing the value).
 */
export function assertHeaderSafe(path: string, value: unknown): string {
  if (typeof value !== 'string') throw invalid(path, 'must be a string')
  if (HEADER_BREAKERS.test(value)) throw invalid(path, 'must not contain CR, LF or NUL')
  if (value.length > MAX_HEADER_LENGTH) throw invalid(path, `must be at most ${MAX_HEADER_LENGTH} characters`)
  return value
}

/**
 * Checks an address field: header-safe, at most 254 characters of address, and exactly one mailbox
 * (no lists, no groups), so a stored address can never fan out to extra recipients.
 *
 * @throws RecoveryCodesError `INVALID_INPUT`.
 */
export function assertSingleAddress(path: string, value: unknown): string {
  const text = assertHeaderSafe(path, value)
  const parsed = addressparser(text, { flatten: true })
  const address = parsed.length === 1 ? parsed[0]?.address : undefined
  if (parsed.length !== 1 || typeof address !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(address)) {
    throw invalid(path, 'must be exactly one email address')
  }
  if (address.length > 254) throw invalid(path, 'must be an address of at most 254 characters')
  return text
}
