/**
 * Dependable under faults. Regression tests for "Redis killed: 0 operations per second for 10 s,
 * no error; pending generates each left an active batch" (a cache that hangs or throws blocks
 * nothing and decides nothing) and "generate commits the batch, then fails the call on a second
 * store call" (no error after the commit). After every scenario the store is swept
 * (`expectStoreInvariants`): one active batch per user, no batch with missing codes, every used
 * code with its `login.success` row, every batch with its `batch.generated` row.
 */
import { createStorage } from 'unstorage'
import memoryDriver from 'unstorage/drivers/memory'
import { describe, expect, it } from 'vitest'
import { memoryStore } from '../../../store-memory/src/index.ts'
import { randomPepperSecret } from '../../../testing/src/fixtures.ts'
import { expectStoreInvariants } from '../../../testing/src/invariants.ts'
import { createCaptureLogger } from '../../../testing/src/logger.ts'
import { isRecoveryCodesError } from '../errors.ts'
import type { Cache } from '../ports/cache.ts'
import type { RecoveryCodeStore } from '../ports/store.ts'
import { boundedCache, CACHE_SKIP_AFTER_TIMEOUT_MS } from './cache-layer.ts'
import { createRecoveryCodes } from './create.ts'

const DEADLINE_MS = 100
// The deadline plus the memory store's time and a scheduler's slack on a loaded CI machine.
const BUDGET_MS = DEADLINE_MS + 150

const hangingCache = (): Cache => ({
  getItem: () => new Promise(() => {}),
  setItem: () => new Promise(() => {}),
  removeItem: () => new Promise(() => {}),
})

const throwingCache = (): Cache => ({
  getItem: () => {
    throw new Error('cache down')
  },
  setItem: () => {
    throw new Error('cache down')
  },
  removeItem: () => {
    throw new Error('cache down')
  },
})

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now()
  const value = await run()
  return { value, ms: performance.now() - start }
}

const roundAll = (o: Record<string, number>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v)]))

