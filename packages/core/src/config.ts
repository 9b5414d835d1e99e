/**
 * Configuration: one strict schema, resolved once, frozen, secrets redacted.
 *
 * `resolveConfig()` validates every option (unknown keys, types, ranges, cross-field rules, port
 * shapes, pepper strength) in one pass and throws a single `CONFIG_INVALID` error that lists every
 * problem by option path. It never mutates the caller's object and never puts a secret in a message.
 */
import { z } from 'zod'
import { type ImportOptions, type ResolvedImportOptions, resolveImportOptions } from './config-import.ts'
import {
  CODE_FORMAT_PRESETS,
  type CodeFormat,
  codeLength,
  entropyBits,
  MIN_ENTROPY_BITS,
  validateCodeFormat,
} from './domain/code-format.ts'
import type { CooldownPolicy } from './domain/cooldown.ts'
import { RecoveryCodesError, type RecoveryCodesIssue } from './errors.ts'
import type { Cache } from './ports/cache.ts'
import type { Clock } from './ports/clock.ts'
import type { EventSink } from './ports/events.ts'
import type { Logger } from './ports/logger.ts'
import type { Mailer } from './ports/mailer.ts'
import type { Queue } from './ports/queue.ts'
import type { RandomReader } from './ports/random.ts'
import { type RecoveryCodeStore, STORE_SCOPE } from './ports/store.ts'
import { systemClock, systemRandom } from './runtime.ts'
import { type ExportRenderer, PDF_RENDERER_PACKAGE } from './service/export.ts'
import { NOTIFICATION_KINDS, type NotificationKind } from './service/repudiation-token.ts'
import type { ExportFormat } from './service/types.ts'

// ---------------------------------------------------------------------------------------------
// Option types
// ---------------------------------------------------------------------------------------------

/** Names of the built-in code formats accepted by `config.format`. */
export type CodeFormatPreset = keyof typeof CODE_FORMAT_PRESETS

/**
 * One pepper (HMAC key) as the host supplies it.
 *
 * `secret` is either raw bytes or a string in one of these encodings:
 * - `base64:<base64 or base64url>` or plain `<base64 or base64url>` (padding optional), as printed by
 *   `openssl rand -base64 32`;
 * - `hex:<hex>`, as printed by `openssl rand -hex 32` with the prefix added. An unprefixed string of
 *   hex digits only is refused as ambiguous (it is valid base64 too, and would decode differently).
 *
 * The decoded secret must be at least {@link MIN_PEPPER_BYTES} random bytes.
 */
export interface PepperInput {
  /** Key id stored beside each digest; `/^[A-Za-z0-9_-]{1,32}$/`, unique. */
  id: string
  /** The secret: raw bytes, or base64 / base64url / `hex:` text (see above). */
  secret: string | Uint8Array
}

/**
 * A resolved pepper. `secret` is a private copy of the decoded bytes, held in a non-enumerable
 * property; `JSON.stringify`, `String()` and `util.inspect` show only the id.
 */
export interface ResolvedPepper {
  /** Key id. */
  readonly id: string
  /** Decoded key bytes (at least 32). Never log or serialise. */
  readonly secret: Uint8Array
}

/** Capped exponential cooldown for lockouts and the regeneration penalty (seconds). */
export interface CooldownOptions {
  /**
   * The first cooldown, in seconds; integer, at most `cutoffSeconds`.
   * @default 60
   */
  baseSeconds: number
  /**
   * Growth per step: `min(cutoff, base × multiplier^k)`. Finite, from 1 to 10; may be fractional.
   * @default 2
   */
  multiplier: number
  /**
   * The cap, in seconds; integer, at most 30 days (2,592,000).
   * @default 3600
   */
  cutoffSeconds: number
}

/** TTL of cached reads (history pages, status), clamped between a floor and a ceiling. */
export interface CacheTtlOptions {
  /**
   * TTL in seconds; must lie within `[minSeconds, maxSeconds]`.
   * @default 300
   */
  seconds: number
  /**
   * Lowest TTL allowed, in seconds.
   * @default 60
   */
  minSeconds: number
  /**
   * Highest TTL allowed, in seconds.
   * @default 3600
   */
  maxSeconds: number
}

/** Batch history paging. */
export interface HistoryOptions {
  /**
   * Batches per page; at most `maxVisible`.
   * @default 10
   */
  perPage: number
  /**
   * Most batches shown in the history, newest first.
   * @default 20
   */
  maxVisible: number
}

/** The short-lived server-side slot holding freshly generated plaintext codes. */
export interface RevealOptions {
  /**
   * Slot lifetime in seconds, from 30 to 900 (hard maximum, R-PT-1).
   * @default 600
   */
  ttlSeconds: number
}

/** Purge of code rows that can never verify again. */
export interface PurgeOptions {
  /**
   * Days a used, invalidated, deleted, expired or superseded code is kept before purge may delete it.
   * @default 90
   */
  retentionDays: number
  /**
   * Days a limiter counter is kept after its last failure (and after its lock ended) before purge
   * deletes it, from 1 to 3650. A failure after that starts the key's count from zero, so the
   * `rc_attempts` table holds only recent failures.
   * @default 30
   */
  attemptRetentionDays: number
  /**
   * The most rows one delete statement (chunk) may remove: the ceiling of the time-budgeted chunk
   * size (`chunkBudgetMs`), for code rows, empty batches and audit rows. Limiter counters have a
   * ceiling of their own (5,000).
   * @default 5000
   */
  batchSize: number
  /**
   * Time budget of one purge chunk in milliseconds, from 1 to 60,000: each chunk's limit adapts
   * from how long the previous one took (measured with `performance.now()`, never the service's
   * clock). The first chunk asks for `100 × chunkBudgetMs` rows (at most the ceiling); a chunk done
   * in under half the budget doubles the next one; one over the budget shrinks the next (by
   * `budget / duration`, at most halving). Never above `batchSize` (5,000 for limiter counters), never below 1. The same for
   * code rows, empty batches, limiter counters and audit rows.
   * @default 10
   */
  chunkBudgetMs: number
  /**
   * Most rows deleted in one run; `null` = loop until nothing is left.
   * @default 1000
   */
  maxDeletionsPerRun: number | null
  /**
   * Also delete ended batches that have no code rows left.
   * @default false
   */
  deleteEmptyBatches: boolean
  /**
   * Email a purge report to `email.adminEmail` (needs `email.from` and a `mailer`).
   * @default false
   */
  reportToAdmin: boolean
}

/** Audit trail retention and the email log. */
export interface AuditOptions {
  /**
   * Days audit records are kept when retention purge runs.
   * @default 30
   */
  retentionDays: number
  /**
   * Schedule the audit retention purge automatically (when a queue with schedules is wired).
   * @default false
   */
  autoCleanup: boolean
  /**
   * Record each sent recovery email (recipient and time, never the body).
   * @default false
   */
  storeEmailLog: boolean
}

/** Emailing codes to the user: opt-in, because it lowers security to mailbox control (R-PT-4). */
export interface EmailOptions {
  /**
   * Allow the one-time email of a fresh batch. Needs `from`, a `mailer` and `resolveEmail`.
   * @default false
   */
  enabled: boolean
  /**
   * Sender address (`From`). No CR, LF or NUL.
   * @default undefined
   */
  from?: string
  /**
   * Where admin reports (purge) go. No CR, LF or NUL.
   * @default undefined
   */
  adminEmail?: string
  /**
   * Shown to the user after the email was handed to the mailer. 1–500 characters, no control characters.
   * @default 'Your recovery codes email has been successfully delivered.'
   */
  successMessage: string
}

