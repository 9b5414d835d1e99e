/**
 * Activation after saving and replacement on use, where the store-independent parts decide: a
 * cache that cannot keep a pending batch, a tampered slot, a replacement the store refuses or
 * whose slot is lost, and the config that turns each on. The store-dependent contract (every
 * store, concurrent redeems) is in the service conformance suite (`activation.ts`, `replace.ts`).
 */
import { createStorage } from 'unstorage'
import memoryDriver from 'unstorage/drivers/memory'
import { describe, expect, it } from 'vitest'
import { memoryStore } from '../../../store-memory/src/index.ts'
import { createManualClock } from '../../../testing/src/clock.ts'
import { randomPepperSecret } from '../../../testing/src/fixtures.ts'
import { createCaptureLogger } from '../../../testing/src/logger.ts'
import { checkConfig } from '../config.ts'
import type { Cache } from '../ports/cache.ts'
import type { RecoveryCodeStore } from '../ports/store.ts'
import { createRecoveryCodes } from './create.ts'
import { parseRevealToken } from './reveal.ts'
import { slotKey } from './reveal-slot.ts'

const failing = (error = new Error('ECONNREFUSED 10.0.0.5:6379 password=hunter2')) => {
  throw error
}

function make(extra: Record<string, unknown> = {}) {
  const clock = createManualClock()
  const store = memoryStore()
  const logger = createCaptureLogger()
  const storage = createStorage({ driver: memoryDriver() })
  let cacheDown = false
  const cache: Cache = {
    getItem: <T>(k: string) => (cacheDown ? failing() : (storage.getItem(k) as Promise<T | null>)),
    setItem: (k, v, o) => (cacheDown ? failing() : storage.setItem(k, v as never, o)),
    removeItem: (k) => (cacheDown ? failing() : storage.removeItem(k)),
  }
  const rc = createRecoveryCodes({
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    store,
    clock,
    cache,
    logger,
    cooldown: { baseSeconds: 1, cutoffSeconds: 1, multiplier: 1 },
    ...extra,
  })
  return { rc, store, clock, storage, logger, setCacheDown: (down: boolean) => (cacheDown = down) }
}

async function generated(h: ReturnType<typeof make>, userId = 'u1') {
  const r = await h.rc.generate({ userId, count: 4 })
  if (!r.ok) throw new Error('cooldown')
  return r
}

const outcome = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code ?? 'thrown',
  )

describe('activation after saving', () => {
  it('a cache that cannot keep the pending batch: STORE_UNAVAILABLE, nothing changed, a retry works', async () => {
    const h = make()
    const old = await generated(h)
    await h.rc.confirm({ userId: 'u1', reveal: old.reveal })
    h.clock.advance(2000)
    h.setCacheDown(true)
    expect(await outcome(h.rc.generate({ userId: 'u1' }))).toBe('STORE_UNAVAILABLE')
    // No secret of the cache error in the logs, and the current batch still works.
    expect(h.logger.text()).not.toContain('hunter2')
    h.setCacheDown(false)
    expect((await h.rc.redeem({ userId: 'u1', code: old.codes[0]! })).ok).toBe(true)
    // No cooldown was started by the failed generate.
    const retry = await generated(h)
    expect(retry.pending).toBe(true)
    expect((await h.store.getActiveBatch('u1'))?.id).toBe(old.batchId)
  })

  it('a slot whose pending metadata was altered in the cache no longer opens', async () => {
    const h = make()
    const b = await generated(h)
    const key = slotKey(parseRevealToken(b.reveal)!.slotId)
    const slot = (await h.storage.getItem(key)) as { pending: { lifetimeMs: number | null } }
    expect(slot.pending).toEqual({ generatedAt: h.clock.now(), lifetimeMs: null })
    await h.storage.setItem(key, { ...slot, pending: { ...slot.pending, lifetimeMs: 1000 } } as never)
    expect(await outcome(h.rc.confirm({ userId: 'u1', reveal: b.reveal }))).toBe('REVEAL_UNAVAILABLE')
    expect(await h.store.getActiveBatch('u1')).toBeNull()
  })

  it('the batch confirmed carries its expiry from the confirm, and its generate-time cooldown', async () => {
    const h = make({ defaultExpiryDays: 7 })
    const b = await generated(h)
    expect(b.expiresAt).toBe(h.clock.now() + 7 * 86_400_000)
    h.clock.advance(60_000)
    await h.rc.confirm({ userId: 'u1', reveal: b.reveal })
    expect((await h.store.getActiveBatch('u1'))?.expiresAt).toBe(h.clock.now() + 7 * 86_400_000)
    const audit = await h.store.listAudit({ limit: 10, userId: 'u1' })
    expect(audit.map((a) => a.event).sort()).toEqual(['batch.generated', 'batch.pending'])
  })
})

