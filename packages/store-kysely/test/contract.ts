import type {
  AttemptKey,
  AuditRecord,
  NewBatch,
  NewCode,
  RecoveryCodeStore,
  RedeemCodeInput,
  RedeemCodeOutcome,
} from '@recovery-codes/core'
import { composeRedeemCode, isRecoveryCodesError } from '@recovery-codes/core'
import type { Kysely } from 'kysely'
import { describe, expect, it } from 'vitest'

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
      await store.consumeCode({ userId: u, digests: [c2[0]!.digest], now: 2500 }) // dead at 2500
      const u2 = uid('u')
      const b3 = batch(u2, 1000, { expiresAt: 1800 })
      await store.createBatch(b3, codes(2)) // expired at 1800, batch still "active"
      expect(await rowCount(db, 'rc_codes')).toBe(9)
      // before = 2000: used@1100, invalidated@1200 and the two expired codes; not the superseded ones (2000 is not < 2000)
      expect(await store.purgeCodes({ before: 2000, limit: 3 })).toBe(3)
      expect(await store.purgeCodes({ before: 2000, limit: 3 })).toBe(1)
      expect(await store.purgeCodes({ before: 2000, limit: 3 })).toBe(0)
      expect(await store.purgeCodes({ before: 2001, limit: 100 })).toBe(2)
      expect(await store.purgeCodes({ before: 10_000, limit: 100 })).toBe(1)
      // the live codes of the active batch remain and still verify
      expect(await rowCount(db, 'rc_codes')).toBe(2)
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

    it('redeemCode: first matching digest of several; audit data merged; settle; no keys', async () => {
      const { store } = await setup()
      const cs = codes(3)
      const b = batch(uid('u'), 1000)
      await store.createBatch(b, cs)
      const [id, ip, other] = [uid('id'), uid('ip'), uid('other')]
      const keys = [
        { key: ip, maxAttempts: 9 },
        { key: id, maxAttempts: 3 },
      ]
      await store.reserveAttempts({ keys, now: 1 })
      const out = await store.redeemCode!(
        redeemInput(b.userId, [digest(), cs[2]!.digest, cs[0]!.digest], 2000, {
          keys,
          // A reset key that is not one of `keys` is ignored, like in the composition.
          reset: [id, other],
          audit: audit({ at: 2000, userId: b.userId, data: { mode: 'x', remaining: 'overwritten' } }),
        }),
      )
      expect(out).toEqual({
        outcome: 'consumed',
        code: { codeId: cs[2]!.id, batchId: b.id, keyId: 'k1', remaining: 2 },
      })
      expect(await store.getAttempts(id)).toEqual(ZERO)
      expect(await store.getAttempts(ip)).toEqual({ ...ZERO, failures: 1, consecutive: 1 })
      expect(await store.getAttempts(other)).toEqual(ZERO)
      const [row] = await store.listAudit({ limit: 5, userId: b.userId })
      expect(row).toMatchObject({ batchId: b.id, data: { mode: 'x', remaining: 2 } })
      // No keys, audit data null.
      const none = await store.redeemCode!(
        redeemInput(b.userId, [cs[0]!.digest], 2001, {
          keys: [],
          reset: [],
          audit: audit({ at: 2001, data: null }),
        }),
      )
      expect(none).toMatchObject({ outcome: 'consumed', code: { codeId: cs[0]!.id, remaining: 1 } })
      expect((await store.listAudit({ limit: 1 }))[0]!.data).toEqual({ remaining: 1 })
      expect(
        await store.redeemCode!(redeemInput(b.userId, [cs[0]!.digest], 2002, { keys: [], reset: [] })),
      ).toEqual({ outcome: 'missed', states: [] })
      expect(await store.getActiveBatch(b.userId)).toMatchObject({ used: 2, unused: 1, lastUsedAt: 2001 })
    })

    it('redeemCode: nothing to look up is a counted miss; maxAttempts 0 denies without reserving', async () => {
      const { store } = await setup()
      const cs = codes(1)
      const b = batch(uid('u'), 1000)
      await store.createBatch(b, cs)
      const id = uid('id')
      const one = { ...ZERO, failures: 1, consecutive: 1 }
      const keys = [{ key: id, maxAttempts: 5 }]
      expect(await store.redeemCode!(redeemInput(b.userId, [], 2000, { keys, reset: [id] }))).toEqual({
        outcome: 'missed',
        states: [one],
      })
      const nul = await store.redeemCode!(redeemInput(`${b.userId}\u0000`, [cs[0]!.digest], 2000, { keys }))
      expect(nul).toEqual({ outcome: 'missed', states: [{ ...one, failures: 2, consecutive: 2 }] })
      const fresh = uid('fresh')
      const zero = [
        { key: fresh, maxAttempts: 5 },
        { key: id, maxAttempts: 0 },
      ]
      expect(await store.redeemCode!(redeemInput(b.userId, [cs[0]!.digest], 2000, { keys: zero }))).toEqual({
        outcome: 'denied',
        states: [ZERO, { ...one, failures: 2, consecutive: 2 }],
      })
      expect(await store.getAttempts(fresh)).toEqual(ZERO)
      expect(await store.getActiveBatch(b.userId)).toMatchObject({ used: 0, unused: 1 })
    })

    it('redeemCode: a denied call keeps no reservation; malformed audit is refused before any SQL', async () => {
      const { store, db } = await setup()
      const cs = codes(1)
      const b = batch(uid('u'), 1000)
      await store.createBatch(b, cs)
      const [a, z] = [`a-${uid('k')}`, `z-${uid('k')}`]
      await store.lockAttempts({ key: z, until: 5000 })
      const keys = [
        { key: z, maxAttempts: 5 },
        { key: a, maxAttempts: 5 },
      ]
      // `a` sorts first: it is reserved, then given back in the same transaction.
      const out = await store.redeemCode!(redeemInput(b.userId, [cs[0]!.digest], 2000, { keys }))
      expect(out).toEqual({
        outcome: 'denied',
        states: [{ ...ZERO, lockouts: 1, lockedUntil: 5000 }, ZERO],
      })
      expect(await store.getAttempts(a)).toEqual(ZERO)
      const before = await rowCount(db, 'rc_audit')
      for (const bad of [
        { id: '' },
        { at: Number.NaN },
        { outcome: 'nope' },
        { data: { s: 'a\u0000' } },
        { identifierHash: 'x'.repeat(2000) },
      ] as Partial<AuditRecord>[]) {
        await expect(
          store.redeemCode!(
            redeemInput(b.userId, [cs[0]!.digest], 6000, { keys, audit: { ...audit({ at: 6000 }), ...bad } }),
          ),
        ).rejects.toSatisfy((e) => isRecoveryCodesError(e, 'INVALID_INPUT'))
      }
      for (const bad of [{ reset: 'x' }, { digests: ['x'] }, { keys: [{ key: a, maxAttempts: 1.5 }] }]) {
        await expect(
          store.redeemCode!({
            ...redeemInput(b.userId, [cs[0]!.digest], 6000, { keys }),
            ...(bad as object),
          }),
        ).rejects.toSatisfy((e) => isRecoveryCodesError(e, 'INVALID_INPUT'))
      }
      expect(await store.getAttempts(a)).toEqual(ZERO)
      expect(await rowCount(db, 'rc_audit')).toBe(before)
      expect(await store.getActiveBatch(b.userId)).toMatchObject({ used: 0, unused: 1 })
    })

    it('redeemCode is all or nothing: a failing audit insert undoes the consume and the reservations', async () => {
      const { store } = await setup()
      const cs = codes(2)
      const b = batch(uid('u'), 1000)
      await store.createBatch(b, cs)
      const taken = audit({ at: 1500 })
      await store.appendAudit(taken)
      const id = uid('id')
      const keys = [{ key: id, maxAttempts: 5 }]
      await store.reserveAttempts({ keys, now: 1 })
      const input = redeemInput(b.userId, [cs[0]!.digest], 2000, { keys, reset: [], audit: taken })
      await expect(store.redeemCode!(input)).rejects.toSatisfy((e) =>
        isRecoveryCodesError(e, 'STORE_UNAVAILABLE'),
      )
      expect(await store.getAttempts(id)).toEqual({ ...ZERO, failures: 1, consecutive: 1 })
      expect(await store.getActiveBatch(b.userId)).toMatchObject({ used: 0, unused: 2, lastUsedAt: null })
      expect(await store.redeemCode!({ ...input, audit: audit({ at: 2000 }) })).toMatchObject({
        outcome: 'consumed',
        code: { codeId: cs[0]!.id, remaining: 1 },
      })
    })

    it('redeemCode gives what composeRedeemCode gives, over a random sequence', async () => {
      const { store } = await setup()
      const rnd = mulberry32(0x5eed)
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!
      /** Every digest issued (the same in both worlds), old batches' included. */
      const shared: Uint8Array[] = []
      const wrong = Array.from({ length: 3 }, digest)
      /** Two mirrored worlds: the store's own redeemCode, and the four-call composition. */
      const worlds = ['own', 'composed'].map((name) => {
        const ns = uid(name)
        return {
          ns,
          userId: `${ns}-user`,
          key: (k: string) => `${ns}-${k}`,
          batches: [] as string[],
          codeIds: [] as string[],
          redeem: (i: RedeemCodeInput) =>
            name === 'own' ? store.redeemCode!(i) : composeRedeemCode(store, i),
        }
      })
      const newBatch = async (now: number, expiresAt: number | null) => {
        const fresh = codes(6).map((c) => c.digest)
        shared.push(...fresh)
        for (const w of worlds) {
          const b = batch(w.userId, now, { expiresAt })
          const cs = fresh.map((d) => ({ id: uid('code'), digest: d }))
          await store.createBatch(b, cs)
          w.batches.push(b.id)
          w.codeIds.push(...cs.map((c) => c.id))
        }
      }
      /** An outcome with the world's ids replaced by indexes, so both worlds compare equal. */
      const norm = (w: (typeof worlds)[number], o: RedeemCodeOutcome) =>
        o.outcome === 'consumed'
          ? {
              ...o,
              code: {
                ...o.code,
                codeId: w.codeIds.indexOf(o.code.codeId),
                batchId: w.batches.indexOf(o.code.batchId),
              },
            }
          : o
      let now = 10_000
      const seen = new Set<string>()
      await newBatch(now, null)
      for (let step = 0; step < 80; step++) {
        now += Math.floor(rnd() * 400)
        const r = rnd()
        if (r < 0.06) {
          await newBatch(now, rnd() < 0.5 ? null : now + 2000)
          continue
        }
        if (r < 0.12) {
          const k = pick(['id', 'ip'])
          const until = now + Math.floor(rnd() * 1500)
          for (const w of worlds) await store.lockAttempts({ key: w.key(k), until })
          continue
        }
        const digests = pick([
          [pick(shared.slice(-6))],
          [pick(shared)],
          [pick(wrong)],
          [pick(wrong), pick(shared), pick(shared.slice(-6))],
          [],
        ])
        const keySet = pick([['id', 'ip'], ['id'], ['ip', 'id'], []])
        const max = { id: pick([0, 2, 3, 4, 4]), ip: pick([3, 6, 8]) } as Record<string, number>
        const reset = pick([['id'], [], ['id', 'ip'], ['other']])
        const data = pick([null, { mode: 'x', n: step }])
        const outs = []
        for (const w of worlds) {
          const keys: AttemptKey[] = keySet.map((k) => ({ key: w.key(k), maxAttempts: max[k]! }))
          const input = redeemInput(w.userId, digests, now, {
            keys,
            reset: reset.map(w.key),
            audit: audit({ at: now, id: `${w.ns}-a${step}`, userId: w.userId, data }),
          })
          outs.push(norm(w, await w.redeem(input)))
        }
        expect(outs[0], `step ${step}`).toEqual(outs[1])
        seen.add(outs[0]!.outcome)
        const view = async (w: (typeof worlds)[number]) => ({
          attempts: await Promise.all(['id', 'ip'].map((k) => store.getAttempts(w.key(k)))),
          active: await store.getActiveBatch(w.userId).then((s) => s && { ...s, id: 0, userId: 0 }),
          audit: (await store.listAudit({ limit: 100, userId: w.userId })).map((a) => ({
            ...a,
            id: a.id.slice(w.ns.length),
            userId: 0,
            batchId: w.batches.indexOf(a.batchId!),
          })),
        })
        expect(await view(worlds[0]!), `step ${step}`).toEqual(await view(worlds[1]!))
      }
      // The sequence went through every outcome.
      expect([...seen].sort()).toEqual(['consumed', 'denied', 'missed'])
      expect((await store.listAudit({ limit: 1000, userId: worlds[0]!.userId })).length).toBeGreaterThan(3)
    })

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
      expect(await rowCount(db, 'rc_audit')).toBe(2)
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

const ZERO = { failures: 0, consecutive: 0, lockouts: 0, lockedUntil: 0 }

function audit(over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    id: uid('audit'),
    at: 1,
    event: 'login.success',
    userId: null,
    batchId: null,
    identifierHash: 'ih',
    clientHash: 'ch',
    outcome: 'success',
    reason: null,
    data: { mode: 'code' },
    ...over,
  }
}

function redeemInput(
  userId: string,
  digests: Uint8Array[],
  now: number,
  over: Partial<RedeemCodeInput> = {},
): RedeemCodeInput {
  return { userId, digests, now, keys: [], reset: [], audit: audit({ at: now, userId }), ...over }
}

/** A small seeded PRNG, so a failing random sequence replays. */
function mulberry32(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
