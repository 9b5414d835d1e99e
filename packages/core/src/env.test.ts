import { readFileSync } from 'node:fs'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { DEFAULTS, NUMERIC_OPTIONS, resolveConfig, STORE_METHODS } from './config.ts'
import { configFromEnv, ENV_VARIABLES, REFERENCE_ENV_MAPPING, translateReferenceEnv } from './env.ts'
import { isRecoveryCodesError, type RecoveryCodesError } from './errors.ts'
import type { RecoveryCodeStore } from './ports/store.ts'

function storeStub(): RecoveryCodeStore {
  const store: Record<string, () => Promise<never>> = {}
  for (const m of STORE_METHODS) {
    store[m] = async () => {
      throw new Error('unused')
    }
  }
  return store as unknown as RecoveryCodeStore
}

const KEY_BYTES = Uint8Array.from({ length: 32 }, (_, i) => (i * i * 73 + i * 11 + 5) % 251)
const KEY_B64 = Buffer.from(KEY_BYTES).toString('base64')
const KEY_HEX = Buffer.from(KEY_BYTES).toString('hex')

function envError(env: Record<string, string | undefined>): RecoveryCodesError {
  try {
    configFromEnv(env)
  } catch (e) {
    if (isRecoveryCodesError(e, 'CONFIG_INVALID')) return e
    throw e
  }
  throw new Error('expected CONFIG_INVALID')
}

const FULL_ENV = {
  RECOVERY_CODES_PEPPERS: `k2:${KEY_B64}, k1:hex:${KEY_HEX.replace(/^../, 'aa')}`,
  RECOVERY_CODES_FORMAT: 'django',
  RECOVERY_CODES_BATCH_SIZE: '12',
  RECOVERY_CODES_DEFAULT_EXPIRY_DAYS: '365',
  RECOVERY_CODES_LOW_CODES_THRESHOLD: '2',
  RECOVERY_CODES_MAX_LOGIN_ATTEMPTS: '4',
  RECOVERY_CODES_HARD_FAILURE_CAP: '12',
  RECOVERY_CODES_CLIENT_MAX_ATTEMPTS: '40',
  RECOVERY_CODES_COOLDOWN_BASE_SECONDS: '30',
  RECOVERY_CODES_COOLDOWN_MULTIPLIER: '1.5',
  RECOVERY_CODES_COOLDOWN_CUTOFF_SECONDS: '300',
  RECOVERY_CODES_CACHE_TIMEOUT_MS: '200',
  RECOVERY_CODES_CACHE_TTL_SECONDS: '120',
  RECOVERY_CODES_CACHE_TTL_MIN_SECONDS: '30',
  RECOVERY_CODES_CACHE_TTL_MAX_SECONDS: '600',
  RECOVERY_CODES_HISTORY_PER_PAGE: '5',
  RECOVERY_CODES_HISTORY_MAX_VISIBLE: '25',
  RECOVERY_CODES_REVEAL_TTL_SECONDS: '300',
  RECOVERY_CODES_PURGE_RETENTION_DAYS: '60',
  RECOVERY_CODES_PURGE_ATTEMPT_RETENTION_DAYS: '7',
  RECOVERY_CODES_PURGE_BATCH_SIZE: '500',
  RECOVERY_CODES_PURGE_CHUNK_BUDGET_MS: '25',
  RECOVERY_CODES_PURGE_MAX_DELETIONS_PER_RUN: 'unlimited',
  RECOVERY_CODES_PURGE_DELETE_EMPTY_BATCHES: '1',
  RECOVERY_CODES_PURGE_REPORT_TO_ADMIN: 'true',
  RECOVERY_CODES_AUDIT_RETENTION_DAYS: '14',
  RECOVERY_CODES_AUDIT_AUTO_CLEANUP: 'true',
  RECOVERY_CODES_AUDIT_STORE_EMAIL_LOG: '0',
  RECOVERY_CODES_EMAIL_ENABLED: 'false',
  RECOVERY_CODES_EMAIL_FROM: 'noreply@example.com',
  RECOVERY_CODES_EMAIL_ADMIN: 'admin@example.com',
  RECOVERY_CODES_EMAIL_SUCCESS_MESSAGE: 'Sent. Check your inbox.',
  RECOVERY_CODES_EXPORT_FILE_NAME: 'my-codes',
  RECOVERY_CODES_EXPORT_DEFAULT_FORMAT: 'pdf',
  RECOVERY_CODES_SITE_NAME: 'Example',
  RECOVERY_CODES_LOGOUT_REDIRECT: '/login',
  RECOVERY_CODES_LOGIN_MODE: 'second-factor',
  RECOVERY_CODES_DEPLOYMENT: 'single',
  RECOVERY_CODES_ACTIVATION: 'immediate',
  RECOVERY_CODES_REPLACE_ON_USE: 'true',
  RECOVERY_CODES_PRESET: 'nist-800-63b-4',
  PATH: '/usr/bin',
  HOME: undefined,
}

