import type { AuditRecord, NewBatch, NewCode, RecoveryCodeStore } from '@recovery-codes/core'
import { isRecoveryCodesError } from '@recovery-codes/core'
import type { Kysely } from 'kysely'
import { describe, expect, it } from 'vitest'
import { redeemContract } from './contract-redeem.ts'

let n = 0
export const uid = (p: string) => `${p}-${++n}-${crypto.randomUUID()}`
export const digest = () => crypto.getRandomValues(new Uint8Array(32))
export const codes = (count: number): NewCode[] =>
  Array.from({ length: count }, () => ({ id: uid('code'), digest: digest() }))
export const batch = (userId: string, createdAt: number, more: Partial<NewBatch> = {}): NewBatch => ({
  id: uid('batch'),
  userId,
  keyId: 'k1',
  createdAt,
  expiresAt: null,
  ...more,
})

/** An audit record with nothing set but what the test gives (`id`, `at`, `event` at least). */
export const auditRow = (
  r: Partial<AuditRecord> & Pick<AuditRecord, 'id' | 'at' | 'event'>,
): AuditRecord => ({
  userId: null,
  batchId: null,
  identifierHash: null,
  clientHash: null,
  outcome: 'success',
  reason: null,
  data: null,
  ...r,
})

export async function rowCount(db: Kysely<any>, table: string): Promise<number> {
  const r = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow()
  return Number(r.n)
}

/**
 * The store contract, focused on what SQL can get wrong. Runs beside the shared conformance suite
 * from `@recovery-codes/testing`; `setup` returns a store over an emptied database.
 */
