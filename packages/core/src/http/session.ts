/**
 * Session hooks written once: the JSON API and the pages keep their state under the same
 * {@link SESSION_KEYS} of one host session, so an adapter that can reach the framework's usual
 * session (express-session, @fastify/session, a Hono context variable) needs no host hooks.
 */
import { RecoveryCodesError } from '../errors.ts'
import type { Clock } from '../ports/clock.ts'
import { systemClock } from '../runtime.ts'
import type { Awaitable, HttpHooks } from './types.ts'

/**
 * The host session as the library uses it. Values are plain JSON; none is ever a code.
 * {@link callbackSession} builds one from an express-session or @fastify/session object.
 */
export interface HostSession {
  get(key: string): unknown
  /** `undefined` removes the key. */
  set(key: string, value: unknown): void
  /** New session id, old data dropped (R-SES-1). */
  regenerate(): Promise<void>
  /** Server-side session and cookie gone (R-SES-5). */
  destroy(): Promise<void>
}

/** The session keys the JSON API and the pages share (values are ids, timestamps and tokens). */
export const SESSION_KEYS = Object.freeze({
  /** The fully signed-in user id. */
  user: 'rc_uid',
  /** The user who passed the host's first factor and owes a second one. */
  pending: 'rc_pending',
  pendingAt: 'rc_pending_at',
  passwordAt: 'rc_password_at',
  /** When the user last authenticated (sign-in or re-authentication), ms since the epoch. */
  authAt: 'rc_auth_at',
  csrf: 'rc_csrf',
  flash: 'rc_flash',
  reveal: 'rc_reveal',
  revealUntil: 'rc_reveal_until',
} as const)

/** How long a sign-in or re-authentication counts as fresh. @default 600_000 (10 min) */
export const DEFAULT_FRESHNESS_MS = 600_000
/** How long a passed first factor waits for the recovery code. @default 600_000 (10 min) */
export const DEFAULT_PENDING_TTL_MS = 600_000

/** The parts of an express-session / @fastify/session object the bridge uses (structural). */
export interface CallbackSessionLike {
  regenerate(cb: (err?: unknown) => void): unknown
  destroy(cb: (err?: unknown) => void): unknown
}

/**
 * Bridges a callback-style session (`req.session` of express-session, `request.session` of
 * @fastify/session) to {@link HostSession}. `read` is called on every access, because
 * `regenerate()` replaces the session object. When `read` finds none, the error names
 * `middleware`, the session middleware that should have run first.
 */
export function callbackSession(read: () => unknown, middleware: string): HostSession {
  const current = (): CallbackSessionLike & Record<string, unknown> => {
    const s = read()
    if (!isCallbackSession(s)) throw missingSession(middleware)
    return s
  }
  return {
    get: (key) => current()[key],
    set: (key, value) => {
      const s = current()
      if (value === undefined) delete s[key]
      else s[key] = value
    },
    regenerate: () => new Promise<void>((ok, ko) => void current().regenerate((e) => (e ? ko(e) : ok()))),
    destroy: () =>
      new Promise<void>((ok, ko) => {
        const s = read()
        if (!isCallbackSession(s)) return ok()
        s.destroy((e) => (e ? ko(e) : ok()))
      }),
  }
}

function isCallbackSession(s: unknown): s is CallbackSessionLike & Record<string, unknown> {
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof (s as CallbackSessionLike).regenerate === 'function' &&
    typeof (s as CallbackSessionLike).destroy === 'function'
  )
}

/** Whether `s` can serve as a {@link HostSession}. */
export function isHostSession(s: unknown): s is HostSession {
  return (
    typeof s === 'object' &&
    s !== null &&
    ['get', 'set', 'regenerate', 'destroy'].every(
      (m) => typeof (s as Record<string, unknown>)[m] === 'function',
    )
  )
}

/** `s` as a {@link HostSession}, or the typed error naming `middleware` that should have set it. */
export function asHostSession(s: unknown, middleware: string): HostSession {
  if (!isHostSession(s)) throw missingSession(middleware)
  return s
}

/** The typed error for a request that reached the library without the host's session. */
export function missingSession(middleware: string): RecoveryCodesError {
  return new RecoveryCodesError(
    'CONFIG_INVALID',
    `recovery-codes: no session on this request. Mount ${middleware} before recovery-codes, or pass a \`session\` hook.`,
  )
}

/** Options of {@link sessionHooks}. */
export interface SessionHooksOptions {
  /** How long a sign-in or re-authentication counts as fresh. @default {@link DEFAULT_FRESHNESS_MS} */
  freshnessMs?: number
  /** How long a passed first factor waits for the recovery code. @default {@link DEFAULT_PENDING_TTL_MS} */
  pendingTtlMs?: number
  /** @default the system clock */
  clock?: Clock
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null)

