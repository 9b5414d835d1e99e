/**
 * What a resolved configuration meets of NIST SP 800-63B-4 (§3.1.2, §3.2.2, §4.2.1.1, §4.2.3,
 * §4.6) and OWASP ASVS 5.0 V6.5, item by item, each with the option that changes it (issue 16).
 * Pure: it reads the configuration and nothing else. `recovery-codes check --compliance` prints it.
 *
 * Requirements are paraphrased, not quoted. Some hold whatever the options say (digests only,
 * single use by compare-and-set, the limiter's disable at the hard cap): those items are met with
 * `option: null`. Items marked `productRule` are this library's own rules derived from the
 * standard, not its text.
 */
import type { ConfigPreset, ResolvedConfig } from './config.ts'
import { type CodeFormat, entropyBits, MIN_ENTROPY_BITS } from './domain/code-format.ts'
import { systemRandom } from './runtime.ts'
import { NOTIFICATION_KINDS, type NotificationKind } from './service/repudiation-token.ts'

/** Where a requirement comes from. */
export type ComplianceSource = 'NIST SP 800-63B-4' | 'OWASP ASVS 5.0'

/** How binding a requirement is. ASVS requirements are reported as `SHALL`. */
export type ComplianceLevel = 'SHALL' | 'SHOULD'

/** One requirement and whether the configuration meets it. */
export interface ComplianceItem {
  /** Stable id, e.g. `'sp800-63b-4/4.2.1.1/replace-on-use'`. */
  readonly id: string
  readonly source: ComplianceSource
  /** `'3.1.2'`, `'4.2.1.1'`, … for NIST; `'V6.5'` for ASVS. */
  readonly section: string
  readonly level: ComplianceLevel
  /** A short paraphrase of the requirement. */
  readonly requirement: string
  readonly met: boolean
  /** What in the configuration (or in the library) makes it met or not. */
  readonly detail: string
  /** The option that changes it, as the host would write it; `null` when built in (no option turns it off). */
  readonly option: string | null
  /** The dotted option path of `option` (`'replaceOnUse'`, `'notifications.kinds'`), or `null`. */
  readonly optionPath: string | null
  /** `true`: this library's own rule derived from the standard, not the standard's text. */
  readonly productRule: boolean
}

/** A requirement the library deviates from by design; no option changes it. */
export interface ComplianceDeviation {
  readonly id: string
  readonly source: ComplianceSource
  readonly section: string
  readonly level: ComplianceLevel
  readonly requirement: string
  /** What the library does instead, and why. */
  readonly detail: string
}

/** Counts over {@link ComplianceReport.items}. */
export interface ComplianceSummary {
  readonly shallMet: number
  readonly shallUnmet: number
  readonly shouldMet: number
  readonly shouldUnmet: number
  /** Ids of the unmet `SHALL` items, in report order. */
  readonly unmetShall: readonly string[]
  /** `true` when every `SHALL` item is met. */
  readonly allShallMet: boolean
}

/** The result of {@link complianceReport}. */
export interface ComplianceReport {
  /** The configuration's `preset`, or `null`. */
  readonly preset: ConfigPreset | null
  readonly items: readonly ComplianceItem[]
  /** Documented deviations (not counted in the summary). */
  readonly deviations: readonly ComplianceDeviation[]
  readonly summary: ComplianceSummary
}

const NIST: ComplianceSource = 'NIST SP 800-63B-4'
const ASVS: ComplianceSource = 'OWASP ASVS 5.0'

/** Entropy floor of a look-up secret (§3.1.2, ASVS V6.5). */
export const LOOKUP_SECRET_MIN_BITS = 20
/** Entropy floor of a saved recovery code (§4.2.1.1). */
export const SAVED_RECOVERY_CODE_MIN_BITS = 64
/** At or above this, a keyed one-way function suffices; below, a salted password hash is required (§3.1.2). */
export const ONE_WAY_HASH_MIN_BITS = MIN_ENTROPY_BITS
/** Most consecutive failed attempts on one account (§3.2.2). */
export const MAX_CONSECUTIVE_FAILURES = 100

const bits = (n: number) => `${Number.isInteger(n) ? n : n.toFixed(1)} bits`

/** Kinds whose absence is reported, in the order of {@link NOTIFICATION_KINDS}. */
function missingKinds(config: ResolvedConfig, wanted: readonly NotificationKind[]): NotificationKind[] {
  const kinds = config.notifications?.kinds ?? []
  return wanted.filter((k) => !kinds.includes(k))
}