export function storeContract(
  name: string,
  setup: () => Promise<{ store: RecoveryCodeStore; db: Kysely<any> }>,
) {
  describe(`store contract: ${name}`, () => {
    it('consumes a code once, returns remaining, stamps used_at/last_used_at', async () => {
      const { store } = await setup()
      const cs = codes(3)
      const b = batch(uid('u'), 1000)
      await store.createBatch(b, cs)
      const r = await store.consumeCode({ userId: b.userId, digests: [cs[1]!.digest], now: 2000 })
      expect(r).toEqual({ codeId: cs[1]!.id, batchId: b.id, keyId: 'k1', remaining: 2 })
      expect(await store.consumeCode({ userId: b.userId, digests: [cs[1]!.digest], now: 2001 })).toBeNull()
      const s = await store.getActiveBatch(b.userId)
      expect(s).toMatchObject({
        issued: 3,
        unused: 2,
        used: 1,
        lastUsedAt: 2000,
        status: 'active',
        createdAt: 1000,
      })
      // the wrong user never matches
      expect(await store.consumeCode({ userId: uid('u'), digests: [cs[0]!.digest], now: 2000 })).toBeNull()
    })

    it('takes the first matching digest and consumes only one row', async () => {
      const { store } = await setup()
      const cs = codes(3)
      const b = batch(uid('u'), 1000)
      await store.createBatch(b, cs)
      const r = await store.consumeCode({
        userId: b.userId,
        digests: [digest(), cs[2]!.digest, cs[0]!.digest],
        now: 2000,
      })
      expect(r?.codeId).toBe(cs[2]!.id)
      expect(r?.remaining).toBe(2)
      expect(await store.findCode({ userId: b.userId, digests: [cs[0]!.digest], now: 2000 })).toEqual({
        codeId: cs[0]!.id,
        batchId: b.id,
        keyId: 'k1',
      })
    })

    it('expiry: valid iff now < expiresAt, for find and consume', async () => {
      const { store } = await setup()
      const cs = codes(2)
      const b = batch(uid('u'), 1000, { expiresAt: 5000 })
      await store.createBatch(b, cs)
      expect(await store.findCode({ userId: b.userId, digests: [cs[0]!.digest], now: 5000 })).toBeNull()
      expect(await store.consumeCode({ userId: b.userId, digests: [cs[0]!.digest], now: 5000 })).toBeNull()
      expect(
        await store.consumeCode({ userId: b.userId, digests: [cs[0]!.digest], now: 4999 }),
      ).not.toBeNull()
    })

    it('a new batch supersedes the old one atomically; old codes stop verifying', async () => {
      const { store } = await setup()
      const u = uid('u')
      const old = codes(2)
      const b1 = batch(u, 1000)
      await store.createBatch(b1, old)
      const b2 = batch(u, 2000)
      await store.createBatch(b2, codes(2))
      expect(await store.consumeCode({ userId: u, digests: [old[0]!.digest], now: 3000 })).toBeNull()
      expect((await store.getActiveBatch(u))?.id).toBe(b2.id)
      const { items, total } = await store.listBatches({ userId: u, offset: 0, limit: 10 })
      expect(total).toBe(2)
      expect(items.map((i) => [i.id, i.status, i.endedAt])).toEqual([
        [b2.id, 'active', null],
        [b1.id, 'superseded', 2000],
      ])
    })

    it('a failing createBatch leaves no trace (duplicate digest) and keeps the old batch active', async () => {
      const { store, db } = await setup()
      const u = uid('u')
      const first = codes(2)
      const b1 = batch(u, 1000)
      await store.createBatch(b1, first)
      const dup = codes(2)
      dup[1] = { id: uid('code'), digest: dup[0]!.digest }
      await expect(store.createBatch(batch(u, 2000), dup)).rejects.toThrow()
      expect((await store.getActiveBatch(u))?.id).toBe(b1.id)
      expect(await rowCount(db, 'rc_batches')).toBe(1)
      expect(await rowCount(db, 'rc_codes')).toBe(2)
      expect(await store.consumeCode({ userId: u, digests: [first[0]!.digest], now: 3000 })).not.toBeNull()
    })

    it('N concurrent consumes of one code: exactly one caller gets it', async () => {
      const { store } = await setup()
      const cs = codes(1)
      const b = batch(uid('u'), 1000)
      await store.createBatch(b, cs)
      const results = await Promise.all(
        Array.from({ length: 25 }, () =>
          store.consumeCode({ userId: b.userId, digests: [cs[0]!.digest], now: 2000 }),
        ),
      )
      expect(results.filter((r) => r !== null)).toHaveLength(1)
      expect((await store.getActiveBatch(b.userId))?.used).toBe(1)
    })

    it('concurrent createBatch for one user leaves exactly one active batch', async () => {
      const { store, db } = await setup()
      const u = uid('u')
      await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => store.createBatch(batch(u, 1000 + i), codes(3))),
      )
      const active = await db
        .selectFrom('rc_batches')
        .select('id')
        .where('user_id', '=', u)
        .where('status', '=', 'active')
        .execute()
      expect(active).toHaveLength(1)
      const live = await db
        .selectFrom('rc_codes')
        .select('batch_id')
        .where('user_id', '=', u)
        .where('changed_at', 'is', null)
        .execute()
      expect(new Set(live.map((r) => r.batch_id))).toEqual(new Set([active[0]!.id]))
    })

    it('setCodeState is compare-and-set, updates counts, and the code stops verifying', async () => {
      const { store } = await setup()
      const cs = codes(3)
      const b = batch(uid('u'), 1000)
      await store.createBatch(b, cs)
      const u = b.userId
      expect(
        await store.setCodeState({ userId: uid('other'), codeId: cs[0]!.id, to: 'invalidated', now: 1500 }),
      ).toBe(false)
      const settled = await Promise.all(
        Array.from({ length: 8 }, () =>
          store.setCodeState({ userId: u, codeId: cs[0]!.id, to: 'invalidated', now: 1500 }),
        ),
      )
      expect(settled.filter(Boolean)).toHaveLength(1)
      expect(await store.setCodeState({ userId: u, codeId: cs[1]!.id, to: 'deleted', now: 1500 })).toBe(true)
      expect(await store.consumeCode({ userId: u, digests: [cs[0]!.digest], now: 2000 })).toBeNull()
      expect(await store.consumeCode({ userId: u, digests: [cs[1]!.digest], now: 2000 })).toBeNull()
      expect(await store.getActiveBatch(u)).toMatchObject({ unused: 1, invalidated: 1, deleted: 1, used: 0 })
    })

    it('endBatch is compare-and-set and disables verification at once', async () => {
      const { store } = await setup()
      const cs = codes(2)
      const b = batch(uid('u'), 1000)
      await store.createBatch(b, cs)
      expect(await store.endBatch({ userId: uid('other'), batchId: b.id, to: 'disabled', now: 1500 })).toBe(
        false,
      )
      const r = await Promise.all(
        Array.from({ length: 6 }, () =>
          store.endBatch({ userId: b.userId, batchId: b.id, to: 'disabled', now: 1500 }),
        ),
      )
      expect(r.filter(Boolean)).toHaveLength(1)
      expect(await store.endBatch({ userId: b.userId, batchId: b.id, to: 'deleted', now: 1600 })).toBe(false)
      expect(await store.consumeCode({ userId: b.userId, digests: [cs[0]!.digest], now: 2000 })).toBeNull()
      expect(await store.getActiveBatch(b.userId)).toBeNull()
      const { items } = await store.listBatches({ userId: b.userId, offset: 0, limit: 5 })
      expect(items[0]).toMatchObject({ status: 'disabled', endedAt: 1500, unused: 2 })
    })

    it('setBatchFlag: exactly one caller sets each flag, on any status', async () => {
      const { store } = await setup()
      const b = batch(uid('u'), 1000)
      await store.createBatch(b, codes(1))
      const r = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          store.setBatchFlag({ userId: b.userId, batchId: b.id, flag: 'downloaded', now: 2000 + i }),
        ),
      )
      expect(r.filter(Boolean)).toHaveLength(1)
      expect(await store.setBatchFlag({ userId: uid('x'), batchId: b.id, flag: 'viewed', now: 1 })).toBe(
        false,
      )
      await store.endBatch({ userId: b.userId, batchId: b.id, to: 'deleted', now: 2500 })
      expect(await store.setBatchFlag({ userId: b.userId, batchId: b.id, flag: 'emailed', now: 3000 })).toBe(
        true,
      )
      const { items } = await store.listBatches({ userId: b.userId, offset: 0, limit: 1 })
      expect(items[0]).toMatchObject({ emailedAt: 3000, viewedAt: null, verifiedAt: null })
      expect(items[0]!.downloadedAt).toBeGreaterThanOrEqual(2000)
    })

    it('listBatches: newest first, id desc on ties, offset/limit in the store, total', async () => {
      const { store } = await setup()
      const u = uid('u')
      const ids: string[] = []
      for (let i = 0; i < 5; i++) {
        const b = batch(u, i < 2 ? 1000 : 1000 + i, { id: `b-${i}` })
        ids.push(b.id)
        await store.createBatch(b, codes(1))
      }
      const page = await store.listBatches({ userId: u, offset: 1, limit: 2 })
      expect(page.total).toBe(5)
      expect(page.items.map((i) => i.id)).toEqual(['b-3', 'b-2'])
      const last = await store.listBatches({ userId: u, offset: 3, limit: 10 })
      expect(last.items.map((i) => i.id)).toEqual(['b-1', 'b-0'])
      await expect(store.listBatches({ userId: u, offset: -1, limit: 2 })).rejects.toSatisfy((e) =>
        isRecoveryCodesError(e, 'INVALID_INPUT'),
      )
    })

    it('reserveAttempts: atomic budget under concurrency, lock, unlock, reset', async () => {
      const { store } = await setup()
      const key = uid('id')
      const reserve = (key: string, now: number, maxAttempts: number) =>
        store.reserveAttempts({ keys: [{ key, maxAttempts }], now })
      const r = await Promise.all(Array.from({ length: 20 }, () => reserve(key, 100, 5)))
      expect(r.filter((x) => x.allowed)).toHaveLength(5)
      expect(await store.getAttempts(key)).toEqual({
        failures: 5,
        consecutive: 5,
        lockouts: 0,
        lockedUntil: 0,
      })
      expect(await store.lockAttempts({ key, until: 10_000 })).toEqual({
        failures: 0,
        consecutive: 5,
        lockouts: 1,
        lockedUntil: 10_000,
      })
      const denied = await reserve(key, 9_999, 5)
      expect(denied).toEqual({
        allowed: false,
        states: [{ failures: 0, consecutive: 5, lockouts: 1, lockedUntil: 10_000 }],
      })
      const ok = await reserve(key, 10_000, 5)
      expect(ok).toEqual({
        allowed: true,
        states: [{ failures: 1, consecutive: 6, lockouts: 1, lockedUntil: 10_000 }],
      })
      await store.settleAttempts({ reset: [key], release: [] })
      expect(await store.getAttempts(key)).toEqual({
        failures: 0,
        consecutive: 0,
        lockouts: 0,
        lockedUntil: 0,
      })
      expect((await reserve(uid('k'), 1, 0)).allowed).toBe(false)
    })

    it('reserveAttempts and settleAttempts with many keys (statements too large to cache)', async () => {
      const { store } = await setup()
      const keys = Array.from({ length: 20 }, (_, i) => ({ key: uid(`many${i}`), maxAttempts: 2 }))
      for (let round = 1; round <= 2; round++) {
        const r = await store.reserveAttempts({ keys, now: 1 })
        expect(r.allowed).toBe(true)
        expect(r.states.map((s) => s.failures)).toEqual(keys.map(() => round))
      }
      expect((await store.reserveAttempts({ keys, now: 1 })).allowed).toBe(false)
      await store.settleAttempts({
        reset: keys.slice(0, 10).map((k) => k.key),
        release: keys.slice(10).map((k) => k.key),
      })
      const after = await Promise.all(keys.map((k) => store.getAttempts(k.key)))
      expect(after.map((s) => s.failures)).toEqual(keys.map((_, i) => (i < 10 ? 0 : 1)))
    })

    it('purgeCodes deletes only dead rows, in bounded chunks, idempotently; batch counts survive', async () => {
      const { store, db } = await setup()
      const u = uid('u')
      const b1 = batch(u, 1000)
      const c1 = codes(4)
      await store.createBatch(b1, c1)
      await store.consumeCode({ userId: u, digests: [c1[0]!.digest], now: 1100 })
      await store.setCodeState({ userId: u, codeId: c1[1]!.id, to: 'invalidated', now: 1200 })
      const b2 = batch(u, 2000) // supersedes b1 at 2000: c1[2], c1[3] become dead at 2000
      const c2 = codes(3)
      await store.createBatch(b2, c2)
      await store.consumeCode({ userId: u, digests: [c2[0]!.digest], now: 2500 }) // kept while b2 is active
      const u2 = uid('u')
      const b3 = batch(u2, 1000, { expiresAt: 1800 })
      await store.createBatch(b3, codes(2)) // expired at 1800, batch still "active"
      expect(await rowCount(db, 'rc_codes')).toBe(9)
      // before = 2000: invalidated@1200 and the two expired codes; not b1's used code nor its
      // superseded ones (b1 ended at 2000, and 2000 is not < 2000)
      expect(await store.purgeCodes({ before: 2000, limit: 2 })).toBe(2)
      expect(await store.purgeCodes({ before: 2000, limit: 2 })).toBe(1)
      expect(await store.purgeCodes({ before: 2000, limit: 2 })).toBe(0)
      expect(await store.purgeCodes({ before: 2001, limit: 100 })).toBe(3)
      // a used code's row stays while its batch is active
      expect(await store.purgeCodes({ before: 10_000, limit: 100 })).toBe(0)
      expect(await rowCount(db, 'rc_codes')).toBe(3)
      expect(await store.consumeCode({ userId: u, digests: [c2[1]!.digest], now: 20_000 })).not.toBeNull()
      const { items } = await store.listBatches({ userId: u, offset: 0, limit: 5 })
      expect(items.find((i) => i.id === b1.id)).toMatchObject({
        issued: 4,
        used: 1,
        invalidated: 1,
        unused: 2,
      })
      // empty, ended batches go; the active ones and b3 (still active) stay
      expect(await store.purgeEmptyBatches({ before: 1999, limit: 10 })).toBe(0)
      expect(await store.purgeEmptyBatches({ before: 2001, limit: 10 })).toBe(1)
      expect(await rowCount(db, 'rc_batches')).toBe(2)
    })

    redeemContract(setup)

    it('audit append, filtered newest-first listing, retention purge; email log', async () => {
      const { store, db } = await setup()
      const u = uid('u')
      for (let i = 0; i < 5; i++) {
        await store.appendAudit({
          id: `a-${i}`,
          at: 1000 + i,
          event: i % 2 ? 'login.failure' : 'batch.generated',
          userId: i < 3 ? u : null,
          batchId: null,
          identifierHash: null,
          clientHash: 'c',
          outcome: 'info',
          reason: null,
          data: i === 0 ? { count: 10, fmt: 'crockford', ok: true, none: null } : null,
        })
      }
      const all = await store.listAudit({ limit: 10 })
      expect(all.map((a) => a.id)).toEqual(['a-4', 'a-3', 'a-2', 'a-1', 'a-0'])
      expect(all[4]).toMatchObject({ at: 1000, data: { count: 10, fmt: 'crockford', ok: true, none: null } })
      expect(
        (await store.listAudit({ limit: 10, userId: u, event: 'batch.generated' })).map((a) => a.id),
      ).toEqual(['a-2', 'a-0'])
      expect(await store.purgeAudit({ before: 1003, limit: 2 })).toBe(2)
      expect(await store.purgeAudit({ before: 1003, limit: 2 })).toBe(1)
      expect(await rowCount(db, 'rc_audit_log')).toBe(2)
      await store.appendEmailLog({
        id: uid('m'),
        at: 5,
        userId: u,
        batchId: 'b',
        kind: 'codes',
        recipient: 'a@b.c',
        outcome: 'sent',
      })
      expect(await rowCount(db, 'rc_email_log')).toBe(1)
    })
  })
}
