import { describe, expect, it } from 'vitest'
import { MAX_IDENTIFIER_LENGTH, normalizeIdentifier } from './identifier.ts'

describe('normalizeIdentifier', () => {
  it('trims, applies NFKC and folds case, ASCII and beyond, to one limiter key', () => {
    expect(normalizeIdentifier('  Alice@Example.COM ')).toBe('alice@example.com')
    expect(normalizeIdentifier('ＡＬＩＣＥ@example.com')).toBe('alice@example.com')
    expect(normalizeIdentifier('JOSÉ@example.com')).toBe(normalizeIdentifier('josé@example.com'))
    expect(normalizeIdentifier('Jose\u0301@example.com')).toBe(normalizeIdentifier('José@example.com'))
  })

  it('rejects non-strings, empty, over-long input and control characters', () => {
    for (const bad of [undefined, null, 42, {}, [], '', '   ', 'a\u0000b', 'a\nb', 'a\u007fb', 'a\u0085b']) {
      expect(normalizeIdentifier(bad)).toBeNull()
    }
    expect(normalizeIdentifier('a'.repeat(MAX_IDENTIFIER_LENGTH))).toBe('a'.repeat(MAX_IDENTIFIER_LENGTH))
    expect(normalizeIdentifier('a'.repeat(MAX_IDENTIFIER_LENGTH + 1))).toBeNull()
  })

  it('is idempotent', () => {
    for (const s of ['Alice@Example.com', 'ＡＬＩＣＥ', 'Straße@x', 'İstanbul@x']) {
      const once = normalizeIdentifier(s)
      expect(once === null ? null : normalizeIdentifier(once)).toBe(once)
    }
  })
})