describe('configFromEnv', () => {
  it('parses a full good env', () => {
    const config = configFromEnv(FULL_ENV)
    expect(config).toEqual({
      peppers: [
        { id: 'k2', secret: KEY_B64 },
        { id: 'k1', secret: `hex:${KEY_HEX.replace(/^../, 'aa')}` },
      ],
      format: 'django',
      batchSize: 12,
      defaultExpiryDays: 365,
      lowCodesThreshold: 2,
      maxLoginAttempts: 4,
      hardFailureCap: 12,
      clientMaxAttempts: 40,
      cooldown: { baseSeconds: 30, multiplier: 1.5, cutoffSeconds: 300 },
      cacheTimeoutMs: 200,
      cacheTtl: { seconds: 120, minSeconds: 30, maxSeconds: 600 },
      history: { perPage: 5, maxVisible: 25 },
      reveal: { ttlSeconds: 300 },
      purge: {
        retentionDays: 60,
        attemptRetentionDays: 7,
        batchSize: 500,
        chunkBudgetMs: 25,
        maxDeletionsPerRun: null,
        deleteEmptyBatches: true,
        reportToAdmin: true,
      },
      audit: { retentionDays: 14, autoCleanup: true, storeEmailLog: false },
      email: {
        enabled: false,
        from: 'noreply@example.com',
        adminEmail: 'admin@example.com',
        successMessage: 'Sent. Check your inbox.',
      },
      export: { fileName: 'my-codes', defaultFormat: 'pdf' },
      siteName: 'Example',
      logoutRedirect: '/login',
      loginMode: 'second-factor',
      deployment: 'single',
      activation: 'immediate',
      replaceOnUse: true,
      preset: 'nist-800-63b-4',
    })
    const resolved = resolveConfig({
      ...config,
      // RECOVERY_CODES_EXPORT_DEFAULT_FORMAT=pdf needs a renderer, which only code can give.
      export: { ...config.export, pdf: async () => new Uint8Array() },
      // RECOVERY_CODES_REPLACE_ON_USE needs a store with addCodes; the preset, notifications.
      store: { ...storeStub(), addCodes: async () => false },
      mailer: { send: async () => {} },
      resolveEmail: async () => null,
      notifications: { contact: 'support@example.com', linkBaseUrl: 'https://example.com/wasnt-me' },
    })
    expect(resolved.peppers.map((p) => p.id)).toEqual(['k2', 'k1'])
    expect(resolved.cooldownPolicy).toEqual({ baseMs: 30_000, multiplier: 1.5, cutoffMs: 300_000 })
  })

  it('covers every option but peppers and ports', () => {
    const options = new Set(ENV_VARIABLES.map((v) => v.option))
    for (const path of Object.keys(NUMERIC_OPTIONS)) expect(options).toContain(path)
    expect(Object.keys(FULL_ENV).filter((n) => n.startsWith('RECOVERY_CODES_')).length).toBe(
      ENV_VARIABLES.length + 1,
    )
  })

  it('reads a single pepper as k1', () => {
    expect(configFromEnv({ RECOVERY_CODES_PEPPER: KEY_B64 })).toEqual({
      peppers: [{ id: 'k1', secret: KEY_B64 }],
    })
    expect(configFromEnv({})).toEqual({})
    expect(configFromEnv({ RECOVERY_CODES_DEFAULT_EXPIRY_DAYS: 'never' })).toEqual({
      defaultExpiryDays: null,
    })
  })

  it.each([
    ['RECOVERY_CODES_COOLDOWN_BASE_SECONDS', '60s'],
    ['RECOVERY_CODES_PURGE_BATCH_SIZE', '1e3'],
    ['RECOVERY_CODES_PURGE_CHUNK_BUDGET_MS', '10ms'],
    ['RECOVERY_CODES_PURGE_CHUNK_BUDGET_MS', '2.5'],
    ['RECOVERY_CODES_BATCH_SIZE', ' 5'],
    ['RECOVERY_CODES_BATCH_SIZE', '5 '],
    ['RECOVERY_CODES_BATCH_SIZE', '0x10'],
    ['RECOVERY_CODES_BATCH_SIZE', '5.0'],
    ['RECOVERY_CODES_BATCH_SIZE', ''],
    ['RECOVERY_CODES_BATCH_SIZE', '99999999999999999999'],
    ['RECOVERY_CODES_AUDIT_AUTO_CLEANUP', 'yes'],
    ['RECOVERY_CODES_AUDIT_AUTO_CLEANUP', 'True'],
    ['RECOVERY_CODES_COOLDOWN_MULTIPLIER', '-2'],
    ['RECOVERY_CODES_COOLDOWN_MULTIPLIER', '1e1'],
    ['RECOVERY_CODES_COOLDOWN_MULTIPLIER', 'Infinity'],
    ['RECOVERY_CODES_PURGE_MAX_DELETIONS_PER_RUN', 'none'],
    ['RECOVERY_CODES_LOGIN_MODE', 'email'],
    ['RECOVERY_CODES_EXPORT_DEFAULT_FORMAT', 'TXT'],
    ['RECOVERY_CODES_BATCHSIZE', '10'],
    ['RECOVERY_CODES_ACTIVATION', 'later'],
    ['RECOVERY_CODES_ACTIVATION', 'Confirm'],
    ['RECOVERY_CODES_ACTIVATION', ''],
    ['RECOVERY_CODES_REPLACE_ON_USE', 'yes'],
    ['RECOVERY_CODES_REPLACE_ON_USE', 'on'],
    ['RECOVERY_CODES_PRESET', 'nist'],
    ['RECOVERY_CODES_PRESET', 'NIST-800-63B-4'],
  ])('rejects %s=%j', (name, value) => {
    const err = envError({ [name]: value })
    expect(err.issues.map((i) => i.path)).toEqual([name])
    expect(err.message).toContain(name)
  })

  it('lists every bad variable at once, by name, without echoing values', () => {
    const secret = `${KEY_B64.slice(0, 10)}`
    const err = envError({
      RECOVERY_CODES_PEPPERS: `k1:${KEY_B64},${secret}`,
      RECOVERY_CODES_COOLDOWN_BASE_SECONDS: '60s',
      RECOVERY_CODES_PURGE_BATCH_SIZE: '1e3',
      RECOVERY_CODES_BATCH_SIZE: ' 5',
      RECOVERY_CODES_AUDIT_AUTO_CLEANUP: 'yes',
      RECOVERY_CODES_SITE_NAME: 'fine',
    })
    expect(err.issues.map((i) => i.path).sort()).toEqual([
      'RECOVERY_CODES_AUDIT_AUTO_CLEANUP',
      'RECOVERY_CODES_BATCH_SIZE',
      'RECOVERY_CODES_COOLDOWN_BASE_SECONDS',
      'RECOVERY_CODES_PEPPERS',
      'RECOVERY_CODES_PURGE_BATCH_SIZE',
    ])
    for (const out of [err.message, String(err), JSON.stringify(err), inspect(err, { depth: 10 })]) {
      for (const name of ['RECOVERY_CODES_AUDIT_AUTO_CLEANUP', 'RECOVERY_CODES_PEPPERS'])
        expect(out).toContain(name)
      expect(out).not.toContain(KEY_B64)
      expect(out).not.toContain(secret)
      expect(out).not.toContain('60s')
    }
  })

  it('refuses both pepper variables at once', () => {
    const err = envError({ RECOVERY_CODES_PEPPER: KEY_B64, RECOVERY_CODES_PEPPERS: `k1:${KEY_B64}` })
    expect(err.issues.map((i) => i.path)).toEqual(['RECOVERY_CODES_PEPPERS'])
    expect(err.message).not.toContain(KEY_B64)
  })

  it('lets other tools own some RECOVERY_CODES_* names', () => {
    expect(
      configFromEnv({ RECOVERY_CODES_DATABASE_URL: 'x' }, { ignore: ['RECOVERY_CODES_DATABASE_URL'] }),
    ).toEqual({})
  })

  it('leaves ranges to resolveConfig, which names the option', () => {
    const partial = configFromEnv({ RECOVERY_CODES_PEPPER: KEY_B64, RECOVERY_CODES_BATCH_SIZE: '-1' })
    expect(() => resolveConfig({ ...partial, store: storeStub() })).toThrow(/batchSize/)
  })

  it('sets the purge chunk budget from RECOVERY_CODES_PURGE_CHUNK_BUDGET_MS, range-checked by resolveConfig', () => {
    const env = (v: string) =>
      configFromEnv({ RECOVERY_CODES_PEPPER: KEY_B64, RECOVERY_CODES_PURGE_CHUNK_BUDGET_MS: v })
    expect(env('25').purge).toEqual({ chunkBudgetMs: 25 })
    expect(resolveConfig({ ...env('25'), store: storeStub() }).purge.chunkBudgetMs).toBe(25)
    expect(() => resolveConfig({ ...env('0'), store: storeStub() })).toThrow(/purge\.chunkBudgetMs/)
  })
})

