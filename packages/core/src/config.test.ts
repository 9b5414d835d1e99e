import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import {
  checkConfig,
  DEFAULTS,
  MAX_BATCH_SIZE,
  NUMERIC_OPTIONS,
  type NumericOptionPath,
  type RecoveryCodesConfig,
  resolveConfig,
  STORE_METHODS,
} from './config.ts'
import { CODE_FORMAT_PRESETS, type CodeFormat } from './domain/code-format.ts'
import { isRecoveryCodesError, type RecoveryCodesError } from './errors.ts'
import type { Cache } from './ports/cache.ts'
import { type RecoveryCodeStore, STORE_SCOPE } from './ports/store.ts'

function storeStub(): RecoveryCodeStore {
  const store: Record<string, () => Promise<never>> = {}
  for (const m of STORE_METHODS) {
    store[m] = async () => {
      throw new Error('unused')
    }
  }
  return store as unknown as RecoveryCodeStore
}

// 32 bytes that pass the strength heuristics (not repeating, not sequential, many distinct values).
const KEY_BYTES = Uint8Array.from({ length: 32 }, (_, i) => (i * i * 73 + i * 11 + 5) % 251)
const KEY_B64 = Buffer.from(KEY_BYTES).toString('base64')
const KEY_B64URL = Buffer.from(KEY_BYTES).toString('base64url')
const KEY_HEX = Buffer.from(KEY_BYTES).toString('hex')
const KEY2_B64 = Buffer.from(KEY_BYTES.map((b, i) => (b ^ (i * 37 + 101)) & 0xff)).toString('base64')

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { peppers: [{ id: 'k1', secret: KEY_B64 }], store: storeStub(), ...extra }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const keys = path.split('.')
  let node = target
  for (const key of keys.slice(0, -1)) {
    node[key] = { ...((node[key] as object | undefined) ?? {}) }
    node = node[key] as Record<string, unknown>
  }
  node[keys[keys.length - 1]!] = value
  return target
}

function configError(input: unknown): RecoveryCodesError {
  try {
    resolveConfig(input)
  } catch (e) {
    if (isRecoveryCodesError(e, 'CONFIG_INVALID')) return e
    throw e
  }
  throw new Error('expected CONFIG_INVALID')
}

function paths(input: unknown): string[] {
  return configError(input).issues.map((i) => i.path)
}

