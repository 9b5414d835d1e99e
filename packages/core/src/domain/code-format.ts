/**
 * Code formats as data, entropy computed from them, and the one canonicalisation used at
 * generation, display, hashing and verification.
 */

/** A code format. Plain data: it can come from config or JSON. */
export interface CodeFormat {
  /** A label for docs and errors. */
  name: string
  /** The symbols, each once. ASCII letters and digits only. */
  alphabet: string
  /** Number of groups shown. */
  groups: number
  /** Symbols per group. */
  groupLength: number
  /** Shown between groups; stripped on input. */
  separator: string
  /** When false, input is upper-cased before lookup and the alphabet must be upper-case only. */
  caseSensitive: boolean
  /** Input symbols mapped to alphabet symbols after case folding, e.g. Crockford `O → 0`. */
  confusables?: Readonly<Record<string, string>>
}

/** Crockford base32: `0-9A-Z` without I, L, O, U. */
export const CROCKFORD_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** Default: 25 Crockford symbols shown as 5 groups of 5 (125 bits), e.g. `7K2QX-M9D4R-…`. */
export const DEFAULT_CODE_FORMAT: Readonly<CodeFormat> = Object.freeze({
  name: 'crockford-5x5',
  alphabet: CROCKFORD_ALPHABET,
  groups: 5,
  groupLength: 5,
  separator: '-',
  caseSensitive: false,
  confusables: Object.freeze({ O: '0', I: '1', L: '1' }),
})

/**
 * Parity preset with the reference app: 6 groups of 6 over `A-Z a-z 2-9` (60 symbols,
 * case-sensitive, about 212.6 bits). Look-alike-prone and case-sensitive: prefer the default.
 */
export const DJANGO_CODE_FORMAT: Readonly<CodeFormat> = Object.freeze({
  name: 'django',
  alphabet: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz23456789',
  groups: 6,
  groupLength: 6,
  separator: '-',
  caseSensitive: true,
})

/** Named presets accepted by `config.format`. */
export const CODE_FORMAT_PRESETS = Object.freeze({
  default: DEFAULT_CODE_FORMAT,
  crockford: DEFAULT_CODE_FORMAT,
  django: DJANGO_CODE_FORMAT,
}) satisfies Record<string, Readonly<CodeFormat>>

/** The floor for a keyed-HMAC scheme (NIST SP 800-63B §5.1.2.2). */
export const MIN_ENTROPY_BITS = 112

/** Symbols in one code (separators excluded). */
export function codeLength(format: CodeFormat): number {
  return format.groups * format.groupLength
}

/** Bits of entropy of one uniformly generated code: `length × log2(|alphabet|)`. */
export function entropyBits(format: CodeFormat): number {
  return codeLength(format) * Math.log2(format.alphabet.length)
}

/** Characters of a displayed code, separators included. */
export function displayLength(format: CodeFormat): number {
  return codeLength(format) + (format.groups - 1) * format.separator.length
}

/** Problems with a format, as `{ path, message }` pairs relative to the format; empty when valid. */
export function validateCodeFormat(format: CodeFormat): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = []
  const symbols = [...format.alphabet]
  for (const key of ['groups', 'groupLength'] as const) {
    if (!Number.isSafeInteger(format[key]) || format[key] < 1) {
      issues.push({ path: key, message: 'must be a positive integer' })
    }
  }
  if (symbols.length < 2) issues.push({ path: 'alphabet', message: 'needs at least 2 symbols' })
  if (new Set(symbols).size !== symbols.length) {
    issues.push({ path: 'alphabet', message: 'has duplicate symbols' })
  }
  if (symbols.some((s) => !/^[0-9A-Za-z]$/.test(s))) {
    issues.push({ path: 'alphabet', message: 'must contain only ASCII letters and digits' })
  }
  if (!format.caseSensitive && symbols.some((s) => s !== s.toUpperCase())) {
    issues.push({ path: 'alphabet', message: 'must be upper-case when caseSensitive is false' })
  }
  if (!/^[-_ .]{0,1}$/.test(format.separator)) {
    issues.push({ path: 'separator', message: "must be one of '-', '_', ' ', '.' or empty" })
  }
  for (const [from, to] of Object.entries(format.confusables ?? {})) {
    // Single characters only: `includes('')` is true and a multi-character target would change the length.
    const single = [...from].length === 1 && [...to].length === 1
    if (!single || !format.alphabet.includes(to) || format.alphabet.includes(from)) {
      issues.push({
        path: 'confusables',
        message: `mapping ${from}→${to} must go from outside to inside the alphabet`,
      })
    }
  }
  if (issues.length === 0 && entropyBits(format) < MIN_ENTROPY_BITS) {
    issues.push({
      path: 'alphabet',
      message: `gives ${entropyBits(format).toFixed(1)} bits per code; at least ${MIN_ENTROPY_BITS} are required`,
    })
  }
  return issues
}