const quoted = (kinds: readonly string[]) => kinds.map((k) => `'${k}'`).join(', ')

/**
 * A notification requirement on `wanted` kinds: met when `notifications` is on and lists them.
 * The option names `notifications` when it is off, else the kinds to add.
 */
function notificationCheck(
  config: ResolvedConfig,
  wanted: readonly NotificationKind[],
): Pick<ComplianceItem, 'met' | 'detail' | 'option' | 'optionPath'> {
  if (config.notifications === null) {
    return {
      met: false,
      detail: 'notifications are off (no `notifications` option)',
      option: 'notifications: { contact, linkBaseUrl }',
      optionPath: 'notifications',
    }
  }
  const missing = missingKinds(config, wanted)
  if (missing.length > 0) {
    return {
      met: false,
      detail: `notifications.kinds leaves out ${quoted(missing)}`,
      option: `notifications.kinds: add ${quoted(missing)}`,
      optionPath: 'notifications.kinds',
    }
  }
  return {
    met: true,
    detail: `notifications on, with ${quoted(wanted)}`,
    option: 'notifications',
    optionPath: 'notifications',
  }
}

/** Every format a redeem accepts: the configured one, then the imported ones. */
function acceptedFormats(config: ResolvedConfig): { name: string; bits: number; imported: boolean }[] {
  const out = [{ name: config.format.name, bits: config.entropyBits, imported: false }]
  for (const f of config.import.formats as readonly Readonly<CodeFormat>[])
    out.push({ name: f.name, bits: entropyBits(f), imported: true })
  return out
}

/**
 * An entropy floor over every accepted format. The configured format is always at least
 * {@link MIN_ENTROPY_BITS} (config validation); imported formats may be weaker.
 */
function entropyCheck(
  config: ResolvedConfig,
  floor: number,
): Pick<ComplianceItem, 'met' | 'detail' | 'option' | 'optionPath'> {
  const formats = acceptedFormats(config)
  const weak = formats.filter((f) => f.bits < floor)
  const own = `format '${config.format.name}': ${bits(config.entropyBits)}`
  if (weak.length === 0) {
    const imported = formats.filter((f) => f.imported)
    const extra =
      imported.length === 0
        ? ''
        : `; imported formats ${imported.map((f) => `'${f.name}' ${bits(f.bits)}`).join(', ')}`
    return {
      met: true,
      detail: `${own}${extra} (at least ${floor} required)`,
      option: 'import.formats',
      optionPath: 'import.formats',
    }
  }
  return {
    met: false,
    detail: `imported format${weak.length === 1 ? '' : 's'} ${weak.map((f) => `'${f.name}' (${bits(f.bits)})`).join(', ')} below ${floor} bits; ${own}`,
    option: `import.formats: drop ${quoted(weak.map((f) => f.name))} once those codes are replaced`,
    optionPath: 'import.formats',
  }
}

function rbgCheck(config: ResolvedConfig): Pick<ComplianceItem, 'met' | 'detail' | 'option' | 'optionPath'> {
  if (config.random === systemRandom) {
    return {
      met: true,
      detail: 'the platform CSPRNG (systemRandom), read with rejection sampling: no modulo bias',
      option: 'random (leave unset)',
      optionPath: 'random',
    }
  }
  return {
    met: false,
    detail:
      'a custom `random` port is configured: whether it is an approved RBG cannot be told from the configuration',
    option: 'random: leave unset (the platform CSPRNG)',
    optionPath: 'random',
  }
}

function rateLimitCheck(
  config: ResolvedConfig,
): Pick<ComplianceItem, 'met' | 'detail' | 'option' | 'optionPath'> {
  const cap = config.hardFailureCap
  const detail =
    `the batch is disabled after hardFailureCap = ${cap} consecutive failures; each ` +
    `maxLoginAttempts = ${config.maxLoginAttempts} failures lock for a capped, growing cooldown ` +
    `(${config.cooldown.baseSeconds}s × ${config.cooldown.multiplier}^k, at most ${config.cooldown.cutoffSeconds}s); ` +
    `clientMaxAttempts = ${config.clientMaxAttempts} per client key`
  return {
    met: cap <= MAX_CONSECUTIVE_FAILURES,
    detail,
    option: `hardFailureCap: at most ${MAX_CONSECUTIVE_FAILURES}`,
    optionPath: 'hardFailureCap',
  }
}