/** The one-time download. */
export interface ExportOptions {
  /**
   * Base file name without extension: `/^[A-Za-z0-9._-]{1,64}$/`, not starting with a dot.
   * @default 'recovery_codes'
   */
  fileName: string
  /**
   * Format when the request names none. `'pdf'` needs {@link ExportOptions.pdf}.
   * @default 'txt'
   */
  defaultFormat: ExportFormat
  /**
   * Renders the PDF download. `txt` and `csv` are built in; PDF is offered only when this is set,
   * so an app without it never installs a PDF library. Without it, `exportCodes({ format: 'pdf' })`
   * throws `FEATURE_DISABLED` (before the once-only download is used up) and
   * `rc.exportFormats` lists `txt` and `csv` only.
   * @default null (no PDF)
   * @example
   * ```ts
   * import { pdfExport } from '@recovery-codes/pdf'
   * createRecoveryCodes({ peppers, store, export: { pdf: pdfExport() } })
   * ```
   */
  pdf: ExportRenderer | null
}

/** How a recovery code logs a user in. */
export type LoginMode = 'second-factor' | 'identifier-and-code'

/** Whether several processes share the stores. */
export type Deployment = 'single' | 'multi'

/**
 * When a new batch takes over. `'confirm'`: it waits, sealed in its reveal slot, until the user
 * confirms having saved it (`rc.confirm`); the current batch keeps working until then, and a
 * batch never confirmed expires with its slot and changes nothing. `'immediate'`: the new batch
 * supersedes the current one as it is generated.
 */
export type Activation = 'confirm' | 'immediate'

/** Named sets of defaults. `'nist-800-63b-4'`: `replaceOnUse` on; `notifications` required. */
export type ConfigPreset = 'nist-800-63b-4'

/** What `mustBindFactor` is asked after a successful recovery login. */
export interface RecoveryLoginInfo {
  userId: string
  batchId: string
  /** Usable codes left in the batch after this one (a replacement counted). */
  remaining: number
}

/**
 * The configuration the host passes to `createRecoveryCodes()` (or `resolveConfig()`).
 * Everything but `peppers` and `store` is optional; unknown keys are rejected at every level.
 */
export interface RecoveryCodesConfig {
  /**
   * HMAC keys: 1 to 10 entries with unique ids. The first is current (new batches); the rest are
   * verify-only (rotation).
   */
  peppers: readonly PepperInput[]
  /** Where codes, counters and audit records live. */
  store: RecoveryCodeStore
  /**
   * Code format: a preset name or a custom format (at least 112 bits, no duplicate symbols,
   * at most 64 symbols).
   * @default 'default' (25 Crockford symbols, 5 groups of 5, 125 bits)
   */
  format?: CodeFormatPreset | CodeFormat
  /**
   * How codes imported from another system (`rc.importCodes`) are verified: the shapes of
   * imported native codes, and the legacy digest schemes of codes kept as the source's digest.
   * @default nothing imported
   */
  import?: ImportOptions
  /**
   * Codes per batch, from 1 to {@link MAX_BATCH_SIZE}.
   * @default 10
   */
  batchSize?: number
  /**
   * Days until a new batch expires, from 1 to 3650; `null` = never.
   * @default null
   */
  defaultExpiryDays?: number | null
  /**
   * "Low codes" when this many or fewer remain, from 0 to 50.
   * @default 3
   */
  lowCodesThreshold?: number
  /**
   * Failures per identifier before a lockout cooldown, from 1 to 100.
   * @default 5
   */
  maxLoginAttempts?: number
  /**
   * Consecutive failures (across lockouts) that disable the active batch, from 1 to 100 and at
   * least `maxLoginAttempts` (R-RL-4).
   * @default 20
   */
  hardFailureCap?: number
  /**
   * Failures per client key (IP) before a cooldown, across identifiers; from 1 to 10,000 and at
   * least `maxLoginAttempts`.
   * @default 50
   */
  clientMaxAttempts?: number
  /** Lockout and regeneration cooldown. */
  cooldown?: Partial<CooldownOptions>
  /** TTL of cached reads. */
  cacheTtl?: Partial<CacheTtlOptions>
  /**
   * Deadline of each cache call, in milliseconds, from 10 to 5,000. A call that throws or does not
   * answer within it is treated as a miss (reads go to the store) or skipped (writes, removes): a
   * dead cache slows no operation by more than this and decides nothing. After a call times out
   * the cache is skipped for a second, so a dead cache costs one deadline, not one per call.
   * @default 150
   */
  cacheTimeoutMs?: number
  /** History paging. */
  history?: Partial<HistoryOptions>
  /** Reveal slot. */
  reveal?: Partial<RevealOptions>
  /** Purge. */
  purge?: Partial<PurgeOptions>
  /** Audit retention and email log. */
  audit?: Partial<AuditOptions>
  /** Emailing codes (opt-in). */
  email?: Partial<EmailOptions>
  /** Download. */
  export?: Partial<ExportOptions>
  /**
   * Shown in emails, files and pages. 1–100 characters, no control characters.
   * @default 'recovery-codes'
   */
  siteName?: string
  /**
   * Where pages send the user after logout: a relative path starting with `/` (not `//`, no `\`).
   * @default the pages' own sign-in page, under wherever they are mounted
   */
  logoutRedirect?: string
  /**
   * `'second-factor'`: the code is a second step after the host's own first factor.
   * `'identifier-and-code'`: the reference app's email + code login, single-factor (AAL1 at most);
   * needs `resolveUserId`.
   * @default 'second-factor'
   */
  loginMode?: LoginMode
  /**
   * When a new batch takes over: after the user confirms saving it (`'confirm'`), or at once.
   * @default 'confirm'
   */
  activation?: Activation
  /**
   * After each successful redeem, issue one replacement code into the batch, revealed once
   * through a reveal slot (`result.replacement`). NIST SP 800-63B-4 §4.2.1.1. Needs a store with
   * `addCodes`.
   * @default false (true under `preset: 'nist-800-63b-4'`)
   */
  replaceOnUse?: boolean
  /** A named set of defaults; explicit options still win. */
  preset?: ConfigPreset
  /**
   * Asked after every successful recovery login: `true` makes the result say `mustBindFactor`,
   * so the host binds a new authenticator before anything else (NIST SP 800-63B-4 §4.2.3).
   * A throw or rejection counts as `true`.
   */
  mustBindFactor?: (login: RecoveryLoginInfo) => boolean | Promise<boolean>
  /**
   * `'multi'` when several processes serve the app; then a shared `cache` is required.
   * @default 'single'
   */
  deployment?: Deployment
  /**
   * History pages, status and reveal slots: any {@link Cache} (`getItem`, `setItem`,
   * `removeItem`), such as an unstorage `Storage` (Redis driver for several instances).
   * @default a bounded in-memory LRU created by the service (single process only)
   */
  cache?: Cache
  /** Needed for `email.enabled` and `purge.reportToAdmin`. */
  mailer?: Mailer
  /** Background jobs; in-process when absent. */
  queue?: Queue
  /** @default systemClock (`Date.now()`) */
  clock?: Clock
  /** @default systemRandom (`crypto.getRandomValues`) */
  random?: RandomReader
  /** Structured logger; silent when absent. */
  logger?: Logger
  /** Receives events after each write commits. */
  events?: EventSink
  /** The user's stored, verified email address (required when `email.enabled`). */
  resolveEmail?: (userId: string) => Promise<string | null>
  /** Maps a submitted identifier to a user id (required when `loginMode` is `'identifier-and-code'`). */
  resolveUserId?: (identifier: string) => Promise<string | null>
  /**
   * Called after a "This wasn't me" link revoked the user's batch: end the user's sessions.
   * Its failure is logged; the revoke stands.
   */
  onRepudiated?: (userId: string) => Promise<void>
  /**
   * Security notifications with a "This wasn't me" link (NIST SP 800-63B-4 §4.2.3, §4.6).
   * Opt-in: off when absent. Needs `mailer` and `resolveEmail`.
   */
  notifications?: NotificationOptions
}

