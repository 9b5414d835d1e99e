/** CSRF tokens, the same-origin check and the response headers of every page. */

/** URL-safe random token of `bytes` random bytes (CSPRNG). */
export function randomToken(bytes = 32): string {
  const b = new Uint8Array(bytes)
  globalThis.crypto.getRandomValues(b)
  let s = ''
  for (const x of b) s += String.fromCharCode(x)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** Constant-time comparison of two strings (length leaks, content does not). */
export function safeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}

/**
 * The request came from one of our own pages: `Sec-Fetch-Site` (when sent) is `same-origin` or
 * `none`, and `Origin` (when sent) is this origin or an allowed one. Pages use
 * `Referrer-Policy: no-referrer`, under which browsers send `Origin: null` even for same-origin form
 * posts; `null` is accepted only when `Sec-Fetch-Site` vouches for the request. A browser that sends
 * neither header still needs the synchronizer token.
 */
export function isSameOriginRequest(
  header: (name: string) => string | undefined,
  ownOrigin: string,
  allowedOrigins: readonly string[] = [],
): boolean {
  const site = header('sec-fetch-site')
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false
  const origin = header('origin')
  if (origin === 'null') return site !== undefined
  if (origin !== undefined && origin !== ownOrigin && !allowedOrigins.includes(origin)) return false
  return true
}

/** Headers of every page (all of them may carry codes or tokens: never cached). */
export function pageHeaders(nonce: string): Record<string, string> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Content-Security-Policy': `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  }
}

/** A file name safe inside a quoted `Content-Disposition` parameter. */
export function safeFilename(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '')
  return cleaned.length > 0 ? cleaned.slice(0, 100) : 'download'
}
