/**
 * The store contract's `redeemCode` part (see `contract.ts`): the one-call redeem against the
 * four calls it replaces, on what SQL can get wrong.
 */
import type {
  AttemptKey,
  AuditRecord,
  RecoveryCodeStore,
  RedeemCodeInput,
  RedeemCodeOutcome,
} from '@recovery-codes/core'
import { composeRedeemCode, isRecoveryCodesError } from '@recovery-codes/core'
import type { Kysely } from 'kysely'
import { expect, it } from 'vitest'
import { batch, codes, digest, rowCount, uid } from './contract.ts'

/** Registers the redeem tests inside the running `describe` block. */
export function redeemContract(setup: () => Promise<{ store: RecoveryCodeStore; db: Kysely<any> }>): void {
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
    const before = await rowCount(db, 'rc_audit_log')
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
    expect(await rowCount(db, 'rc_audit_log')).toBe(before)
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
        redeem: (i: RedeemCodeInput) => (name === 'own' ? store.redeemCode!(i) : composeRedeemCode(store, i)),
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
