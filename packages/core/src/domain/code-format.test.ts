import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  CODE_FORMAT_PRESETS,
  type CodeFormat,
  CROCKFORD_ALPHABET,
  codeLength,
  DEFAULT_CODE_FORMAT,
  DJANGO_CODE_FORMAT,
  displayLength,
  entropyBits,
  formatCode,
  MIN_ENTROPY_BITS,
  maxInputLength,
  normalize,
  validateCodeFormat,
} from './code-format.ts'

const D = DEFAULT_CODE_FORMAT
const CANON = '7K2QXM9D4RAB0CDEFGHJKMNPQ'
const SHOWN = '7K2QX-M9D4R-AB0CD-EFGHJ-KMNPQ'
const DJANGO_CANON = 'AbCdEf' + 'ghIJkl' + 'MNopQR' + 'stUVwx' + 'YZ2345' + '6789aB'

afterEach(() => {
  vi.restoreAllMocks()
})

describe('entropy and lengths', () => {
  it('default: 25 Crockford symbols = exactly 125 bits, shown in 29 characters', () => {
    expect(CROCKFORD_ALPHABET).toHaveLength(32)
    expect(codeLength(D)).toBe(25)
    expect(entropyBits(D)).toBe(125)
    expect(displayLength(D)).toBe(29)
  })

  it('django: 36 symbols over 60 ≈ 212.6 bits, shown in 41 characters', () => {
    expect(DJANGO_CODE_FORMAT.alphabet).toHaveLength(60)
    expect(entropyBits(DJANGO_CODE_FORMAT)).toBeCloseTo(212.6, 1)
    expect(displayLength(DJANGO_CODE_FORMAT)).toBe(41)
  })

  it('every preset validates', () => {
    for (const format of Object.values(CODE_FORMAT_PRESETS)) expect(validateCodeFormat(format)).toEqual([])
  })
})

describe('normalize: accepts the ways people type a code', () => {
  it.each([
    ['canonical', CANON],
    ['displayed', SHOWN],
    ['lower case', SHOWN.toLowerCase()],
    ['no dashes', CANON.toLowerCase()],
    ['extra dashes', `--7K2QX--M9D4R-AB0CD---EFGHJ-KMNPQ-`],
    ['spaces and tabs', ` 7K2QX M9D4R\tAB0CD  EFGHJ KMNPQ \n`],
    ['en and em dashes', '7K2QX–M9D4R—AB0CD‐EFGHJ−KMNPQ'],
    ['fullwidth forms', '７Ｋ２ＱＸ－Ｍ９Ｄ４Ｒ－ＡＢ０ＣＤ－ＥＦＧＨＪ－ＫＭＮＰＱ'],
    ['fullwidth lower case', '７ｋ２ｑｘｍ９ｄ４ｒａｂ０ｃｄｅｆｇｈｊｋｍｎｐｑ'],
    [
      'zero-width space, joiners, BOM, soft hyphen',
      '7K2QX\u200BM9D4R\u200DAB0CD\u200CEFGHJ\uFEFF\u00ADKMNPQ',
    ],
    ['non-breaking and ideographic spaces', '7K2QX\u00A0M9D4R\u3000AB0CD\u2009EFGHJ KMNPQ'],
  ])('%s', (_label, input) => {
    expect(normalize(input, D)).toBe(CANON)
  })

  it('maps Crockford confusables O→0 and I/L→1, in either case', () => {
    expect(normalize('7K2QX-M9D4R-ABOCD-EFGHJ-KMNPQ', D)).toBe(CANON)
    expect(normalize('7k2qx-m9d4r-aboCD-efghj-kmnpq', D)).toBe(CANON)
    expect(normalize('IIIII-LLLLL-iiiii-lllll-11111', D)).toBe('1'.repeat(25))
    expect(normalize('OOOOO-ooooo-00000-OoOoO-0o0o0', D)).toBe('0'.repeat(25))
  })

  it('fullwidth letters fold like ASCII (e.g. ＡＢ → AB)', () => {
    expect(normalize(`ＡＢ${CANON.slice(2)}`, { ...D })).toBe(`AB${CANON.slice(2)}`)
  })

  it('django is case-sensitive: case is kept, not folded', () => {
    const shown = formatCode(DJANGO_CANON, DJANGO_CODE_FORMAT)
    expect(shown).toHaveLength(41)
    expect(normalize(shown, DJANGO_CODE_FORMAT)).toBe(DJANGO_CANON)
    expect(normalize(shown.toUpperCase(), DJANGO_CODE_FORMAT)).not.toBe(DJANGO_CANON)
  })

  it("strips the format's own separator even when it is '_' or '.'", () => {
    for (const separator of ['_', '.', ' ', '-', '']) {
      const format = { ...D, separator }
      expect(validateCodeFormat(format)).toEqual([])
      expect(normalize(formatCode(CANON, format), format)).toBe(CANON)
    }
  })
})

