/** CSRF tokens, the same-origin check and the response headers of every page. */
import { digestEquals, isCrossOrigin, safeFilename } from '@recovery-codes/core'

/** URL-safe random token of `bytes` random bytes (CSPRNG). */
export function randomToken(bytes = 32): string {
  const b = new Uint8Array(bytes)
  globalThis.crypto.getRandomValues(b)
  let s = ''
  for (const x of b) s += String.fromCharCode(x)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** Constant-time comparison of two tokens (length leaks, content does not): core's digest compare. */
export function safeEqual(a: string, b: string): boolean {
  return digestEquals(new TextEncoder().encode(a), new TextEncoder().encode(b))
}

/**
 * The request came from one of our own pages: the same Origin / `Sec-Fetch-Site` rule as the JSON
 * API (core's `isCrossOrigin`). Pages use `Referrer-Policy: no-referrer`, under which browsers send
 * `Origin: null` even for same-origin form posts; `null` passes only with `Sec-Fetch-Site:
 * same-origin`. A browser that sends neither header still needs the synchronizer token.
 */
export function isSameOriginRequest(
  header: (name: string) => string | undefined,
  ownOrigin: string,
  allowedOrigins: readonly string[] = [],
): boolean {
  return !isCrossOrigin({ headers: header, origin: ownOrigin }, allowedOrigins)
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

export { safeFilename }
