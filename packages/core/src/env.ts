/**
 * Configuration from `RECOVERY_CODES_*` environment variables, and the translation of the
 * reference app's `DJANGO_AUTH_RECOVERY_*` flags.
 *
 * Parsing here is syntactic and strict (integers are digits, booleans are `true`/`false`/`1`/`0`,
 * enumerations are spelled exactly); ranges and cross-field rules are checked by `resolveConfig()`,
 * which reports option paths (the table in `docs/configuration.md` maps them to variables).
 */
import type { PepperInput, RecoveryCodesConfig } from './config.ts'
import { RecoveryCodesError, type RecoveryCodesIssue } from './errors.ts'

/**
 * How one variable's value is parsed: `integer` (`/^-?\d+$/`), `integer-or-never` and
 * `integer-or-unlimited` (the word stands for `null`), `decimal` (`2` or `1.5`: no sign, exponent or
 * unit), `boolean` (`true`, `false`, `1`, `0`), `string` (as is), or one of a fixed set of words.
 */
export type EnvKind =
  | 'integer'
  | 'integer-or-never'
  | 'integer-or-unlimited'
  | 'decimal'
  | 'boolean'
  | 'string'
  | { readonly oneOf: readonly string[] }

/** One supported environment variable. */
export interface EnvVariable {
  /** The variable name. */
  readonly name: string
  /** The dotted config option it sets. */
  readonly option: string
  /** How its value is parsed. */
  readonly kind: EnvKind
}

/** Prefix of every variable read by {@link configFromEnv}. */
export const ENV_PREFIX = 'RECOVERY_CODES_'

/**
 * Every variable {@link configFromEnv} reads besides the peppers (`RECOVERY_CODES_PEPPERS`,
 * `RECOVERY_CODES_PEPPER`).
 */
export const ENV_VARIABLES: readonly EnvVariable[] = Object.freeze(
  (
    [
      ['FORMAT', 'format', { oneOf: ['default', 'crockford', 'django'] }],
      ['BATCH_SIZE', 'batchSize', 'integer'],
      ['DEFAULT_EXPIRY_DAYS', 'defaultExpiryDays', 'integer-or-never'],
      ['LOW_CODES_THRESHOLD', 'lowCodesThreshold', 'integer'],
      ['MAX_LOGIN_ATTEMPTS', 'maxLoginAttempts', 'integer'],
      ['HARD_FAILURE_CAP', 'hardFailureCap', 'integer'],
      ['CLIENT_MAX_ATTEMPTS', 'clientMaxAttempts', 'integer'],
      ['COOLDOWN_BASE_SECONDS', 'cooldown.baseSeconds', 'integer'],
      ['COOLDOWN_MULTIPLIER', 'cooldown.multiplier', 'decimal'],
      ['COOLDOWN_CUTOFF_SECONDS', 'cooldown.cutoffSeconds', 'integer'],
      ['CACHE_TIMEOUT_MS', 'cacheTimeoutMs', 'integer'],
      ['CACHE_TTL_SECONDS', 'cacheTtl.seconds', 'integer'],
      ['CACHE_TTL_MIN_SECONDS', 'cacheTtl.minSeconds', 'integer'],
      ['CACHE_TTL_MAX_SECONDS', 'cacheTtl.maxSeconds', 'integer'],
      ['HISTORY_PER_PAGE', 'history.perPage', 'integer'],
      ['HISTORY_MAX_VISIBLE', 'history.maxVisible', 'integer'],
      ['REVEAL_TTL_SECONDS', 'reveal.ttlSeconds', 'integer'],
      ['PURGE_RETENTION_DAYS', 'purge.retentionDays', 'integer'],
      ['PURGE_ATTEMPT_RETENTION_DAYS', 'purge.attemptRetentionDays', 'integer'],
      ['PURGE_BATCH_SIZE', 'purge.batchSize', 'integer'],
      ['PURGE_CHUNK_BUDGET_MS', 'purge.chunkBudgetMs', 'integer'],
      ['PURGE_MAX_DELETIONS_PER_RUN', 'purge.maxDeletionsPerRun', 'integer-or-unlimited'],
      ['PURGE_DELETE_EMPTY_BATCHES', 'purge.deleteEmptyBatches', 'boolean'],
      ['PURGE_REPORT_TO_ADMIN', 'purge.reportToAdmin', 'boolean'],
      ['AUDIT_RETENTION_DAYS', 'audit.retentionDays', 'integer'],
      ['AUDIT_AUTO_CLEANUP', 'audit.autoCleanup', 'boolean'],
      ['AUDIT_STORE_EMAIL_LOG', 'audit.storeEmailLog', 'boolean'],
      ['EMAIL_ENABLED', 'email.enabled', 'boolean'],
      ['EMAIL_FROM', 'email.from', 'string'],
      ['EMAIL_ADMIN', 'email.adminEmail', 'string'],
      ['EMAIL_SUCCESS_MESSAGE', 'email.successMessage', 'string'],
      ['EXPORT_FILE_NAME', 'export.fileName', 'string'],
      ['EXPORT_DEFAULT_FORMAT', 'export.defaultFormat', { oneOf: ['txt', 'csv', 'pdf'] }],
      ['SITE_NAME', 'siteName', 'string'],
      ['LOGOUT_REDIRECT', 'logoutRedirect', 'string'],
      ['LOGIN_MODE', 'loginMode', { oneOf: ['second-factor', 'identifier-and-code'] }],
      ['DEPLOYMENT', 'deployment', { oneOf: ['single', 'multi'] }],
      ['ACTIVATION', 'activation', { oneOf: ['confirm', 'immediate'] }],
      ['REPLACE_ON_USE', 'replaceOnUse', 'boolean'],
      ['PRESET', 'preset', { oneOf: ['nist-800-63b-4'] }],
    ] as const
  ).map(([suffix, option, kind]) => Object.freeze({ name: `${ENV_PREFIX}${suffix}`, option, kind })),
)

