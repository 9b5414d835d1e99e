/**
 * The `import` option: how codes imported from another system are verified. Codes whose plaintext
 * the import recovered are native codes; `formats` lets a redeem accept their shape. Codes that
 * exist only as the source's digest are verified by a `legacyDigests` scheme.
 */
import { type CodeFormat, entropyBits, MIN_ENTROPY_BITS, validateCodeFormat } from './domain/code-format.ts'
import { LEGACY_SCHEMES, type LegacyDigestKey, type LegacyScheme } from './domain/legacy-digest.ts'
import type { RecoveryCodesIssue } from './errors.ts'

/** One legacy digest scheme as configured. */
export interface LegacyDigestInput {
  /** Key id of the imported batches it verifies (`/^[A-Za-z0-9_-]{1,32}$/`), distinct from every pepper id. */
  id: string
  scheme: LegacyScheme
  /**
   * The source's key: for django-auth-recovery-codes its `DJANGO_AUTH_RECOVERY_KEY`, as text
   * (used as its UTF-8 bytes, exactly as the source does) or bytes.
   */
  secret: string | Uint8Array
}

/** Named formats of codes other systems issue, accepted by `import.formats`. */
export const IMPORT_FORMAT_PRESETS = Object.freeze({
  /** better-auth two-factor backup codes: 10 of `a-z A-Z 0-9` shown as `xxxxx-xxxxx` (59.5 bits). */
  'better-auth': Object.freeze({
    name: 'better-auth',
    alphabet: '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
    groups: 2,
    groupLength: 5,
    separator: '-',
    caseSensitive: true,
  }),
  /** Laravel Fortify recovery codes: `Str::random(10)-Str::random(10)` (119 bits). */
  fortify: Object.freeze({
    name: 'fortify',
    alphabet: '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
    groups: 2,
    groupLength: 10,
    separator: '-',
    caseSensitive: true,
  }),
}) satisfies Record<string, Readonly<CodeFormat>>

/** A name of {@link IMPORT_FORMAT_PRESETS}. */
export type ImportFormatPreset = keyof typeof IMPORT_FORMAT_PRESETS

/** The `import` option of the configuration. */
export interface ImportOptions {
  /** Schemes that verify imported codes kept as the source's digest; at most 10. */
  legacyDigests?: readonly LegacyDigestInput[]
  /**
   * Shapes of imported native codes a redeem accepts besides `format`; at most 8. Existing codes
   * may carry fewer than 112 bits (better-auth: 59.5): at least {@link MIN_IMPORT_ENTROPY_BITS}.
   */
  formats?: readonly (ImportFormatPreset | CodeFormat)[]
}

/** The resolved `import` option. */
export interface ResolvedImportOptions {
  readonly legacyDigests: readonly LegacyDigestKey[]
  readonly formats: readonly Readonly<CodeFormat>[]
}

/** The entropy floor of an imported format: the limiter bounds online guessing far below it. */
export const MIN_IMPORT_ENTROPY_BITS = 48

const MAX_LEGACY = 10
const MAX_FORMATS = 8
const MAX_SECRET_BYTES = 1024
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/
const REDACTED = '[redacted]'
const INSPECT = Symbol.for('nodejs.util.inspect.custom')

/** Nothing imported: what an absent `import` option resolves to. */
export const NO_IMPORT_OPTIONS: ResolvedImportOptions = Object.freeze({
  legacyDigests: Object.freeze([]),
  formats: Object.freeze([]),
})

/**
 * Resolves `import`; problems go to `issues` (paths under `import.`) and `null` is returned then.
 *
 * @param pepperIds the configured pepper ids, which a legacy id must not reuse.
 */
export function resolveImportOptions(
  raw: unknown,
  pepperIds: readonly string[],
  issues: RecoveryCodesIssue[],
): ResolvedImportOptions | null {
  if (raw === undefined) return NO_IMPORT_OPTIONS
  const start = issues.length
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    issues.push({ path: 'import', message: 'must be an object { legacyDigests?, formats? }' })
    return null
  }
  for (const key of Object.keys(raw)) {
    if (key !== 'legacyDigests' && key !== 'formats') {
      issues.push({ path: `import.${key}`, message: 'is not a known option' })
    }
  }
  const input = raw as { legacyDigests?: unknown; formats?: unknown }
  const legacyDigests = resolveLegacy(input.legacyDigests, pepperIds, issues)
  const formats = resolveFormats(input.formats, issues)
  if (issues.length > start) return null
  return Object.freeze({ legacyDigests: Object.freeze(legacyDigests), formats: Object.freeze(formats) })
}