describe('normalize: rejects what is not a code', () => {
  it.each([
    ['Cyrillic look-alikes (А, В, С, Е, К, М, Н, Р, Т, Х)', '7К2QХ-M9D4R-AB0CD-EFGHJ-KMNPQ'],
    ['Cyrillic О', `${CANON.slice(0, 24)}О`],
    ['Greek look-alikes', `${CANON.slice(0, 24)}Α`],
    ['one symbol short', CANON.slice(1)],
    ['one symbol long', `${CANON}0`],
    ['empty', ''],
    ['only separators', '----- -----'],
    ['U (outside Crockford)', `${CANON.slice(0, 24)}U`],
    ['punctuation', `${CANON.slice(0, 24)}!`],
    ['underscore with the dash format', `${CANON.slice(0, 12)}_${CANON.slice(12)}`],
    ['emoji', `${CANON.slice(0, 24)}😀`],
    ['NUL', `${CANON.slice(0, 24)}\0`],
  ])('%s', (_label, input) => {
    expect(normalize(input, D)).toBeNull()
  })

  it('rejects non-strings without throwing', () => {
    expect(normalize(12345 as unknown as string, D)).toBeNull()
    expect(normalize(null as unknown as string, D)).toBeNull()
  })

  it('django: rejects symbols outside its alphabet (0, 1, O is inside: no confusable map)', () => {
    expect(normalize(`${DJANGO_CANON.slice(0, 35)}0`, DJANGO_CODE_FORMAT)).toBeNull()
    expect(normalize(`${DJANGO_CANON.slice(0, 35)}1`, DJANGO_CODE_FORMAT)).toBeNull()
    expect(normalize(`${DJANGO_CANON.slice(0, 35)}O`, DJANGO_CODE_FORMAT)).toBe(
      `${DJANGO_CANON.slice(0, 35)}O`,
    )
  })

  it('rejects a 1 MB input before any Unicode work (its cost is in pnpm bench)', () => {
    const spy = vi.spyOn(String.prototype, 'normalize')
    const huge = `${SHOWN} `.repeat(Math.ceil(1_048_576 / 30)).slice(0, 1_048_576)
    expect(normalize(huge, D)).toBeNull()
    expect(spy).not.toHaveBeenCalled()
    // The spy is live: a normal input with a non-ASCII character reaches String.prototype.normalize.
    normalize(`${SHOWN}\u200B`, D)
    expect(spy).toHaveBeenCalled()
  })

  it('the length bound sits just above the longest displayed form', () => {
    expect(maxInputLength(D)).toBe(64)
    expect(normalize(`${SHOWN}${' '.repeat(64 - SHOWN.length)}`, D)).toBe(CANON)
    expect(normalize(`${SHOWN}${' '.repeat(65 - SHOWN.length)}`, D)).toBeNull()
  })
})

