import { randomBytes } from 'node:crypto'
import { createRecoveryCodes, isRecoveryCodesError, type RecoveryCodesError } from '@recovery-codes/core'
import {
  buildAudit,
  buildBatch,
  buildCodes,
  buildEmailLog,
  createSlowStore,
  randomDigest,
  runStoreConformance,
  seedBatch,
} from '@recovery-codes/testing'
import { describe, expect, it } from 'vitest'
import { inspectMemoryStore, memoryStore } from '../src/index.ts'

// The same contract behind a wrapper that yields to the event loop before every call: interleavings
// differ from the direct run, the atomicity must not.
runStoreConformance({ name: 'memory behind createSlowStore', setup: () => createSlowStore(memoryStore()) })

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
const rejectsWith = async (promise: Promise<unknown>, code: string) => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isRecoveryCodesError(error) && error.code).toBe(code)
}

describe('memoryStore', () => {
  it('keeps state per instance', async () => {
    const a = memoryStore()
    const b = memoryStore()
    const { codes } = await seedBatch(a, { userId: 'u1', createdAt: 0 })
    expect(await b.getActiveBatch('u1')).toBeNull()
    expect(await b.consumeCode({ userId: 'u1', digests: [codes[0]!.digest], now: 1 })).toBeNull()
    expect(await a.consumeCode({ userId: 'u1', digests: [codes[0]!.digest], now: 1 })).not.toBeNull()
  })

  it('does the check and the write in the same synchronous step (no await in between)', async () => {
    const store = memoryStore()
    const { codes } = await seedBatch(store, { userId: 'u1', createdAt: 0 })
    const input = { userId: 'u1', digests: [codes[0]!.digest], now: 1 }
    // Both calls start before either is awaited; the second must already see the first's write.
    const first = store.consumeCode(input)
    const second = store.consumeCode(input)
    expect(await first).not.toBeNull()
    expect(await second).toBeNull()
  })

  describe('digestLength', () => {
    it('rejects digests that are not 32-byte Uint8Arrays by default, with INVALID_INPUT', async () => {
      const store = memoryStore()
      await seedBatch(store, { userId: 'u1', createdAt: 0 })
      await rejectsWith(
        store.consumeCode({ userId: 'u1', digests: [new Uint8Array(16)], now: 1 }),
        'INVALID_INPUT',
      )
      await rejectsWith(
        store.findCode({ userId: 'u1', digests: ['00'.repeat(32) as unknown as Uint8Array], now: 1 }),
        'INVALID_INPUT',
      )
      await rejectsWith(
        store.createBatch(buildBatch({ userId: 'u2', createdAt: 0 }), [
          { id: 'c1', digest: new Uint8Array(31) },
        ]),
        'INVALID_INPUT',
      )
      expect(await store.getActiveBatch('u2')).toBeNull()
    })

    it('accepts any length with digestLength: 0', async () => {
      const store = memoryStore({ digestLength: 0 })
      const digest = crypto.getRandomValues(new Uint8Array(20))
      await store.createBatch(buildBatch({ userId: 'u1', createdAt: 0 }), [{ id: 'c1', digest }])
      expect(await store.consumeCode({ userId: 'u1', digests: [digest], now: 1 })).toMatchObject({
        codeId: 'c1',
      })
    })

    it('refuses an invalid option', () => {
      expect(() => memoryStore({ digestLength: -1 })).toThrow(/digestLength/)
    })
  })

  it('rejects malformed numbers with INVALID_INPUT instead of storing them', async () => {
    const store = memoryStore()
    await rejectsWith(store.listBatches({ userId: 'u1', offset: -1, limit: 10 }), 'INVALID_INPUT')
    await rejectsWith(
      store.reserveAttempts({ keys: [{ key: 'k', maxAttempts: 5 }], now: Number.NaN }),
      'INVALID_INPUT',
    )
    await rejectsWith(
      store.reserveAttempts({ keys: [{ key: 'k', maxAttempts: 1.5 }], now: 1 }),
      'INVALID_INPUT',
    )
    await rejectsWith(
      store.createBatch(buildBatch({ userId: 'u1', createdAt: 1.5 }), buildCodes(1)),
      'INVALID_INPUT',
    )
    expect(await store.getAttempts('k')).toEqual({ failures: 0, consecutive: 0, lockouts: 0, lockedUntil: 0 })
  })

  it('rejects duplicate batch, code, audit and email-log ids', async () => {
    const store = memoryStore()
    const { batch, codes } = await seedBatch(store, { userId: 'u1', createdAt: 0 })
    await expect(store.createBatch({ ...batch, userId: 'u2' }, buildCodes(1))).rejects.toThrow(/batch id/)
    await expect(
      store.createBatch(buildBatch({ userId: 'u2', createdAt: 0 }), [
        { id: codes[0]!.id, digest: randomDigest() },
      ]),
    ).rejects.toThrow(/code id/)
    expect(await store.getActiveBatch('u2')).toBeNull()
    const audit = buildAudit({ at: 1 })
    await store.appendAudit(audit)
    await expect(store.appendAudit({ ...audit, at: 2 })).rejects.toThrow(/audit id/)
    const mail = buildEmailLog({ at: 1, userId: 'u1', batchId: batch.id })
    await store.appendEmailLog(mail)
    await expect(store.appendEmailLog(mail)).rejects.toThrow(/email log id/)
  })

  it('lets a user reuse a digest once its row was purged', async () => {
    const store = memoryStore()
    const old = await seedBatch(store, { userId: 'u1', createdAt: 0, count: 1 })
    await seedBatch(store, { userId: 'u1', createdAt: 10, count: 1 })
    expect(await store.purgeCodes({ before: 100, limit: 10 })).toBe(1)
    const reused = buildBatch({ userId: 'u1', createdAt: 200 })
    await store.createBatch(reused, [{ id: 'again', digest: old.codes[0]!.digest }])
    expect(
      await store.consumeCode({ userId: 'u1', digests: [old.codes[0]!.digest], now: 201 }),
    ).toMatchObject({
      codeId: 'again',
      batchId: reused.id,
    })
  })

  describe('inspectMemoryStore', () => {
    it('dumps every row, index key, counter and log as plain data', async () => {
      const store = memoryStore()
      const { batch, codes } = await seedBatch(store, { userId: 'u1', createdAt: 0, count: 2 })
      const original = hex(codes[0]!.digest)
      codes[0]!.digest.fill(0) // the store copied it
      await store.consumeCode({ userId: 'u1', digests: [codes[1]!.digest], now: 5 })
      await store.reserveAttempts({ keys: [{ key: 'ip:1', maxAttempts: 3 }], now: 5 })
      await store.appendAudit(buildAudit({ at: 5, userId: 'u1', data: { n: 1 } }))
      await store.appendEmailLog(buildEmailLog({ at: 6, userId: 'u1', batchId: batch.id }))

      const dump = inspectMemoryStore(store)
      expect(JSON.parse(JSON.stringify(dump))).toEqual(dump)
      expect(dump.batches).toEqual([expect.objectContaining({ id: batch.id, used: 1, unused: 1 })])
      expect(dump.codes).toEqual([
        {
          id: codes[0]!.id,
          userId: 'u1',
          batchId: batch.id,
          digest: original,
          state: 'active',
          changedAt: null,
        },
        {
          id: codes[1]!.id,
          userId: 'u1',
          batchId: batch.id,
          digest: hex(codes[1]!.digest),
          state: 'used',
          changedAt: 5,
        },
      ])
      expect(dump.digestIndex).toEqual([`u1\0${original}`, `u1\0${hex(codes[1]!.digest)}`])
      expect(dump.attempts).toEqual([
        { key: 'ip:1', failures: 1, consecutive: 1, lockouts: 0, lockedUntil: 0 },
      ])
      expect(dump.audit).toHaveLength(1)
      expect(dump.emailLog).toEqual([
        expect.objectContaining({ userId: 'u1', batchId: batch.id, outcome: 'sent' }),
      ])
    })

    it('returns a snapshot that cannot change the store', async () => {
      const store = memoryStore()
      await store.appendAudit(buildAudit({ at: 1, userId: 'u1', data: { n: 1 } }))
      const dump = inspectMemoryStore(store)
      dump.audit[0]!.data!.n = 2
      dump.audit.length = 0
      expect(await store.listAudit({ limit: 5, userId: 'u1' })).toEqual([
        expect.objectContaining({ data: { n: 1 } }),
      ])
    })

    it('refuses anything that is not a memory store, wrappers included', () => {
      expect(() => inspectMemoryStore(createSlowStore(memoryStore()))).toThrow(TypeError)
      expect(() => inspectMemoryStore({} as never)).toThrow(TypeError)
    })
  })

  it('purges many rows in bounded runs without losing any', async () => {
    const store = memoryStore()
    const users = Array.from({ length: 50 }, (_, i) => `u${i}`)
    for (const userId of users) {
      await seedBatch(store, { userId, createdAt: 0, count: 10 })
      const current = await seedBatch(store, { userId, createdAt: 10, count: 10 })
      for (const code of current.codes.slice(0, 3))
        await store.consumeCode({ userId, digests: [code.digest], now: 20 })
    }
    let total = 0
    for (let n = -1; n !== 0; ) {
      n = await store.purgeCodes({ before: 100, limit: 37 })
      expect(n).toBeLessThanOrEqual(37)
      total += n
    }
    // The superseded batches' codes; the used rows of the active batches stay while those are active.
    expect(total).toBe(50 * 10)
    expect(inspectMemoryStore(store).codes.filter((c) => c.state === 'active')).toHaveLength(50 * 7)
    expect(inspectMemoryStore(store).codes.filter((c) => c.state === 'used')).toHaveLength(50 * 3)
    expect(await store.purgeEmptyBatches({ before: 100, limit: 1_000 })).toBe(50)
    expect(inspectMemoryStore(store).batches).toHaveLength(50)
  })
})

describe('memoryStore in a several-process deployment', () => {
  it("is refused with deployment: 'multi', naming the store, and accepted with 'single'", () => {
    const peppers = [{ id: 'k1', secret: randomBytes(32).toString('base64') }]
    const cache = { getItem: async () => null, setItem: async () => {}, removeItem: async () => {} }
    let error: unknown
    try {
      createRecoveryCodes({ peppers, store: memoryStore(), deployment: 'multi', cache: cache as never })
    } catch (e) {
      error = e
    }
    expect(isRecoveryCodesError(error, 'CONFIG_INVALID')).toBe(true)
    expect((error as RecoveryCodesError).issues?.map((i) => i.path)).toEqual(['store'])
    expect(() => createRecoveryCodes({ peppers, store: memoryStore(), deployment: 'single' })).not.toThrow()
  })
})
