/** Longest identifier (an email address) accepted before any Unicode work. */
export const MAX_IDENTIFIER_LENGTH = 254

/**
 * Canonical form of a submitted login identifier, used for limiter keys and lookups alike:
 * trim, NFKC, then Unicode lower-case (`toLowerCase`, locale-independent), so `José@x` and `josé@x`
 * share one limiter key. Hosts should resolve users by the same form. Returns `null` for
 * non-strings, empty or over-long input and any control character (NUL included).
 */
export function normalizeIdentifier(input: unknown): string | null {
  if (typeof input !== 'string' || input.length === 0 || input.length > MAX_IDENTIFIER_LENGTH) return null
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001F\u007F-\u009F]/.test(input)) return null
  const s = input.normalize('NFKC').trim().toLowerCase()
  return s.length === 0 || s.length > MAX_IDENTIFIER_LENGTH ? null : s
}
