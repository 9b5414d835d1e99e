/**
 * Code generation: uniform symbols from a CSPRNG by rejection sampling, random bytes read in
 * bulk, codes distinct within a batch.
 */
import { RecoveryCodesError } from '../errors.ts'
import type { RandomReader } from '../ports/random.ts'
import { type CodeFormat, codeLength, validateCodeFormat } from './code-format.ts'

/** Most codes one call to {@link generateCodes} may return. Config bounds the batch size far lower. */
export const MAX_GENERATE_COUNT = 1000

/**
 * The exclusive upper bound of accepted random bytes for an alphabet of `size` symbols: the
 * largest multiple of `size` that is ≤ 256. A byte `b < limit` maps to `b % size` without bias;
 * any other byte is rejected.
 *
 * @example acceptLimit(32) // 256 (nothing rejected)
 * @example acceptLimit(60) // 240 (bytes 240..255 rejected)
 */
export function acceptLimit(size: number): number {
  return Math.floor(256 / size) * size
}

/**
 * Returns `count` distinct canonical codes (no separators) of `format`, each symbol drawn
 * uniformly from the alphabet.
 *
 * Randomness is read in bulk: one `random.read()` sized for the whole batch plus a margin for
 * rejected bytes, refilled only if that runs out. A random source that keeps producing rejected
 * bytes or duplicate codes (a broken or stubbed reader) ends in a `RecoveryCodesError('INTERNAL')`
 * instead of a loop.
 *
 * @throws RecoveryCodesError `INVALID_INPUT` when `count` is not an integer in 1..{@link MAX_GENERATE_COUNT};
 *   `CONFIG_INVALID` when the format fails {@link validateCodeFormat}.
 * @example
 * ```ts
 * const codes = generateCodes(systemRandom, DEFAULT_CODE_FORMAT, 10)
 * codes.map((c) => formatCode(c, DEFAULT_CODE_FORMAT)) // ['7K2QX-M9D4R-…', …]
 * ```
 */
export function generateCodes(random: RandomReader, format: CodeFormat, count: number): string[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_GENERATE_COUNT) {
    throw new RecoveryCodesError('INVALID_INPUT', `count must be an integer in 1..${MAX_GENERATE_COUNT}`, {
      issues: [{ path: 'count', message: `must be an integer in 1..${MAX_GENERATE_COUNT}` }],
    })
  }
  const issues = checkedFormat(format)
  if (issues.length > 0) {
    throw new RecoveryCodesError('CONFIG_INVALID', 'invalid code format', {
      issues: issues.map((i) => ({ path: `format.${i.path}`, message: i.message })),
    })
  }
  const length = codeLength(format)
  const nextSymbol = symbolSource(random, format.alphabet, count * length)
  // A duplicate among ≥112-bit codes means a broken reader; allow a few redraws, not a loop.
  let redrawsLeft = count + 8
  const codes = new Set<string>()
  const symbols: number[] = new Array(length)
  while (codes.size < count) {
    for (let i = 0; i < length; i++) symbols[i] = nextSymbol()
    const code = String.fromCharCode.apply(null, symbols)
    if (codes.has(code)) {
      if (--redrawsLeft < 0) {
        throw new RecoveryCodesError(
          'INTERNAL',
          'random source produced duplicate codes; is it a real CSPRNG?',
        )
      }
      continue
    }
    codes.add(code)
  }
  return [...codes]
}

/** Validation results of frozen formats (the presets and every resolved config): checked once. */
const checkedFormats = new WeakMap<CodeFormat, ReturnType<typeof validateCodeFormat>>()

/** {@link validateCodeFormat}, remembered for a deeply frozen format (it cannot change). */
function checkedFormat(format: CodeFormat): ReturnType<typeof validateCodeFormat> {
  const frozen =
    Object.isFrozen(format) && (format.confusables == null || Object.isFrozen(format.confusables))
  if (!frozen) return validateCodeFormat(format)
  let issues = checkedFormats.get(format)
  if (issues === undefined) {
    issues = validateCodeFormat(format)
    checkedFormats.set(format, issues)
  }
  return issues
}

/** Bytes to read for `symbols` accepted symbols: the expected need plus 25 % and 32 bytes. */
function bulkSize(symbols: number, limit: number): number {
  return Math.ceil(((symbols * 256) / limit) * 1.25) + 32
}

/**
 * A closure handing out uniform alphabet symbols (as char codes) from bytes read in bulk.
 * `expected` sizes the first read; later reads (rare) are sized for what is still expected.
 */
function symbolSource(random: RandomReader, alphabet: string, expected: number): () => number {
  const size = alphabet.length
  const limit = acceptLimit(size)
  // Far beyond any plausible rejection run (the odds of a real CSPRNG needing it are nil).
  let budget = 64 * bulkSize(expected, limit) + 4096
  let produced = 0
  let buffer = new Uint8Array(0)
  let pos = 0
  return () => {
    for (;;) {
      if (pos === buffer.length) {
        const want = Math.min(bulkSize(Math.max(expected - produced, 16), limit), budget)
        if (want <= 0) {
          throw new RecoveryCodesError('INTERNAL', 'random source keeps producing rejected bytes')
        }
        budget -= want
        buffer = new Uint8Array(want)
        random.read(buffer)
        pos = 0
      }
      const byte = buffer[pos++]!
      if (byte < limit) {
        produced++
        return alphabet.charCodeAt(byte % size)
      }
    }
  }
}