/** `RecoveryCodesConfig.email` after resolution. */
/** Default lifetime of a "This wasn't me" link: 7 days. */
export const DEFAULT_REPUDIATION_LINK_TTL_SECONDS = 7 * 24 * 3600

/** Options of `notifications`. */
export interface NotificationOptions {
  /** Kinds to send. @default every kind */
  kinds?: readonly NotificationKind[]
  /** Instructions and contact shown in every message. 1–1000 characters, no control characters. */
  contact: string
  /** Absolute https URL (http only for localhost) of the "This wasn't me" page. */
  linkBaseUrl: string
  /** Lifetime of a link, 60 s to 30 days. @default 604800 (7 days) */
  linkTtlSeconds?: number
}

/** Resolved `notifications`. */
export interface ResolvedNotificationOptions {
  readonly kinds: readonly NotificationKind[]
  readonly contact: string
  readonly linkBaseUrl: string
  readonly linkTtlSeconds: number
}

export interface ResolvedEmailOptions {
  /** See {@link EmailOptions.enabled}. */
  readonly enabled: boolean
  /** Sender address, or `null`. */
  readonly from: string | null
  /** Admin report address, or `null`. */
  readonly adminEmail: string | null
  /** See {@link EmailOptions.successMessage}. */
  readonly successMessage: string
}

/**
 * The validated, deep-frozen configuration with defaults applied and derived values computed.
 * Ports are the caller's objects, kept by reference (not frozen). `JSON.stringify` and
 * `util.inspect` show a summary with peppers redacted and ports as `'[port]'`.
 */
export interface ResolvedConfig {
  /** Peppers, current first. */
  readonly peppers: readonly ResolvedPepper[]
  /** `peppers[0]`: hashes new batches. */
  readonly currentPepper: ResolvedPepper
  /** The resolved, frozen code format. */
  readonly format: Readonly<CodeFormat>
  /** Entropy of one code of `format`, in bits. */
  readonly entropyBits: number
  /** How imported codes are verified (`rc.importCodes`); empty lists when nothing is imported. */
  readonly import: ResolvedImportOptions
  readonly batchSize: number
  /** Hard cap for `generate({ count })`: {@link MAX_BATCH_SIZE}. */
  readonly maxBatchSize: number
  readonly defaultExpiryDays: number | null
  readonly lowCodesThreshold: number
  readonly maxLoginAttempts: number
  readonly hardFailureCap: number
  readonly clientMaxAttempts: number
  readonly cooldown: Readonly<CooldownOptions>
  /** `cooldown` in milliseconds, for `cooldownMs()`. */
  readonly cooldownPolicy: Readonly<CooldownPolicy>
  readonly cacheTtl: Readonly<CacheTtlOptions>
  /** `cacheTtl.seconds` clamped to `[minSeconds, maxSeconds]`: the TTL to pass to the cache. */
  readonly cacheTtlSeconds: number
  readonly cacheTimeoutMs: number
  readonly history: Readonly<HistoryOptions>
  readonly reveal: Readonly<RevealOptions>
  /** `reveal.ttlSeconds` in milliseconds. */
  readonly revealTtlMs: number
  readonly purge: Readonly<PurgeOptions>
  readonly audit: Readonly<AuditOptions>
  readonly email: ResolvedEmailOptions
  readonly export: Readonly<ExportOptions>
  readonly siteName: string
  /** `null`: the pages' own sign-in page. */
  readonly logoutRedirect: string | null
  readonly loginMode: LoginMode
  readonly activation: Activation
  readonly replaceOnUse: boolean
  readonly preset: ConfigPreset | null
  readonly mustBindFactor: ((login: RecoveryLoginInfo) => boolean | Promise<boolean>) | null
  readonly deployment: Deployment
  readonly store: RecoveryCodeStore
  /** `null`: the service creates an in-memory storage. */
  readonly cache: Cache | null
  readonly mailer: Mailer | null
  readonly queue: Queue | null
  /** Defaults to `systemClock`. */
  readonly clock: Clock
  /** Defaults to `systemRandom`. */
  readonly random: RandomReader
  readonly logger: Logger | null
  readonly events: EventSink | null
  readonly resolveEmail: ((userId: string) => Promise<string | null>) | null
  readonly resolveUserId: ((identifier: string) => Promise<string | null>) | null
  /** `null` when notifications are off. */
  readonly notifications: ResolvedNotificationOptions | null
  readonly onRepudiated: ((userId: string) => Promise<void>) | null
}

/** The result of {@link checkConfig}. */
export type ConfigCheck = { ok: true } | { ok: false; issues: RecoveryCodesIssue[] }

// ---------------------------------------------------------------------------------------------
// Defaults and limits
// ---------------------------------------------------------------------------------------------

/** Most codes in one batch (R-GEN-5). */
export const MAX_BATCH_SIZE = 50
/** Most peppers (one current plus verify-only keys). */
export const MAX_PEPPERS = 10
/** Shortest decoded pepper, in bytes (256 bits, R-STO-3). */
export const MIN_PEPPER_BYTES = 32
/** Longest decoded pepper, in bytes. */
export const MAX_PEPPER_BYTES = 1024
/** Most symbols in one code of a custom format. */
export const MAX_CODE_SYMBOLS = 64

/** Every default, deep-frozen. Ports and peppers have none. */
export const DEFAULTS = deepFreeze({
  format: 'default' as CodeFormatPreset,
  batchSize: 10,
  defaultExpiryDays: null as number | null,
  lowCodesThreshold: 3,
  maxLoginAttempts: 5,
  hardFailureCap: 20,
  clientMaxAttempts: 50,
  cooldown: { baseSeconds: 60, multiplier: 2, cutoffSeconds: 3600 },
  cacheTtl: { seconds: 300, minSeconds: 60, maxSeconds: 3600 },
  cacheTimeoutMs: 150,
  history: { perPage: 10, maxVisible: 20 },
  reveal: { ttlSeconds: 600 },
  purge: {
    retentionDays: 90,
    attemptRetentionDays: 30,
    batchSize: 5000,
    chunkBudgetMs: 10,
    maxDeletionsPerRun: 1000 as number | null,
    deleteEmptyBatches: false,
    reportToAdmin: false,
  },
  audit: { retentionDays: 30, autoCleanup: false, storeEmailLog: false },
  email: {
    enabled: false,
    successMessage: 'Your recovery codes email has been successfully delivered.',
  },
  export: {
    fileName: 'recovery_codes',
    defaultFormat: 'txt' as ExportFormat,
    pdf: null as ExportRenderer | null,
  },
  siteName: 'recovery-codes',
  logoutRedirect: null as string | null,
  loginMode: 'second-factor' as LoginMode,
  activation: 'confirm' as Activation,
  replaceOnUse: false,
  deployment: 'single' as Deployment,
})

/** Bounds of one numeric option. */
export interface NumericOptionSpec {
  /** Smallest allowed value. */
  readonly min: number
  /** Largest allowed value. */
  readonly max: number
  /** Must be a safe integer (otherwise any finite number). */
  readonly integer: boolean
  /** `null` is allowed. */
  readonly nullable: boolean
}

const int = (min: number, max: number, nullable = false): NumericOptionSpec => ({
  min,
  max,
  integer: true,
  nullable,
})

const THIRTY_DAYS_S = 30 * 24 * 3600
const ONE_DAY_S = 24 * 3600

