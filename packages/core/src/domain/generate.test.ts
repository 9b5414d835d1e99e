import { afterEach, describe, expect, it, vi } from 'vitest'
import { RecoveryCodesError } from '../errors.ts'
import type { RandomReader } from '../ports/random.ts'
import { systemRandom } from '../runtime.ts'
import {
  type CodeFormat,
  codeLength,
  DEFAULT_CODE_FORMAT,
  DJANGO_CODE_FORMAT,
  normalize,
} from './code-format.ts'
import { acceptLimit, generateCodes, MAX_GENERATE_COUNT } from './generate.ts'

// Chi-square critical values at p = 0.001 (scipy.stats.chi2.ppf(0.999, df)).
const CRITICAL_P001 = { 31: 61.098, 59: 98.324 } as const

/** Pearson's chi-square of symbol counts against a uniform distribution over `alphabet`. */
function chiSquare(symbols: Iterable<string>, alphabet: string): { statistic: number; total: number } {
  const counts = new Map<string, number>([...alphabet].map((c) => [c, 0]))
  let total = 0
  for (const s of symbols) {
    const seen = counts.get(s)
    if (seen === undefined) throw new Error(`symbol ${s} outside the alphabet`)
    counts.set(s, seen + 1)
    total++
  }
  const expected = total / alphabet.length
  let statistic = 0
  for (const n of counts.values()) statistic += (n - expected) ** 2 / expected
  return { statistic, total }
}

function symbolsOf(format: CodeFormat, minSymbols: number): string[] {
  const out: string[] = []
  while (out.length < minSymbols) {
    for (const code of generateCodes(systemRandom, format, MAX_GENERATE_COUNT)) out.push(...code)
  }
  return out
}

/** Counts `read()` calls and bytes requested. */
function countingReader(inner: RandomReader): RandomReader & { calls: number; bytes: number } {
  const reader = {
    calls: 0,
    bytes: 0,
    read(bytes: Uint8Array) {
      reader.calls++
      reader.bytes += bytes.length
      inner.read(bytes)
    },
  }
  return reader
}