type Spec = Omit<ComplianceItem, 'productRule'> & { productRule?: boolean }

const builtIn = (detail: string): Pick<ComplianceItem, 'met' | 'detail' | 'option' | 'optionPath'> => ({
  met: true,
  detail,
  option: null,
  optionPath: null,
})

const DIGEST_DETAIL =
  'only peppered HMAC-SHA-256 digests are stored (pepper ≥ 256 bits, kept outside the store), never the code'

function storageCheck(
  config: ResolvedConfig,
): Pick<ComplianceItem, 'met' | 'detail' | 'option' | 'optionPath'> {
  const weak = acceptedFormats(config).filter((f) => f.bits < ONE_WAY_HASH_MIN_BITS)
  const legacy =
    config.import.legacyDigests.length === 0
      ? ''
      : `; imported legacy digests are the source's keyed HMAC (${config.import.legacyDigests.map((k) => k.scheme).join(', ')})`
  if (weak.length === 0) {
    return {
      met: true,
      detail: `${DIGEST_DETAIL}; every accepted format has at least ${ONE_WAY_HASH_MIN_BITS} bits${legacy}`,
      option: null,
      optionPath: null,
    }
  }
  return {
    met: false,
    detail: `imported format${weak.length === 1 ? '' : 's'} ${weak.map((f) => `'${f.name}' (${bits(f.bits)})`).join(', ')} under ${ONE_WAY_HASH_MIN_BITS} bits are kept as keyed HMACs, not a salted password hash`,
    option: `import.formats: drop ${quoted(weak.map((f) => f.name))} once those codes are replaced`,
    optionPath: 'import.formats',
  }
}

