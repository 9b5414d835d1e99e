import { describe, expect, it } from 'vitest'
import { type ComplianceItem, type ComplianceReport, complianceReport } from './compliance.ts'
import { resolveConfig, STORE_METHODS } from './config.ts'
import type { RecoveryCodeStore } from './ports/store.ts'
import { NOTIFICATION_KINDS } from './service/repudiation-token.ts'

function storeStub(): RecoveryCodeStore {
  const store: Record<string, () => Promise<never>> = {}
  for (const m of [...STORE_METHODS, 'addCodes']) {
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

const report = (extra: Record<string, unknown> = {}): ComplianceReport =>
  complianceReport(
    resolveConfig({
      peppers: [{ id: 'k1', secret: KEY }],
      store: storeStub(),
      mailer,
      resolveEmail,
      ...extra,
    }),
  )

const PRESET = { preset: 'nist-800-63b-4', notifications: NOTIFY }

const unmet = (r: ComplianceReport, level?: 'SHALL' | 'SHOULD') =>
  r.items.filter((i) => !i.met && (level === undefined || i.level === level)).map((i) => i.id)

/** Ids whose `met` differs between two reports (same items, same order). */
function flipped(a: ComplianceReport, b: ComplianceReport): string[] {
  expect(b.items.map((i) => i.id)).toEqual(a.items.map((i) => i.id))
  return a.items.filter((item, k) => item.met !== b.items[k]!.met).map((i) => i.id)
}

const item = (r: ComplianceReport, id: string): ComplianceItem => {
  const found = r.items.find((i) => i.id === id)
  if (!found) throw new Error(`no item ${id}`)
  return found
}

const NOTIFICATION_ITEMS = [
  'recovery-codes/3.2.2/disabled-notification',
  'sp800-63b-4/4.2.1.1/replacement-notification',
  'sp800-63b-4/4.2.3/recovery-notification',
  'sp800-63b-4/4.6/notification-address',
  'sp800-63b-4/4.6/repudiation-instructions',
  'asvs-5.0/v6.5/lifecycle-notified',
]

describe('complianceReport', () => {
  it("preset 'nist-800-63b-4': every SHALL is met", () => {
    const r = report(PRESET)
    expect(r.preset).toBe('nist-800-63b-4')
    expect(unmet(r, 'SHALL')).toEqual([])
    expect(r.summary.allShallMet).toBe(true)
    expect(r.summary.shallUnmet).toBe(0)
    expect(r.summary.unmetShall).toEqual([])
    // The one SHOULD left is the host's hook, which the preset cannot set.
    expect(unmet(r, 'SHOULD')).toEqual(['sp800-63b-4/4.2.3/bind-new-authenticator'])
    expect(unmet(report({ ...PRESET, mustBindFactor: () => true }))).toEqual([])
  })

  it('defaults: exactly the replacement and notification SHALLs are unmet, each naming its option', () => {
    const r = report()
    expect(r.preset).toBeNull()
    expect(unmet(r, 'SHALL')).toEqual([
      'sp800-63b-4/4.2.1.1/replace-on-use',
      'sp800-63b-4/4.2.1.1/replacement-notification',
      'sp800-63b-4/4.2.3/recovery-notification',
      'sp800-63b-4/4.6/notification-address',
      'sp800-63b-4/4.6/repudiation-instructions',
    ])
    expect(r.summary.unmetShall).toEqual(unmet(r, 'SHALL'))
    expect(r.summary.allShallMet).toBe(false)
    expect(r.summary.shallUnmet).toBe(5)
    expect(r.summary.shallMet + r.summary.shallUnmet + r.summary.shouldMet + r.summary.shouldUnmet).toBe(
      r.items.length,
    )
    for (const i of r.items.filter((x) => !x.met)) {
      expect(i.option, i.id).toEqual(expect.any(String))
      expect(i.optionPath, i.id).toEqual(expect.any(String))
      expect(i.detail, i.id).not.toBe('')
    }
    expect(item(r, 'sp800-63b-4/4.2.1.1/replace-on-use').option).toBe('replaceOnUse: true')
    expect(item(r, 'sp800-63b-4/4.2.3/recovery-notification').optionPath).toBe('notifications')
    expect(unmet(r, 'SHOULD')).toEqual([
      'recovery-codes/3.2.2/disabled-notification',
      'sp800-63b-4/4.2.3/bind-new-authenticator',
      'asvs-5.0/v6.5/lifecycle-notified',
    ])
  })

  it('ids are unique and stable; built-in items are met with no option', () => {
    const r = report()
    expect(new Set(r.items.map((i) => i.id)).size).toBe(r.items.length)
    for (const i of r.items) {
      expect(i.id).toMatch(/^(sp800-63b-4|recovery-codes|asvs-5\.0)\/[\w.]+\/[a-z0-9-]+$/)
      expect(['3.1.2', '3.2.2', '4.2.1.1', '4.2.3', '4.6', 'V6.5']).toContain(i.section)
      expect(i.source === 'OWASP ASVS 5.0').toBe(i.section === 'V6.5')
      expect(i.productRule).toBe(
        i.id.startsWith('recovery-codes/') || i.id === 'asvs-5.0/v6.5/lifecycle-notified',
      )
      if (i.option === null) expect(i.met, i.id).toBe(true)
    }
    for (const id of [
      'sp800-63b-4/3.1.2/single-use',
      'sp800-63b-4/3.2.2/disable-at-limit',
      'sp800-63b-4/4.2.1.1/invalidate-on-use',
      'asvs-5.0/v6.5/single-use',
    ])
      expect(item(r, id)).toMatchObject({ met: true, option: null })
    expect(Object.isFrozen(r)).toBe(true)
    expect(Object.isFrozen(r.items[0])).toBe(true)
  })

  it('reports the documented deviation (any unused code accepted) without counting it', () => {
    const r = report(PRESET)
    expect(r.deviations.map((d) => d.id)).toEqual(['sp800-63b-4/3.1.2/prompt-specific-secret'])
    expect(r.summary.allShallMet).toBe(true)
  })

  it('replaceOnUse flips exactly its item', () => {
    expect(flipped(report({ replaceOnUse: false }), report({ replaceOnUse: true }))).toEqual([
      'sp800-63b-4/4.2.1.1/replace-on-use',
    ])
    // The preset turns it on; an explicit false still wins and is reported.
    expect(unmet(report({ ...PRESET, replaceOnUse: false }), 'SHALL')).toEqual([
      'sp800-63b-4/4.2.1.1/replace-on-use',
    ])
  })

  it('notifications flip exactly the notification items', () => {
    expect(flipped(report(), report({ notifications: NOTIFY }))).toEqual(NOTIFICATION_ITEMS)
  })

  it("notifications without 'recovery-login': §4.2.3 and the replacement notification are unmet", () => {
    const kinds = NOTIFICATION_KINDS.filter((k) => k !== 'recovery-login')
    const r = report({ notifications: { ...NOTIFY, kinds } })
    expect(flipped(report({ notifications: NOTIFY }), r)).toEqual([
      'sp800-63b-4/4.2.1.1/replacement-notification',
      'sp800-63b-4/4.2.3/recovery-notification',
      'asvs-5.0/v6.5/lifecycle-notified',
    ])
    const recovery = item(r, 'sp800-63b-4/4.2.3/recovery-notification')
    expect(recovery.optionPath).toBe('notifications.kinds')
    expect(recovery.option).toContain("'recovery-login'")
    expect(recovery.detail).toContain("leaves out 'recovery-login'")
  })

  it("notifications without 'codes-generated': only the replacement notification among the SHALLs", () => {
    const kinds = NOTIFICATION_KINDS.filter((k) => k !== 'codes-generated')
    const r = report({ ...PRESET, notifications: { ...NOTIFY, kinds } })
    expect(unmet(r, 'SHALL')).toEqual(['sp800-63b-4/4.2.1.1/replacement-notification'])
    expect(item(r, 'sp800-63b-4/4.2.1.1/replacement-notification').option).toBe(
      "notifications.kinds: add 'codes-generated'",
    )
  })

  it("notifications without 'disabled' and 'locked': only the §3.2.2 SHOULD (and the lifecycle SHOULD)", () => {
    const kinds = NOTIFICATION_KINDS.filter((k) => k !== 'disabled' && k !== 'locked')
    expect(
      flipped(report({ notifications: NOTIFY }), report({ notifications: { ...NOTIFY, kinds } })),
    ).toEqual(['recovery-codes/3.2.2/disabled-notification', 'asvs-5.0/v6.5/lifecycle-notified'])
  })

  it("activation flips exactly the product's never-stranded item", () => {
    const flips = flipped(report({ activation: 'confirm' }), report({ activation: 'immediate' }))
    expect(flips).toEqual(['recovery-codes/4.2.1.1/activation-confirm'])
    expect(item(report({ activation: 'immediate' }), flips[0]!)).toMatchObject({
      level: 'SHOULD',
      productRule: true,
      option: "activation: 'confirm'",
    })
  })

  it('mustBindFactor flips exactly the §4.2.3 SHOULD', () => {
    expect(flipped(report(), report({ mustBindFactor: () => true }))).toEqual([
      'sp800-63b-4/4.2.3/bind-new-authenticator',
    ])
  })

  it('a custom random port flips exactly the two RBG items', () => {
    const random = { read: (bytes: Uint8Array) => bytes.fill(4) }
    expect(flipped(report(PRESET), report({ ...PRESET, random }))).toEqual([
      'sp800-63b-4/3.1.2/approved-rbg',
      'asvs-5.0/v6.5/csprng',
    ])
  })

  it('an imported format under 64 bits (better-auth, 59.5) fails §4.2.1.1 and the storage rules, naming import.formats', () => {
    const r = report({ ...PRESET, import: { formats: ['better-auth'] } })
    expect(flipped(report(PRESET), r)).toEqual([
      'sp800-63b-4/3.1.2/offline-resistant-storage',
      'sp800-63b-4/4.2.1.1/min-entropy',
      'asvs-5.0/v6.5/stored-hashed',
    ])
    for (const id of r.summary.unmetShall) {
      expect(item(r, id).optionPath).toBe('import.formats')
      expect(item(r, id).option).toContain("'better-auth'")
    }
    expect(item(r, 'sp800-63b-4/4.2.1.1/min-entropy').detail).toContain('59.5 bits')
    // 20 bits (§3.1.2, ASVS) still holds.
    expect(item(r, 'sp800-63b-4/3.1.2/min-entropy').met).toBe(true)
  })

  it('an imported format of at least 112 bits (fortify, 119) changes nothing', () => {
    expect(flipped(report(PRESET), report({ ...PRESET, import: { formats: ['fortify'] } }))).toEqual([])
  })

  it('the rate-limit items state the configured limits', () => {
    const r = report({ maxLoginAttempts: 10, hardFailureCap: 100 })
    const rate = item(r, 'sp800-63b-4/3.2.2/consecutive-failure-limit')
    expect(rate.met).toBe(true)
    expect(rate.detail).toContain('hardFailureCap = 100')
    expect(rate.detail).toContain('maxLoginAttempts = 10')
    expect(rate.optionPath).toBe('hardFailureCap')
  })

  it('the entropy items state the format and the threshold', () => {
    const r = report({ format: 'django' })
    expect(item(r, 'sp800-63b-4/4.2.1.1/min-entropy').detail).toMatch(/format 'django': 212\.\d bits/)
    expect(item(r, 'sp800-63b-4/4.2.1.1/min-entropy').detail).toContain('at least 64 required')
    expect(item(report(), 'sp800-63b-4/3.1.2/min-entropy').detail).toContain('125 bits')
  })
})