describe('a cache that hangs or throws blocks nothing and decides nothing', () => {
  for (const [name, cache] of [
    ['never settles', hangingCache],
    ['throws', throwingCache],
  ] as const) {
    it(`every operation answers within the deadline with correct results: a cache that ${name}`, async () => {
      const pepper = randomPepperSecret()
      const logger = createCaptureLogger()
      const store = memoryStore()
      const rc = createRecoveryCodes({
        peppers: [{ id: 'k1', secret: pepper }],
        activation: 'immediate',
        store,
        cache: cache(),
        cacheTimeoutMs: DEADLINE_MS,
        logger,
      })
      const latencies: Record<string, number> = {}
      const generated = await timed(() => rc.generate({ userId: 'u1' }))
      latencies.generate = generated.ms
      if (!generated.value.ok) throw new Error('generate refused')
      const { codes, reveal } = generated.value
      expect(codes).toHaveLength(10)

      const status = await timed(() => rc.status({ userId: 'u1' }))
      latencies.status = status.ms
      expect(status.value.remaining).toBe(10)

      const history = await timed(() => rc.history({ userId: 'u1' }))
      latencies.history = history.ms
      expect(history.value.items.map((b) => b.unused)).toEqual([10])

      const redeemed = await timed(() => rc.redeem({ userId: 'u1', code: codes[0]! }))
      latencies.redeem = redeemed.ms
      expect(redeemed.value).toMatchObject({ ok: true, remaining: 9 })
      const again = await rc.redeem({ userId: 'u1', code: codes[0]! })
      expect(again.ok).toBe(false)

      // The plaintext only ever lived in the (dead) cache: the answer is "gone", fast.
      const view = await timed(() =>
        rc.viewCodes({ userId: 'u1', reveal }).then(
          () => 'shown',
          (e: unknown) => (isRecoveryCodesError(e, 'REVEAL_UNAVAILABLE') ? 'unavailable' : e),
        ),
      )
      latencies.view = view.ms
      expect(view.value).toBe('unavailable')

      // Not stale after the write: the failed bump sends reads to the store.
      expect((await rc.status({ userId: 'u1' })).remaining).toBe(9)
      expect((await rc.history({ userId: 'u1' })).items.map((b) => b.unused)).toEqual([9])

      for (const [op, ms] of Object.entries(latencies)) expect(ms, op).toBeLessThan(BUDGET_MS)
      const text = logger.text()
      for (const code of codes) expect(text).not.toContain(code)
      expect(text).not.toContain(pepper)
      expect(text).not.toContain(reveal)
      console.info(`cache that ${name}: latency ms`, JSON.stringify(roundAll(latencies)))
      await expectStoreInvariants(store, { userIds: ['u1'] }, `cache that ${name}`)
    })
  }

  it('a hanging cache, retried before every operation: each still answers within one deadline', async () => {
    const store = memoryStore()
    const rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: randomPepperSecret() }],
      activation: 'immediate',
      store,
      cache: hangingCache(),
      cacheTimeoutMs: DEADLINE_MS,
    })
    // Past the skip window before each call, so every operation meets the hang afresh.
    const fresh = <T>(run: () => Promise<T>) =>
      new Promise((ok) => setTimeout(ok, CACHE_SKIP_AFTER_TIMEOUT_MS + 20)).then(() => timed(run))
    const latencies: Record<string, number> = {}
    const g = await fresh(() => rc.generate({ userId: 'u1' }))
    latencies.generate = g.ms
    if (!g.value.ok) throw new Error('generate refused')
    const { codes, reveal } = g.value
    latencies.status = (await fresh(() => rc.status({ userId: 'u1' }))).ms
    latencies.history = (await fresh(() => rc.history({ userId: 'u1' }))).ms
    const r = await fresh(() => rc.redeem({ userId: 'u1', code: codes[0]! }))
    latencies.redeem = r.ms
    expect(r.value).toMatchObject({ ok: true, remaining: 9 })
    latencies.view = (await fresh(() => rc.viewCodes({ userId: 'u1', reveal }).catch(() => null))).ms
    for (const [op, ms] of Object.entries(latencies)) expect(ms, op).toBeLessThan(BUDGET_MS)
    console.info('hanging cache, fresh each time: latency ms', JSON.stringify(roundAll(latencies)))
    await expectStoreInvariants(store, { userIds: ['u1'] }, 'hanging cache, fresh each time')
  }, 20_000)

  it('six concurrent generates beside a hanging cache each answer in time, with codes and an active batch', async () => {
    const store = memoryStore()
    const rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: randomPepperSecret() }],
      activation: 'immediate',
      store,
      cache: hangingCache(),
      cacheTimeoutMs: DEADLINE_MS,
    })
    const started = performance.now()
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => rc.generate({ userId: `u${i}` })))
    expect(performance.now() - started).toBeLessThan(BUDGET_MS)
    for (const [i, g] of results.entries()) {
      if (!g.ok) throw new Error('generate refused')
      expect(g.codes).toHaveLength(10)
      expect((await store.getActiveBatch(`u${i}`))?.id).toBe(g.batchId)
    }
    const report = await expectStoreInvariants(
      store,
      { userIds: results.map((_, i) => `u${i}`) },
      'six generates, hanging cache',
    )
    expect(report.checked).toMatchObject({ users: 6, batches: 6, generatedAuditRows: 6 })
  })

  it('a hanging cache costs each concurrent operation at most one deadline, and is tried again later', async () => {
    let now = 0
    let calls = 0
    const cache = boundedCache(
      {
        getItem: () => {
          calls++
          return new Promise(() => {})
        },
        setItem: async () => {
          calls++
        },
        removeItem: async () => {},
      },
      DEADLINE_MS,
      () => now,
    )
    const started = performance.now()
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => cache.getItem('k')))
    expect(performance.now() - started).toBeLessThan(BUDGET_MS)
    expect(results.every((r) => r.status === 'rejected' && r.reason.name === 'TimeoutError')).toBe(true)
    // Skipped at once after the timeout…
    await expect(cache.setItem('k', 'v')).rejects.toMatchObject({ name: 'CacheSkippedError' })
    expect(calls).toBe(6)
    // …and tried again once the skip window has passed.
    now += 1001
    await cache.setItem('k', 'v')
    expect(calls).toBe(7)
  })

  it('a failed version bump never leaves a stale page, even when the cache comes back', async () => {
    const inner = createStorage({ driver: memoryDriver() })
    let down = false
    const cache: Cache = {
      getItem: <T>(k: string) => inner.getItem(k) as Promise<T | null>,
      setItem: (k, v, o) => (down ? Promise.reject(new Error('down')) : inner.setItem(k, v, o)),
      removeItem: (k) => inner.removeItem(k),
    }
    const store = memoryStore()
    const rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: randomPepperSecret() }],
      activation: 'immediate',
      store,
      cache,
    })
    const g = await rc.generate({ userId: 'u1' })
    if (!g.ok) throw new Error('generate refused')
    // Cached under the current version.
    expect((await rc.status({ userId: 'u1' })).remaining).toBe(10)
    expect((await rc.history({ userId: 'u1' })).items[0]!.unused).toBe(10)
    down = true
    expect(await rc.redeem({ userId: 'u1', code: g.codes[0]! })).toMatchObject({ ok: true, remaining: 9 })
    down = false
    // The cache is back with the old version and the old pages in it: neither is served.
    expect((await rc.status({ userId: 'u1' })).remaining).toBe(9)
    expect((await rc.history({ userId: 'u1' })).items[0]!.unused).toBe(9)
    // A later bump that lands makes the cache usable again, still never stale.
    expect(await rc.redeem({ userId: 'u1', code: g.codes[1]! })).toMatchObject({ ok: true, remaining: 8 })
    expect((await rc.status({ userId: 'u1' })).remaining).toBe(8)
    expect((await rc.status({ userId: 'u1' })).remaining).toBe(8)
    const report = await expectStoreInvariants(store, { userIds: ['u1'] }, 'failed version bump')
    expect(report.checked).toMatchObject({ usedCodes: 2, redeemAuditRows: 2 })
  })
})

