/**
 * Stable error codes. Each code maps to exactly one HTTP status in {@link ERROR_HTTP_STATUS};
 * adapters never choose statuses themselves.
 */
export const ERROR_HTTP_STATUS = {
  /** Configuration failed validation (every problem is listed in `issues`). */
  CONFIG_INVALID: 500,
  /** Request input failed validation. */
  INVALID_INPUT: 400,
  /** The request body is not JSON where JSON is required. */
  UNSUPPORTED_MEDIA_TYPE: 415,
  /** The request body exceeds the configured limit. */
  PAYLOAD_TOO_LARGE: 413,
  /** No authenticated user. */
  UNAUTHENTICATED: 401,
  /** A submitted recovery code did not verify (wrong, used, expired, invalidated, locked: all alike). */
  INVALID_CODE: 401,
  /** Authenticated but not allowed (stale re-authentication, cross-site request, bad CSRF token). */
  FORBIDDEN: 403,
  /** Sensitive action without a fresh re-authentication. */
  REAUTH_REQUIRED: 403,
  /** Cross-site or token-less state-changing request. */
  CSRF_REJECTED: 403,
  /** The user has no active batch, or the addressed batch or code is not theirs. */
  NOT_FOUND: 404,
  /** The route does not exist. */
  ROUTE_NOT_FOUND: 404,
  /** The method is not allowed on this route. */
  METHOD_NOT_ALLOWED: 405,
  /**
   * A once-only action was already done: this channel of the reveal slot (the view, one download
   * format, the email; the other channels stay open), or verify-setup of this batch.
   */
  ALREADY_DONE: 409,
  /** An illegal state transition was requested. */
  ILLEGAL_TRANSITION: 409,
  /** The reveal slot is gone: logged out, new batch, batch deleted, expired, or every channel used. */
  REVEAL_UNAVAILABLE: 410,
  /** A cooldown (regeneration or lockout) is running; see `retryAfterMs`. */
  COOLDOWN_ACTIVE: 429,
  /** Too many attempts; see `retryAfterMs`. */
  RATE_LIMITED: 429,
  /** A feature that is off in the configuration (for example email). */
  FEATURE_DISABLED: 501,
  /** A port (store, cache, mailer, queue) failed; the operation was denied. */
  STORE_UNAVAILABLE: 503,
  /**
   * A store call ran past its deadline (PostgreSQL `statement_timeout` / `lock_timeout`, or the
   * client's query timeout); the operation was denied. When the database enforced the deadline
   * (e.g. `createPgPool` of the Kysely store) it rolled the statement back, so nothing committed.
   */
  STORE_TIMEOUT: 503,
  /** The mailer failed. */
  MAIL_FAILED: 502,
  /**
   * An import source could not be read: a corrupt row, a wrong source key, a duplicate user, an
   * unknown format. The message names the row; nothing of that row was written.
   */
  IMPORT_INVALID: 422,
  /** Anything unexpected. */
  INTERNAL: 500,
} as const satisfies Record<string, number>

/** A stable, machine-readable error code. */
export type RecoveryCodesErrorCode = keyof typeof ERROR_HTTP_STATUS

/** One problem found while validating input or configuration. */
export interface RecoveryCodesIssue {
  /** Dotted path of the offending option or field, e.g. `cooldown.base`. */
  path: string
  /** What is wrong, never including the submitted value of a secret. */
  message: string
}

/** Options for {@link RecoveryCodesError}. */
export interface RecoveryCodesErrorOptions {
  /** Every problem found, for `CONFIG_INVALID` and `INVALID_INPUT`. */
  issues?: readonly RecoveryCodesIssue[]
  /** Milliseconds until a retry can succeed, for `COOLDOWN_ACTIVE` and `RATE_LIMITED`. */
  retryAfterMs?: number
  /** The underlying error; kept off serialisations. */
  cause?: unknown
}

/**
 * The one error class of the library. `code` is stable; `message` is for humans and never
 * carries a code, pepper, digest or session secret.
 *
 * @example
 * ```ts
 * try { await rc.exportCodes({ userId, reveal, format: 'pdf' }) }
 * catch (e) { if (isRecoveryCodesError(e, 'ALREADY_DONE')) … }
 * ```
 */
export class RecoveryCodesError extends Error {
  override readonly name = 'RecoveryCodesError'
  readonly code: RecoveryCodesErrorCode
  readonly status: number
  readonly issues: readonly RecoveryCodesIssue[]
  readonly retryAfterMs: number | undefined

  constructor(code: RecoveryCodesErrorCode, message: string, options: RecoveryCodesErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.status = ERROR_HTTP_STATUS[code]
    this.issues = Object.freeze([...(options.issues ?? [])])
    this.retryAfterMs = options.retryAfterMs
  }

  /** The public JSON shape `{ error: { code, message } }`; no cause, no stack. */
  toJSON(): { error: { code: RecoveryCodesErrorCode; message: string; issues?: RecoveryCodesIssue[] } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.issues.length > 0 ? { issues: [...this.issues] } : {}),
      },
    }
  }
}

/** Type guard, optionally narrowed to one code. */
export function isRecoveryCodesError(
  value: unknown,
  code?: RecoveryCodesErrorCode,
): value is RecoveryCodesError {
  return value instanceof RecoveryCodesError && (code === undefined || value.code === code)
}
