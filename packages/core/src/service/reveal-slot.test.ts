/**
 * The reveal slot's channels (regression for issue 16, "Saving without traps": a first download
 * destroyed the slot, so viewing or a second format was refused with `REVEAL_UNAVAILABLE`).
 * The every-order and cross-instance proofs on every store are in the service conformance suite
 * (`@recovery-codes/testing`, `service-conformance/delivery.ts`); these are the core-only ones: a
 * slow store widening every race, failures that do or do not use a channel up, and what the
 * store, the cache and the logs hold.
 */
import { bytesToHex } from '@noble/hashes/utils.js'
import { createStorage, type Storage } from 'unstorage'
import redisDriver from 'unstorage/drivers/redis'
import { afterAll, describe, expect, it } from 'vitest'
import { inspectMemoryStore, memoryStore } from '../../../store-memory/src/index.ts'
import { createManualClock } from '../../../testing/src/clock.ts'
import { randomPepperSecret, uniqueId } from '../../../testing/src/fixtures.ts'
import { createCaptureLogger } from '../../../testing/src/logger.ts'
import { createRecordingMailer } from '../../../testing/src/mailer.ts'
import { IS_CI } from '../../../testing/src/servers.ts'
import { createSlowStore } from '../../../testing/src/store-wrappers.ts'
import type { RecoveryCodesConfig } from '../config.ts'
import { isRecoveryCodesError } from '../errors.ts'
import type { RecoveryCodeStore } from '../ports/store.ts'
import { createRecoveryCodes, type RecoveryCodes } from './create.ts'
import { parseRevealToken } from './reveal.ts'
import type { RevealChannel } from './types.ts'

const CHANNELS: readonly RevealChannel[] = ['view', 'txt', 'csv', 'pdf', 'email']
const FAKE_PDF = new TextEncoder().encode('%PDF-1.4 test')

function make(overrides: Partial<RecoveryCodesConfig> = {}, store: RecoveryCodeStore = memoryStore()) {
  const mailer = createRecordingMailer()
  const logger = createCaptureLogger()
  const clock = createManualClock()
  const rc = createRecoveryCodes({
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    activation: 'immediate',
    store,
    clock,
    logger,
    mailer,
    email: { enabled: true, from: 'codes@example.test' },
    resolveEmail: async () => 'owner@example.test',
    export: { pdf: () => FAKE_PDF },
    ...overrides,
  })
  return { rc, store, mailer, logger, clock }
}

async function generated(rc: RecoveryCodes, userId = 'u1') {
  const r = await rc.generate({ userId, count: 4 })
  if (!r.ok) throw new Error('unexpected cooldown')
  return { userId, ...r }
}

function use(rc: RecoveryCodes, b: { userId: string; reveal: string }, channel: RevealChannel) {
  if (channel === 'view') return rc.viewCodes(b)
  if (channel === 'email') return rc.emailCodes(b)
  return rc.exportCodes({ ...b, format: channel })
}

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * A cache on Redis with the options of docs/redis.md, under its own key prefix, once connected
 * (without the offline queue a command sent before that fails); `null` within 2 s otherwise.
 */
async function redisCache(base: string): Promise<Storage | null> {
  const driver = redisDriver({
    base,
    url: REDIS_URL,
    enableOfflineQueue: false,
    commandTimeout: 500,
    maxRetriesPerRequest: 1,
  })
  const redis = driver.getInstance?.()
  redis?.on('error', () => {})
  const storage = createStorage({ driver })
  const ready =
    redis?.status === 'ready' ||
    (await Promise.race([
      new Promise<boolean>((resolve) => redis?.once('ready', () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2_000)),
    ]))
  if (ready) return storage
  await storage.dispose()
  return null
}

/** `null` when Redis answers; the reason otherwise (then the Redis test is skipped, except under CI). */
async function probeRedis(): Promise<string | null> {
  const probe = await redisCache(`rc-probe-${uniqueId('p')}`)
  if (!probe) return 'no connection within 2 s'
  try {
    await probe.setItem('ping', 'pong', { ttl: 5 })
    return (await probe.getItem('ping')) === 'pong' ? null : 'no answer'
  } catch (e) {
    return e instanceof Error ? e.name : String(e)
  } finally {
    await probe.removeItem('ping').catch(() => {})
    await probe.dispose()
  }
}
const redisUnavailable = await probeRedis()
if (redisUnavailable !== null && !IS_CI)
  console.warn(
    `[core] Redis at ${REDIS_URL} unreachable (${redisUnavailable}): the shared-Redis reveal test is SKIPPED`,
  )