describe('resolveConfig: numbers', () => {
  const numericPaths = Object.keys(NUMERIC_OPTIONS) as NumericOptionPath[]

  it('the numeric option list covers every numeric default', () => {
    const leaves: string[] = []
    const walk = (o: object, prefix: string) => {
      for (const [k, v] of Object.entries(o)) {
        if (typeof v === 'number') leaves.push(prefix + k)
        else if (v && typeof v === 'object') walk(v, `${prefix}${k}.`)
      }
    }
    walk(DEFAULTS, '')
    expect(numericPaths).toEqual(expect.arrayContaining([...leaves, 'defaultExpiryDays']))
    expect(numericPaths.length).toBe(22)
  })

  const BAD: [string, unknown][] = [
    ['NaN', Number.NaN],
    ['+Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['-1', -1],
    ['1.5', 1.5],
    ['"60"', '60'],
    ['null', null],
    ['{}', {}],
    ['2**53', 2 ** 53],
  ]
  const cases = numericPaths.flatMap((path) =>
    BAD.filter(([label]) => {
      const spec = NUMERIC_OPTIONS[path]
      if (label === 'null' && spec.nullable) return false // null is a valid value there
      if (label === '1.5' && !spec.integer) return false // the multiplier may be fractional
      return true
    }).map(([label, value]) => ({ path, label, value })),
  )

  it.each(cases)('$path = $label is CONFIG_INVALID naming $path', ({ path, value }) => {
    const err = configError(setPath(base(), path, value))
    expect(err.code).toBe('CONFIG_INVALID')
    expect(err.issues.map((i) => i.path)).toContain(path)
    expect(err.message).toContain(path)
  })

  it('accepts a fractional multiplier and null where null means "none"', () => {
    const c = resolveConfig(
      base({ cooldown: { multiplier: 1.5 }, defaultExpiryDays: null, purge: { maxDeletionsPerRun: null } }),
    )
    expect(c.cooldownPolicy.multiplier).toBe(1.5)
    expect(c.defaultExpiryDays).toBeNull()
    expect(c.purge.maxDeletionsPerRun).toBeNull()
  })

  it('accepts every bound', () => {
    for (const [path, spec] of Object.entries(NUMERIC_OPTIONS)) {
      for (const v of [spec.min, spec.max]) {
        const input = setPath(base(), path, v)
        // Cross-field rules may object to an extreme value; only the range message matters here.
        const result = checkConfig(input)
        const own = result.ok
          ? []
          : result.issues.filter((i) => i.path === path && / from .* to /.test(i.message))
        expect(own, `${path} = ${v}`).toEqual([])
      }
    }
  })
})

describe('resolveConfig: strictness', () => {
  it('rejects an unknown top-level key', () => {
    expect(paths(base({ batchsize: 10 }))).toEqual(['batchsize'])
  })

  it('rejects an unknown nested key', () => {
    expect(paths(base({ cooldown: { base: 30 } }))).toEqual(['cooldown.base'])
    expect(paths(base({ email: { enabled: false, to: 'x@example.com' } }))).toEqual(['email.to'])
  })

  it('rejects a __proto__ key from parsed JSON', () => {
    expect(paths({ ...base(), ...JSON.parse('{"__proto__": {"polluted": true}}') })).toContain('__proto__')
  })

  it('rejects non-objects', () => {
    expect(paths(null)).toContain('')
    expect(paths([])).toContain('')
    expect(paths('config')).toContain('')
  })

  it('lists all three problems of one call at once', () => {
    const err = configError(
      base({ batchSize: 0, cooldown: { multiplier: 0.5 }, siteName: 'a\r\nBcc: x@evil.test' }),
    )
    expect(err.issues.map((i) => i.path).sort()).toEqual(['batchSize', 'cooldown.multiplier', 'siteName'])
    for (const p of ['batchSize', 'cooldown.multiplier', 'siteName']) expect(err.message).toContain(p)
  })

  it('applies cross-field rules', () => {
    expect(paths(base({ maxLoginAttempts: 10, hardFailureCap: 5 }))).toEqual(['hardFailureCap'])
    expect(paths(base({ maxLoginAttempts: 60 }))).toEqual(['hardFailureCap', 'clientMaxAttempts'])
    expect(paths(base({ cooldown: { baseSeconds: 7200 } }))).toEqual(['cooldown.baseSeconds'])
    expect(paths(base({ cacheTtl: { seconds: 30 } }))).toEqual(['cacheTtl.seconds'])
    expect(paths(base({ cacheTtl: { minSeconds: 100, maxSeconds: 50, seconds: 75 } }))).toEqual([
      'cacheTtl.minSeconds',
    ])
    expect(paths(base({ history: { perPage: 50, maxVisible: 20 } }))).toEqual(['history.perPage'])
    expect(paths(base({ deployment: 'multi' }))).toEqual(['cache'])
    const processStore = Object.defineProperty(storeStub(), STORE_SCOPE, { value: 'process' })
    const shared = { getItem: async () => null, setItem: async () => {}, removeItem: async () => {} }
    expect(paths(base({ deployment: 'multi', cache: shared, store: processStore }))).toEqual(['store'])
    expect(() => resolveConfig(base({ deployment: 'single', store: processStore }))).not.toThrow()
    expect(() => resolveConfig(base({ deployment: 'multi', cache: shared }))).not.toThrow()
    expect(paths(base({ loginMode: 'identifier-and-code' }))).toEqual(['resolveUserId'])
    expect(paths(base({ email: { enabled: true } })).sort()).toEqual(['email.from', 'mailer', 'resolveEmail'])
    expect(paths(base({ purge: { reportToAdmin: true } })).sort()).toEqual([
      'email.adminEmail',
      'email.from',
      'mailer',
    ])
  })

  it('reports a cross-field rule only when both fields are valid on their own', () => {
    expect(paths(base({ cooldown: { baseSeconds: 2 ** 53 } }))).toEqual(['cooldown.baseSeconds'])
  })

  it('checks strings: enums, header injection, emails, file names, redirects', () => {
    expect(paths(base({ loginMode: 'email' }))).toEqual(['loginMode'])
    expect(paths(base({ deployment: 'cluster' }))).toEqual(['deployment'])
    expect(paths(base({ export: { defaultFormat: 'docx' } }))).toEqual(['export.defaultFormat'])
    expect(paths(base({ email: { from: 'a@example.com\r\nBcc: b@example.com' } }))).toEqual(['email.from'])
    expect(paths(base({ email: { adminEmail: 'not-an-email' } }))).toEqual(['email.adminEmail'])
    expect(paths(base({ email: { successMessage: 'ok\u0000' } }))).toEqual(['email.successMessage'])
    expect(paths(base({ export: { fileName: '../etc/passwd' } }))).toEqual(['export.fileName'])
    expect(paths(base({ export: { fileName: '.hidden' } }))).toEqual(['export.fileName'])
    expect(paths(base({ export: { fileName: 'a"b' } }))).toEqual(['export.fileName'])
    for (const bad of ['https://evil.test/', '//evil.test', '/\\evil.test', 'dashboard', '/a\nb']) {
      expect(paths(base({ logoutRedirect: bad })), bad).toEqual(['logoutRedirect'])
    }
    expect(resolveConfig(base({ logoutRedirect: '/account/login?next=%2F' })).logoutRedirect).toBe(
      '/account/login?next=%2F',
    )
  })
})

describe('resolveConfig: format', () => {
  it('resolves presets', () => {
    expect(resolveConfig(base()).format).toBe(CODE_FORMAT_PRESETS.default)
    expect(resolveConfig(base({ format: 'django' })).format).toBe(CODE_FORMAT_PRESETS.django)
    expect(paths(base({ format: 'base32' }))).toEqual(['format'])
  })

  const custom = (over: Partial<CodeFormat>): CodeFormat => ({
    name: 'custom',
    alphabet: '0123456789ABCDEFGHJKMNPQRSTVWXYZ',
    groups: 6,
    groupLength: 5,
    separator: '-',
    caseSensitive: false,
    ...over,
  })

  it('accepts a custom format of at least 112 bits and freezes a copy', () => {
    const format = custom({})
    const c = resolveConfig(base({ format }))
    expect(c.format).toEqual(format)
    expect(c.format).not.toBe(format)
    expect(Object.isFrozen(c.format)).toBe(true)
    expect(c.entropyBits).toBe(150)
  })

  it('rejects a duplicate-symbol alphabet', () => {
    const err = configError(base({ format: custom({ alphabet: '0123456789ABCDEFGHJKMNPQRSTVWXYA' }) }))
    expect(err.issues).toContainEqual({ path: 'format.alphabet', message: 'has duplicate symbols' })
  })

  it('rejects a 100-bit custom format', () => {
    // 20 Crockford symbols × 5 bits = 100 bits < 112.
    const err = configError(base({ format: custom({ groups: 4, groupLength: 5 }) }))
    expect(err.issues.map((i) => i.path)).toEqual(['format.alphabet'])
    expect(err.issues[0]!.message).toMatch(/100\.0 bits.*112/)
  })

  it('rejects unknown keys and wrong types inside a custom format', () => {
    expect(paths(base({ format: { ...custom({}), entropy: 200 } }))).toEqual(['format.entropy'])
    expect(paths(base({ format: custom({ groups: 1.5 }) }))).toEqual(['format.groups'])
  })
})

describe('resolveConfig: peppers', () => {
  it('accepts base64, base64url, base64: and hex: and Uint8Array, decoding to the same bytes', () => {
    for (const secret of [KEY_B64, KEY_B64URL, `base64:${KEY_B64}`, `hex:${KEY_HEX}`, KEY_BYTES]) {
      const c = resolveConfig(base({ peppers: [{ id: 'k1', secret }] }))
      expect(c.currentPepper.secret).toEqual(KEY_BYTES)
    }
  })

  it('keeps a private copy of byte secrets', () => {
    const bytes = Uint8Array.from(KEY_BYTES)
    const c = resolveConfig(base({ peppers: [{ id: 'k1', secret: bytes }] }))
    bytes[0] = bytes[0]! ^ 0xff
    expect(c.currentPepper.secret).toEqual(KEY_BYTES)
  })

  it('rejects a 16-byte pepper after decoding', () => {
    const secret = Buffer.from(KEY_BYTES.subarray(0, 16)).toString('base64')
    const err = configError(base({ peppers: [{ id: 'k1', secret }] }))
    expect(err.issues).toEqual([{ path: 'peppers.0.secret', message: expect.stringMatching(/16 bytes.*32/) }])
    // 43 characters of text, but only 16 bytes of hex.
    expect(paths(base({ peppers: [{ id: 'k1', secret: `hex:${KEY_HEX.slice(0, 32)}` }] }))).toEqual([
      'peppers.0.secret',
    ])
  })

  it.each([
    'supersecretkey',
    'changeme',
    'add-recovery-key-here',
    'changeme'.repeat(8),
    Buffer.from('supersecretkey'.repeat(3)).toString('base64'),
    `hex:${Buffer.from('add-recovery-key-here-add-recovery-key-here').toString('hex')}`,
  ])('rejects the demo value %s', (secret) => {
    const err = configError(base({ peppers: [{ id: 'k1', secret }] }))
    expect(err.issues).toEqual([{ path: 'peppers.0.secret', message: expect.stringMatching(/demo/) }])
  })

  it.each([
    ['all-same bytes', new Uint8Array(32).fill(7)],
    ['all-zero base64', Buffer.alloc(32).toString('base64')],
    ['sequential', Uint8Array.from({ length: 32 }, (_, i) => i)],
    ['short period', Uint8Array.from({ length: 48 }, (_, i) => [1, 2, 3, 4, 5][i % 5]!)],
  ])('rejects a weak secret (%s)', (_, secret) => {
    expect(paths(base({ peppers: [{ id: 'k1', secret }] }))).toEqual(['peppers.0.secret'])
  })

  it('rejects an ambiguous unprefixed hex string and malformed encodings', () => {
    expect(paths(base({ peppers: [{ id: 'k1', secret: KEY_HEX }] }))).toEqual(['peppers.0.secret'])
    expect(
      paths(base({ peppers: [{ id: 'k1', secret: `${KEY_B64.slice(0, 20)}*${KEY_B64.slice(21)}` }] })),
    ).toEqual(['peppers.0.secret'])
    expect(paths(base({ peppers: [{ id: 'k1', secret: 'hex:abc' }] }))).toEqual(['peppers.0.secret'])
  })

  it('checks ids, count, duplicates and rotation', () => {
    expect(paths(base({ peppers: [] }))).toEqual(['peppers'])
    const eleven = Array.from({ length: 11 }, (_, i) => ({
      id: `k${i}`,
      secret: KEY_BYTES.map((b) => b ^ (i + 1)),
    }))
    expect(paths(base({ peppers: eleven }))).toEqual(['peppers'])
    expect(paths(base({ peppers: [{ id: 'k 1', secret: KEY_B64 }] }))).toEqual(['peppers.0.id'])
    expect(
      paths(
        base({
          peppers: [
            { id: 'k1', secret: KEY_B64 },
            { id: 'k1', secret: KEY2_B64 },
          ],
        }),
      ),
    ).toEqual(['peppers.1.id'])
    expect(
      paths(
        base({
          peppers: [
            { id: 'k2', secret: KEY_B64 },
            { id: 'k1', secret: KEY_B64 },
          ],
        }),
      ),
    ).toEqual(['peppers.1.secret'])
    expect(paths(base({ peppers: [{ id: 'k1', secret: 42 }] }))).toEqual(['peppers.0.secret'])
    // Regression: a failed first secret left a hole that the duplicate-secret check tripped over.
    const three = [
      { id: 'k3', secret: 'short' },
      { id: 'k2', secret: KEY_B64 },
      { id: 'k1', secret: KEY2_B64 },
    ]
    expect(paths(base({ peppers: three }))).toEqual(['peppers.0.secret'])
    expect(paths({ store: storeStub() })).toEqual(['peppers'])
    const c = resolveConfig(
      base({
        peppers: [
          { id: 'k2', secret: KEY2_B64 },
          { id: 'k1', secret: KEY_B64 },
        ],
      }),
    )
    expect(c.peppers.map((p) => p.id)).toEqual(['k2', 'k1'])
    expect(c.currentPepper.id).toBe('k2')
  })

  it('never shows a secret: resolved config, peppers, errors', () => {
    const secretForms = [KEY_B64, KEY_B64URL, KEY_HEX, KEY_B64.slice(0, 16), KEY_HEX.slice(0, 16)]
    const c = resolveConfig(
      base({
        peppers: [
          { id: 'k1', secret: KEY_B64 },
          { id: 'k0', secret: `hex:${KEY_HEX.replace(/^../, 'ff')}` },
        ],
      }),
    )
    const outputs = [
      JSON.stringify(c),
      inspect(c, { depth: 10 }),
      inspect(c, { depth: 10, showHidden: true }),
      String(c.currentPepper),
      `${c.currentPepper}`,
      JSON.stringify(c.peppers),
      inspect(c.peppers, { showHidden: true }),
      JSON.stringify({ ...c.currentPepper }),
    ]
    for (const out of outputs) {
      for (const form of secretForms) expect(out).not.toContain(form)
      expect(out).not.toContain(KEY_BYTES.slice(0, 8).join(','))
    }
    expect(JSON.stringify(c.currentPepper)).toBe('{"id":"k1","secret":"[redacted]"}')

    // Errors caused by (and next to) secrets.
    const demo = 'supersecretkey'
    const short = Buffer.from(KEY_BYTES.subarray(0, 16)).toString('base64')
    const err = configError(
      base({
        peppers: [
          { id: 'k1', secret: short },
          { id: 'k2', secret: demo },
          { id: 'k3', secret: `hex:${KEY_HEX}zz` },
        ],
        siteName: KEY_B64,
        batchSize: KEY_HEX,
        email: { from: KEY_B64 },
      }),
    )
    const errOutputs = [
      String(err),
      err.message,
      JSON.stringify(err),
      inspect(err, { depth: 10 }),
      err.stack ?? '',
    ]
    for (const out of errOutputs) {
      for (const form of [...secretForms, short, demo]) expect(out).not.toContain(form)
    }
  })

  it('keeps peppers out of enumerable properties and clones', () => {
    const c = resolveConfig(base())
    expect(Object.keys(c.currentPepper)).toEqual(['id'])
    expect(structuredClone({ ...c.currentPepper })).toEqual({ id: 'k1' })
  })
})

describe('resolveConfig: ports', () => {
  it('requires a store with every method', () => {
    expect(paths({ peppers: [{ id: 'k1', secret: KEY_B64 }] })).toEqual(['store'])
    const { consumeCode: _, ...partial } = storeStub() as unknown as Record<string, unknown>
    expect(paths(base({ store: partial }))).toEqual(['store.consumeCode'])
    expect(paths(base({ store: { ...partial, consumeCode: 'nope' } }))).toEqual(['store.consumeCode'])
    expect(paths(base({ store: 'memory' }))).toEqual(['store'])
  })

  it('checks optional ports and hooks', () => {
    expect(paths(base({ cache: { getItem: async () => null } })).sort()).toEqual([
      'cache.removeItem',
      'cache.setItem',
    ])
    expect(paths(base({ clock: { now: 5 } }))).toEqual(['clock.now'])
    expect(paths(base({ mailer: {} }))).toEqual(['mailer.send'])
    expect(paths(base({ resolveEmail: 'x' }))).toEqual(['resolveEmail'])
    expect(checkConfig(base({ logger: console }))).toEqual({ ok: true })
  })

  it('accepts a store whose methods live on a prototype', () => {
    class Store {}
    for (const m of STORE_METHODS) {
      ;(Store.prototype as Record<string, unknown>)[m] = async () => {}
    }
    expect(checkConfig(base({ store: new Store() }))).toEqual({ ok: true })
  })
})

describe('resolveConfig: result', () => {
  it('applies defaults and derives values', () => {
    const c = resolveConfig(base())
    expect(c).toMatchObject({
      batchSize: DEFAULTS.batchSize,
      maxBatchSize: MAX_BATCH_SIZE,
      defaultExpiryDays: null,
      lowCodesThreshold: 3,
      maxLoginAttempts: 5,
      hardFailureCap: 20,
      clientMaxAttempts: 50,
      cooldown: { baseSeconds: 60, multiplier: 2, cutoffSeconds: 3600 },
      cooldownPolicy: { baseMs: 60_000, multiplier: 2, cutoffMs: 3_600_000 },
      cacheTtl: { seconds: 300, minSeconds: 60, maxSeconds: 3600 },
      cacheTtlSeconds: 300,
      history: { perPage: 10, maxVisible: 20 },
      reveal: { ttlSeconds: 600 },
      revealTtlMs: 600_000,
      purge: {
        retentionDays: 90,
        batchSize: 5000,
        chunkBudgetMs: 10,
        maxDeletionsPerRun: 1000,
        deleteEmptyBatches: false,
        reportToAdmin: false,
      },
      audit: { retentionDays: 30, autoCleanup: false, storeEmailLog: false },
      email: {
        enabled: false,
        from: null,
        adminEmail: null,
        successMessage: 'Your recovery codes email has been successfully delivered.',
      },
      export: { fileName: 'recovery_codes', defaultFormat: 'txt' },
      siteName: 'recovery-codes',
      logoutRedirect: null,
      loginMode: 'second-factor',
      deployment: 'single',
      cache: null,
      mailer: null,
      queue: null,
      logger: null,
      events: null,
      resolveEmail: null,
      resolveUserId: null,
    })
    expect(typeof c.clock.now).toBe('function')
    expect(typeof c.random.read).toBe('function')
    expect(c.format).toBe(CODE_FORMAT_PRESETS.default)
  })

  it('keeps explicit values', () => {
    const c = resolveConfig(
      base({
        cooldown: { baseSeconds: 30, multiplier: 1.5, cutoffSeconds: 300 },
        cacheTtl: { seconds: 60, minSeconds: 1, maxSeconds: 60 },
        defaultExpiryDays: 365,
        email: { enabled: false, from: 'noreply@example.com' },
      }),
    )
    expect(c.cooldownPolicy).toEqual({ baseMs: 30_000, multiplier: 1.5, cutoffMs: 300_000 })
    expect(c.cacheTtlSeconds).toBe(60)
    expect(c.defaultExpiryDays).toBe(365)
    expect(c.email.from).toBe('noreply@example.com')
  })

  it('does not touch the caller object, deep-freezes its own copy and keeps ports by identity', () => {
    const store = storeStub()
    const cache = {
      getItem: async () => null,
      setItem: async () => {},
      removeItem: async () => {},
    } as unknown as Cache
    const mailer = { send: async () => {} }
    const resolveEmail = async () => 'user@example.com'
    const secretBytes = Uint8Array.from(KEY_BYTES)
    const input = {
      peppers: [{ id: 'k1', secret: secretBytes }],
      store,
      cache,
      mailer,
      resolveEmail,
      format: {
        name: 'custom',
        alphabet: '0123456789ABCDEFGHJKMNPQRSTVWXYZ',
        groups: 6,
        groupLength: 5,
        separator: '-',
        caseSensitive: false,
        confusables: { O: '0' },
      },
      cooldown: { baseSeconds: 30 },
      email: { enabled: true, from: 'noreply@example.com' },
      deployment: 'multi' as const,
    } satisfies RecoveryCodesConfig
    // Functions cannot be cloned: compare the data part by value and the ports by identity.
    const { store: _s, cache: _c, mailer: _m, resolveEmail: _r, ...data } = input
    const before = structuredClone(data)
    const portKeys = [store, cache, mailer].map((p) => Object.keys(p))
    const c = resolveConfig(input)
    const { store: s2, cache: c2, mailer: m2, resolveEmail: r2, ...after } = input
    expect(after).toEqual(before)
    expect(after.peppers[0]!.secret).toEqual(KEY_BYTES)
    expect([s2, c2, m2, r2]).toEqual([store, cache, mailer, resolveEmail])
    expect(s2).toBe(store)
    expect([store, cache, mailer].map((p) => Object.keys(p))).toEqual(portKeys)
    expect(Object.isFrozen(input)).toBe(false)
    expect(Object.isFrozen(input.cooldown)).toBe(false)
    expect(Object.isFrozen(input.format)).toBe(false)

    expect(c.store).toBe(store)
    expect(c.cache).toBe(cache)
    expect(c.mailer).toBe(mailer)
    expect(c.resolveEmail).toBe(resolveEmail)
    expect(Object.isFrozen(store)).toBe(false)
    expect(Object.isFrozen(cache)).toBe(false)

    for (const v of [
      c,
      c.cooldown,
      c.cooldownPolicy,
      c.cacheTtl,
      c.history,
      c.reveal,
      c.purge,
      c.audit,
      c.email,
      c.export,
      c.format,
      c.format.confusables,
      c.peppers,
      c.currentPepper,
    ]) {
      expect(Object.isFrozen(v)).toBe(true)
    }
    expect(c.cooldown).not.toBe(input.cooldown)
    expect(() => {
      ;(c as { batchSize: number }).batchSize = 1
    }).toThrow(TypeError)
    // The caller's secret buffer is not the resolved one.
    expect(c.currentPepper.secret).not.toBe(secretBytes)
  })

  it('summarises ports in JSON and inspect output', () => {
    const c = resolveConfig(base())
    const json = JSON.parse(JSON.stringify(c))
    expect(json.store).toBe('[port]')
    expect(json.cache).toBeNull()
    expect(json.peppers).toEqual([{ id: 'k1', secret: '[redacted]' }])
    expect(inspect(c)).toContain("store: '[port]'")
  })

  it('checkConfig shares the validation', () => {
    expect(checkConfig(base())).toEqual({ ok: true })
    const result = checkConfig(base({ batchSize: 51, cooldown: { cutoffSeconds: 31 * 86_400 } }))
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.issues.map((i) => i.path)).toEqual(['batchSize', 'cooldown.cutoffSeconds'])
  })
})

