import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { resolveConfig, STORE_METHODS } from './config.ts'
import { IMPORT_FORMAT_PRESETS } from './config-import.ts'
import { entropyBits } from './domain/code-format.ts'
import type { RecoveryCodeStore } from './ports/store.ts'

const PEPPER = Buffer.from(Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 251)).toString('base64')
const store = Object.fromEntries(
  STORE_METHODS.map((m) => [m, async () => {}]),
) as unknown as RecoveryCodeStore
const SECRET = 'a legacy secret that must never be printed'

function issuesOf(input: unknown): string[] {
  try {
    resolveConfig({ peppers: [{ id: 'k1', secret: PEPPER }], store, import: input } as never)
    return []
  } catch (e) {
    return ((e as { issues?: { path: string; message: string }[] }).issues ?? []).map(
      (i) => `${i.path}: ${i.message}`,
    )
  }
}

describe('config: import', () => {
  it('defaults to nothing imported', () => {
    const c = resolveConfig({ peppers: [{ id: 'k1', secret: PEPPER }], store } as never)
    expect(c.import).toEqual({ legacyDigests: [], formats: [] })
  })

  it('resolves presets and legacy keys, with the secret kept out of every serialisation', () => {
    const c = resolveConfig({
      peppers: [{ id: 'k1', secret: PEPPER }],
      store,
      import: {
        legacyDigests: [{ id: 'seed1', scheme: 'django-auth-recovery-codes', secret: SECRET }],
        formats: ['better-auth', 'fortify'],
      },
    } as never)
    expect(c.import.formats.map((f) => f.name)).toEqual(['better-auth', 'fortify'])
    expect(entropyBits(IMPORT_FORMAT_PRESETS['better-auth'])).toBeCloseTo(59.5, 1)
    expect(entropyBits(IMPORT_FORMAT_PRESETS.fortify)).toBeCloseTo(119.1, 1)
    const [key] = c.import.legacyDigests
    expect(Buffer.from(key!.secret).toString()).toBe(SECRET)
    for (const text of [JSON.stringify(c), inspect(c, { depth: 10 }), String(key), JSON.stringify(key)]) {
      expect(text).not.toContain(SECRET)
      expect(text).not.toContain(Buffer.from(SECRET).toString('base64'))
    }
  })

  it('names every problem', () => {
    expect(issuesOf('yes')).toEqual(['import: must be an object { legacyDigests?, formats? }'])
    expect(issuesOf({ other: 1 })).toEqual(['import.other: is not a known option'])
    expect(issuesOf({ legacyDigests: 'x' })[0]).toMatch(/^import.legacyDigests: must be a list/)
    expect(
      issuesOf({ legacyDigests: [{ id: 'k1', scheme: 'django-auth-recovery-codes', secret: 's' }] }),
    ).toEqual(['import.legacyDigests.0.id: duplicates a pepper id or another legacy id'])
    expect(
      issuesOf({
        legacyDigests: [
          { id: 'a', scheme: 'django-auth-recovery-codes', secret: 's' },
          { id: 'a', scheme: 'django-auth-recovery-codes', secret: 't' },
        ],
      }),
    ).toEqual(['import.legacyDigests.1.id: duplicates a pepper id or another legacy id'])
    expect(issuesOf({ legacyDigests: [{ id: 'bad id', scheme: 'nope', secret: '', extra: 1 }] })).toEqual([
      'import.legacyDigests.0.extra: is not a known option',
      'import.legacyDigests.0.id: must match /^[A-Za-z0-9_-]{1,32}$/',
      'import.legacyDigests.0.scheme: must be one of django-auth-recovery-codes',
      'import.legacyDigests.0.secret: must be a non-empty string or Uint8Array of at most 1024 bytes',
    ])
    expect(issuesOf({ formats: ['nope'] })).toEqual(['import.formats.0: must be one of better-auth, fortify'])
    expect(issuesOf({ formats: [42] })).toEqual([
      'import.formats.0: must be a preset name or a code format object',
    ])
    const weak = {
      name: 'pin',
      alphabet: '0123456789',
      groups: 1,
      groupLength: 8,
      separator: '',
      caseSensitive: false,
    }
    expect(issuesOf({ formats: [weak] })).toEqual([
      'import.formats.0.alphabet: gives 26.6 bits per code; imported formats need at least 48',
    ])
    expect(issuesOf({ formats: [{ ...weak, alphabet: 'aab' }] })[0]).toMatch(/^import.formats.0.alphabet: /)
  })
})