const outcome = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (isRecoveryCodesError(e) ? e.code : String(e)),
  )

describe('reveal channels under a slow store (every store call yields twice first)', () => {
  it('12 parallel uses of each channel at once: exactly one success per channel', async () => {
    const h = make({}, createSlowStore(memoryStore(), { ticks: 2 }))
    const b = await generated(h.rc)
    const calls = CHANNELS.flatMap((c) => Array.from({ length: 12 }, () => c))
    const results = await Promise.all(calls.map((c) => outcome(use(h.rc, b, c))))
    for (const channel of CHANNELS) {
      const mine = results.filter((_, i) => calls[i] === channel)
      expect(
        mine.filter((r) => r === 'ok'),
        channel,
      ).toHaveLength(1)
      for (const r of mine) expect(['ok', 'ALREADY_DONE', 'REVEAL_UNAVAILABLE'], channel).toContain(r)
    }
    expect(h.mailer.messages).toHaveLength(1)
  })

  it('12 parallel uses of one channel leave the others open', async () => {
    const h = make({}, createSlowStore(memoryStore(), { ticks: 2 }))
    for (const [i, channel] of CHANNELS.entries()) {
      const b = await generated(h.rc, `u${i}`)
      const results = await Promise.all(Array.from({ length: 12 }, () => outcome(use(h.rc, b, channel))))
      expect(
        results.filter((r) => r === 'ok'),
        channel,
      ).toHaveLength(1)
      expect(
        results.filter((r) => r === 'ALREADY_DONE'),
        channel,
      ).toHaveLength(11)
      expect((await h.rc.revealStatus(b)).open).toEqual(CHANNELS.filter((c) => c !== channel))
    }
  })
})

describe('what uses a channel up', () => {
  it('a renderer failure leaves that format open; a failed send uses the email up (R-PT-2)', async () => {
    let failRender = true
    const h = make({
      export: {
        pdf: () => {
          if (failRender) throw new Error('renderer down')
          return FAKE_PDF
        },
      },
    })
    const b = await generated(h.rc)
    expect(await outcome(use(h.rc, b, 'pdf'))).toContain('renderer down')
    failRender = false
    expect(await outcome(use(h.rc, b, 'pdf'))).toBe('ok')
    h.mailer.failNext(1)
    expect(await outcome(use(h.rc, b, 'email'))).toBe('MAIL_FAILED')
    expect(await outcome(use(h.rc, b, 'email'))).toBe('ALREADY_DONE')
    expect(h.mailer.messages).toHaveLength(0)
    expect(await h.rc.revealStatus(b)).toMatchObject({ open: ['view', 'txt', 'csv'], used: ['pdf', 'email'] })
    expect(await outcome(use(h.rc, b, 'view'))).toBe('ok')
  })

  it('a failed batch-flag write after the claim still delivers: the flag is a record, the claim decides', async () => {
    const inner = memoryStore()
    const store: RecoveryCodeStore = new Proxy(inner, {
      get(target, key, receiver) {
        if (key === 'setBatchFlag') return async () => Promise.reject(new Error('flag write lost'))
        return Reflect.get(target, key, receiver)
      },
    })
    const h = make({}, store)
    const b = await generated(h.rc)
    expect((await h.rc.viewCodes(b)).codes).toEqual(b.codes)
    expect(await outcome(use(h.rc, b, 'view'))).toBe('ALREADY_DONE')
    expect(h.logger.text()).toContain('batch flag not recorded')
    for (const code of b.codes) expect(h.logger.text()).not.toContain(code)
  })

  it('revealStatus spends nothing and carries no code', async () => {
    const h = make()
    const b = await generated(h.rc)
    for (let i = 0; i < 3; i++) {
      const s = await h.rc.revealStatus(b)
      expect(s).toEqual({
        batchId: b.batchId,
        expiresAt: b.revealExpiresAt,
        open: CHANNELS,
        used: [],
        pending: false,
      })
      for (const code of b.codes) expect(JSON.stringify(s)).not.toContain(code)
    }
    expect(await outcome(h.rc.revealStatus({ userId: 'u2', reveal: b.reveal }))).toBe('REVEAL_UNAVAILABLE')
    expect(await outcome(h.rc.revealStatus({ userId: 'u1', reveal: 'not-a-token' }))).toBe(
      'REVEAL_UNAVAILABLE',
    )
    expect((await h.store.getActiveBatch('u1'))?.viewedAt).toBeNull()
  })

  it('without email the slot has view and the formats; using them all spends it', async () => {
    const h = make({ email: { enabled: false }, export: { pdf: null } })
    const b = await generated(h.rc)
    expect((await h.rc.revealStatus(b)).open).toEqual(['view', 'txt', 'csv'])
    expect(await outcome(use(h.rc, b, 'email'))).toBe('FEATURE_DISABLED')
    for (const channel of ['csv', 'view', 'txt'] as const)
      expect(await outcome(use(h.rc, b, channel))).toBe('ok')
    expect(await outcome(use(h.rc, b, 'view'))).toBe('REVEAL_UNAVAILABLE')
  })
})

