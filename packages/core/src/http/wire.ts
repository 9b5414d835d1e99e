/**
 * Wire-level helpers of the neutral handler: security headers, JSON bodies and errors, media
 * type, same-origin check, bounded body reading. No framework types, no Node builtins.
 */
import type { HttpRequest, HttpResponse } from './types.ts'

/** Headers on every response (R-SES-6): nothing here is cacheable, sniffable or leaked by referrer. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
})

/** Default body limit in bytes (R-IN-2). */
export const DEFAULT_BODY_LIMIT = 8192

const JSON_TYPE = 'application/json; charset=utf-8'

/** A JSON response with the security headers. */
export function jsonResponse(status: number, value: unknown, extra?: Record<string, string>): HttpResponse {
  return {
    status,
    headers: { ...SECURITY_HEADERS, 'Content-Type': JSON_TYPE, ...extra },
    body: JSON.stringify(value),
  }
}

/** Whether a `Content-Type` value is `application/json` (parameters such as `charset` allowed). */
export function isJsonMediaType(value: string | undefined): boolean {
  if (value === undefined) return false
  const essence = value.split(';', 1)[0]!.trim().toLowerCase()
  return essence === 'application/json'
}

/**
 * The CSRF check for state-changing requests (R-SES-3): a browser says where a request comes
 * from in `Sec-Fetch-Site` and `Origin`. Rejects `cross-site` (and `same-site`, a sibling
 * subdomain, unless its origin is allowed), and any `Origin` that is neither the request's own
 * nor allowed. Requests without either header are not from a browser page and pass: the JSON
 * media type requirement already keeps simple (form) requests out.
 */
export function isCrossOrigin(
  request: Pick<HttpRequest, 'headers' | 'origin'>,
  allowed: readonly string[],
): boolean {
  const site = request.headers('sec-fetch-site')?.trim().toLowerCase()
  const origin = request.headers('origin')?.trim()
  if (origin !== undefined) {
    if (allowed.includes(origin)) return false
    // A page sent with `Referrer-Policy: no-referrer` makes Chromium send `Origin: null` on its own
    // same-origin form posts; only the browser's Sec-Fetch-Site vouches for those.
    if (origin === 'null') return site !== 'same-origin'
    if (!sameOrigin(origin, request)) return true
    return site === 'cross-site'
  }
  return site === 'cross-site' || site === 'same-site'
}

function sameOrigin(origin: string, request: Pick<HttpRequest, 'headers' | 'origin'>): boolean {
  let parsed: URL
  try {
    parsed = new URL(origin)
  } catch {
    return false // includes the opaque `null` origin
  }
  // An Origin header is exactly `scheme://host[:port]`; anything else is not one we accept.
  if (parsed.origin !== origin) return false
  if (request.origin !== undefined) {
    try {
      return new URL(request.origin).origin === parsed.origin
    } catch {
      return false
    }
  }
  const host = request.headers('host')?.trim().toLowerCase()
  return host !== undefined && host.length > 0 && parsed.host === host
}

/**
 * Query parameters as a plain, prototype-less object for a strict schema: a repeated name
 * becomes an array (and so fails a string field), never "last one wins".
 */
export function queryObject(query: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null)
  for (const [key, value] of query) {
    const seen = out[key]
    out[key] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value]
  }
  return out
}

/** The outcome of {@link parseJsonBody}. */
export type ParsedBody = { ok: true; value: unknown } | { ok: false; reason: 'malformed' }

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

/** Parses a JSON body; an empty body is `{}`. Invalid UTF-8 or JSON is `malformed`. */
export function parseJsonBody(raw: Uint8Array | string): ParsedBody {
  let text: string
  try {
    text = typeof raw === 'string' ? raw : utf8.decode(raw)
  } catch {
    return { ok: false, reason: 'malformed' }
  }
  if (text.trim().length === 0) return { ok: true, value: {} }
  try {
    // JSON.parse makes `__proto__` an own data property, never a prototype; strict schemas then reject it.
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false, reason: 'malformed' }
  }
}

/** Byte length of a body as given to the handler. */
export function byteLength(raw: Uint8Array | string): number {
  return typeof raw === 'string' ? new TextEncoder().encode(raw).byteLength : raw.byteLength
}

/** `Retry-After` in whole seconds, rounded up, at least 1. */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)))
}

/** A download filename safe inside a quoted `Content-Disposition` parameter: `[A-Za-z0-9._-]` only. */
export function safeFilename(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '')
  return cleaned.length > 0 && cleaned.length <= 128 ? cleaned : 'recovery-codes'
}

/** `ada@example.com` → `a***@example.com`, for the email confirmation. */
export function maskEmail(address: string): string {
  const at = address.lastIndexOf('@')
  if (at <= 0) return '***'
  return `${address[0]}***${address.slice(at)}`
}

/** The result of {@link readLimitedBody}. */
export type LimitedBody = { ok: true; bytes: Uint8Array } | { ok: false; reason: 'too-large' | 'unreadable' }

/**
 * Reads a body stream into bytes, stopping at `limit` (for fetch-style adapters such as Hono). A
 * declared `Content-Length` over the limit is refused before reading anything.
 */
export async function readLimitedBody(
  stream: ReadableStream<Uint8Array> | null | undefined,
  limit: number,
  declaredLength?: string,
): Promise<LimitedBody> {
  if (declaredLength !== undefined && declaredLength !== '') {
    const n = Number(declaredLength)
    if (!Number.isSafeInteger(n) || n < 0) return { ok: false, reason: 'unreadable' }
    if (n > limit) return { ok: false, reason: 'too-large' }
  }
  if (!stream) return { ok: true, bytes: new Uint8Array(0) }
  const reader = stream.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > limit) {
        await reader.cancel().catch(() => {})
        return { ok: false, reason: 'too-large' }
      }
      chunks.push(value)
    }
  } catch {
    return { ok: false, reason: 'unreadable' }
  }
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return { ok: true, bytes }
}