/**
 * The {@link HttpHooks} of the JSON API over a {@link HostSession}, with the keys of
 * {@link SESSION_KEYS} (the same the pages use). The host marks its own first factor with
 * {@link markFirstFactor} and a full sign-in with {@link markSignedIn}.
 *
 * @example
 * ```ts
 * const hooks = sessionHooks(({ req }) => callbackSession(() => req.session, 'express-session'), ({ req }) => req.ip)
 * ```
 */
export function sessionHooks<Ctx>(
  session: (ctx: Ctx) => HostSession,
  getClientKey: (ctx: Ctx) => Awaitable<string | null | undefined>,
  options: SessionHooksOptions = {},
): HttpHooks<Ctx> {
  const freshnessMs = options.freshnessMs ?? DEFAULT_FRESHNESS_MS
  const pendingTtlMs = options.pendingTtlMs ?? DEFAULT_PENDING_TTL_MS
  const clock = options.clock ?? systemClock
  const K = SESSION_KEYS
  const within = (at: unknown, ttl: number) => typeof at === 'number' && clock.now() - at < ttl
  return {
    getUserId: (ctx) => str(session(ctx).get(K.user)),
    getPendingUserId: (ctx) => {
      const s = session(ctx)
      const uid = str(s.get(K.pending))
      return uid && within(s.get(K.pendingAt), pendingTtlMs) ? uid : null
    },
    getRevealToken: (ctx) => str(session(ctx).get(K.reveal)),
    setRevealToken: (ctx, token) => {
      const s = session(ctx)
      s.set(K.reveal, token ?? undefined)
      if (token === null) s.set(K.revealUntil, undefined)
    },
    // As on the pages: a recovery login counts as fresh only when the password step that
    // preceded it is; that timestamp is the one datum carried across the new session id.
    regenerateSession: async (ctx) => {
      const passwordAt = session(ctx).get(K.passwordAt)
      await session(ctx).regenerate()
      if (within(passwordAt, freshnessMs)) session(ctx).set(K.passwordAt, passwordAt)
    },
    destroySession: (ctx) => session(ctx).destroy(),
    logIn: (ctx, userId) => {
      const s = session(ctx)
      const passwordAt = s.get(K.passwordAt)
      s.set(K.passwordAt, undefined)
      s.set(K.user, userId)
      if (within(passwordAt, freshnessMs)) s.set(K.authAt, passwordAt)
    },
    isFreshlyAuthenticated: (ctx) => within(session(ctx).get(K.authAt), freshnessMs),
    getClientKey,
  }
}

/** The hooks whose defaults read or write the session. */
const SESSION_HOOK_NAMES = [
  'getUserId',
  'getPendingUserId',
  'getRevealToken',
  'setRevealToken',
  'regenerateSession',
  'logIn',
  'isFreshlyAuthenticated',
] as const

/** Options an adapter passes to {@link withSessionDefaults}. */
export interface SessionDefaultsOptions<Ctx> extends SessionHooksOptions {
  /** The host's own session for the defaults; when given, no framework session is required. */
  session?: (ctx: Ctx) => HostSession
}

/**
 * What every adapter does with the host's (partial) hooks: each given hook replaces the default
 * of {@link sessionHooks} over `options.session ?? frameworkSession`. `needsSession` tells the
 * adapter whether the framework's session middleware must be present (some default still reads
 * it), so it can refuse to start without one.
 */
export function withSessionDefaults<Ctx>(
  hooks: Partial<HttpHooks<Ctx>>,
  frameworkSession: (ctx: Ctx) => HostSession,
  getClientKey: (ctx: Ctx) => Awaitable<string | null | undefined>,
  options: SessionDefaultsOptions<Ctx> = {},
): { hooks: HttpHooks<Ctx>; needsSession: boolean } {
  const defaults = sessionHooks<Ctx>(options.session ?? frameworkSession, getClientKey, options)
  return {
    hooks: { ...defaults, ...hooks },
    needsSession: !options.session && SESSION_HOOK_NAMES.some((name) => hooks[name] === undefined),
  }
}

/**
 * Records in `session` that `userId` passed the host's first factor (e.g. the password) and now
 * owes a recovery code: what `POST /redeem` of the JSON API and the pages' `/login` read.
 */
export function markFirstFactor(session: HostSession, userId: string, now: number): void {
  session.set(SESSION_KEYS.pending, userId)
  session.set(SESSION_KEYS.pendingAt, now)
  session.set(SESSION_KEYS.passwordAt, now)
}

/** Records a full sign-in of `userId` at `now` (fresh for sensitive actions until `freshnessMs`). */
export function markSignedIn(session: HostSession, userId: string, now: number): void {
  session.set(SESSION_KEYS.pending, undefined)
  session.set(SESSION_KEYS.pendingAt, undefined)
  session.set(SESSION_KEYS.user, userId)
  session.set(SESSION_KEYS.authAt, now)
}