describe('normalize: idempotent', () => {
  const formats = [D, DJANGO_CODE_FORMAT]
  const codeArb = (format: CodeFormat) =>
    fc.string({
      unit: fc.constantFrom(...format.alphabet),
      minLength: codeLength(format),
      maxLength: codeLength(format),
    })

  it('generated codes are fixed points and survive display and case changes', () => {
    fc.assert(
      fc.property(codeArb(D), (code) => {
        expect(normalize(code, D)).toBe(code)
        expect(normalize(formatCode(code, D).toLowerCase(), D)).toBe(code)
      }),
    )
    fc.assert(
      fc.property(codeArb(DJANGO_CODE_FORMAT), (code) => {
        expect(normalize(code, DJANGO_CODE_FORMAT)).toBe(code)
      }),
    )
  })

  it('normalize(normalize(x)) === normalize(x) for arbitrary strings', () => {
    const noisy = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.constantFrom(...`${CROCKFORD_ALPHABET}oilOIL- –—\u200B\u200DＡ０ａ`) }),
      fc.string({ unit: fc.constantFrom(...`${CROCKFORD_ALPHABET}oil- `), minLength: 20, maxLength: 40 }),
    )
    for (const format of formats) {
      fc.assert(
        fc.property(noisy, (x) => {
          const once = normalize(x, format)
          if (once !== null) expect(normalize(once, format)).toBe(once)
        }),
        { numRuns: 500 },
      )
    }
  })

  it('the all-ASCII table path agrees with the Unicode path on every ASCII input', () => {
    // A soft hyphen (U+00AD) is stripped by the Unicode path and forces it: same code, other path.
    const slow = (x: string, format: CodeFormat) => normalize(`\u00AD${x}`, format)
    const custom: CodeFormat = {
      name: 'custom',
      alphabet: 'abcdefghjkmnpqrstuvwxyz23456789',
      groups: 4,
      groupLength: 7,
      separator: '.',
      caseSensitive: true,
      confusables: { '0': 'a', '1': 'b' },
    }
    const ascii = fc.oneof(
      fc.string({
        unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
        maxLength: 48,
      }),
      fc.string({
        unit: fc.constantFrom(...`${CROCKFORD_ALPHABET}oilOIL-_. \t\n`),
        minLength: 20,
        maxLength: 40,
      }),
      fc.string({ unit: fc.constantFrom(...`${custom.alphabet}01-_. `), minLength: 26, maxLength: 34 }),
      codeArb(D).map((code) => formatCode(code, D).toLowerCase()),
    )
    let accepted = 0
    for (const format of [...formats, custom]) {
      fc.assert(
        fc.property(ascii, (x) => {
          const fast = normalize(x, format)
          expect(fast).toBe(slow(x, format))
          if (fast !== null) accepted++
        }),
        { numRuns: 2000 },
      )
    }
    expect(accepted).toBeGreaterThan(100)
  })

  it('the noisy generator does produce accepted codes (the property is not vacuous)', () => {
    const arb = fc.string({
      unit: fc.constantFrom(...`${CROCKFORD_ALPHABET}oil- `),
      minLength: 25,
      maxLength: 25,
    })
    const samples = fc.sample(
      arb.filter((s) => !/[- ]/.test(s)),
      50,
    )
    expect(samples.filter((s) => normalize(s, D) !== null).length).toBe(50)
  })
})

describe('validateCodeFormat', () => {
  const paths = (format: CodeFormat) => validateCodeFormat(format).map((i) => `${i.path}: ${i.message}`)

  it('flags duplicate symbols', () => {
    expect(paths({ ...D, alphabet: `${CROCKFORD_ALPHABET.slice(0, 31)}A` })).toContain(
      'alphabet: has duplicate symbols',
    )
  })

  it(`flags a format below ${MIN_ENTROPY_BITS} bits and accepts one at or above`, () => {
    const short = { ...D, groups: 4, groupLength: 5 } // 100 bits
    expect(validateCodeFormat(short)).toEqual([
      expect.objectContaining({ path: 'alphabet', message: expect.stringMatching(/100\.0 bits/) }),
    ])
    expect(validateCodeFormat({ ...D, groups: 1, groupLength: 23 })).toEqual([]) // 115 bits
    expect(validateCodeFormat({ ...D, groups: 1, groupLength: 22 })).not.toEqual([]) // 110 bits
  })

  it('flags non-integer or non-positive groups and groupLength', () => {
    for (const bad of [0, -5, 2.5, Number.NaN]) {
      expect(paths({ ...D, groups: bad }).some((p) => p.startsWith('groups:'))).toBe(true)
      expect(paths({ ...D, groupLength: bad }).some((p) => p.startsWith('groupLength:'))).toBe(true)
    }
  })

  it('flags lower-case symbols in a case-insensitive format, non-alphanumerics and bad separators', () => {
    expect(paths({ ...D, alphabet: CROCKFORD_ALPHABET.toLowerCase() }).join()).toMatch(/upper-case/)
    expect(paths({ ...D, alphabet: `${CROCKFORD_ALPHABET.slice(0, 31)}-` }).join()).toMatch(/ASCII/)
    expect(paths({ ...D, separator: '/' }).join()).toMatch(/separator/)
  })

  it('flags confusables that map into nothing, into several symbols, or from inside the alphabet', () => {
    expect(paths({ ...D, confusables: { U: '' } }).join()).toMatch(/confusables/)
    expect(paths({ ...D, confusables: { U: 'VV' } }).join()).toMatch(/confusables/)
    expect(paths({ ...D, confusables: { A: 'B' } }).join()).toMatch(/confusables/)
    expect(paths({ ...D, confusables: { U: 'V' } })).toEqual([])
  })
})