function specs(config: ResolvedConfig): Spec[] {
  const rbg = rbgCheck(config)
  const rate = rateLimitCheck(config)
  const storage = storageCheck(config)
  const notifyOn = config.notifications !== null
  return [
    // ---- §3.1.2 look-up secrets --------------------------------------------------------------
    {
      id: 'sp800-63b-4/3.1.2/approved-rbg',
      source: NIST,
      section: '3.1.2',
      level: 'SHALL',
      requirement: 'look-up secrets are generated by an approved random bit generator',
      ...rbg,
    },
    {
      id: 'sp800-63b-4/3.1.2/min-entropy',
      source: NIST,
      section: '3.1.2',
      level: 'SHALL',
      requirement: `each look-up secret has at least ${LOOKUP_SECRET_MIN_BITS} bits of entropy`,
      ...entropyCheck(config, LOOKUP_SECRET_MIN_BITS),
    },
    {
      id: 'sp800-63b-4/3.1.2/single-use',
      source: NIST,
      section: '3.1.2',
      level: 'SHALL',
      requirement: 'a secret is used successfully only once',
      ...builtIn(
        'consuming a code is one compare-and-set in the store: of concurrent redeems exactly one wins',
      ),
    },
    {
      id: 'sp800-63b-4/3.1.2/offline-resistant-storage',
      source: NIST,
      section: '3.1.2',
      level: 'SHALL',
      requirement: `secrets are stored resistant to offline attack (≥ ${ONE_WAY_HASH_MIN_BITS} bits: an approved one-way function; fewer: a salted password hash)`,
      ...storage,
    },
    {
      id: 'sp800-63b-4/3.1.2/rate-limited',
      source: NIST,
      section: '3.1.2',
      level: 'SHALL',
      requirement: 'failed attempts are rate limited as in §3.2.2',
      ...rate,
    },
    // ---- §3.2.2 rate limiting ----------------------------------------------------------------
    {
      id: 'sp800-63b-4/3.2.2/consecutive-failure-limit',
      source: NIST,
      section: '3.2.2',
      level: 'SHALL',
      requirement: `no more than ${MAX_CONSECUTIVE_FAILURES} consecutive failed attempts on one account`,
      ...rate,
    },
    {
      id: 'sp800-63b-4/3.2.2/disable-at-limit',
      source: NIST,
      section: '3.2.2',
      level: 'SHALL',
      requirement: 'at the limit the authenticator is disabled and has to be bound anew',
      ...builtIn(
        `at hardFailureCap (${config.hardFailureCap}) the active batch is disabled (batch.disabled audit row); generating a new batch rebinds`,
      ),
    },
    {
      id: 'sp800-63b-4/3.2.2/reset-on-success',
      source: NIST,
      section: '3.2.2',
      level: 'SHOULD',
      requirement: 'a successful authentication clears the earlier failed attempts of that authenticator',
      ...builtIn('a successful redeem resets the subject counter (not the per-client one)'),
    },
    {
      id: 'recovery-codes/3.2.2/disabled-notification',
      source: NIST,
      section: '3.2.2',
      level: 'SHOULD',
      productRule: true,
      requirement: 'the user is told when failed attempts locked or disabled their codes',
      ...notificationCheck(config, ['disabled', 'locked']),
    },
    // ---- §4.2.1.1 saved recovery codes -------------------------------------------------------
    {
      id: 'sp800-63b-4/4.2.1.1/min-entropy',
      source: NIST,
      section: '4.2.1.1',
      level: 'SHALL',
      requirement: `a saved recovery code has at least ${SAVED_RECOVERY_CODE_MIN_BITS} bits of entropy`,
      ...entropyCheck(config, SAVED_RECOVERY_CODE_MIN_BITS),
    },
    {
      id: 'sp800-63b-4/4.2.1.1/invalidate-on-use',
      source: NIST,
      section: '4.2.1.1',
      level: 'SHALL',
      requirement: 'a used recovery code is invalidated',
      ...builtIn('the consume marks the code used in the same write that accepts it'),
    },
    {
      id: 'sp800-63b-4/4.2.1.1/replace-on-use',
      source: NIST,
      section: '4.2.1.1',
      level: 'SHALL',
      requirement: 'after a recovery code is used, a new saved recovery code is issued',
      met: config.replaceOnUse,
      detail: config.replaceOnUse
        ? 'replaceOnUse is on: each successful redeem adds one replacement code, revealed once'
        : 'replaceOnUse is off: a used code is not replaced',
      option: 'replaceOnUse: true',
      optionPath: 'replaceOnUse',
    },
    {
      id: 'sp800-63b-4/4.2.1.1/replacement-notification',
      source: NIST,
      section: '4.2.1.1',
      level: 'SHALL',
      requirement: 'issuing new recovery codes results in an account-recovery notification',
      ...notificationCheck(config, ['recovery-login', 'codes-generated']),
    },
    {
      id: 'recovery-codes/4.2.1.1/activation-confirm',
      source: NIST,
      section: '4.2.1.1',
      level: 'SHOULD',
      productRule: true,
      requirement:
        'a new batch takes over only once the user confirms saving it (never stranded without codes)',
      met: config.activation === 'confirm',
      detail:
        config.activation === 'confirm'
          ? "activation 'confirm': the current codes keep working until the user confirms the new ones"
          : "activation 'immediate': the new batch replaces the current one before the user has saved it",
      option: "activation: 'confirm'",
      optionPath: 'activation',
    },
    // ---- §4.2.3 account recovery -------------------------------------------------------------
    {
      id: 'sp800-63b-4/4.2.3/recovery-notification',
      source: NIST,
      section: '4.2.3',
      level: 'SHALL',
      requirement: 'an account recovery causes a notification to the subscriber',
      ...notificationCheck(config, ['recovery-login']),
    },
    {
      id: 'sp800-63b-4/4.2.3/bind-new-authenticator',
      source: NIST,
      section: '4.2.3',
      level: 'SHOULD',
      requirement: 'after a recovery the subscriber binds a new authenticator',
      met: config.mustBindFactor !== null,
      detail:
        config.mustBindFactor !== null
          ? 'the mustBindFactor hook is set: the redeem result says when to bind a new factor first'
          : 'no mustBindFactor hook: the redeem result never asks the host to bind a new factor',
      option: 'mustBindFactor',
      optionPath: 'mustBindFactor',
    },
    // ---- §4.6 notifications ------------------------------------------------------------------
    {
      id: 'sp800-63b-4/4.6/notification-address',
      source: NIST,
      section: '4.6',
      level: 'SHALL',
      requirement: 'notifications go to the notification addresses on record',
      met: notifyOn,
      detail: notifyOn
        ? 'each notification is mailed (mailer) to the address resolveEmail returns for the user: one address, so a host with several on record sends to the others itself'
        : 'notifications are off (no `notifications` option; it needs mailer and resolveEmail)',
      option: 'notifications: { contact, linkBaseUrl }',
      optionPath: 'notifications',
    },
    {
      id: 'sp800-63b-4/4.6/repudiation-instructions',
      source: NIST,
      section: '4.6',
      level: 'SHALL',
      requirement:
        'a notification gives clear instructions, with contact information, in case the event was not the subscriber',
      met: (config.notifications?.contact ?? '') !== '' && (config.notifications?.linkBaseUrl ?? '') !== '',
      detail: notifyOn
        ? 'every message carries notifications.contact and a signed, single-use "This wasn\'t me" link under notifications.linkBaseUrl'
        : 'notifications are off: no instructions or contact are sent',
      option: 'notifications.contact and notifications.linkBaseUrl',
      optionPath: 'notifications',
    },
    // ---- OWASP ASVS 5.0 V6.5 -----------------------------------------------------------------
    {
      id: 'asvs-5.0/v6.5/single-use',
      source: ASVS,
      section: 'V6.5',
      level: 'SHALL',
      requirement: 'look-up secrets (recovery codes) can be used only once',
      ...builtIn('one compare-and-set consume per code, on every store'),
    },
    {
      id: 'asvs-5.0/v6.5/csprng',
      source: ASVS,
      section: 'V6.5',
      level: 'SHALL',
      requirement: 'look-up secrets come from a cryptographically secure random generator',
      ...rbg,
    },
    {
      id: 'asvs-5.0/v6.5/min-entropy',
      source: ASVS,
      section: 'V6.5',
      level: 'SHALL',
      requirement: `look-up secrets have sufficient entropy (at least ${LOOKUP_SECRET_MIN_BITS} bits)`,
      ...entropyCheck(config, LOOKUP_SECRET_MIN_BITS),
    },
    {
      id: 'asvs-5.0/v6.5/stored-hashed',
      source: ASVS,
      section: 'V6.5',
      level: 'SHALL',
      requirement: 'look-up secrets are stored hashed with an approved function (salted when of low entropy)',
      ...storage,
    },
    {
      id: 'asvs-5.0/v6.5/rate-limited',
      source: ASVS,
      section: 'V6.5',
      level: 'SHALL',
      requirement: 'guessing look-up secrets is rate limited',
      ...rate,
    },
    {
      id: 'asvs-5.0/v6.5/lifecycle-notified',
      source: ASVS,
      section: 'V6.5',
      level: 'SHOULD',
      productRule: true,
      requirement:
        'the user is notified of recovery-code lifecycle events (generation, use, low, exhausted, lockout, disable)',
      ...notificationCheck(config, NOTIFICATION_KINDS),
    },
  ]
}