/**
 * Every numeric option by dotted path, with its bounds. The schema is built from this table, so
 * it is the single source of the ranges (the docs table and the tests read it too).
 */
export const NUMERIC_OPTIONS = deepFreeze({
  batchSize: int(1, MAX_BATCH_SIZE),
  defaultExpiryDays: int(1, 3650, true),
  lowCodesThreshold: int(0, 50),
  maxLoginAttempts: int(1, 100),
  hardFailureCap: int(1, 100),
  clientMaxAttempts: int(1, 10_000),
  'cooldown.baseSeconds': int(1, THIRTY_DAYS_S),
  'cooldown.multiplier': { min: 1, max: 10, integer: false, nullable: false },
  'cooldown.cutoffSeconds': int(1, THIRTY_DAYS_S),
  'cacheTtl.seconds': int(1, ONE_DAY_S),
  cacheTimeoutMs: int(10, 5000),
  'cacheTtl.minSeconds': int(1, ONE_DAY_S),
  'cacheTtl.maxSeconds': int(1, ONE_DAY_S),
  'history.perPage': int(1, 100),
  'history.maxVisible': int(1, 1000),
  'reveal.ttlSeconds': int(30, 900),
  'purge.retentionDays': int(0, 3650),
  'purge.attemptRetentionDays': int(1, 3650),
  'purge.batchSize': int(1, 100_000),
  'purge.chunkBudgetMs': int(1, 60_000),
  'purge.maxDeletionsPerRun': int(1, 10_000_000, true),
  'audit.retentionDays': int(1, 3650),
} satisfies Record<string, NumericOptionSpec>)

/** A dotted path of a numeric option. */
export type NumericOptionPath = keyof typeof NUMERIC_OPTIONS

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

type Issue = RecoveryCodesIssue

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value)
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (value instanceof Uint8Array) return 'bytes'
  if (typeof value === 'string') return 'a string'
  if (typeof value === 'object') return 'an object'
  return typeof value
}

const got = (text: string) => (iss: { input?: unknown }) => `must be ${text} (got ${describe(iss.input)})`

function numberRule(spec: NumericOptionSpec): string {
  const kind = spec.integer ? 'an integer' : 'a finite number'
  return `${spec.nullable ? 'null or ' : ''}${kind} from ${spec.min} to ${spec.max}`
}

function numeric(path: NumericOptionPath) {
  const spec: NumericOptionSpec = NUMERIC_OPTIONS[path]
  const error = got(numberRule(spec))
  const base = (spec.integer ? z.int({ error }) : z.number({ error }))
    .min(spec.min, { error })
    .max(spec.max, { error })
  return base
}

// Header-bound text (R-PT-6): no CR, LF, NUL or any other control character.
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c === 0x7f || c === 0x2028 || c === 0x2029) return true
  }
  return false
}

function text(max: number) {
  const error = got(`a string of 1 to ${max} characters without control characters (CR, LF, NUL…)`)
  return z
    .string({ error })
    .min(1, { error })
    .max(max, { error })
    .refine((s) => !hasControl(s), { error })
}

function emailAddress() {
  const error = got('an email address (at most 254 characters, no CR, LF or NUL)')
  return z
    .string({ error })
    .max(254, { error })
    .refine((s) => !hasControl(s), { error, abort: true })
    .pipe(z.email({ error }))
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: got(`one of ${values.map((v) => `'${v}'`).join(', ')}`) })
}

function isLinkBaseUrl(s: string): boolean {
  if (hasControl(s)) return false
  let url: URL
  try {
    url = new URL(s)
  } catch {
    return false
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') return false
  if (url.protocol === 'https:') return true
  return url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)
}

function bool() {
  return z.boolean({ error: got('true or false') })
}

function renderer() {
  return z.custom<ExportRenderer>((v) => typeof v === 'function', {
    error: got('a function (input) => bytes, e.g. pdfExport() from @recovery-codes/pdf'),
  })
}

const group = <T extends z.ZodRawShape>(shape: T) =>
  z.strictObject(shape, { error: got('an object') }).optional()

const EXPORT_FORMAT_VALUES = ['txt', 'csv', 'pdf'] as const satisfies readonly ExportFormat[]

const PepperSchema = z.strictObject(
  {
    id: z.string({ error: got('a key id matching /^[A-Za-z0-9_-]{1,32}$/') }).regex(/^[A-Za-z0-9_-]{1,32}$/, {
      error: 'must match /^[A-Za-z0-9_-]{1,32}$/',
    }),
    secret: z.union([z.string(), z.instanceof(Uint8Array)], {
      // Static message: whatever was passed here is treated as secret and never described.
      error: 'must be a string (base64, base64url or hex:…) or a Uint8Array',
    }),
  },
  { error: got('an object { id, secret }') },
)

const pepperCount = got(`a list of 1 to ${MAX_PEPPERS} peppers { id, secret }`)

const ConfigSchema = z.strictObject(
  {
    peppers: z
      .array(PepperSchema, { error: pepperCount })
      .min(1, { error: pepperCount })
      .max(MAX_PEPPERS, { error: pepperCount }),
    store: z.unknown().optional(),
    format: z.unknown().optional(),
    import: z.unknown().optional(),
    batchSize: numeric('batchSize').optional(),
    defaultExpiryDays: numeric('defaultExpiryDays').nullable().optional(),
    lowCodesThreshold: numeric('lowCodesThreshold').optional(),
    maxLoginAttempts: numeric('maxLoginAttempts').optional(),
    hardFailureCap: numeric('hardFailureCap').optional(),
    clientMaxAttempts: numeric('clientMaxAttempts').optional(),
    cooldown: group({
      baseSeconds: numeric('cooldown.baseSeconds').optional(),
      multiplier: numeric('cooldown.multiplier').optional(),
      cutoffSeconds: numeric('cooldown.cutoffSeconds').optional(),
    }),
    cacheTimeoutMs: numeric('cacheTimeoutMs').optional(),
    cacheTtl: group({
      seconds: numeric('cacheTtl.seconds').optional(),
      minSeconds: numeric('cacheTtl.minSeconds').optional(),
      maxSeconds: numeric('cacheTtl.maxSeconds').optional(),
    }),
    history: group({
      perPage: numeric('history.perPage').optional(),
      maxVisible: numeric('history.maxVisible').optional(),
    }),
    reveal: group({ ttlSeconds: numeric('reveal.ttlSeconds').optional() }),
    purge: group({
      retentionDays: numeric('purge.retentionDays').optional(),
      attemptRetentionDays: numeric('purge.attemptRetentionDays').optional(),
      batchSize: numeric('purge.batchSize').optional(),
      chunkBudgetMs: numeric('purge.chunkBudgetMs').optional(),
      maxDeletionsPerRun: numeric('purge.maxDeletionsPerRun').nullable().optional(),
      deleteEmptyBatches: bool().optional(),
      reportToAdmin: bool().optional(),
    }),
    audit: group({
      retentionDays: numeric('audit.retentionDays').optional(),
      autoCleanup: bool().optional(),
      storeEmailLog: bool().optional(),
    }),
    email: group({
      enabled: bool().optional(),
      from: emailAddress().optional(),
      adminEmail: emailAddress().optional(),
      successMessage: text(500).optional(),
    }),
    notifications: group({
      kinds: z
        .array(oneOf(NOTIFICATION_KINDS), { error: got(`an array of ${NOTIFICATION_KINDS.join(', ')}`) })
        .optional(),
      contact: text(1000),
      linkBaseUrl: z
        .string({ error: got('an absolute https URL (http only for localhost)') })
        .max(2048, { error: 'must be at most 2048 characters' })
        .refine((s) => isLinkBaseUrl(s), {
          error: 'must be an absolute https URL (http only for localhost), no query or fragment',
        }),
      // Not in NUMERIC_OPTIONS: the notifications group has no environment variables.
      linkTtlSeconds: z
        .int({ error: got(`an integer from 60 to ${THIRTY_DAYS_S} (30 days)`) })
        .min(60, { error: got(`an integer from 60 to ${THIRTY_DAYS_S} (30 days)`) })
        .max(THIRTY_DAYS_S, { error: got(`an integer from 60 to ${THIRTY_DAYS_S} (30 days)`) })
        .optional(),
    }),
    onRepudiated: z.unknown().optional(),
    export: group({
      fileName: z
        .string({ error: got('a file name matching /^[A-Za-z0-9._-]{1,64}$/') })
        .regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'must match /^[A-Za-z0-9._-]{1,64}$/', abort: true })
        .refine((s) => !s.startsWith('.'), { error: 'must not start with a dot' })
        .optional(),
      defaultFormat: oneOf(EXPORT_FORMAT_VALUES).optional(),
      pdf: renderer().nullable().optional(),
    }),
    siteName: text(100).optional(),
    logoutRedirect: z
      .string({ error: got("a relative path starting with '/'") })
      .max(2048, { error: 'must be at most 2048 characters' })
      .refine((s) => s.startsWith('/') && !s.startsWith('//') && !s.includes('\\') && !hasControl(s), {
        error: "must be a relative path starting with '/' (not '//', no backslash or control characters)",
      })
      .optional(),
    loginMode: oneOf(['second-factor', 'identifier-and-code']).optional(),
    activation: oneOf(['confirm', 'immediate']).optional(),
    replaceOnUse: bool().optional(),
    preset: oneOf(['nist-800-63b-4']).optional(),
    mustBindFactor: z.unknown().optional(),
    deployment: oneOf(['single', 'multi']).optional(),
    cache: z.unknown().optional(),
    mailer: z.unknown().optional(),
    queue: z.unknown().optional(),
    clock: z.unknown().optional(),
    random: z.unknown().optional(),
    logger: z.unknown().optional(),
    events: z.unknown().optional(),
    resolveEmail: z.unknown().optional(),
    resolveUserId: z.unknown().optional(),
  },
  { error: got('an object') },
)