describe('resolveConfig: export renderers', () => {
  const pdf = async () => new Uint8Array([1])

  it('export.pdf: a function, kept by reference; absent or null = no PDF', () => {
    const input = base({ export: { pdf } })
    const c = resolveConfig(input)
    expect(c.export.pdf).toBe(pdf)
    expect(Object.isFrozen(c.export)).toBe(true)
    expect((input.export as { pdf: unknown }).pdf).toBe(pdf)
    expect(resolveConfig(base()).export.pdf).toBeNull()
    expect(resolveConfig(base({ export: { pdf: null } })).export.pdf).toBeNull()
    expect(JSON.parse(JSON.stringify(c)).export).toEqual({ fileName: 'recovery_codes', defaultFormat: 'txt' })
  })

  it('export.pdf that is not a function is a config issue at its path', () => {
    for (const bad of ['pdf', true, 1, {}, { render: pdf }, []]) {
      const result = checkConfig(base({ export: { pdf: bad } }))
      expect(result.ok, String(bad)).toBe(false)
      if (!result.ok) {
        expect(result.issues.map((i) => i.path)).toEqual(['export.pdf'])
        expect(result.issues[0]!.message).toMatch(/^must be a function/)
      }
    }
  })

  it("export.defaultFormat 'pdf' needs export.pdf", () => {
    for (const exp of [{ defaultFormat: 'pdf' }, { defaultFormat: 'pdf', pdf: null }]) {
      const result = checkConfig(base({ export: exp }))
      expect(result.ok).toBe(false)
      if (!result.ok) {
        expect(result.issues.map((i) => i.path)).toEqual(['export.defaultFormat'])
        expect(result.issues[0]!.message).toContain('@recovery-codes/pdf')
      }
    }
    expect(checkConfig(base({ export: { defaultFormat: 'pdf', pdf } }))).toEqual({ ok: true })
    // A bad renderer is reported once, at its own path.
    expect(paths(base({ export: { defaultFormat: 'pdf', pdf: 'x' } }))).toEqual(['export.pdf'])
  })
})