describe('what the store, the cache and the logs hold', () => {
  it('the store holds keyed claims only; no code, token or slot id in the store or the logs', async () => {
    const store = memoryStore()
    const h = make({}, store)
    const b = await generated(h.rc)
    for (const channel of CHANNELS) await use(h.rc, b, channel)
    for (const channel of CHANNELS) await outcome(use(h.rc, b, channel))
    await h.rc.discardReveal({ reveal: b.reveal })
    const slotId = parseRevealToken(b.reveal)!.slotId
    const dump = inspectMemoryStore(store)
    const claims = dump.attempts.filter((a) => a.key.startsWith('reveal:'))
    expect(claims).toHaveLength(CHANNELS.length)
    for (const c of claims) expect(c.key).toMatch(/^reveal:[0-9a-f]+$/)
    const stored = JSON.stringify(dump, (_, v) => (v instanceof Uint8Array ? bytesToHex(v) : v))
    const logs = h.logger.text()
    for (const secret of [...b.codes, b.reveal, slotId]) {
      expect(stored.includes(secret), 'store').toBe(false)
      expect(logs.includes(secret), 'logs').toBe(false)
    }
  })
})

describe.skipIf(redisUnavailable !== null && !IS_CI)(
  'two instances over one store and a shared Redis cache',
  () => {
    const caches: Storage[] = []
    afterAll(async () => {
      for (const c of caches) {
        await c.clear()
        await c.dispose()
      }
    })

    it('the slot written by one opens on the other; parallel uses split across both: one success per channel', async () => {
      const base = `rc-reveal-test-${uniqueId('r')}`
      const store = memoryStore()
      const pepper = randomPepperSecret()
      const mailer = createRecordingMailer()
      const instance = async () => {
        const cache = await redisCache(base)
        if (!cache) throw new Error(`Redis at ${REDIS_URL} did not connect`)
        caches.push(cache)
        return createRecoveryCodes({
          peppers: [{ id: 'k1', secret: pepper }],
          activation: 'immediate',
          store,
          cache,
          mailer,
          email: { enabled: true, from: 'codes@example.test' },
          resolveEmail: async () => 'owner@example.test',
          export: { pdf: () => FAKE_PDF },
        })
      }
      const [a, b] = [await instance(), await instance()]
      const batch = await generated(a)
      expect((await b.revealStatus(batch)).open).toEqual(CHANNELS)
      const calls = CHANNELS.flatMap((c) => [a, b, a, b, a, b].map((rc) => ({ c, rc })))
      const results = await Promise.all(calls.map(({ c, rc }) => outcome(use(rc, batch, c))))
      for (const channel of CHANNELS) {
        const mine = results.filter((_, i) => calls[i]!.c === channel)
        expect(
          mine.filter((r) => r === 'ok'),
          channel,
        ).toHaveLength(1)
        for (const r of mine) expect(['ok', 'ALREADY_DONE', 'REVEAL_UNAVAILABLE'], channel).toContain(r)
      }
      expect(mailer.messages).toHaveLength(1)
      // Spent: gone on both, and the sealed slot is no longer in Redis.
      for (const rc of [a, b]) expect(await outcome(rc.viewCodes(batch))).toBe('REVEAL_UNAVAILABLE')
      const slotId = parseRevealToken(batch.reveal)!.slotId
      expect(await caches[0]!.hasItem(`rc:reveal:${slotId}`)).toBe(false)
    })
  },
)