function resolveLegacy(raw: unknown, pepperIds: readonly string[], issues: RecoveryCodesIssue[]) {
  const out: LegacyDigestKey[] = []
  if (raw === undefined) return out
  if (!Array.isArray(raw) || raw.length > MAX_LEGACY) {
    issues.push({
      path: 'import.legacyDigests',
      message: `must be a list of at most ${MAX_LEGACY} { id, scheme, secret }`,
    })
    return out
  }
  const seen = new Set<string>()
  raw.forEach((entry: unknown, i) => {
    const path = `import.legacyDigests.${i}`
    const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Partial<LegacyDigestInput>
    for (const key of Object.keys(e)) {
      if (key !== 'id' && key !== 'scheme' && key !== 'secret') {
        issues.push({ path: `${path}.${key}`, message: 'is not a known option' })
      }
    }
    const { id, scheme, secret } = e
    if (typeof id !== 'string' || !KEY_ID.test(id)) {
      issues.push({ path: `${path}.id`, message: 'must match /^[A-Za-z0-9_-]{1,32}$/' })
    } else if (seen.has(id) || pepperIds.includes(id)) {
      issues.push({ path: `${path}.id`, message: 'duplicates a pepper id or another legacy id' })
    }
    if (typeof scheme !== 'string' || !(LEGACY_SCHEMES as readonly string[]).includes(scheme)) {
      issues.push({ path: `${path}.scheme`, message: `must be one of ${LEGACY_SCHEMES.join(', ')}` })
    }
    const bytes =
      typeof secret === 'string'
        ? new TextEncoder().encode(secret)
        : secret instanceof Uint8Array
          ? new Uint8Array(secret)
          : null
    if (bytes === null || bytes.length === 0 || bytes.length > MAX_SECRET_BYTES) {
      issues.push({
        path: `${path}.secret`,
        message: `must be a non-empty string or Uint8Array of at most ${MAX_SECRET_BYTES} bytes`,
      })
    }
    if (typeof id === 'string') seen.add(id)
    if (typeof id === 'string' && typeof scheme === 'string' && bytes !== null) {
      out.push(makeLegacyKey(id, scheme as LegacyScheme, bytes))
    }
  })
  return out
}

function resolveFormats(raw: unknown, issues: RecoveryCodesIssue[]): Readonly<CodeFormat>[] {
  const out: Readonly<CodeFormat>[] = []
  if (raw === undefined) return out
  if (!Array.isArray(raw) || raw.length > MAX_FORMATS) {
    issues.push({
      path: 'import.formats',
      message: `must be a list of at most ${MAX_FORMATS} preset names (${Object.keys(IMPORT_FORMAT_PRESETS).join(', ')}) or code formats`,
    })
    return out
  }
  raw.forEach((entry: unknown, i) => {
    const path = `import.formats.${i}`
    if (typeof entry === 'string') {
      const preset = (IMPORT_FORMAT_PRESETS as Record<string, Readonly<CodeFormat>>)[entry]
      if (preset === undefined) {
        issues.push({ path, message: `must be one of ${Object.keys(IMPORT_FORMAT_PRESETS).join(', ')}` })
      } else out.push(preset)
      return
    }
    const format = entry as CodeFormat
    if (typeof format !== 'object' || format === null || typeof format.alphabet !== 'string') {
      issues.push({ path, message: 'must be a preset name or a code format object' })
      return
    }
    // The generation floor (112 bits) does not apply to codes that exist already; the import floor does.
    const problems = validateCodeFormat(format).filter(
      (p) => !(p.path === 'alphabet' && p.message.includes(`${MIN_ENTROPY_BITS} are required`)),
    )
    for (const p of problems) issues.push({ path: `${path}.${p.path}`, message: p.message })
    if (problems.length === 0 && entropyBits(format) < MIN_IMPORT_ENTROPY_BITS) {
      issues.push({
        path: `${path}.alphabet`,
        message: `gives ${entropyBits(format).toFixed(1)} bits per code; imported formats need at least ${MIN_IMPORT_ENTROPY_BITS}`,
      })
    } else if (problems.length === 0) {
      out.push(Object.freeze({ ...format }))
    }
  })
  return out
}

function makeLegacyKey(id: string, scheme: LegacyScheme, secret: Uint8Array): LegacyDigestKey {
  const key = { id, scheme }
  Object.defineProperties(key, {
    secret: { value: secret, enumerable: false },
    toJSON: { value: () => ({ id, scheme, secret: REDACTED }) },
    toString: { value: () => `LegacyDigestKey(${id}, ${scheme}, ${REDACTED})` },
    [INSPECT]: { value: () => `LegacyDigestKey { id: '${id}', scheme: '${scheme}', secret: ${REDACTED} }` },
  })
  return Object.freeze(key) as LegacyDigestKey
}
