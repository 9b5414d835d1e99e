import { describe, expect, it } from 'vitest'
import { checkConfig, DEFAULT_REPUDIATION_LINK_TTL_SECONDS, resolveConfig, STORE_METHODS } from './config.ts'
import type { RecoveryCodeStore } from './ports/store.ts'
import { NOTIFICATION_KINDS } from './service/repudiation-token.ts'

function storeStub(): RecoveryCodeStore {
  const store: Record<string, () => Promise<never>> = {}
  for (const m of STORE_METHODS) {
    store[m] = async () => {
      throw new Error('unused')
    }
  }
  return store as unknown as RecoveryCodeStore
}

const KEY = Buffer.from(Uint8Array.from({ length: 32 }, (_, i) => (i * i * 73 + i * 11 + 5) % 251)).toString(
  'base64',
)
const mailer = { send: async () => {} }
const resolveEmail = async () => 'a@example.com'
const NOTIFY = { contact: 'Call support at +1 555 0100', linkBaseUrl: 'https://example.com/wasnt-me' }

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { peppers: [{ id: 'k1', secret: KEY }], store: storeStub(), mailer, resolveEmail, ...extra }
}

function paths(input: unknown): string[] {
  const result = checkConfig(input)
  return result.ok ? [] : result.issues.map((i) => i.path)
}

describe('notifications config', () => {
  it('is off by default', () => {
    expect(resolveConfig(base()).notifications).toBeNull()
  })

  it('resolves defaults: every kind, 7-day links', () => {
    const config = resolveConfig(base({ notifications: NOTIFY }))
    expect(config.notifications).toEqual({
      ...NOTIFY,
      kinds: [...NOTIFICATION_KINDS],
      linkTtlSeconds: DEFAULT_REPUDIATION_LINK_TTL_SECONDS,
    })
    expect(Object.isFrozen(config.notifications)).toBe(true)
  })

  it('requires mailer and resolveEmail', () => {
    expect(paths({ ...base({ notifications: NOTIFY }), mailer: undefined })).toContain('mailer')
    expect(paths({ ...base({ notifications: NOTIFY }), resolveEmail: undefined })).toContain('resolveEmail')
  })

  it.each([
    ['notifications.contact', { linkBaseUrl: NOTIFY.linkBaseUrl }],
    ['notifications.contact', { ...NOTIFY, contact: 'a\r\nBcc: x@evil.test' }],
    ['notifications.linkBaseUrl', { ...NOTIFY, linkBaseUrl: 'http://example.com/x' }],
    ['notifications.linkBaseUrl', { ...NOTIFY, linkBaseUrl: '/relative' }],
    ['notifications.linkBaseUrl', { ...NOTIFY, linkBaseUrl: 'javascript:alert(1)' }],
    ['notifications.linkBaseUrl', { ...NOTIFY, linkBaseUrl: 'https://example.com/x?next=1' }],
    ['notifications.linkTtlSeconds', { ...NOTIFY, linkTtlSeconds: 31 * 24 * 3600 }],
    ['notifications.linkTtlSeconds', { ...NOTIFY, linkTtlSeconds: '3600' }],
    ['notifications.kinds', { ...NOTIFY, kinds: ['nope'] }],
    ['notifications.extra', { ...NOTIFY, extra: 1 }],
  ])('rejects %s in %j', (path, notifications) => {
    expect(paths(base({ notifications })).some((p) => p.startsWith(path))).toBe(true)
  })

  it('accepts http for localhost', () => {
    expect(
      checkConfig(base({ notifications: { ...NOTIFY, linkBaseUrl: 'http://localhost:3000/x' } })),
    ).toEqual({
      ok: true,
    })
  })

  it('checks onRepudiated is a function', () => {
    expect(paths(base({ onRepudiated: 'nope' }))).toContain('onRepudiated')
    expect(resolveConfig(base({ onRepudiated: async () => {} })).onRepudiated).toBeTypeOf('function')
  })
})