// Every DJANGO_AUTH_RECOVERY_* name in the reference README (flag list, table and examples).
const REFERENCE_FLAGS = [
  'DJANGO_AUTH_RECOVERY_CODES_ADMIN_SENDER_EMAIL',
  'DJANGO_AUTH_RECOVERY_CODES_AUTH_RATE_LIMITER_USE_CACHE',
  'DJANGO_AUTH_RECOVERY_CODES_BASE_COOLDOWN',
  'DJANGO_AUTH_RECOVERY_CODES_BATCH_DELETE_SIZE',
  'DJANGO_AUTH_RECOVERY_CODES_CACHE_MAX',
  'DJANGO_AUTH_RECOVERY_CODES_CACHE_MIN',
  'DJANGO_AUTH_RECOVERY_CODES_CACHE_TTL',
  'DJANGO_AUTH_RECOVERY_CODES_COOLDOWN_CUTOFF_POINT',
  'DJANGO_AUTH_RECOVERY_CODES_COOLDOWN_MULTIPLIER',
  'DJANGO_AUTH_RECOVERY_CODES_DEFAULT_FILE_NAME',
  'DJANGO_AUTH_RECOVERY_CODES_DEFAULT_FORMAT',
  'DJANGO_AUTH_RECOVERY_CODES_LOGGING',
  'DJANGO_AUTH_RECOVERY_CODES_MAX_DELETIONS_PER_RUN',
  'DJANGO_AUTH_RECOVERY_CODES_MAX_LOGIN_ATTEMPTS',
  'DJANGO_AUTH_RECOVERY_CODES_PURGE_MAX_DELETIONS_PER_RUN',
  'DJANGO_AUTH_RECOVERY_CODES_SITE_NAME',
  'DJANGO_AUTH_RECOVERY_CODE_ADMIN_EMAIL_HOST_USER',
  'DJANGO_AUTH_RECOVERY_CODE_ADMIN_USERNAME',
  'DJANGO_AUTH_RECOVERY_CODE_AUDIT_ENABLE_AUTO_CLEANUP',
  'DJANGO_AUTH_RECOVERY_CODE_AUDIT_RETENTION_DAYS',
  'DJANGO_AUTH_RECOVERY_CODE_EMAIL_SUCCESS_MSG',
  'DJANGO_AUTH_RECOVERY_CODE_MAX_VISIBLE',
  'DJANGO_AUTH_RECOVERY_CODE_PER_PAGE',
  'DJANGO_AUTH_RECOVERY_CODE_PURGE_DELETE_RETENTION_DAYS',
  'DJANGO_AUTH_RECOVERY_CODE_PURGE_DELETE_SCHEDULER_USE_LOGGER',
  'DJANGO_AUTH_RECOVERY_CODE_REDIRECT_VIEW_AFTER_LOGOUT',
  'DJANGO_AUTH_RECOVERY_CODE_STORE_EMAIL_LOG',
  'DJANGO_AUTH_RECOVERY_KEY',
]

