/**
 * The framework-neutral page controller: maps a form request to service calls and a page (or a
 * redirect, or a file). Adapters (Express, Hono) translate requests and responses and supply the
 * session; everything else lives here once.
 *
 * Security (SECURITY.md SES, PT, IN): every state-changing route is POST-only with a synchronizer
 * token bound to the session plus a `Sec-Fetch-Site`/`Origin` check; the session is regenerated
 * at every login; sensitive actions need a fresh password confirmation; every page is `no-store`,
 * `nosniff`, `no-referrer`; codes travel only in POST bodies and in the one response that shows
 * them, never in URLs, sessions, flashes or logs.
 */
import {
  DEFAULT_FRESHNESS_MS,
  DEFAULT_PENDING_TTL_MS,
  type ExportFormat,
  type HostSession,
  isRecoveryCodesError,
  type Logger,
  MAX_CODE_INPUT_LENGTH,
  type RecoveryCodes,
  type RevealStatus,
  SESSION_KEYS,
} from '@recovery-codes/core'
import { formatDuration } from './format.ts'
import { isSameOriginRequest, pageHeaders, randomToken, safeEqual, safeFilename } from './security.ts'
import {
  codesPage,
  codesReadyPage,
  type DashboardModel,
  dashboardPage,
  type Flash,
  type LayoutModel,
  messagePage,
  notFoundPage,
  type PagePaths,
  pagePaths,
  reauthPage,
  recoveryLoginPage,
  replacementPage,
  replacementReadyPage,
  repudiatePage,
  repudiationResultPage,
  signInPage,
} from './views.ts'

/** A request as the page controller sees it. */
export interface PageRequest {
  /** Upper-case method. */
  method: string
  /** Path relative to the mount point, starting with `/`. */
  path: string
  query: URLSearchParams
  /** The parsed `application/x-www-form-urlencoded` body of a POST, or `null`. */
  form: URLSearchParams | null
  /** Set when the body could not be read (too large, wrong media type, unreadable). */
  bodyError?: 'too-large' | 'unreadable' | 'unsupported'
  header(name: string): string | undefined
  /** `scheme://host[:port]` this request was addressed to (for the same-origin check). */
  origin: string
  /**
   * The concrete path the adapter is mounted at (`req.baseUrl` in Express, the route prefix in
   * Hono), '' at the site root: links and redirects are built under it.
   */
  mountPath?: string
}

/** A response for the adapter to write back. */
export interface PageResponse {
  status: number
  headers: Record<string, string>
  body: string | Uint8Array
}

/** Session access for the pages: core's `HostSession` (the JSON API uses the same one). */
export type PageSession = HostSession

/** What the host application supplies. */
export interface PagesHooks<Ctx> {
  /** The session of this request. */
  session(ctx: Ctx): PageSession
  /** Client key for the per-client limiter (socket address or trusted-proxy result). */
  getClientKey(ctx: Ctx): string | null | undefined
  /**
   * The host's first factor: email + password → user id, or `null`. Must do the same work for
   * unknown emails. When given, `/signin` is served and a password login counts as fresh.
   */
  signInWithPassword?(email: string, password: string): Promise<string | null>
  /** Checks the signed-in user's password for re-authentication (`/reauth`). */
  verifyPassword?(userId: string, password: string): Promise<boolean>
  /** What the header shows for a user (e.g. the email). @default the user id */
  userLabel?(userId: string): Promise<string>
  /** Called after a recovery-code login (notify, revoke other sessions: R-SES-7). */
  onRecoveryLogin?(ctx: Ctx, userId: string): Promise<void> | void
}

/** Options of {@link createPagesHandler}. */
export interface PagesOptions {
  /** Where the pages are mounted (`''` = site root). @default '' */
  basePath?: string
  /** How long a password confirmation counts as fresh for sensitive actions. @default 600_000 (10 min) */
  freshnessMs?: number
  /** How long the password step waits for the recovery code. @default 600_000 */
  pendingTtlMs?: number
  /** Shown next to the email button, e.g. where the dev mailer writes its files. */
  emailNote?: string
  /** Shown under the sign-in form. */
  signInNote?: string
  /** Extra origins allowed to post forms (exact `scheme://host[:port]`). @default [] */
  allowedOrigins?: readonly string[]
  /** Largest form body in bytes. @default 8192 */
  bodyLimit?: number
  /** @default Date.now */
  now?: () => number
  /** Unexpected errors are logged here by name only. */
  logger?: Logger
}

/** The page controller. */
export interface PagesHandler<Ctx> {
  /** `null` when the path is not one of ours (let the host continue). */
  handle(req: PageRequest, ctx: Ctx): Promise<PageResponse | null>
  /**
   * The 404 page in the pages' layout, for the host's catch-all (any path, any method). Reads the
   * session only to link back to the dashboard or to sign in; writes nothing to it.
   */
  notFound(req: PageRequest, ctx: Ctx): Promise<PageResponse>
  readonly paths: PagePaths
  readonly bodyLimit: number
}

const K = SESSION_KEYS

/** The session of a 404 outside the pages' session middleware: a visitor with nothing stored. */
const NO_SESSION: PageSession = {
  get: () => undefined,
  set: () => {},
  regenerate: async () => {},
  destroy: async () => {},
}

const LOGIN_FAILED = 'That recovery code did not work. Check it and try again.'
const LOGIN_EMPTY = 'Enter one of your recovery codes.'
const LOGIN_EMPTY_BOTH = 'Enter the email address of your account and one of your recovery codes.'
const CODE_EMPTY = 'Enter a code first.'
/**
 * Until when the last failed login said to wait (ms). The service answers a wrong code and an
 * attempt refused during a cooldown alike, so the page remembers the cooldown it announced: an
 * attempt inside it (a right code too) is told to wait, not that the code "did not work".
 */