describe('replacement on use: what the store or the cache refuses', () => {
  it('addCodes refusing (batch ended meanwhile) or failing: the login stands, no replacement', async () => {
    let mode: 'false' | 'throw' = 'false'
    const inner = memoryStore()
    const store: RecoveryCodeStore = Object.assign(Object.create(null), inner, {
      addCodes: async () => (mode === 'false' ? false : failing()),
    })
    const h = make({ store, replaceOnUse: true, activation: 'immediate' })
    const b = await generated(h)
    const r1 = await h.rc.redeem({ userId: 'u1', code: b.codes[0]! })
    expect(r1).toMatchObject({ ok: true, remaining: 3 })
    expect(r1.ok && r1.replacement).toBeUndefined()
    mode = 'throw'
    const r2 = await h.rc.redeem({ userId: 'u1', code: b.codes[1]! })
    expect(r2).toMatchObject({ ok: true, remaining: 2 })
    expect(r2.ok && r2.replacement).toBeUndefined()
    expect(h.logger.text()).toContain('replacement code not written')
    expect(h.logger.text()).not.toContain('hunter2')
  })

  it('a replacement whose slot the cache cannot keep: no reveal, the code still counts', async () => {
    const h = make({ replaceOnUse: true, activation: 'immediate' })
    const b = await generated(h)
    h.setCacheDown(true)
    const r = await h.rc.redeem({ userId: 'u1', code: b.codes[0]! })
    expect(r.ok && r.replacement).toBeUndefined()
    h.setCacheDown(false)
    expect((await h.rc.status({ userId: 'u1' })).remaining).toBe(4)
  })
})

describe('config of activation, replacement, the preset and mustBindFactor', () => {
  const KEY = randomPepperSecret()
  const base = (extra: Record<string, unknown> = {}) => ({
    peppers: [{ id: 'k1', secret: KEY }],
    store: memoryStore(),
    ...extra,
  })
  const paths = (input: unknown) => {
    const r = checkConfig(input)
    return r.ok ? [] : r.issues.map((i) => i.path)
  }
  const notifications = { contact: 'Call +1 555 0100', linkBaseUrl: 'https://example.com/wasnt-me' }
  const mail = { mailer: { send: async () => {} }, resolveEmail: async () => 'a@example.com' }

  it('defaults: confirm, no replacement, no preset, no hook', () => {
    const rc = createRecoveryCodes(base())
    expect(rc.config).toMatchObject({
      activation: 'confirm',
      replaceOnUse: false,
      preset: null,
      mustBindFactor: null,
    })
  })

  it.each([
    ['activation', { activation: 'later' }],
    ['activation', { activation: true }],
    ['replaceOnUse', { replaceOnUse: 'yes' }],
    ['preset', { preset: 'nist' }],
    ['mustBindFactor', { mustBindFactor: true }],
  ])('rejects a bad %s', (path, extra) => {
    expect(paths(base(extra))).toContain(path)
  })

  it('replaceOnUse needs a store with addCodes', () => {
    const { addCodes: _drop, ...rest } = memoryStore() as RecoveryCodeStore & Record<string, unknown>
    expect(paths(base({ store: rest, replaceOnUse: true }))).toContain('replaceOnUse')
    expect(paths(base({ store: rest }))).toEqual([])
  })

  it("preset 'nist-800-63b-4' turns replacement on and requires notifications; explicit options win", () => {
    expect(paths(base({ preset: 'nist-800-63b-4' }))).toContain('notifications')
    const rc = createRecoveryCodes(base({ preset: 'nist-800-63b-4', notifications, ...mail }))
    expect(rc.config).toMatchObject({ preset: 'nist-800-63b-4', replaceOnUse: true, activation: 'confirm' })
    const off = createRecoveryCodes(
      base({
        preset: 'nist-800-63b-4',
        notifications,
        ...mail,
        replaceOnUse: false,
        activation: 'immediate',
      }),
    )
    expect(off.config).toMatchObject({ replaceOnUse: false, activation: 'immediate' })
  })
})