const DEVIATIONS: readonly ComplianceDeviation[] = Object.freeze([
  Object.freeze({
    id: 'sp800-63b-4/3.1.2/prompt-specific-secret',
    source: NIST,
    section: '3.1.2',
    level: 'SHALL',
    requirement: 'the verifier prompts for the next secret or a specific (numbered) one',
    detail:
      'any unused code of the active batch is accepted, as major providers do; each extra live code multiplies an online guesser’s odds by at most the batch size (≤ 50), which the ≥ 112-bit codes and the limiter absorb (docs/security.md, R-VER-6)',
  }),
])

/**
 * Reports, for `config`, each listed SHALL / SHOULD of NIST SP 800-63B-4 §3.1.2, §3.2.2, §4.2.1.1,
 * §4.2.3, §4.6 and OWASP ASVS 5.0 V6.5 as met or not, with the option that changes it.
 *
 * @example
 * ```ts
 * const report = complianceReport(resolveConfig({ peppers, store, preset: 'nist-800-63b-4', notifications, mailer, resolveEmail }))
 * report.summary.allShallMet // true
 * for (const i of report.items) if (!i.met) console.log(`${i.level} §${i.section} ${i.requirement}: set ${i.option}`)
 * ```
 */
export function complianceReport(config: ResolvedConfig): ComplianceReport {
  const items = specs(config).map(
    (s): ComplianceItem => Object.freeze({ ...s, productRule: s.productRule ?? false }),
  )
  const count = (level: ComplianceLevel, met: boolean) =>
    items.filter((i) => i.level === level && i.met === met).length
  const unmetShall = items.filter((i) => i.level === 'SHALL' && !i.met).map((i) => i.id)
  return Object.freeze({
    preset: config.preset,
    items: Object.freeze(items),
    deviations: DEVIATIONS,
    summary: Object.freeze({
      shallMet: count('SHALL', true),
      shallUnmet: count('SHALL', false),
      shouldMet: count('SHOULD', true),
      shouldUnmet: count('SHOULD', false),
      unmetShall: Object.freeze(unmetShall),
      allShallMet: unmetShall.length === 0,
    }),
  })
}