const LOGIN_WAIT_UNTIL = 'rc_ui_login_wait_until'
const SIGNIN_FAILED = 'Incorrect email or password.'
/** What the reveal slot of the session holds: a new batch (absent) or a login's replacement code. */
const REVEAL_KIND = 'rc_ui_reveal_kind'
/** When the batch of the session's reveal slot was generated, and when it expires (for the sheet). */
const REVEAL_CREATED = 'rc_ui_reveal_created'
const REVEAL_EXPIRES = 'rc_ui_reveal_expires'

/**
 * Creates the page controller for `rc`.
 *
 * @example
 * ```ts
 * const pages = createPagesHandler(rc, {
 *   session: ({ req }) => expressSession(req),
 *   getClientKey: ({ req }) => req.ip,
 *   signInWithPassword: (email, password) => users.check(email, password),
 *   verifyPassword: (userId, password) => users.verify(userId, password),
 * })
 * ```
 */
export function createPagesHandler<Ctx>(
  rc: RecoveryCodes,
  hooks: PagesHooks<Ctx>,
  options: PagesOptions = {},
): PagesHandler<Ctx> {
  const base = (options.basePath ?? '').replace(/\/+$/, '')
  const paths = pagePaths(base)
  // One PagePaths per concrete mount path the adapter reports (a handful; bounded).
  const pathsByMount = new Map<string, PagePaths>([['', paths]])
  const pathsFor = (mountPath: string | undefined): PagePaths => {
    const mount = (mountPath ?? '').replace(/\/+$/, '')
    let found = pathsByMount.get(mount)
    if (!found) {
      found = pagePaths(mount + base)
      if (pathsByMount.size < 64) pathsByMount.set(mount, found)
    }
    return found
  }
  const now = options.now ?? Date.now
  const freshnessMs = options.freshnessMs ?? DEFAULT_FRESHNESS_MS
  const pendingTtlMs = options.pendingTtlMs ?? DEFAULT_PENDING_TTL_MS
  const bodyLimit = options.bodyLimit ?? 8192
  const { siteName, loginMode } = rc.config
  const passwordEnabled = typeof hooks.signInWithPassword === 'function'
  const codeLoginEnabled = loginMode === 'identifier-and-code'
  const entry = (q: { paths: PagePaths }) => (passwordEnabled ? q.paths.signIn : q.paths.login)

  interface Req {
    r: PageRequest
    ctx: Ctx
    s: PageSession
    nonce: string
    /** The page paths as the browser sees them (mount path and basePath included). */
    paths: PagePaths
  }

  function str(v: unknown): string | null {
    return typeof v === 'string' && v.length > 0 ? v : null
  }

  function csrfToken(s: PageSession): string {
    let t = str(s.get(K.csrf))
    if (!t) {
      t = randomToken()
      s.set(K.csrf, t)
    }
    return t
  }

  function flash(s: PageSession, kind: Flash['kind'], text: string): void {
    const list = Array.isArray(s.get(K.flash)) ? (s.get(K.flash) as Flash[]) : []
    s.set(K.flash, [...list.slice(-4), { kind, text }])
  }

  function takeFlash(s: PageSession): Flash[] {
    const list = s.get(K.flash)
    if (list === undefined) return []
    s.set(K.flash, undefined)
    return Array.isArray(list)
      ? list.filter(
          (f): f is Flash =>
            typeof f === 'object' && f !== null && typeof f.text === 'string' && typeof f.kind === 'string',
        )
      : []
  }

  function userOf(s: PageSession): string | null {
    return str(s.get(K.user))
  }

  function isFresh(s: PageSession): boolean {
    const at = s.get(K.authAt)
    return typeof at === 'number' && now() - at < freshnessMs
  }

  async function layoutFor(q: Req, title: string, withFlash = true): Promise<LayoutModel> {
    const uid = userOf(q.s)
    return {
      siteName,
      title,
      nonce: q.nonce,
      paths: q.paths,
      user: uid ? { label: hooks.userLabel ? await hooks.userLabel(uid) : uid } : null,
      csrf: csrfToken(q.s),
      flash: withFlash ? takeFlash(q.s) : [],
    }
  }

  function page(q: Req, status: number, body: string): PageResponse {
    return { status, headers: pageHeaders(q.nonce), body }
  }

  function redirect(to: string): PageResponse {
    return {
      status: 303,
      headers: {
        Location: to,
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
      },
      body: '',
    }
  }

  function field(q: Req, name: string, max: number): string | null {
    const v = q.r.form?.get(name)
    return typeof v === 'string' && v.length <= max ? v : null
  }

  /**
   * The client counter's key. A missing address (a proxy set-up error) shares one `'unknown'`
   * counter, as in the JSON handler: such requests are limited together rather than not at all.
   */
  function clientKey(q: Req): { clientKey: string } {
    const k = hooks.getClientKey(q.ctx)
    return { clientKey: typeof k === 'string' && k.length > 0 ? k : 'unknown' }
  }

  function failureText(base: string, retryAfterMs: number): string {
    return retryAfterMs > 0
      ? `${base} Too many failed attempts: wait ${formatDuration(retryAfterMs)} before trying again.`
      : base
  }

  /** Requires a logged-in user; otherwise sends them to sign in. */
  function requireUser(q: Req): string | PageResponse {
    const uid = userOf(q.s)
    if (uid) return uid
    if (q.r.method === 'POST') flash(q.s, 'info', 'Your session has ended. Please sign in again.')
    return redirect(entry(q))
  }

  /**
   * Sensitive actions: a fresh password confirmation, the password sent with the form itself
   * (the dashboard's forms carry one when not fresh, so the action completes and nothing typed is
   * lost), or a detour through `/reauth`.
   */
  async function requireFresh(q: Req, userId: string): Promise<PageResponse | null> {
    if (isFresh(q.s)) return null
    const password = field(q, 'password', 1024)
    if (hooks.verifyPassword && password !== null) {
      if (password && (await hooks.verifyPassword(userId, password))) {
        q.s.set(K.authAt, now())
        return null
      }
      flash(q.s, 'error', 'Incorrect password. Nothing was changed: enter your password and try again.')
      return redirect(q.paths.dashboard)
    }
    if (!hooks.verifyPassword) {
      flash(q.s, 'error', 'Please sign in again to do this.')
      return redirect(entry(q))
    }
    flash(q.s, 'info', 'Confirm your password to continue, then repeat the action.')
    return redirect(q.paths.reauth)
  }

  async function discardReveal(q: Req): Promise<void> {
    const token = str(q.s.get(K.reveal))
    q.s.set(K.reveal, undefined)
    q.s.set(K.revealUntil, undefined)
    q.s.set(REVEAL_KIND, undefined)
    q.s.set(REVEAL_CREATED, undefined)
    q.s.set(REVEAL_EXPIRES, undefined)
    if (token) await rc.discardReveal({ reveal: token })
  }

  /** The session's reveal slot holds a recovery login's replacement code. */
  function isReplacement(q: Req): boolean {
    return q.s.get(REVEAL_KIND) === 'replacement'
  }

  /** The dates of the session's new batch: from the store once active, else as generated. */
  function batchDatesOf(
    q: Req,
    active: { id: string; createdAt: number; expiresAt: number | null } | null,
    batchId?: string,
  ) {
    if (active && (batchId === undefined || active.id === batchId))
      return { createdAt: active.createdAt, expiresAt: active.expiresAt }
    const created = q.s.get(REVEAL_CREATED)
    const expires = q.s.get(REVEAL_EXPIRES)
    return {
      createdAt: typeof created === 'number' ? created : null,
      expiresAt: typeof expires === 'number' ? expires : null,
    }
  }

  // ---- routes ----

  async function getSignIn(q: Req): Promise<PageResponse> {
    if (!passwordEnabled) return redirect(q.paths.login)
    if (userOf(q.s)) return redirect(q.paths.dashboard)
    const l = await layoutFor(q, 'Sign in')
    return page(
      q,
      200,
      signInPage(l, {
        codeLoginAvailable: codeLoginEnabled,
        ...(options.signInNote ? { note: options.signInNote } : {}),
      }),
    )
  }

  async function postSignIn(q: Req): Promise<PageResponse> {
    if (!passwordEnabled) return redirect(q.paths.login)
    const email = field(q, 'email', 254)?.trim() ?? ''
    const password = field(q, 'password', 1024) ?? ''
    const uid = email && password ? await hooks.signInWithPassword!(email, password) : null
    if (!uid) {
      const l = await layoutFor(q, 'Sign in')
      return page(
        q,
        401,
        signInPage(l, {
          email: email.slice(0, 254),
          error: SIGNIN_FAILED,
          codeLoginAvailable: codeLoginEnabled,
          ...(options.signInNote ? { note: options.signInNote } : {}),
        }),
      )
    }
    await discardReveal(q)
    await q.s.regenerate()
    const at = now()
    // Recovery codes are this demo's second factor. Whether the account is enrolled is read from
    // the store, never the cache, and a batch that was disabled (hard cap), used up or expired
    // still demands a code: otherwise failing on purpose would turn 2FA off. Only a user who has
    // never generated codes, or deleted them while signed in, passes on the password alone.
    const enrolment = await secondFactorState(uid)
    if (enrolment !== 'none') {
      if (enrolment === 'unusable') {
        const l = await layoutFor(q, 'Sign in')
        return page(
          q,
          403,
          signInPage(l, {
            email: email.slice(0, 254),
            error:
              'Your recovery codes can no longer be used (disabled after too many failed attempts, used up or expired). Contact support to restore access.',
            codeLoginAvailable: codeLoginEnabled,
            ...(options.signInNote ? { note: options.signInNote } : {}),
          }),
        )
      }
      q.s.set(K.pending, uid)
      q.s.set(K.pendingAt, at)
      q.s.set(K.passwordAt, at)
      return redirect(q.paths.login)
    }
    q.s.set(K.user, uid)
    q.s.set(K.authAt, at)
    flash(
      q.s,
      'info',
      'Signed in. You have no recovery codes yet: generate a batch so you can sign in if you lose your other factor.',
    )
    return redirect(q.paths.dashboard)
  }

  /** `none`: never enrolled or deleted by the user; `usable`: a code can be redeemed; else `unusable`. */
  async function secondFactorState(userId: string): Promise<'none' | 'usable' | 'unusable'> {
    const { items } = await rc.config.store.listBatches({ userId, offset: 0, limit: 1 })
    const latest = items[0]
    if (!latest || latest.status === 'deleted') return 'none'
    const live =
      latest.status === 'active' &&
      latest.unused > 0 &&
      (latest.expiresAt === null || now() < latest.expiresAt)
    return live ? 'usable' : 'unusable'
  }

  function pendingUser(q: Req): string | null {
    const uid = str(q.s.get(K.pending))
    const at = q.s.get(K.pendingAt)
    if (!uid || typeof at !== 'number' || now() - at >= pendingTtlMs) return null
    return uid
  }

  async function getLogin(q: Req): Promise<PageResponse> {
    if (userOf(q.s)) return redirect(q.paths.dashboard)
    if (!codeLoginEnabled) {
      const uid = pendingUser(q)
      if (!uid) {
        if (!passwordEnabled) return notFound(q)
        flash(q.s, 'info', 'Sign in with your password first.')
        return redirect(q.paths.signIn)
      }
      const l = await layoutFor(q, 'Two-step verification')
      const label = hooks.userLabel ? await hooks.userLabel(uid) : undefined
      return page(
        q,
        200,
        recoveryLoginPage(l, { mode: 'second-factor', ...(label ? { pendingLabel: label } : {}) }),
      )
    }
    const l = await layoutFor(q, 'Sign in with a recovery code')
    return page(q, 200, recoveryLoginPage(l, { mode: 'identifier-and-code' }))
  }

  async function postLogin(q: Req): Promise<PageResponse> {
    const code = field(q, 'code', MAX_CODE_INPUT_LENGTH) ?? ''
    let result: Awaited<ReturnType<RecoveryCodes['redeem']>>
    let email = ''
    let fresh = false
    const pending = codeLoginEnabled ? null : pendingUser(q)
    const loginPage = async (status: number, error: string) => {
      const l = await layoutFor(q, 'Sign in')
      const label = pending && hooks.userLabel ? await hooks.userLabel(pending) : undefined
      return page(
        q,
        status,
        recoveryLoginPage(l, {
          mode: codeLoginEnabled ? 'identifier-and-code' : 'second-factor',
          email: email.slice(0, 254),
          error,
          ...(label ? { pendingLabel: label } : {}),
        }),
      )
    }
    const waitUntil = q.s.get(LOGIN_WAIT_UNTIL)
    const inCooldown = typeof waitUntil === 'number' && now() < waitUntil
    if (codeLoginEnabled) {
      email = field(q, 'identifier', 254) ?? ''
      // An empty field is a slip, not an attempt: it is not sent to the service nor counted.
      if (!code.trim() || !email.trim()) return loginPage(400, email.trim() ? LOGIN_EMPTY : LOGIN_EMPTY_BOTH)
      result = await rc.redeem({ identifier: email, code, ...clientKey(q) })
    } else {
      if (!pending) {
        flash(q.s, 'info', 'Your sign-in took too long. Sign in with your password again.')
        return redirect(passwordEnabled ? q.paths.signIn : q.paths.login)
      }
      if (!code.trim()) return loginPage(400, LOGIN_EMPTY)
      const pwAt = q.s.get(K.passwordAt)
      fresh = typeof pwAt === 'number' && now() - pwAt < freshnessMs
      result = await rc.redeem({ userId: pending, code, ...clientKey(q) })
    }
    if (!result.ok) {
      const wait = result.retryAfterMs
      q.s.set(LOGIN_WAIT_UNTIL, wait > 0 ? now() + wait : undefined)
      return loginPage(
        wait > 0 ? 429 : 401,
        inCooldown && wait > 0
          ? `Too many failed attempts: wait ${formatDuration(wait)}, then enter your code again. Codes are not checked until then.`
          : failureText(LOGIN_FAILED, wait),
      )
    }
    const pwAt = q.s.get(K.passwordAt)
    await discardReveal(q)
    await q.s.regenerate()
    q.s.set(K.user, result.userId)
    // The password was typed at this very login (second factor); a code alone is never "fresh".
    if (fresh && typeof pwAt === 'number') q.s.set(K.authAt, pwAt)
    if (result.replacement) {
      // `replaceOnUse`: the replacement waits in a reveal slot of its own, shown once on its page.
      q.s.set(K.reveal, result.replacement.reveal)
      q.s.set(K.revealUntil, result.replacement.revealExpiresAt)
      q.s.set(REVEAL_KIND, 'replacement')
      flash(
        q.s,
        'success',
        `Signed in with a recovery code. That code is now used, and a replacement code was issued: you still have ${result.remaining} ${result.remaining === 1 ? 'code' : 'codes'}.`,
      )
    } else {
      flash(
        q.s,
        result.lowCodes ? 'error' : 'success',
        `Signed in with a recovery code. That code is now used: ${result.remaining} ${result.remaining === 1 ? 'code' : 'codes'} left. Generate a new batch to keep a full set.`,
      )
    }
    if (result.mustBindFactor)
      flash(q.s, 'info', 'Set up a new second factor for your account before you continue.')
    await hooks.onRecoveryLogin?.(q.ctx, result.userId)
    return redirect(result.replacement ? q.paths.replacement : q.paths.dashboard)
  }

  async function getReauth(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    if (!hooks.verifyPassword) return notFound(q)
    const l = await layoutFor(q, 'Confirm your password')
    return page(q, 200, reauthPage(l, { next: safeNext(q, q.r.query.get('next')) }))
  }

  function safeNext(q: Req, v: string | null | undefined): string {
    return v === q.paths.codes ? q.paths.codes : q.paths.dashboard
  }

  async function postReauth(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    if (!hooks.verifyPassword) return notFound(q)
    const password = field(q, 'password', 1024) ?? ''
    const next = safeNext(q, field(q, 'next', 200))
    if (password && (await hooks.verifyPassword(u, password))) {
      q.s.set(K.authAt, now())
      flash(q.s, 'success', 'Password confirmed.')
      return redirect(next)
    }
    const l = await layoutFor(q, 'Confirm your password')
    return page(q, 401, reauthPage(l, { next, error: 'Incorrect password.' }))
  }

  async function getDashboard(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    const rawPage = q.r.query.get('page')
    const pageNo = rawPage && /^[1-9]\d{0,5}$/.test(rawPage) ? Number(rawPage) : 1
    const [st, history] = await Promise.all([
      rc.status({ userId: u }),
      rc.history({ userId: u, page: pageNo }),
    ])
    const a = st.active?.status === 'active' ? st.active : null
    const until = q.s.get(K.revealUntil)
    const emailEnabled = rc.config.email.enabled && rc.config.mailer !== null
    let reveal: DashboardModel['reveal'] = null
    const token = str(q.s.get(K.reveal))
    if (token && typeof until === 'number' && now() < until) {
      // What is left of the slot, from the store: a spent or gone slot offers nothing. A pending
      // batch is offered with no active batch too (the user's first batch, not confirmed yet).
      const left = await revealStatusOf(u, token)
      if (left && (a || left.pending))
        reveal = {
          used: left.used,
          emailEnabled,
          formats: rc.exportFormats,
          pending: left.pending,
          replacement: isReplacement(q),
        }
    }
    const l = await layoutFor(q, 'Recovery codes')
    return page(
      q,
      200,
      dashboardPage(l, {
        remaining: st.remaining,
        lowCodes: st.lowCodes,
        lowCodesThreshold: st.lowCodesThreshold,
        shouldRegenerate: st.shouldRegenerate,
        active: st.active,
        generateRetryAfterMs: st.generateRetryAfterMs,
        reveal,
        confirmActivation: rc.config.activation === 'confirm',
        history,
        fresh: isFresh(q.s),
        reauthInline: !isFresh(q.s) && typeof hooks.verifyPassword === 'function',
        ...(options.emailNote ? { emailNote: options.emailNote } : {}),
      }),
    )
  }

  async function postGenerate(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    // A cooldown is refused first, before a password detour that could only end in the same refusal
    // (the service refuses it again in generate()).
    const { generateRetryAfterMs } = await rc.status({ userId: u })
    if (generateRetryAfterMs > 0) return generateCooldown(q, generateRetryAfterMs)
    // Replacing codes needs a fresh sign-in whenever a batch exists (read from the store, not the cache).
    if (await rc.config.store.getActiveBatch(u)) {
      const stale = await requireFresh(q, u)
      if (stale) return stale
    }
    const rawDays = (field(q, 'expiresInDays', 10) ?? '').trim()
    // Empty means the configured default (never, unless the host sets one): users do not override it.
    let days: number | undefined
    if (rawDays !== '') {
      if (!/^\d{1,4}$/.test(rawDays) || Number(rawDays) < 1 || Number(rawDays) > 3650) {
        flash(q.s, 'error', 'The expiry must be a whole number of days from 1 to 3650, or empty.')
        return redirect(q.paths.dashboard)
      }
      days = Number(rawDays)
    }
    const r = await rc.generate({
      userId: u,
      ...(days === undefined ? {} : { expiresInDays: days }),
      ...clientKey(q),
    })
    if (!r.ok) return generateCooldown(q, r.retryAfterMs)
    q.s.set(K.reveal, r.reveal)
    q.s.set(K.revealUntil, r.revealExpiresAt)
    q.s.set(REVEAL_KIND, undefined)
    q.s.set(REVEAL_CREATED, r.createdAt)
    q.s.set(REVEAL_EXPIRES, r.expiresAt ?? undefined)
    return redirect(q.paths.codes)
  }

  function generateCooldown(q: Req, retryAfterMs: number): PageResponse {
    flash(
      q.s,
      'error',
      `You generated a batch only recently. You can generate a new batch in ${formatDuration(retryAfterMs)}.`,
    )
    return redirect(q.paths.dashboard)
  }

  /** What is left of the slot behind `token`; `null` when it is gone. Spends nothing. */
  async function revealStatusOf(userId: string, token: string): Promise<RevealStatus | null> {
    try {
      return await rc.revealStatus({ userId, reveal: token })
    } catch (e) {
      if (isRecoveryCodesError(e, 'REVEAL_UNAVAILABLE')) return null
      throw e
    }
  }

  /** The reveal token of the session, or a redirect to the dashboard saying there is none. */
  function revealOf(q: Req): string | PageResponse {
    const token = str(q.s.get(K.reveal))
    if (token) return token
    flash(q.s, 'info', 'There are no new codes to show. Generate a batch to get codes.')
    return redirect(q.paths.dashboard)
  }

  function alreadyShown(q: Req): PageResponse {
    flash(
      q.s,
      'info',
      'These codes have already been shown once. While they are available you can still download each format and email them, once each, or generate a new batch.',
    )
    return redirect(q.paths.dashboard)
  }

  /** Safe: shows the button that shows the codes; spends nothing. */
  async function getCodes(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    const token = revealOf(q)
    if (typeof token !== 'string') return token
    if (isReplacement(q)) return redirect(q.paths.replacement)
    const left = await revealStatusOf(u, token)
    if (!left) return revealGone(q)
    if (!left.open.includes('view')) return alreadyShown(q)
    const st = await rc.status({ userId: u })
    const l = await layoutFor(q, 'Your new recovery codes')
    return page(q, 200, codesReadyPage(l, batchDatesOf(q, st.active, left.batchId)))
  }

  /**
   * Shows the codes of the reveal slot: its view channel, once (`viewCodes`). The formats and the
   * email are channels of their own, offered on the page until each is used.
   */
  async function postCodes(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    const token = revealOf(q)
    if (typeof token !== 'string') return token
    if (isReplacement(q)) return redirect(q.paths.replacement)
    try {
      const view = await rc.viewCodes({ userId: u, reveal: token })
      // The view may have been the slot's last channel: then nothing else is offered.
      const left = await revealStatusOf(u, token)
      const st = await rc.status({ userId: u })
      const dates = batchDatesOf(q, st.active, view.batchId)
      const l = await layoutFor(q, 'Your new recovery codes')
      return page(
        q,
        200,
        codesPage(l, {
          codes: view.codes,
          batchId: view.batchId,
          createdAt: dates.createdAt ?? now(),
          expiresAt: dates.expiresAt,
          pending: left?.pending === true,
          emailEnabled: rc.config.email.enabled && rc.config.mailer !== null,
          formats: rc.exportFormats,
          used: left?.used ?? ['view', ...rc.exportFormats, 'email'],
          fresh: isFresh(q.s),
          ...(options.emailNote ? { emailNote: options.emailNote } : {}),
        }),
      )
    } catch (e) {
      if (isRecoveryCodesError(e, 'ALREADY_DONE')) return alreadyShown(q)
      if (isRecoveryCodesError(e, 'REVEAL_UNAVAILABLE')) return revealGone(q)
      throw e
    }
  }

  /** "I have saved my codes": activates the pending batch of the session's reveal slot. */
  async function postConfirm(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    const token = str(q.s.get(K.reveal))
    if (!token || isReplacement(q)) {
      flash(q.s, 'info', 'There are no new codes waiting to be turned on.')
      return redirect(q.paths.dashboard)
    }
    try {
      const r = await rc.confirm({ userId: u, reveal: token, ...clientKey(q), ...userAgent(q) })
      // The slot stays: its channels still work, once each, until it expires.
      flash(
        q.s,
        'success',
        r.supersededBatchId
          ? 'Your new recovery codes are active. Your previous codes no longer work.'
          : 'Your recovery codes are active.',
      )
    } catch (e) {
      if (isRecoveryCodesError(e, 'ALREADY_DONE')) flash(q.s, 'info', 'These codes are already active.')
      else if (isRecoveryCodesError(e, 'REVEAL_UNAVAILABLE')) {
        await discardReveal(q)
        flash(
          q.s,
          'error',
          'These new codes expired before you confirmed them, so they were not turned on. Your current codes (if you had any) still work. Generate a new batch to try again.',
        )
      } else throw e
    }
    return redirect(q.paths.dashboard)
  }

  function userAgent(q: Req): { userAgent?: string } {
    const ua = q.r.header('user-agent')
    return ua ? { userAgent: ua.slice(0, 512) } : {}
  }

  /** Safe: the button that shows the replacement code; spends nothing. */
  async function getReplacement(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    const token = str(q.s.get(K.reveal))
    if (!token || !isReplacement(q)) {
      flash(q.s, 'info', 'There is no replacement code to show.')
      return redirect(q.paths.dashboard)
    }
    const left = await revealStatusOf(u, token)
    if (!left) return replacementGone(q)
    if (!left.open.includes('view')) {
      flash(q.s, 'info', 'Your replacement code has already been shown once.')
      return redirect(q.paths.dashboard)
    }
    const l = await layoutFor(q, 'Your replacement code')
    return page(q, 200, replacementReadyPage(l))
  }

  /** Shows the replacement code once (the view channel of its slot). */
  async function postReplacement(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    const token = str(q.s.get(K.reveal))
    if (!token || !isReplacement(q)) {
      flash(q.s, 'info', 'There is no replacement code to show.')
      return redirect(q.paths.dashboard)
    }
    try {
      const view = await rc.viewCodes({ userId: u, reveal: token })
      // Shown: the slot is of no further use to the pages.
      await discardReveal(q)
      const l = await layoutFor(q, 'Your replacement code')
      return page(q, 200, replacementPage(l, { code: view.codes[0] ?? '', batchId: view.batchId, at: now() }))
    } catch (e) {
      if (isRecoveryCodesError(e, 'ALREADY_DONE')) {
        flash(q.s, 'info', 'Your replacement code has already been shown once.')
        return redirect(q.paths.dashboard)
      }
      if (isRecoveryCodesError(e, 'REVEAL_UNAVAILABLE')) return replacementGone(q)
      throw e
    }
  }

  const replacementGone = (q: Req) =>
    slotGone(
      q,
      'Your replacement code is no longer available here (it is kept only for a few minutes and until you sign out). Generate a new batch to get a full set of codes.',
    )

  const REPUDIATION_STATUS = { invalid: 400, expired: 410, used: 409 } as const

  /** "This wasn't me", GET: read-only (mail scanners follow links); explains and asks. */
  async function getRepudiate(q: Req): Promise<PageResponse> {
    const contact = rc.config.notifications?.contact ?? ''
    const tokens = q.r.query.getAll('token')
    const token = tokens.length === 1 ? tokens[0]! : ''
    const r = token ? await rc.inspectRepudiation({ token }) : ({ ok: false, reason: 'invalid' } as const)
    const l = await layoutFor(q, "This wasn't me")
    if (!r.ok) {
      return page(
        q,
        REPUDIATION_STATUS[r.reason],
        repudiationResultPage(l, { ok: false, reason: r.reason, contact }),
      )
    }
    return page(q, 200, repudiatePage(l, { token, kind: r.kind, expiresAt: r.expiresAt, contact }))
  }

  /** "This wasn't me", POST: uses the link once: disables the active batch. */
  async function postRepudiate(q: Req): Promise<PageResponse> {
    const contact = rc.config.notifications?.contact ?? ''
    const token = field(q, 'token', 4096) ?? ''
    const r = token
      ? await rc.repudiate({ token, ...clientKey(q), ...userAgent(q) })
      : ({ ok: false, reason: 'invalid' } as const)
    const l = await layoutFor(q, "This wasn't me")
    if (!r.ok)
      return page(
        q,
        REPUDIATION_STATUS[r.reason],
        repudiationResultPage(l, { ok: false, reason: r.reason, contact }),
      )
    return page(q, 200, repudiationResultPage(l, { ok: true, batchDisabled: r.batchDisabled, contact }))
  }

  /** The session's reveal slot is gone: drop its token, say why, back to the dashboard. */
  async function slotGone(q: Req, message: string): Promise<PageResponse> {
    await discardReveal(q)
    flash(q.s, 'error', message)
    return redirect(q.paths.dashboard)
  }

  const revealGone = (q: Req) =>
    slotGone(
      q,
      'Your new codes are no longer available here (they are kept only for a few minutes and until you sign out). Generate a new batch to get new codes.',
    )

  async function postDownload(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    const stale = await requireFresh(q, u)
    if (stale) return stale
    const fmt = field(q, 'format', 8)
    if (!rc.exportFormats.includes(fmt as ExportFormat)) {
      flash(q.s, 'error', `Choose ${rc.exportFormats.join(', ')}.`)
      return redirect(q.paths.dashboard)
    }
    const token = str(q.s.get(K.reveal))
    if (!token) return revealGone(q)
    try {
      const file = await rc.exportCodes({
        userId: u,
        reveal: token,
        format: fmt as ExportFormat,
        ...clientKey(q),
      })
      return {
        status: 200,
        headers: {
          'Content-Type': file.contentType,
          'Content-Disposition': `attachment; filename="${safeFilename(file.filename)}"`,
          'Cache-Control': 'no-store',
          'X-Content-Type-Options': 'nosniff',
          'Referrer-Policy': 'no-referrer',
          'Content-Security-Policy': "default-src 'none'; sandbox",
        },
        body: file.body,
      }
    } catch (e) {
      if (isRecoveryCodesError(e, 'ALREADY_DONE')) {
        flash(
          q.s,
          'error',
          `These codes have already been downloaded as .${fmt}. Each format can be downloaded only once, so a copy cannot leak later: while the codes are available you can still choose another format, or generate a new batch.`,
        )
        return redirect(q.paths.dashboard)
      }
      if (isRecoveryCodesError(e, 'REVEAL_UNAVAILABLE')) return revealGone(q)
      throw e
    }
  }

  async function postEmail(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    const stale = await requireFresh(q, u)
    if (stale) return stale
    const token = str(q.s.get(K.reveal))
    if (!token) return revealGone(q)
    try {
      const r = await rc.emailCodes({ userId: u, reveal: token, ...clientKey(q) })
      flash(
        q.s,
        'success',
        r.queued ? `Your recovery codes email to ${r.sentTo} is on its way.` : rc.config.email.successMessage,
      )
      if (options.emailNote) flash(q.s, 'info', options.emailNote)
    } catch (e) {
      if (isRecoveryCodesError(e, 'ALREADY_DONE'))
        flash(
          q.s,
          'error',
          'These codes have already been emailed. The email can be sent only once for each batch.',
        )
      else if (isRecoveryCodesError(e, 'REVEAL_UNAVAILABLE')) return revealGone(q)
      else if (isRecoveryCodesError(e, 'FEATURE_DISABLED'))
        flash(q.s, 'error', 'Emailing recovery codes is not enabled on this site.')
      else if (isRecoveryCodesError(e, 'NOT_FOUND'))
        flash(q.s, 'error', 'There is no email address on file for your account.')
      else if (isRecoveryCodesError(e, 'MAIL_FAILED'))
        flash(q.s, 'error', 'The email could not be sent. Download the codes instead.')
      else throw e
    }
    return redirect(q.paths.dashboard)
  }

  async function postVerify(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    const code = field(q, 'code', MAX_CODE_INPUT_LENGTH) ?? ''
    if (!code.trim()) {
      flash(q.s, 'error', CODE_EMPTY)
      return redirect(q.paths.dashboard)
    }
    try {
      const r = await rc.verifySetup({ userId: u, code, ...clientKey(q) })
      if (r.ok) flash(q.s, 'success', 'Setup verified: that code works, and it is still valid.')
      else flash(q.s, 'error', failureText('That code does not match your current batch.', r.retryAfterMs))
    } catch (e) {
      if (isRecoveryCodesError(e, 'ALREADY_DONE')) flash(q.s, 'info', 'This batch has already been verified.')
      else if (isRecoveryCodesError(e, 'NOT_FOUND')) flash(q.s, 'error', 'You have no active recovery codes.')
      else throw e
    }
    return redirect(q.paths.dashboard)
  }

  async function postCodeAction(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    const stale = await requireFresh(q, u)
    if (stale) return stale
    const action = field(q, 'action', 20)
    if (action !== 'invalidate' && action !== 'delete') {
      flash(q.s, 'error', 'Choose whether to invalidate or delete the code.')
      return redirect(q.paths.dashboard)
    }
    const code = field(q, 'code', MAX_CODE_INPUT_LENGTH) ?? ''
    if (!code.trim()) {
      flash(q.s, 'error', CODE_EMPTY)
      return redirect(q.paths.dashboard)
    }
    const input = { userId: u, code, ...clientKey(q) }
    const r = action === 'invalidate' ? await rc.invalidateCode(input) : await rc.deleteCode(input)
    if (r.ok)
      flash(q.s, 'success', action === 'invalidate' ? 'The code was invalidated.' : 'The code was deleted.')
    else
      flash(
        q.s,
        'error',
        failureText('That code does not match an unused code of your batch.', r.retryAfterMs),
      )
    return redirect(q.paths.dashboard)
  }

  async function postDeleteAll(q: Req): Promise<PageResponse> {
    const u = requireUser(q)
    if (typeof u !== 'string') return u
    const stale = await requireFresh(q, u)
    if (stale) return stale
    try {
      await rc.deleteBatch({ userId: u, ...clientKey(q) })
      await discardReveal(q)
      flash(q.s, 'success', 'All your recovery codes were deleted.')
    } catch (e) {
      if (isRecoveryCodesError(e, 'NOT_FOUND')) flash(q.s, 'info', 'You have no active recovery codes.')
      else throw e
    }
    return redirect(q.paths.dashboard)
  }

  async function postLogout(q: Req): Promise<PageResponse> {
    await discardReveal(q)
    await q.s.destroy()
    return redirect(rc.config.logoutRedirect ?? entry(q))
  }

  async function notFound(q: Req): Promise<PageResponse> {
    // No CSRF token is minted for a visitor: a 404 leaves the session as it was.
    const uid = userOf(q.s)
    const l: LayoutModel = {
      siteName,
      title: 'Page not found',
      nonce: q.nonce,
      paths: q.paths,
      user: uid ? { label: hooks.userLabel ? await hooks.userLabel(uid) : uid } : null,
      csrf: uid ? csrfToken(q.s) : '',
    }
    const home = uid
      ? { href: q.paths.dashboard, label: 'Go to your recovery codes' }
      : { href: entry(q), label: 'Go to sign in' }
    return page(q, 404, notFoundPage(l, { home }))
  }

  async function forbidden(q: Req, text: string, status = 403): Promise<PageResponse> {
    const l = await layoutFor(q, 'Request refused', false)
    return page(
      q,
      status,
      messagePage(l, {
        heading: 'Request refused',
        text,
        link: { href: userOf(q.s) ? q.paths.dashboard : entry(q), label: 'Back' },
      }),
    )
  }

  type Route = { get?: (q: Req) => Promise<PageResponse>; post?: (q: Req) => Promise<PageResponse> }
  const rel = (p: string) => p.slice(base.length) || '/'
  const routes = new Map<string, Route>([
    [rel(paths.dashboard), { get: getDashboard }],
    [rel(paths.signIn), { get: getSignIn, post: postSignIn }],
    [rel(paths.login), { get: getLogin, post: postLogin }],
    [rel(paths.reauth), { get: getReauth, post: postReauth }],
    [rel(paths.codes), { get: getCodes, post: postCodes }],
    [rel(paths.generate), { post: postGenerate }],
    [rel(paths.download), { post: postDownload }],
    [rel(paths.email), { post: postEmail }],
    [rel(paths.verify), { post: postVerify }],
    [rel(paths.codeAction), { post: postCodeAction }],
    [rel(paths.deleteBatch), { post: postDeleteAll }],
    [rel(paths.logout), { post: postLogout }],
    [rel(paths.confirm), { post: postConfirm }],
    [rel(paths.replacement), { get: getReplacement, post: postReplacement }],
    // Only when this service sends notifications with "This wasn't me" links.
    ...(rc.config.notifications
      ? ([[rel(paths.repudiate), { get: getRepudiate, post: postRepudiate }]] as const)
      : []),
  ])

  return {
    paths,
    bodyLimit,
    async notFound(r, ctx) {
      const q: Req = { r, ctx, s: NO_SESSION, nonce: randomToken(16), paths: pathsFor(r.mountPath) }
      try {
        // Without a session (none mounted on this path, or it failed) the page is the visitor's.
        try {
          q.s = hooks.session(ctx)
        } catch {}
        return await notFound(q).catch(() => notFound({ ...q, s: NO_SESSION }))
      } catch (error) {
        options.logger?.error('recovery-codes ui: request failed', {
          route: 'not-found',
          error: isRecoveryCodesError(error) ? error.code : error instanceof Error ? error.name : 'unknown',
        })
        return { status: 404, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: 'Not found' }
      }
    },
    async handle(r, ctx) {
      const route = routes.get(r.path)
      if (!route) return null
      const q: Req = { r, ctx, s: hooks.session(ctx), nonce: randomToken(16), paths: pathsFor(r.mountPath) }
      try {
        if (r.method === 'GET' || r.method === 'HEAD') {
          if (!route.get) return methodNotAllowed('POST')
          return await route.get(q)
        }
        if (r.method !== 'POST')
          return methodNotAllowed(route.get && route.post ? 'GET, POST' : route.get ? 'GET' : 'POST')
        if (!route.post) return methodNotAllowed('GET')
        if (!isSameOriginRequest(r.header, r.origin, options.allowedOrigins ?? []))
          return await forbidden(q, 'This form was sent from another site, so it was refused.')
        if (r.bodyError === 'too-large') return await forbidden(q, 'The form was too large.', 413)
        if (r.bodyError || !r.form) return await forbidden(q, 'The form could not be read.', 400)
        const expected = str(q.s.get(K.csrf))
        const sent = r.form.get('_csrf')
        if (!expected || typeof sent !== 'string' || !safeEqual(sent, expected))
          return await forbidden(
            q,
            'This form has expired (or came from somewhere else). Go back, reload the page and try again.',
          )
        return await route.post(q)
      } catch (error) {
        options.logger?.error('recovery-codes ui: request failed', {
          route: r.path,
          error: isRecoveryCodesError(error) ? error.code : error instanceof Error ? error.name : 'unknown',
        })
        const unavailable = isRecoveryCodesError(error, 'STORE_UNAVAILABLE')
        return forbidden(
          q,
          unavailable
            ? 'The service is temporarily unavailable. Please try again in a moment.'
            : 'Something went wrong. Please try again.',
          unavailable ? 503 : 500,
        ).catch(() => ({ status: 500, headers: { 'Content-Type': 'text/plain' }, body: 'Internal error' }))
      }
    },
  }

  function methodNotAllowed(allow: string): PageResponse {
    return {
      status: 405,
      headers: { Allow: allow, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' },
      body: 'Method not allowed',
    }
  }
}