const FormatSchema = z.strictObject(
  {
    name: z
      .string({ error: got('a string of 1 to 64 characters') })
      .min(1, { error: 'must not be empty' })
      .max(64, {
        error: 'must be at most 64 characters',
      }),
    alphabet: z.string({ error: got('a string') }).max(256, { error: 'must be at most 256 symbols' }),
    groups: z
      .int({ error: got('an integer from 1 to 16') })
      .min(1, { error: got('an integer from 1 to 16') })
      .max(16, { error: got('an integer from 1 to 16') }),
    groupLength: z
      .int({ error: got('an integer from 1 to 32') })
      .min(1, { error: got('an integer from 1 to 32') })
      .max(32, { error: got('an integer from 1 to 32') }),
    separator: z.string({ error: got('a string') }),
    caseSensitive: z.boolean({ error: got('true or false') }),
    confusables: z
      .record(
        z.string().length(1, { error: 'keys must be single characters' }),
        z
          .string({ error: got('a single character') })
          .length(1, { error: 'values must be single characters' }),
        { error: got('an object mapping single characters') },
      )
      .optional(),
  },
  { error: got("'default', 'crockford', 'django' or a code format object") },
)

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/** Every method of {@link RecoveryCodeStore}; checked to be functions. */
export const STORE_METHODS = Object.freeze([
  'createBatch',
  'consumeCode',
  'findCode',
  'setCodeState',
  'endBatch',
  'setBatchFlag',
  'getActiveBatch',
  'listBatches',
  'reserveAttempts',
  'settleAttempts',
  'getAttempts',
  'lockAttempts',
  'purgeCodes',
  'purgeEmptyBatches',
  'purgeAttempts',
  'appendAudit',
  'listAudit',
  'purgeAudit',
  'appendEmailLog',
] as const satisfies readonly (keyof RecoveryCodeStore)[])

/**
 * Methods a store may leave out: the service composes `redeemCode` from the others, and
 * `rc.importCodes` refuses to run without `importBatch`.
 */
export const OPTIONAL_STORE_METHODS = Object.freeze([
  'redeemCode',
  'importBatch',
  'addCodes',
] as const satisfies readonly (keyof RecoveryCodeStore)[])

// Compile-time guard: a method added to the port must be added to STORE_METHODS or OPTIONAL_STORE_METHODS.
type MissingStoreMethods = Exclude<
  keyof RecoveryCodeStore,
  (typeof STORE_METHODS)[number] | (typeof OPTIONAL_STORE_METHODS)[number]
>
const storeMethodsComplete: [MissingStoreMethods] extends [never] ? true : MissingStoreMethods = true
void storeMethodsComplete

const PORT_METHODS = {
  store: STORE_METHODS,
  cache: ['getItem', 'setItem', 'removeItem'],
  mailer: ['send'],
  queue: ['enqueue', 'handle'],
  clock: ['now'],
  random: ['read'],
  logger: ['debug', 'info', 'warn', 'error'],
  events: ['emit'],
} as const

type PortName = keyof typeof PORT_METHODS

function portIssues(name: PortName, value: unknown, required: boolean): Issue[] {
  if (value === undefined) return required ? [{ path: name, message: 'is required' }] : []
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) {
    return [
      {
        path: name,
        message: `must be an object with ${PORT_METHODS[name].join(', ')} (got ${describe(value)})`,
      },
    ]
  }
  const issues: Issue[] = []
  for (const method of PORT_METHODS[name]) {
    if (typeof (value as Record<string, unknown>)[method] !== 'function') {
      issues.push({ path: `${name}.${method}`, message: 'must be a function' })
    }
  }
  if (name === 'store') {
    for (const method of OPTIONAL_STORE_METHODS) {
      const fn = (value as Record<string, unknown>)[method]
      if (fn !== undefined && typeof fn !== 'function') {
        issues.push({ path: `${name}.${method}`, message: 'must be a function when given' })
      }
    }
  }
  return issues
}

function hookIssues(
  name: 'resolveEmail' | 'resolveUserId' | 'onRepudiated' | 'mustBindFactor',
  value: unknown,
): Issue[] {
  if (value === undefined || typeof value === 'function') return []
  return [{ path: name, message: `must be a function (got ${describe(value)})` }]
}

// ---------------------------------------------------------------------------------------------
// Peppers
// ---------------------------------------------------------------------------------------------

const REDACTED = '[redacted]'
const INSPECT = Symbol.for('nodejs.util.inspect.custom')

// Published demo and placeholder values (the reference README's among them). Exact matches, and
// longer fragments that random base64 text essentially never contains.
const DEMO_EXACT = new Set([
  'secret',
  'password',
  'pepper',
  'key',
  'test',
  'demo',
  'todo',
  'changeit',
  'admin',
])
const DEMO_FRAGMENTS = [
  'supersecret',
  'changeme',
  'change-me',
  'change_me',
  'add-recovery-key',
  'recovery-key-here',
  'your-secret',
  'your_secret',
  'yoursecret',
  'your-key',
  'replace-me',
  'replaceme',
  'placeholder',
  'example',
  'insecure',
  'do-not-use',
  'notsecret',
  'password',
]