/** Fills every buffer from one repeating byte pattern, continuing across calls. */
function patternReader(byteAt: (i: number) => number): RandomReader {
  let i = 0
  return {
    read(bytes) {
      for (let j = 0; j < bytes.length; j++) bytes[j] = byteAt(i++) & 0xff
    },
  }
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('generateCodes: uniformity (real CSPRNG)', () => {
  for (const [format, df] of [
    [DEFAULT_CODE_FORMAT, 31],
    [DJANGO_CODE_FORMAT, 59],
  ] as const) {
    it(`${format.name}: chi-square over ≥ 200,000 symbols is below the p=0.001 critical value (df ${df})`, () => {
      expect(format.alphabet.length - 1).toBe(df)
      const { statistic, total } = chiSquare(symbolsOf(format, 200_000), format.alphabet)
      expect(total).toBeGreaterThanOrEqual(200_000)
      expect(statistic).toBeLessThan(CRITICAL_P001[df])
    })
  }

  it('the chi-square check has teeth: modulo-biased sampling (byte % 60) fails it', () => {
    const alphabet = DJANGO_CODE_FORMAT.alphabet
    const bytes = new Uint8Array(216_000)
    systemRandom.read(bytes)
    const biased = [...bytes].map((b) => alphabet[b % alphabet.length]!)
    expect(chiSquare(biased, alphabet).statistic).toBeGreaterThan(CRITICAL_P001[59])
  })

  it('maps bytes without modulo bias: rejects exactly the bytes ≥ floor(256/n)·n', () => {
    expect(acceptLimit(32)).toBe(256)
    expect(acceptLimit(60)).toBe(240)
    expect(acceptLimit(10)).toBe(250)
    // Only rejected bytes (240..255) followed by 0: every symbol must come from the 0 bytes.
    const reader = patternReader((i) => (i % 17 === 16 ? 0 : 240 + (i % 16)))
    const fmt = { ...DJANGO_CODE_FORMAT }
    const [code] = generateCodes(reader, fmt, 1)
    expect(code).toBe('A'.repeat(36))
  })
})

describe('generateCodes: shape and distinctness', () => {
  it('returns count canonical codes that normalize() leaves unchanged', () => {
    for (const format of [DEFAULT_CODE_FORMAT, DJANGO_CODE_FORMAT]) {
      const codes = generateCodes(systemRandom, format, 50)
      expect(codes).toHaveLength(50)
      for (const code of codes) {
        expect(code).toHaveLength(codeLength(format))
        expect(normalize(code, format)).toBe(code)
      }
    }
  })

  it('codes in a batch are distinct', () => {
    const codes = generateCodes(systemRandom, DEFAULT_CODE_FORMAT, MAX_GENERATE_COUNT)
    expect(new Set(codes).size).toBe(MAX_GENERATE_COUNT)
  })

  it('skips duplicates from a reader that repeats each code twice and still returns distinct codes', () => {
    const length = codeLength(DEFAULT_CODE_FORMAT)
    // Code k (bytes k·L … k·L+L−1) is all symbol floor(k/2): codes 0 and 1 are equal, 2 and 3, …
    const reader = patternReader((i) => Math.floor(i / length / 2))
    const codes = generateCodes(reader, DEFAULT_CODE_FORMAT, 10)
    expect(new Set(codes).size).toBe(10)
    expect(codes[1]).toBe('1'.repeat(length))
  })

  it('throws INTERNAL (does not loop) when the reader always yields the same code', () => {
    const zeros: RandomReader = { read: (bytes) => bytes.fill(0) }
    expect(() => generateCodes(zeros, DEFAULT_CODE_FORMAT, 10)).toThrow(
      expect.objectContaining({ name: 'RecoveryCodesError', code: 'INTERNAL' }),
    )
  })

  it('throws INTERNAL (does not loop) when the reader yields only rejected bytes', () => {
    const high: RandomReader = { read: (bytes) => bytes.fill(255) }
    expect(() => generateCodes(high, DJANGO_CODE_FORMAT, 10)).toThrow(
      expect.objectContaining({ name: 'RecoveryCodesError', code: 'INTERNAL' }),
    )
  })
})

describe('generateCodes: randomness is read in bulk from the injected reader only', () => {
  it('one read() for a batch of 10 in the common case, for both presets', () => {
    for (const format of [DEFAULT_CODE_FORMAT, DJANGO_CODE_FORMAT]) {
      for (let run = 0; run < 20; run++) {
        const reader = countingReader(systemRandom)
        generateCodes(reader, format, 10)
        expect(reader.calls).toBe(1)
        expect(reader.bytes).toBeLessThan(10 * codeLength(format) * 2)
      }
    }
  })

  it('refills when the first read runs out (all rejections) and still succeeds', () => {
    let calls = 0
    const reader: RandomReader = {
      read(bytes) {
        calls++
        if (calls === 1) bytes.fill(250)
        else systemRandom.read(bytes)
      },
    }
    const codes = generateCodes(reader, DJANGO_CODE_FORMAT, 10)
    expect(codes).toHaveLength(10)
    expect(calls).toBeGreaterThan(1)
  })

  it('never calls Math.random or crypto.getRandomValues', () => {
    const random = vi.spyOn(Math, 'random')
    const gRV = vi.spyOn(globalThis.crypto, 'getRandomValues')
    const fixed = patternReader((i) => i * 7919)
    generateCodes(fixed, DEFAULT_CODE_FORMAT, 10)
    generateCodes(fixed, DJANGO_CODE_FORMAT, 10)
    expect(random).not.toHaveBeenCalled()
    expect(gRV).not.toHaveBeenCalled()
  })
})

describe('generateCodes: input validation', () => {
  it.each([0, -1, 1.5, Number.NaN, MAX_GENERATE_COUNT + 1, Number.POSITIVE_INFINITY])(
    'rejects count %s with INVALID_INPUT',
    (count) => {
      expect(() => generateCodes(systemRandom, DEFAULT_CODE_FORMAT, count)).toThrow(
        expect.objectContaining({ code: 'INVALID_INPUT' }),
      )
    },
  )

  it('accepts the bounds 1 and MAX_GENERATE_COUNT', () => {
    expect(generateCodes(systemRandom, DEFAULT_CODE_FORMAT, 1)).toHaveLength(1)
    expect(generateCodes(systemRandom, DEFAULT_CODE_FORMAT, MAX_GENERATE_COUNT)).toHaveLength(
      MAX_GENERATE_COUNT,
    )
  })

  it('rejects an invalid format with CONFIG_INVALID', () => {
    const weak = { ...DEFAULT_CODE_FORMAT, groups: 2 }
    const error = (() => {
      try {
        generateCodes(systemRandom, weak, 1)
      } catch (e) {
        return e
      }
    })()
    expect(error).toBeInstanceOf(RecoveryCodesError)
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' })
  })

  it('checks a format that can change on every call (only a frozen one is checked once)', () => {
    const format = { ...DEFAULT_CODE_FORMAT, confusables: { ...DEFAULT_CODE_FORMAT.confusables } }
    expect(generateCodes(systemRandom, format, 1)).toHaveLength(1)
    format.groups = 2 // now under 112 bits
    expect(() => generateCodes(systemRandom, format, 1)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    )
    const frozenWeak = Object.freeze({ ...DEFAULT_CODE_FORMAT, groups: 2 })
    for (let i = 0; i < 2; i++) {
      expect(() => generateCodes(systemRandom, frozenWeak, 1)).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      )
    }
  })
})