/** Longest raw input `normalize` looks at; anything longer is rejected before Unicode work. */
export function maxInputLength(format: CodeFormat): number {
  return Math.max(64, displayLength(format) * 2)
}

/**
 * What input canonicalisation strips (a global regex): whitespace, every dash (Pd) plus minus
 * signs, and invisible format characters (zero-width, joiners, BOM, soft hyphen, word joiner).
 */
export const CODE_INPUT_STRIP = /[\s\p{Pd}\u2212\u2796\uFE63\uFF0D\u00AD\u200B-\u200F\u2060-\u2064\uFEFF]/gu

/**
 * Canonicalises user input to the stored form of a code: bounded length check, NFKC, strip
 * whitespace, dashes and zero-width characters, fold case (case-insensitive formats), map
 * confusables, then require exactly `groups × groupLength` alphabet symbols.
 *
 * @returns the canonical code, or `null` when the input cannot be a code of this format.
 * @example normalize(' 7k2qx m9d4r–ab0cd-efghj-kmnpq ', DEFAULT_CODE_FORMAT) // '7K2QXM9D4RAB0CDEFGHJKMNPQ'
 */
export function normalize(input: string, format: CodeFormat): string | null {
  if (typeof input !== 'string' || input.length > maxInputLength(format)) return null
  const fast = normalizeAscii(input, format)
  return fast === undefined ? normalizeUnicode(input, format) : fast
}

/** Per ASCII character code: the alphabet symbol's char code it stands for, {@link STRIPPED}, or {@link INVALID}. */
type AsciiTable = Int32Array

const STRIPPED = -2
const INVALID = -1

const asciiTables = new WeakMap<CodeFormat, AsciiTable>()

/**
 * {@link normalizeUnicode} applied to each ASCII character alone. ASCII is NFKC-stable and every
 * step works per character (each gives one symbol or none), so for all-ASCII input a table lookup
 * per character gives the same result (a property test checks the two against each other).
 */
function asciiTable(format: CodeFormat): AsciiTable {
  let table = asciiTables.get(format)
  if (table === undefined) {
    const single = { ...format, groups: 1, groupLength: 1 }
    table = new Int32Array(128)
    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c)
      const symbol =
        STRIP_ONE.test(ch) || (format.separator !== '' && ch === format.separator)
          ? ''
          : normalizeUnicode(ch, single)
      table[c] = symbol === null ? INVALID : symbol === '' ? STRIPPED : symbol.charCodeAt(0)
    }
    asciiTables.set(format, table)
  }
  return table
}

/** The symbols {@link normalizeAscii} collects, reused (it never yields mid-call). */
const symbols: number[] = []

/** The all-ASCII path: `undefined` when the input has a non-ASCII character. */
function normalizeAscii(input: string, format: CodeFormat): string | null | undefined {
  const table = asciiTable(format)
  const length = codeLength(format)
  let n = 0
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i)
    if (c > 0x7f) return undefined
    const symbol = table[c]!
    if (symbol === INVALID) return null
    if (symbol === STRIPPED) continue
    // Too many symbols: not a code, whatever follows (a non-ASCII character included).
    if (n === length) return hasNonAscii(input, i) ? undefined : null
    symbols[n++] = symbol
  }
  if (n !== length) return null
  symbols.length = n
  return String.fromCharCode.apply(null, symbols)
}

function hasNonAscii(input: string, from: number): boolean {
  for (let i = from; i < input.length; i++) if (input.charCodeAt(i) > 0x7f) return true
  return false
}

const STRIP_ONE = new RegExp(CODE_INPUT_STRIP.source, 'u')

function normalizeUnicode(input: string, format: CodeFormat): string | null {
  let s = input.normalize('NFKC').replace(CODE_INPUT_STRIP, '')
  // '_' and '.' are allowed separators but neither whitespace nor dashes: strip the format's own.
  if (format.separator !== '') s = s.split(format.separator).join('')
  if (!format.caseSensitive) s = s.replace(/[a-z]+/g, (m) => m.toUpperCase())
  const map = format.confusables
  if (map) s = s.replace(/./gu, (c) => map[c] ?? c)
  if (s.length !== codeLength(format)) return null
  for (const c of s) if (!format.alphabet.includes(c)) return null
  return s
}

/** Groups a canonical code for display: `7K2QXM9D4R…` → `7K2QX-M9D4R-…`. */
export function formatCode(canonical: string, format: CodeFormat): string {
  const parts: string[] = []
  for (let i = 0; i < format.groups; i++) {
    parts.push(canonical.slice(i * format.groupLength, (i + 1) * format.groupLength))
  }
  return parts.join(format.separator)
}