function isDemoText(s: string): boolean {
  const t = s.toLowerCase()
  return DEMO_EXACT.has(t) || DEMO_FRAGMENTS.some((f) => t.includes(f))
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** Strict base64 / base64url (not mixed), optional correct padding; `null` when malformed. */
function decodeBase64(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) && !/^[A-Za-z0-9_-]*={0,2}$/.test(s)) return null
  const body = s.replace(/=+$/, '')
  if (body.length !== s.length && s.length % 4 !== 0) return null
  if (body.length % 4 === 1) return null
  const out = new Uint8Array(Math.floor((body.length * 3) / 4))
  let acc = 0
  let bits = 0
  let j = 0
  for (const c of body.replace(/-/g, '+').replace(/_/g, '/')) {
    acc = ((acc << 6) | B64.indexOf(c)) & 0xffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[j++] = (acc >> bits) & 0xff
    }
  }
  return out
}

function decodeHex(s: string): Uint8Array | null {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(s)) return null
  const out = new Uint8Array(s.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(i * 2, i * 2 + 2), 16)
  return out
}

// Not random: a short repeating pattern, a constant step (00 01 02 …) or very few distinct bytes.
function isPatterned(b: Uint8Array): boolean {
  for (let period = 1; period <= 8; period++) {
    let repeats = true
    for (let i = period; i < b.length && repeats; i++) repeats = b[i] === b[i - period]
    if (repeats) return true
  }
  const step = (b[1]! - b[0]! + 256) % 256
  let constantStep = true
  for (let i = 2; i < b.length && constantStep; i++) constantStep = (b[i]! - b[i - 1]! + 256) % 256 === step
  return constantStep || new Set(b).size < 10
}

function printableText(b: Uint8Array): string | null {
  let s = ''
  for (const byte of b) {
    if (byte < 0x20 || byte > 0x7e) return null
    s += String.fromCharCode(byte)
  }
  return s
}

/** Decodes and checks one secret. Messages never contain the secret. */
function decodeSecret(secret: string | Uint8Array): { bytes: Uint8Array } | { message: string } {
  let bytes: Uint8Array | null
  if (typeof secret === 'string') {
    const isHex = secret.startsWith('hex:')
    const body = isHex ? secret.slice(4) : secret.startsWith('base64:') ? secret.slice(7) : secret
    if (isDemoText(body) || isDemoText(secret)) {
      return {
        message: 'is a published demo or placeholder value; generate one with `openssl rand -base64 32`',
      }
    }
    if (!isHex && !secret.startsWith('base64:') && /^[0-9a-fA-F]+$/.test(body)) {
      return { message: "looks like hex: write 'hex:…' (or 'base64:…' if it really is base64)" }
    }
    bytes = isHex ? decodeHex(body) : decodeBase64(body)
    if (bytes === null) {
      return {
        message: isHex
          ? "is not valid hex after 'hex:' (an even number of 0-9 a-f digits)"
          : "is not valid base64 or base64url (use 'hex:…' for hex)",
      }
    }
  } else {
    bytes = new Uint8Array(secret)
  }
  if (bytes.length < MIN_PEPPER_BYTES) {
    return {
      message: `decodes to ${bytes.length} bytes; at least ${MIN_PEPPER_BYTES} random bytes are required`,
    }
  }
  if (bytes.length > MAX_PEPPER_BYTES) {
    return { message: `decodes to ${bytes.length} bytes; at most ${MAX_PEPPER_BYTES} are allowed` }
  }
  const asText = printableText(bytes)
  if (asText !== null && isDemoText(asText)) {
    return { message: 'encodes a published demo or placeholder value; use random bytes' }
  }
  if (isPatterned(bytes)) {
    return { message: 'is not random (repeating, sequential or few distinct bytes); use random bytes' }
  }
  return { bytes }
}

function makePepper(id: string, secret: Uint8Array): ResolvedPepper {
  const pepper = { id }
  Object.defineProperties(pepper, {
    secret: { value: secret, enumerable: false },
    toJSON: { value: () => ({ id, secret: REDACTED }) },
    toString: { value: () => `Pepper(${id}, ${REDACTED})` },
    [INSPECT]: { value: () => `Pepper { id: '${id}', secret: ${REDACTED} }` },
  })
  return Object.freeze(pepper) as ResolvedPepper
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function pepperIssues(raw: unknown, hasIssueAt: (path: string) => boolean, out: ResolvedPepper[]): Issue[] {
  if (!Array.isArray(raw)) return []
  const issues: Issue[] = []
  const seen = new Map<string, number>()
  raw.forEach((entry: unknown, i) => {
    if (hasIssueAt(`peppers.${i}`)) return
    const { id, secret } = entry as PepperInput
    const first = seen.get(id)
    if (first !== undefined)
      issues.push({ path: `peppers.${i}.id`, message: `duplicates peppers.${first}.id` })
    else seen.set(id, i)
    const decoded = decodeSecret(secret)
    if ('message' in decoded) {
      issues.push({ path: `peppers.${i}.secret`, message: decoded.message })
      return
    }
    const same = out.findIndex((p) => p !== undefined && bytesEqual(p.secret, decoded.bytes))
    if (same !== -1) {
      issues.push({ path: `peppers.${i}.secret`, message: `is the same secret as peppers.${same}.secret` })
    }
    out[i] = makePepper(id, decoded.bytes)
  })
  return issues
}

// ---------------------------------------------------------------------------------------------
// Format
// ---------------------------------------------------------------------------------------------

function resolveFormat(raw: unknown, issues: Issue[]): Readonly<CodeFormat> | null {
  if (raw === undefined) return CODE_FORMAT_PRESETS[DEFAULTS.format]
  if (typeof raw === 'string') {
    if (Object.hasOwn(CODE_FORMAT_PRESETS, raw)) return CODE_FORMAT_PRESETS[raw as CodeFormatPreset]
    issues.push({
      path: 'format',
      message: "must be 'default', 'crockford', 'django' or a code format object",
    })
    return null
  }
  const parsed = FormatSchema.safeParse(raw)
  if (!parsed.success) {
    issues.push(...zodIssues(parsed.error.issues, 'format'))
    return null
  }
  const f = parsed.data
  const before = issues.length
  for (const issue of validateCodeFormat(f))
    issues.push({ path: `format.${issue.path}`, message: issue.message })
  if (issues.length === before && codeLength(f) > MAX_CODE_SYMBOLS) {
    issues.push({
      path: 'format.groups',
      message: `groups × groupLength must be at most ${MAX_CODE_SYMBOLS}`,
    })
  }
  if (issues.length === before && entropyBits(f) < MIN_ENTROPY_BITS) {
    issues.push({ path: 'format.alphabet', message: `gives fewer than ${MIN_ENTROPY_BITS} bits per code` })
  }
  if (issues.length > before) return null
  return Object.freeze({
    name: f.name,
    alphabet: f.alphabet,
    groups: f.groups,
    groupLength: f.groupLength,
    separator: f.separator,
    caseSensitive: f.caseSensitive,
    ...(f.confusables ? { confusables: Object.freeze({ ...f.confusables }) } : {}),
  })
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

function zodIssues(list: readonly z.core.$ZodIssue[], prefix = ''): Issue[] {
  const out: Issue[] = []
  for (const iss of list) {
    const base = [prefix, ...iss.path.map(String)].filter((p) => p !== '').join('.')
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys)
        out.push({ path: base ? `${base}.${key}` : key, message: 'is not a known option' })
    } else {
      out.push({ path: base, message: iss.message })
    }
  }
  return out
}