/** `id:secret,id2:secret2`: every pepper, current first. */
export const ENV_PEPPERS = 'RECOVERY_CODES_PEPPERS'
/** A single pepper, id `k1`. */
export const ENV_PEPPER = 'RECOVERY_CODES_PEPPER'

/** Options for {@link configFromEnv}. */
export interface ConfigFromEnvOptions {
  /**
   * `RECOVERY_CODES_*` names owned by other tools (for example a CLI's database URL) that should not
   * be reported as unknown.
   * @default []
   */
  ignore?: readonly string[]
}

const INTEGER = /^-?\d+$/
const DECIMAL = /^\d+(?:\.\d+)?$/

function parseValue(kind: EnvKind, raw: string): { value: unknown } | { message: string } {
  const integer = (): { value: unknown } | { message: string } => {
    if (!INTEGER.test(raw))
      return { message: 'must be an integer (digits only: no unit, exponent or spaces)' }
    const n = Number(raw)
    return Number.isSafeInteger(n) ? { value: n } : { message: 'is out of range' }
  }
  switch (kind) {
    case 'integer':
      return integer()
    case 'integer-or-never':
      return raw === 'never' ? { value: null } : integer()
    case 'integer-or-unlimited':
      return raw === 'unlimited' ? { value: null } : integer()
    case 'decimal':
      return DECIMAL.test(raw)
        ? { value: Number(raw) }
        : { message: 'must be a decimal number such as 2 or 1.5 (no sign, exponent or spaces)' }
    case 'boolean':
      if (raw === 'true' || raw === '1') return { value: true }
      if (raw === 'false' || raw === '0') return { value: false }
      return { message: 'must be true, false, 1 or 0' }
    case 'string':
      return { value: raw }
    default:
      return kind.oneOf.includes(raw)
        ? { value: raw }
        : { message: `must be one of ${kind.oneOf.map((v) => `'${v}'`).join(', ')}` }
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.')
  let node = target
  for (const key of keys.slice(0, -1)) {
    if (node[key] === undefined) node[key] = {}
    node = node[key] as Record<string, unknown>
  }
  node[keys[keys.length - 1]!] = value
}

// Never echoes a value: a secret pasted into the wrong variable must not reach a log.
function parsePeppers(name: string, raw: string, issues: RecoveryCodesIssue[]): PepperInput[] {
  const peppers: PepperInput[] = []
  raw.split(',').forEach((part, i) => {
    const entry = part.trim()
    const colon = entry.indexOf(':')
    if (colon <= 0 || colon === entry.length - 1) {
      issues.push({ path: name, message: `entry ${i + 1} must be id:secret` })
      return
    }
    peppers.push({ id: entry.slice(0, colon), secret: entry.slice(colon + 1) })
  })
  return peppers
}

/**
 * Reads `RECOVERY_CODES_*` variables into a partial config (everything but `store` and the other
 * ports, which only code can supply). Peppers come from `RECOVERY_CODES_PEPPERS`
 * (`id:secret,id2:secret2`, current first) or `RECOVERY_CODES_PEPPER` (one secret, id `k1`).
 *
 * Strict: integers must match `/^-?\d+$/`, `RECOVERY_CODES_COOLDOWN_MULTIPLIER` is a plain decimal,
 * booleans are `true`, `false`, `1` or `0`, an empty value is an error (unset the variable to get the
 * default), and an unknown `RECOVERY_CODES_*` name is an error (a typo must not silently fall back
 * to a default). Every problem is collected; issue paths are variable names; values are never echoed.
 *
 * @throws RecoveryCodesError `CONFIG_INVALID` listing every bad variable.
 * @example
 * ```ts
 * const fromEnv = configFromEnv(process.env)
 * if (!fromEnv.peppers) throw new Error('Set RECOVERY_CODES_PEPPER')
 * const rc = createRecoveryCodes({ ...fromEnv, peppers: fromEnv.peppers, store: kyselyStore(db) })
 * ```
 */
export function configFromEnv(
  env: Record<string, string | undefined>,
  options: ConfigFromEnvOptions = {},
): Partial<RecoveryCodesConfig> {
  const issues: RecoveryCodesIssue[] = []
  const out: Record<string, unknown> = {}
  const known = new Map(ENV_VARIABLES.map((v) => [v.name, v]))
  const ignore = new Set(options.ignore ?? [])

  for (const name of Object.keys(env).sort()) {
    const raw = env[name]
    if (!name.startsWith(ENV_PREFIX) || raw === undefined || ignore.has(name)) continue
    const spec = known.get(name)
    if (!spec && name !== ENV_PEPPERS && name !== ENV_PEPPER) {
      issues.push({
        path: name,
        message:
          'is not a known variable (see https://github.com/recovery-codes/recovery-codes/blob/main/packages/core/docs/configuration.md)',
      })
      continue
    }
    if (raw === '') {
      issues.push({ path: name, message: 'is empty; unset it to use the default' })
      continue
    }
    if (!spec) continue
    const parsed = parseValue(spec.kind, raw)
    if ('message' in parsed) issues.push({ path: name, message: parsed.message })
    else setPath(out, spec.option, parsed.value)
  }

  const many = env[ENV_PEPPERS]
  const one = env[ENV_PEPPER]
  if (many !== undefined && one !== undefined) {
    issues.push({ path: ENV_PEPPERS, message: `set either ${ENV_PEPPERS} or ${ENV_PEPPER}, not both` })
  } else if (many) {
    out.peppers = parsePeppers(ENV_PEPPERS, many, issues)
  } else if (one) {
    out.peppers = [{ id: 'k1', secret: one }]
  }

  if (issues.length > 0) {
    const names = [...new Set(issues.map((i) => i.path))]
    const lines = issues.map((i) => `- ${i.path}: ${i.message}`)
    throw new RecoveryCodesError(
      'CONFIG_INVALID',
      `Invalid recovery-codes environment (${names.length} variable${names.length === 1 ? '' : 's'}: ${names.join(', ')}):\n${lines.join('\n')}`,
      { issues },
    )
  }
  return out as Partial<RecoveryCodesConfig>
}

// ---------------------------------------------------------------------------------------------
// The reference app's flags
// ---------------------------------------------------------------------------------------------

/** One flag of the reference app and what it becomes here. */
export interface ReferenceEnvMapping {
  /** The reference app's flag. */
  readonly reference: string
  /** Our variable, or `null` when the flag has no meaning here. */
  readonly ours: string | null
  /** Our option path, or `null`. */
  readonly option: string | null
  /** How values translate, or why the flag is dropped. */
  readonly note: string
}

const m = (
  reference: string,
  ours: string | null,
  option: string | null,
  note: string,
): ReferenceEnvMapping =>
  Object.freeze({ reference: `DJANGO_AUTH_RECOVERY_${reference}`, ours, option, note })

/**
 * Every flag of the reference app (django-auth-recovery-codes), mapped to ours. Used by
 * {@link translateReferenceEnv} and rendered in `docs/configuration.md`.
 */
export const REFERENCE_ENV_MAPPING: readonly ReferenceEnvMapping[] = Object.freeze([
  m(
    'CODES_ADMIN_SENDER_EMAIL',
    'RECOVERY_CODES_EMAIL_ADMIN',
    'email.adminEmail',
    'The reference sends purge reports to this address; set purge.reportToAdmin to do the same.',
  ),
  m(
    'CODE_ADMIN_EMAIL_HOST_USER',
    'RECOVERY_CODES_EMAIL_FROM',
    'email.from',
    'The sender of recovery emails.',
  ),
  m(
    'CODE_ADMIN_USERNAME',
    null,
    null,
    'Dropped: audit records carry the acting user id; there is no admin account to name.',
  ),
  m(
    'CODE_STORE_EMAIL_LOG',
    'RECOVERY_CODES_AUDIT_STORE_EMAIL_LOG',
    'audit.storeEmailLog',
    'Python True/False → true/false.',
  ),
  m(
    'KEY',
    'RECOVERY_CODES_PEPPER',
    'peppers',
    'Becomes pepper k1. Must decode (base64, base64url or hex:) to at least 32 random bytes; demo values are refused. Codes made by the reference app cannot be migrated (different hashing).',
  ),
  m(
    'CODE_AUDIT_ENABLE_AUTO_CLEANUP',
    'RECOVERY_CODES_AUDIT_AUTO_CLEANUP',
    'audit.autoCleanup',
    'Python True/False → true/false.',
  ),
  m(
    'CODE_AUDIT_RETENTION_DAYS',
    'RECOVERY_CODES_AUDIT_RETENTION_DAYS',
    'audit.retentionDays',
    'Same meaning.',
  ),
  m(
    'CODE_PURGE_DELETE_RETENTION_DAYS',
    'RECOVERY_CODES_PURGE_RETENTION_DAYS',
    'purge.retentionDays',
    'Same meaning.',
  ),
  m(
    'CODE_PURGE_DELETE_SCHEDULER_USE_LOGGER',
    null,
    null,
    'Dropped: purge always returns a report, writes an audit record and logs through the logger port when one is given.',
  ),
  m(
    'CODES_AUTH_RATE_LIMITER_USE_CACHE',
    null,
    null,
    'Dropped: the limiter always lives in the store (atomic, shared, fail-closed); a cache is never authoritative for it.',
  ),
  m(
    'CODES_BASE_COOLDOWN',
    'RECOVERY_CODES_COOLDOWN_BASE_SECONDS',
    'cooldown.baseSeconds',
    'Seconds, same meaning.',
  ),
  m(
    'CODES_COOLDOWN_CUTOFF_POINT',
    'RECOVERY_CODES_COOLDOWN_CUTOFF_SECONDS',
    'cooldown.cutoffSeconds',
    'Seconds, same meaning; at most 30 days.',
  ),
  m(
    'CODES_COOLDOWN_MULTIPLIER',
    'RECOVERY_CODES_COOLDOWN_MULTIPLIER',
    'cooldown.multiplier',
    'Same meaning; at least 1.',
  ),
  m(
    'CODES_MAX_LOGIN_ATTEMPTS',
    'RECOVERY_CODES_MAX_LOGIN_ATTEMPTS',
    'maxLoginAttempts',
    'Failures per identifier before a lockout; a hard cap (hardFailureCap) disables the batch.',
  ),
  m(
    'CODES_CACHE_MAX',
    'RECOVERY_CODES_CACHE_TTL_MAX_SECONDS',
    'cacheTtl.maxSeconds',
    'The ceiling of the cache TTL (the reference documents it both as a TTL bound and a limiter count; the limiter is not cached here).',
  ),
  m(
    'CODES_CACHE_MIN',
    'RECOVERY_CODES_CACHE_TTL_MIN_SECONDS',
    'cacheTtl.minSeconds',
    'The floor of the cache TTL; at least 1.',
  ),
  m(
    'CODES_CACHE_TTL',
    'RECOVERY_CODES_CACHE_TTL_SECONDS',
    'cacheTtl.seconds',
    'Seconds; must lie within min and max.',
  ),
  m('CODE_MAX_VISIBLE', 'RECOVERY_CODES_HISTORY_MAX_VISIBLE', 'history.maxVisible', 'Same meaning.'),
  m('CODE_PER_PAGE', 'RECOVERY_CODES_HISTORY_PER_PAGE', 'history.perPage', 'Batches per history page.'),
  m(
    'CODES_BATCH_DELETE_SIZE',
    'RECOVERY_CODES_PURGE_BATCH_SIZE',
    'purge.batchSize',
    'Rows per delete statement.',
  ),
  m(
    'CODES_PURGE_MAX_DELETIONS_PER_RUN',
    'RECOVERY_CODES_PURGE_MAX_DELETIONS_PER_RUN',
    'purge.maxDeletionsPerRun',
    '-1, empty or None (unlimited) → unlimited.',
  ),
  m(
    'CODES_MAX_DELETIONS_PER_RUN',
    'RECOVERY_CODES_PURGE_MAX_DELETIONS_PER_RUN',
    'purge.maxDeletionsPerRun',
    'The name used in the reference settings example (its code reads the PURGE_ one); -1, empty or None → unlimited. The PURGE_ name wins when both are set.',
  ),
  m(
    'CODES_DEFAULT_FILE_NAME',
    'RECOVERY_CODES_EXPORT_FILE_NAME',
    'export.fileName',
    'Must match /^[A-Za-z0-9._-]{1,64}$/.',
  ),
  m(
    'CODES_DEFAULT_FORMAT',
    'RECOVERY_CODES_EXPORT_DEFAULT_FORMAT',
    'export.defaultFormat',
    "'txt', 'csv' or 'pdf'.",
  ),
  m('CODES_SITE_NAME', 'RECOVERY_CODES_SITE_NAME', 'siteName', 'No control characters.'),
  m(
    'CODE_REDIRECT_VIEW_AFTER_LOGOUT',
    'RECOVERY_CODES_LOGOUT_REDIRECT',
    'logoutRedirect',
    "Only a relative path ('/…') translates; a Django view name (e.g. logout_user) is dropped with a note: set RECOVERY_CODES_LOGOUT_REDIRECT to its path.",
  ),
  m(
    'CODE_EMAIL_SUCCESS_MSG',
    'RECOVERY_CODES_EMAIL_SUCCESS_MESSAGE',
    'email.successMessage',
    'Same meaning.',
  ),
  m(
    'CODES_LOGGING',
    null,
    null,
    'Dropped: a Python logging dict, not a flag; pass a logger port (console, pino, consola) instead.',
  ),
])

/** Options for {@link translateReferenceEnv}. */
export interface TranslateReferenceEnvOptions {
  /** Called for each reference flag that was set but not translated, with the reason. */
  onSkip?: (reference: string, reason: string) => void
}

const BOOLEAN_OPTIONS = new Set(
  ENV_VARIABLES.filter((v) => v.kind === 'boolean').map((v) => v.name as string),
)

function unquote(v: string): string {
  const t = v.trim()
  return t.length >= 2 && (t[0] === '"' || t[0] === "'") && t[t.length - 1] === t[0] ? t.slice(1, -1) : t
}

/**
 * Translates the reference app's `DJANGO_AUTH_RECOVERY_*` variables into ours, for
 * {@link configFromEnv}. Returns the input's own `RECOVERY_CODES_*` variables (they win) plus the
 * translated ones; nothing else.
 *
 * Values: surrounding quotes are removed; Python `True`/`False` become `true`/`false`;
 * `-1`, empty or `None` for max deletions per run become `unlimited`; a logout redirect that is a
 * Django view name rather than a path is dropped. Flags with no meaning here
 * (see {@link REFERENCE_ENV_MAPPING}) are dropped; each drop is reported to `onSkip`.
 * Anything else passes through unchanged, so `configFromEnv` reports it under our name.
 *
 * @example
 * ```ts
 * const config = configFromEnv(translateReferenceEnv(process.env, { onSkip: (n, why) => log.warn(n, { why }) }))
 * ```
 */
export function translateReferenceEnv(
  env: Record<string, string | undefined>,
  options: TranslateReferenceEnvOptions = {},
): Record<string, string> {
  const skip = options.onSkip ?? (() => {})
  const out: Record<string, string> = {}
  const own = new Set<string>()
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith(ENV_PREFIX) && value !== undefined) {
      out[name] = value
      own.add(name)
    }
  }
  // The documented PURGE_ name comes first in the table, so it wins over the alias.
  for (const { reference, ours, note } of REFERENCE_ENV_MAPPING) {
    const raw = env[reference]
    if (raw === undefined) continue
    if (ours === null) {
      skip(reference, note)
      continue
    }
    if (own.has(ours)) {
      skip(reference, `${ours} is set and wins`)
      continue
    }
    if (Object.hasOwn(out, ours)) {
      skip(reference, `${ours} was already set from another reference flag`)
      continue
    }
    let value = unquote(raw)
    if (BOOLEAN_OPTIONS.has(ours) && /^(true|false)$/i.test(value)) value = value.toLowerCase()
    if (
      ours === 'RECOVERY_CODES_PURGE_MAX_DELETIONS_PER_RUN' &&
      (value === '-1' || value === '' || value === 'None')
    ) {
      value = 'unlimited'
    }
    if (ours === 'RECOVERY_CODES_LOGOUT_REDIRECT' && !value.startsWith('/')) {
      skip(reference, 'is a Django view name, not a path; set RECOVERY_CODES_LOGOUT_REDIRECT to its path')
      continue
    }
    out[ours] = value
  }
  return out
}