// The reference README's settings example (Quickstart step 15), as environment variables.
const REFERENCE_EXAMPLE = {
  DJANGO_AUTH_RECOVERY_CODES_ADMIN_SENDER_EMAIL: 'your-email-address-here',
  DJANGO_AUTH_RECOVERY_CODE_ADMIN_EMAIL_HOST_USER: 'your-host-email-address-here',
  DJANGO_AUTH_RECOVERY_CODE_ADMIN_USERNAME: 'username here',
  DJANGO_AUTH_RECOVERY_CODE_STORE_EMAIL_LOG: 'False',
  DJANGO_AUTH_RECOVERY_KEY: 'add-recovery-key-here',
  DJANGO_AUTH_RECOVERY_CODE_AUDIT_ENABLE_AUTO_CLEANUP: 'True',
  DJANGO_AUTH_RECOVERY_CODE_AUDIT_RETENTION_DAYS: '30',
  DJANGO_AUTH_RECOVERY_CODE_PURGE_DELETE_RETENTION_DAYS: '30',
  DJANGO_AUTH_RECOVERY_CODE_PURGE_DELETE_SCHEDULER_USE_LOGGER: 'True',
  DJANGO_AUTH_RECOVERY_CODES_AUTH_RATE_LIMITER_USE_CACHE: 'True',
  DJANGO_AUTH_RECOVERY_CODES_BASE_COOLDOWN: '100',
  DJANGO_AUTH_RECOVERY_CODES_COOLDOWN_CUTOFF_POINT: '3600',
  DJANGO_AUTH_RECOVERY_CODES_COOLDOWN_MULTIPLIER: '2',
  DJANGO_AUTH_RECOVERY_CODES_MAX_LOGIN_ATTEMPTS: '5',
  DJANGO_AUTH_RECOVERY_CODES_CACHE_MAX: '3600',
  DJANGO_AUTH_RECOVERY_CODES_CACHE_MIN: '1',
  DJANGO_AUTH_RECOVERY_CODES_CACHE_TTL: '3600',
  DJANGO_AUTH_RECOVERY_CODE_MAX_VISIBLE: '20',
  DJANGO_AUTH_RECOVERY_CODE_PER_PAGE: '5',
  DJANGO_AUTH_RECOVERY_CODES_BATCH_DELETE_SIZE: '400',
  DJANGO_AUTH_RECOVERY_CODES_MAX_DELETIONS_PER_RUN: '-1',
  DJANGO_AUTH_RECOVERY_CODES_DEFAULT_FILE_NAME: '"recovery_codes"',
  DJANGO_AUTH_RECOVERY_CODES_DEFAULT_FORMAT: '"txt"',
  DJANGO_AUTH_RECOVERY_CODES_SITE_NAME: '"This is a demo tutorial"',
  DJANGO_AUTH_RECOVERY_CODE_REDIRECT_VIEW_AFTER_LOGOUT: '"logout_user"',
  DJANGO_AUTH_RECOVERY_CODE_EMAIL_SUCCESS_MSG: '"Your recovery codes email has been successfully delivered."',
}