function dedupe(issues: Issue[]): Issue[] {
  const seen = new Set<string>()
  return issues.filter((i) => {
    const k = `${i.path}\u0000${i.message}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function rawAt(input: unknown, path: string): unknown {
  let v: unknown = input
  for (const key of path.split('.')) {
    if (!isRecord(v) || !Object.hasOwn(v, key)) return undefined
    v = v[key]
  }
  return v
}

function defaultAt(path: string): unknown {
  return rawAt(DEFAULTS, path)
}

type Parsed = z.output<typeof ConfigSchema>

interface Outcome {
  issues: Issue[]
  config: ResolvedConfig | null
}

function validate(input: unknown): Outcome {
  const parsed = ConfigSchema.safeParse(input, { error: () => 'is invalid' })
  const issues = parsed.success ? [] : zodIssues(parsed.error.issues)
  const bad = (path: string) => issues.some((i) => i.path === path || i.path.startsWith(`${path}.`))
  // The value a cross-field rule may use: valid on its own, or the default when absent.
  const value = (path: string): unknown => {
    if (bad(path)) return undefined
    const v = rawAt(input, path)
    return v === undefined ? defaultAt(path) : v
  }
  const num = (path: string): number | undefined => {
    const v = value(path)
    return typeof v === 'number' ? v : undefined
  }
  const rules: Issue[] = []
  const rule = (ok: boolean, path: string, message: string) => {
    if (!ok) rules.push({ path, message })
  }
  const le = (a: string, b: string, message: string) => {
    const x = num(a)
    const y = num(b)
    if (x !== undefined && y !== undefined) rule(x <= y, a, `${message} (${x} > ${y})`)
  }

  // Peppers (after their shape passed) and format.
  const peppers: ResolvedPepper[] = []
  issues.push(...pepperIssues(rawAt(input, 'peppers'), bad, peppers))
  const format = resolveFormat(rawAt(input, 'format'), issues)
  const importOptions = resolveImportOptions(
    rawAt(input, 'import'),
    peppers.filter((p) => p !== undefined).map((p) => p.id),
    issues,
  )

  // Ports and hooks.
  const port = (name: PortName) => rawAt(input, name)
  for (const name of Object.keys(PORT_METHODS) as PortName[]) {
    issues.push(...portIssues(name, port(name), name === 'store'))
  }
  issues.push(...hookIssues('resolveEmail', rawAt(input, 'resolveEmail')))
  issues.push(...hookIssues('resolveUserId', rawAt(input, 'resolveUserId')))
  issues.push(...hookIssues('onRepudiated', rawAt(input, 'onRepudiated')))
  issues.push(...hookIssues('mustBindFactor', rawAt(input, 'mustBindFactor')))

  // Cross-field rules.
  const max = num('maxLoginAttempts')
  const cap = num('hardFailureCap')
  if (max !== undefined && cap !== undefined)
    rule(cap >= max, 'hardFailureCap', `must be at least maxLoginAttempts (${max})`)
  const client = num('clientMaxAttempts')
  if (max !== undefined && client !== undefined) {
    rule(client >= max, 'clientMaxAttempts', `must be at least maxLoginAttempts (${max})`)
  }
  le('cooldown.baseSeconds', 'cooldown.cutoffSeconds', 'must not exceed cooldown.cutoffSeconds')
  le('cacheTtl.minSeconds', 'cacheTtl.maxSeconds', 'must not exceed cacheTtl.maxSeconds')
  const ttl = num('cacheTtl.seconds')
  const lo = num('cacheTtl.minSeconds')
  const hi = num('cacheTtl.maxSeconds')
  if (ttl !== undefined && lo !== undefined && hi !== undefined && lo <= hi) {
    rule(
      ttl >= lo && ttl <= hi,
      'cacheTtl.seconds',
      `must lie within cacheTtl.minSeconds (${lo}) and maxSeconds (${hi})`,
    )
  }
  le('history.perPage', 'history.maxVisible', 'must not exceed history.maxVisible')

  const has = (path: string) => rawAt(input, path) !== undefined
  if (value('email.enabled') === true) {
    rule(has('email.from'), 'email.from', 'is required when email.enabled is true')
    rule(has('mailer'), 'mailer', 'is required when email.enabled is true')
    rule(
      has('resolveEmail'),
      'resolveEmail',
      "is required when email.enabled is true (codes go only to the user's stored address)",
    )
  }
  if (rawAt(input, 'notifications') !== undefined) {
    rule(has('mailer'), 'mailer', 'is required when notifications is set')
    rule(has('resolveEmail'), 'resolveEmail', 'is required when notifications is set')
  }
  if (value('purge.reportToAdmin') === true) {
    rule(has('email.adminEmail'), 'email.adminEmail', 'is required when purge.reportToAdmin is true')
    rule(has('email.from'), 'email.from', 'is required when purge.reportToAdmin is true')
    rule(has('mailer'), 'mailer', 'is required when purge.reportToAdmin is true')
  }
  if (value('export.defaultFormat') === 'pdf' && !bad('export.pdf')) {
    rule(
      typeof rawAt(input, 'export.pdf') === 'function',
      'export.defaultFormat',
      `is 'pdf' but export.pdf is not set: install ${PDF_RENDERER_PACKAGE} and pass export: { pdf: pdfExport() }`,
    )
  }
  if (value('preset') === 'nist-800-63b-4') {
    rule(
      has('notifications'),
      'notifications',
      "is required by preset 'nist-800-63b-4' (§4.2.3, §4.6: recovery events notify the user)",
    )
  }
  const replacing = value('replaceOnUse') ?? (value('preset') === 'nist-800-63b-4' ? true : undefined)
  if (replacing === true && !bad('store')) {
    const store = rawAt(input, 'store') as Record<string, unknown> | undefined
    rule(
      typeof store?.addCodes === 'function',
      'replaceOnUse',
      'needs a store with addCodes (memoryStore and kyselyStore have it)',
    )
  }
  if (value('loginMode') === 'identifier-and-code') {
    rule(has('resolveUserId'), 'resolveUserId', "is required when loginMode is 'identifier-and-code'")
  }
  if (value('deployment') === 'multi') {
    rule(
      has('cache'),
      'cache',
      "is required when deployment is 'multi': the in-memory cache cannot be shared",
    )
    const store = rawAt(input, 'store')
    rule(
      !(
        typeof store === 'object' &&
        store !== null &&
        (store as Record<symbol, unknown>)[STORE_SCOPE] === 'process'
      ),
      'store',
      "keeps its state in one process (memoryStore): with deployment 'multi' each process would have its own codes and counters; use a shared store such as kyselyStore",
    )
  }
  issues.push(...rules)

  const all = dedupe(issues)
  if (all.length > 0 || !parsed.success || format === null || importOptions === null) {
    return { issues: all, config: null }
  }
  const raw = input as Record<string, unknown>
  return { issues: [], config: build(parsed.data, raw, peppers, format, importOptions) }
}

function build(
  d: Parsed,
  raw: Record<string, unknown>,
  peppers: ResolvedPepper[],
  format: Readonly<CodeFormat>,
  importOptions: ResolvedImportOptions,
): ResolvedConfig {
  const D = DEFAULTS
  const cooldown = {
    baseSeconds: d.cooldown?.baseSeconds ?? D.cooldown.baseSeconds,
    multiplier: d.cooldown?.multiplier ?? D.cooldown.multiplier,
    cutoffSeconds: d.cooldown?.cutoffSeconds ?? D.cooldown.cutoffSeconds,
  }
  const cacheTtl = {
    seconds: d.cacheTtl?.seconds ?? D.cacheTtl.seconds,
    minSeconds: d.cacheTtl?.minSeconds ?? D.cacheTtl.minSeconds,
    maxSeconds: d.cacheTtl?.maxSeconds ?? D.cacheTtl.maxSeconds,
  }
  const reveal = { ttlSeconds: d.reveal?.ttlSeconds ?? D.reveal.ttlSeconds }
  const port = <T>(name: string): T | null => (raw[name] === undefined ? null : (raw[name] as T))
  const config = {
    peppers: Object.freeze([...peppers]),
    currentPepper: peppers[0]!,
    format,
    entropyBits: entropyBits(format),
    import: importOptions,
    batchSize: d.batchSize ?? D.batchSize,
    maxBatchSize: MAX_BATCH_SIZE,
    defaultExpiryDays: d.defaultExpiryDays === undefined ? D.defaultExpiryDays : d.defaultExpiryDays,
    lowCodesThreshold: d.lowCodesThreshold ?? D.lowCodesThreshold,
    maxLoginAttempts: d.maxLoginAttempts ?? D.maxLoginAttempts,
    hardFailureCap: d.hardFailureCap ?? D.hardFailureCap,
    clientMaxAttempts: d.clientMaxAttempts ?? D.clientMaxAttempts,
    cooldown: Object.freeze(cooldown),
    cooldownPolicy: Object.freeze({
      baseMs: cooldown.baseSeconds * 1000,
      multiplier: cooldown.multiplier,
      cutoffMs: cooldown.cutoffSeconds * 1000,
    }),
    cacheTtl: Object.freeze(cacheTtl),
    cacheTtlSeconds: Math.min(cacheTtl.maxSeconds, Math.max(cacheTtl.minSeconds, cacheTtl.seconds)),
    cacheTimeoutMs: d.cacheTimeoutMs ?? D.cacheTimeoutMs,
    history: Object.freeze({
      perPage: d.history?.perPage ?? D.history.perPage,
      maxVisible: d.history?.maxVisible ?? D.history.maxVisible,
    }),
    reveal: Object.freeze(reveal),
    revealTtlMs: reveal.ttlSeconds * 1000,
    purge: Object.freeze({
      retentionDays: d.purge?.retentionDays ?? D.purge.retentionDays,
      attemptRetentionDays: d.purge?.attemptRetentionDays ?? D.purge.attemptRetentionDays,
      batchSize: d.purge?.batchSize ?? D.purge.batchSize,
      chunkBudgetMs: d.purge?.chunkBudgetMs ?? D.purge.chunkBudgetMs,
      maxDeletionsPerRun:
        d.purge?.maxDeletionsPerRun === undefined ? D.purge.maxDeletionsPerRun : d.purge.maxDeletionsPerRun,
      deleteEmptyBatches: d.purge?.deleteEmptyBatches ?? D.purge.deleteEmptyBatches,
      reportToAdmin: d.purge?.reportToAdmin ?? D.purge.reportToAdmin,
    }),
    audit: Object.freeze({
      retentionDays: d.audit?.retentionDays ?? D.audit.retentionDays,
      autoCleanup: d.audit?.autoCleanup ?? D.audit.autoCleanup,
      storeEmailLog: d.audit?.storeEmailLog ?? D.audit.storeEmailLog,
    }),
    email: Object.freeze({
      enabled: d.email?.enabled ?? D.email.enabled,
      from: d.email?.from ?? null,
      adminEmail: d.email?.adminEmail ?? null,
      successMessage: d.email?.successMessage ?? D.email.successMessage,
    }),
    export: Object.freeze({
      fileName: d.export?.fileName ?? D.export.fileName,
      defaultFormat: d.export?.defaultFormat ?? D.export.defaultFormat,
      pdf: d.export?.pdf ?? D.export.pdf,
    }),
    notifications:
      d.notifications === undefined
        ? null
        : Object.freeze({
            kinds: Object.freeze([...new Set(d.notifications.kinds ?? NOTIFICATION_KINDS)]),
            contact: d.notifications.contact,
            linkBaseUrl: d.notifications.linkBaseUrl,
            linkTtlSeconds: d.notifications.linkTtlSeconds ?? DEFAULT_REPUDIATION_LINK_TTL_SECONDS,
          }),
    onRepudiated: port<ResolvedConfig['onRepudiated']>('onRepudiated'),
    siteName: d.siteName ?? D.siteName,
    logoutRedirect: d.logoutRedirect ?? D.logoutRedirect,
    loginMode: d.loginMode ?? D.loginMode,
    activation: d.activation ?? D.activation,
    replaceOnUse: d.replaceOnUse ?? (d.preset === 'nist-800-63b-4' ? true : D.replaceOnUse),
    preset: d.preset ?? null,
    mustBindFactor: port<ResolvedConfig['mustBindFactor']>('mustBindFactor'),
    deployment: d.deployment ?? D.deployment,
    store: raw.store as RecoveryCodeStore,
    cache: port<Cache>('cache'),
    mailer: port<Mailer>('mailer'),
    queue: port<Queue>('queue'),
    clock: port<Clock>('clock') ?? systemClock,
    random: port<RandomReader>('random') ?? systemRandom,
    logger: port<Logger>('logger'),
    events: port<EventSink>('events'),
    resolveEmail: port<ResolvedConfig['resolveEmail']>('resolveEmail'),
    resolveUserId: port<ResolvedConfig['resolveUserId']>('resolveUserId'),
  } satisfies ResolvedConfig
  const summary = () => redactedSummary(config)
  Object.defineProperties(config, { toJSON: { value: summary }, [INSPECT]: { value: summary } })
  return Object.freeze(config)
}

const PORT_KEYS = [
  'store',
  'cache',
  'mailer',
  'queue',
  'clock',
  'random',
  'logger',
  'events',
  'resolveEmail',
  'resolveUserId',
  'onRepudiated',
  'mustBindFactor',
] as const

// What JSON.stringify and util.inspect show: options and derived values, peppers redacted (their
// own toJSON/inspect), ports named but not expanded (a host's store may hold connection secrets).
function redactedSummary(config: ResolvedConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(config)) {
    out[key] = (PORT_KEYS as readonly string[]).includes(key) ? (v === null ? null : '[port]') : v
  }
  return out
}

/** `T` with every nested property read-only. */
export type DeepReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T

function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value as DeepReadonly<T>
}

function errorMessage(issues: readonly Issue[]): string {
  const n = issues.length
  const lines = issues.map((i) => `- ${i.path || '(root)'}: ${i.message}`)
  return `Invalid recovery-codes configuration (${n} problem${n === 1 ? '' : 's'}):\n${lines.join('\n')}`
}

/**
 * Validates `input` once and returns the frozen, resolved configuration.
 *
 * Every problem is collected (unknown keys, types, ranges, cross-field rules, ports, pepper
 * strength, code format) and reported in one error; messages name option paths and never contain
 * a secret. The caller's object is not modified; ports are kept by reference.
 *
 * @throws RecoveryCodesError `CONFIG_INVALID` with `issues: { path, message }[]`.
 * @example
 * ```ts
 * const config = resolveConfig({
 *   peppers: [{ id: 'k2', secret: process.env.PEPPER_K2! }, { id: 'k1', secret: process.env.PEPPER_K1! }],
 *   store: kyselyStore(db),
 *   cooldown: { baseSeconds: 30, multiplier: 1.5 },
 * })
 * config.cooldownPolicy // { baseMs: 30000, multiplier: 1.5, cutoffMs: 3600000 }
 * ```
 */
export function resolveConfig(input: unknown): ResolvedConfig {
  const { issues, config } = validate(input)
  if (config === null) throw new RecoveryCodesError('CONFIG_INVALID', errorMessage(issues), { issues })
  return config
}

/**
 * The same validation as {@link resolveConfig}, as a value: for a CLI `check` that lists every
 * problem at once.
 *
 * @example
 * ```ts
 * const result = checkConfig({ ...configFromEnv(process.env), store })
 * if (!result.ok) for (const i of result.issues) console.error(`${i.path}: ${i.message}`)
 * ```
 */
export function checkConfig(input: unknown): ConfigCheck {
  const { issues } = validate(input)
  return issues.length === 0 ? { ok: true } : { ok: false, issues }
}