/** `inner` with `fail(method, committed)` deciding which calls throw. */
function faultyStore(
  inner: RecoveryCodeStore,
  fail: (method: string, committed: boolean) => boolean,
): { store: RecoveryCodeStore; calls: string[] } {
  let committed = false
  const calls: string[] = []
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      return async (...args: unknown[]) => {
        const method = String(property)
        calls.push(method)
        if (fail(method, committed)) throw new Error(`${method} failed`)
        const out = await (value as (...a: unknown[]) => unknown).apply(target, args)
        if (method === 'createBatch') committed = true
        return out
      }
    },
  })
  return { store, calls }
}

describe('generate reports no failure after its commit', () => {
  const config = () => ({
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    activation: 'immediate' as const,
  })

  it('every store call after the commit fails: the caller still gets the codes, and they work', async () => {
    const logger = createCaptureLogger()
    const inner = memoryStore()
    const { store, calls } = faultyStore(
      inner,
      (method, committed) => committed && method !== 'getActiveBatch' && method !== 'consumeCode',
    )
    const rc = createRecoveryCodes({ ...config(), store, logger })
    const g = await rc.generate({ userId: 'u1' })
    if (!g.ok) throw new Error('generate refused')
    expect(g.codes).toHaveLength(10)
    const after = calls.slice(calls.indexOf('createBatch') + 1)
    // The batch.generated row commits with the batch, so no failure after the commit loses it.
    expect(after).toEqual(expect.arrayContaining(['settleAttempts']))
    const active = await store.getActiveBatch('u1')
    expect(active?.id).toBe(g.batchId)
    expect(active?.unused).toBe(10)
    const text = logger.text()
    for (const code of g.codes) expect(text).not.toContain(code)
    expect(logger.lines.some((l) => l.message.includes('cooldown not recorded'))).toBe(true)
    // Swept on the inner store: the faulty wrapper would fail the sweep's own reads.
    await expectStoreInvariants(inner, { userIds: ['u1'] }, 'every call after the commit fails')
  })

  it('createBatch fails: the caller gets STORE_UNAVAILABLE, no batch exists, and a retry works', async () => {
    let failing = true
    const inner = memoryStore()
    const { store } = faultyStore(inner, (method) => failing && method === 'createBatch')
    const rc = createRecoveryCodes({ ...config(), store })
    const error = await rc.generate({ userId: 'u1' }).catch((e: unknown) => e)
    expect(isRecoveryCodesError(error, 'STORE_UNAVAILABLE')).toBe(true)
    expect(await store.getActiveBatch('u1')).toBeNull()
    expect((await rc.status({ userId: 'u1' })).active).toBeNull()
    failing = false
    const retry = await rc.generate({ userId: 'u1' })
    expect(retry.ok).toBe(true)
    const report = await expectStoreInvariants(inner, { userIds: ['u1'] }, 'createBatch fails, then a retry')
    expect(report.checked).toMatchObject({ batches: 1, generatedAuditRows: 1 })
  })
})