describe('reference flags', () => {
  it('REFERENCE_ENV_MAPPING covers every reference flag, once, with consistent targets', () => {
    const names = REFERENCE_ENV_MAPPING.map((e) => e.reference)
    expect([...names].sort()).toEqual([...REFERENCE_FLAGS].sort())
    const ours = new Map(ENV_VARIABLES.map((v) => [v.name, v.option]))
    for (const entry of REFERENCE_ENV_MAPPING) {
      expect(entry.note.length, entry.reference).toBeGreaterThan(5)
      if (entry.ours === null) {
        expect(entry.option).toBeNull()
      } else if (entry.ours === 'RECOVERY_CODES_PEPPER') {
        expect(entry.option).toBe('peppers')
      } else {
        expect(ours.get(entry.ours), entry.reference).toBe(entry.option)
      }
    }
  })

  it('translates the README example (real key and addresses) into a config that resolves', () => {
    const skipped: string[] = []
    const env = translateReferenceEnv(
      {
        ...REFERENCE_EXAMPLE,
        DJANGO_AUTH_RECOVERY_KEY: KEY_B64,
        DJANGO_AUTH_RECOVERY_CODES_ADMIN_SENDER_EMAIL: 'admin@example.com',
        DJANGO_AUTH_RECOVERY_CODE_ADMIN_EMAIL_HOST_USER: 'noreply@example.com',
        PATH: '/usr/bin',
      },
      { onSkip: (name) => skipped.push(name) },
    )
    expect(env).toEqual({
      RECOVERY_CODES_EMAIL_ADMIN: 'admin@example.com',
      RECOVERY_CODES_EMAIL_FROM: 'noreply@example.com',
      RECOVERY_CODES_AUDIT_STORE_EMAIL_LOG: 'false',
      RECOVERY_CODES_PEPPER: KEY_B64,
      RECOVERY_CODES_AUDIT_AUTO_CLEANUP: 'true',
      RECOVERY_CODES_AUDIT_RETENTION_DAYS: '30',
      RECOVERY_CODES_PURGE_RETENTION_DAYS: '30',
      RECOVERY_CODES_COOLDOWN_BASE_SECONDS: '100',
      RECOVERY_CODES_COOLDOWN_CUTOFF_SECONDS: '3600',
      RECOVERY_CODES_COOLDOWN_MULTIPLIER: '2',
      RECOVERY_CODES_MAX_LOGIN_ATTEMPTS: '5',
      RECOVERY_CODES_CACHE_TTL_MAX_SECONDS: '3600',
      RECOVERY_CODES_CACHE_TTL_MIN_SECONDS: '1',
      RECOVERY_CODES_CACHE_TTL_SECONDS: '3600',
      RECOVERY_CODES_HISTORY_MAX_VISIBLE: '20',
      RECOVERY_CODES_HISTORY_PER_PAGE: '5',
      RECOVERY_CODES_PURGE_BATCH_SIZE: '400',
      RECOVERY_CODES_PURGE_MAX_DELETIONS_PER_RUN: 'unlimited',
      RECOVERY_CODES_EXPORT_FILE_NAME: 'recovery_codes',
      RECOVERY_CODES_EXPORT_DEFAULT_FORMAT: 'txt',
      RECOVERY_CODES_SITE_NAME: 'This is a demo tutorial',
      RECOVERY_CODES_EMAIL_SUCCESS_MESSAGE: 'Your recovery codes email has been successfully delivered.',
    })
    expect(skipped.sort()).toEqual([
      'DJANGO_AUTH_RECOVERY_CODES_AUTH_RATE_LIMITER_USE_CACHE',
      'DJANGO_AUTH_RECOVERY_CODE_ADMIN_USERNAME',
      'DJANGO_AUTH_RECOVERY_CODE_PURGE_DELETE_SCHEDULER_USE_LOGGER',
      'DJANGO_AUTH_RECOVERY_CODE_REDIRECT_VIEW_AFTER_LOGOUT',
    ])
    const config = resolveConfig({ ...configFromEnv(env), store: storeStub() })
    expect(config).toMatchObject({
      cooldown: { baseSeconds: 100, multiplier: 2, cutoffSeconds: 3600 },
      cacheTtl: { seconds: 3600, minSeconds: 1, maxSeconds: 3600 },
      history: { perPage: 5, maxVisible: 20 },
      purge: { retentionDays: 30, batchSize: 400, maxDeletionsPerRun: null },
      audit: { retentionDays: 30, autoCleanup: true, storeEmailLog: false },
      email: { enabled: false, from: 'noreply@example.com', adminEmail: 'admin@example.com' },
      siteName: 'This is a demo tutorial',
      logoutRedirect: DEFAULTS.logoutRedirect,
    })
  })

  it('refuses the README example verbatim: placeholder addresses and the demo key', () => {
    const env = translateReferenceEnv(REFERENCE_EXAMPLE)
    let caught: unknown
    try {
      resolveConfig({ ...configFromEnv(env), store: storeStub() })
    } catch (e) {
      caught = e
    }
    expect(isRecoveryCodesError(caught, 'CONFIG_INVALID')).toBe(true)
    const err = caught as RecoveryCodesError
    expect(err.issues.map((i) => i.path).sort()).toEqual([
      'email.adminEmail',
      'email.from',
      'peppers.0.secret',
    ])
    expect(err.message).not.toContain('add-recovery-key-here')
  })

  it('maps values: booleans, unlimited, redirect paths, precedence', () => {
    expect(
      translateReferenceEnv({
        DJANGO_AUTH_RECOVERY_CODES_PURGE_MAX_DELETIONS_PER_RUN: '',
        DJANGO_AUTH_RECOVERY_CODES_MAX_DELETIONS_PER_RUN: '5000',
        DJANGO_AUTH_RECOVERY_CODE_REDIRECT_VIEW_AFTER_LOGOUT: '/accounts/login/',
        DJANGO_AUTH_RECOVERY_CODE_STORE_EMAIL_LOG: 'True',
      }),
    ).toEqual({
      RECOVERY_CODES_PURGE_MAX_DELETIONS_PER_RUN: 'unlimited',
      RECOVERY_CODES_LOGOUT_REDIRECT: '/accounts/login/',
      RECOVERY_CODES_AUDIT_STORE_EMAIL_LOG: 'true',
    })
    expect(
      translateReferenceEnv({
        DJANGO_AUTH_RECOVERY_CODES_MAX_DELETIONS_PER_RUN: 'None',
        RECOVERY_CODES_BATCH_SIZE: '5',
      }),
    ).toEqual({ RECOVERY_CODES_PURGE_MAX_DELETIONS_PER_RUN: 'unlimited', RECOVERY_CODES_BATCH_SIZE: '5' })
    // Our own variable wins over the reference flag.
    expect(
      translateReferenceEnv({
        DJANGO_AUTH_RECOVERY_CODES_BASE_COOLDOWN: '10',
        RECOVERY_CODES_COOLDOWN_BASE_SECONDS: '20',
      }),
    ).toEqual({ RECOVERY_CODES_COOLDOWN_BASE_SECONDS: '20' })
    // A bad value passes through and is reported under our name.
    const env = translateReferenceEnv({ DJANGO_AUTH_RECOVERY_CODES_BASE_COOLDOWN: '60 # one minute' })
    expect(() => configFromEnv(env)).toThrow(/RECOVERY_CODES_COOLDOWN_BASE_SECONDS/)
  })
})

describe('docs/configuration.md', () => {
  const doc = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8')

  it('names every variable, option and reference flag', () => {
    for (const v of ENV_VARIABLES) {
      expect(doc, v.name).toContain(`\`${v.name}\``)
      expect(doc, v.option).toContain(`\`${v.option}\``)
    }
    for (const e of REFERENCE_ENV_MAPPING) expect(doc, e.reference).toContain(e.reference)
  })

  it('states each numeric default and range as the code does', () => {
    for (const [path, spec] of Object.entries(NUMERIC_OPTIONS)) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${path}\` |`))
      expect(row, path).toBeDefined()
      const cells = row!.split('|').map((c) => c.trim())
      const def = path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], DEFAULTS)
      expect(cells[3], `${path} default`).toBe(`\`${def === null ? 'null' : String(def)}\``)
      expect(cells[4], `${path} range`).toContain(`${spec.min}–${spec.max}`)
    }
  })
})
