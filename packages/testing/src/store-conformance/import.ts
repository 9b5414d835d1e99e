/**
 * The import aggregate's contract (`ImportStore`, optional: every test skips on a store without
 * `importBatch`): a batch written as the source had it reads back with its status and its counts
 * by state, then behaves like any batch (consume, redeem, expiry, supersede, purge); `exists` and
 * `conflict` write nothing; collisions and malformed input leave no trace. The races are in
 * `import-races.ts`.
 */
import {
  composeRedeemCode,
  type ImportedBatch,
  isRecoveryCodesError,
  type NewCode,
  type RedeemCodeInput,
} from '@recovery-codes/core'
import { describe, expect } from 'vitest'
import { buildAudit, randomDigest, uniqueId } from '../fixtures.ts'
import type { AggregateSuite, StoreConformanceContext } from './context.ts'
import { batchCallsOf, timeOf, user } from './helpers.ts'
import {
  buildImported,
  type ImportSuiteStore,
  importAudit,
  importCallsOf,
  importIt,
  STATES,
  summaryOf,
} from './import-helpers.ts'
import { importRaces } from './import-races.ts'

/** `ImportStore` (reading back through the batch, audit, retention and redeem methods), then its races. */
export const importSuite: AggregateSuite<ImportSuiteStore> = { tests: importTests, races: importRaces }

function importTests(ctx: StoreConformanceContext<ImportSuiteStore>): void {
  const T = timeOf(ctx)
  const test = importIt(ctx)
  const { consume, find, seed } = batchCallsOf(ctx)
  const { importBatch, imported, importAudits } = importCallsOf(ctx)
  const history = (userId: string) => ctx.store.listBatches({ userId, offset: 0, limit: 100 })
  const nothingFor = async (userId: string, batch: ImportedBatch) => {
    expect(await history(userId)).toEqual({ items: [], total: 0 })
    expect(await ctx.store.getActiveBatch(userId)).toBeNull()
    expect(await ctx.store.listAudit({ limit: 100, userId })).toEqual([])
    for (const code of batch.codes) expect(await find(userId, code, batch.createdAt + 1)).toBeNull()
  }

  describe('importBatch', () => {
    test('every status and every code state round-trips: summaries count the code rows', async () => {
      const userId = user()
      const states = [...STATES, 'used', 'active'] as const
      const batches = [
        buildImported({ userId, createdAt: T(0), status: 'superseded', endedAt: T(100), states }),
        buildImported({ userId, createdAt: T(100), status: 'disabled', endedAt: T(150), states }),
        buildImported({ userId, createdAt: T(200), status: 'deleted', endedAt: T(250), states, keyId: 'k1' }),
        buildImported({ userId, createdAt: T(300), expiresAt: T(90_000), states }),
      ]
      // The latest use first in code order: `lastUsedAt` is the latest, not the last.
      for (const b of batches) b.codes[1]!.usedAt = b.createdAt + 50
      const audits = batches.map((b) => importAudit(b, T(400)))
      for (const [i, b] of batches.entries()) expect(await importBatch(b, audits[i])).toBe('imported')

      expect(await history(userId)).toEqual({ items: batches.map(summaryOf).reverse(), total: 4 })
      expect(summaryOf(batches[3]!)).toMatchObject({ issued: 6, unused: 2, used: 2, lastUsedAt: T(350) })
      expect(await ctx.store.getActiveBatch(userId)).toEqual(summaryOf(batches[3]!))
      expect(await ctx.store.listAudit({ limit: 10, userId })).toEqual(
        expect.arrayContaining(audits.map((a) => ({ ...a }))),
      )
      expect((await ctx.store.listAudit({ limit: 10, userId })).length).toBe(4)
    })

    test('an imported active code is consumed exactly once; used, invalidated and deleted ones never', async () => {
      const userId = user()
      const b = await imported(
        buildImported({
          userId,
          createdAt: T(0),
          states: ['active', 'active', 'used', 'invalidated', 'deleted'],
        }),
      )
      const [first, second, ...dead] = b.codes
      expect(await find(userId, first!, T(50))).toEqual({
        codeId: first!.id,
        batchId: b.id,
        keyId: 'legacy1',
      })
      expect(await consume(userId, first!, T(50))).toEqual({
        codeId: first!.id,
        batchId: b.id,
        keyId: 'legacy1',
        remaining: 1,
      })
      expect(await consume(userId, first!, T(51))).toBeNull()
      expect(await find(userId, first!, T(51))).toBeNull()
      for (const code of dead) {
        expect(await find(userId, code, T(52))).toBeNull()
        expect(await consume(userId, code, T(52))).toBeNull()
      }
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({
        issued: 5,
        unused: 1,
        used: 2,
        invalidated: 1,
        deleted: 1,
        lastUsedAt: T(50),
      })
      expect(await consume(user(), second!, T(53))).toBeNull()
      expect(await consume(userId, second!, T(53))).toMatchObject({ codeId: second!.id, remaining: 0 })
    })

    test('redeemCode (or its composition) redeems an imported code once, and no dead one', async () => {
      const userId = user()
      const b = await imported(
        buildImported({ userId, createdAt: T(0), states: ['active', 'used', 'active'] }),
      )
      const redeem = (code: NewCode, now: number) => {
        const input: RedeemCodeInput = {
          userId,
          digests: [code.digest],
          now,
          keys: [{ key: uniqueId('id'), maxAttempts: 5 }],
          reset: [],
          audit: buildAudit({ at: now, userId, event: 'login.success', outcome: 'success' }),
        }
        return ctx.store.redeemCode ? ctx.store.redeemCode(input) : composeRedeemCode(ctx.store, input)
      }
      expect(await redeem(b.codes[0]!, T(20))).toMatchObject({
        outcome: 'consumed',
        code: { codeId: b.codes[0]!.id, batchId: b.id, keyId: 'legacy1', remaining: 1 },
      })
      expect(await redeem(b.codes[0]!, T(21))).toMatchObject({ outcome: 'missed' })
      expect(await redeem(b.codes[1]!, T(22))).toMatchObject({ outcome: 'missed' })
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ used: 2, unused: 1, lastUsedAt: T(20) })
    })

    test('codes of an imported batch that is not active, or expired, are never usable', async () => {
      const userId = user()
      const ended = await Promise.all(
        (['superseded', 'disabled', 'deleted'] as const).map((status, i) =>
          imported(buildImported({ userId, createdAt: T(i * 10), status, endedAt: T(i * 10 + 5) })),
        ),
      )
      const expiring = await imported(buildImported({ userId, createdAt: T(100), expiresAt: T(1_000) }))
      const other = user()
      const expired = await imported(buildImported({ userId: other, createdAt: T(0), expiresAt: T(50) }))
      for (const code of ended.flatMap((b) => b.codes)) {
        expect(await find(userId, code, T(200))).toBeNull()
        expect(await consume(userId, code, T(200))).toBeNull()
      }
      for (const code of expired.codes) expect(await consume(other, code, T(60))).toBeNull()
      const [a, b] = expiring.codes
      expect(await find(userId, a!, T(1_000))).toBeNull()
      expect(await consume(userId, a!, T(1_000))).toBeNull()
      expect(await consume(userId, b!, T(999))).toMatchObject({ codeId: b!.id, batchId: expiring.id })
    })

    test('it is a batch like any other: state changes, flags, and a later createBatch supersedes it', async () => {
      const userId = user()
      const b = await imported(buildImported({ userId, createdAt: T(0) }))
      const [a, c] = b.codes
      expect(await ctx.store.setCodeState({ userId, codeId: a!.id, to: 'invalidated', now: T(5) })).toBe(true)
      expect(await ctx.store.setBatchFlag({ userId, batchId: b.id, flag: 'viewed', now: T(6) })).toBe(true)
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({
        unused: 2,
        invalidated: 1,
        viewedAt: T(6),
      })
      const next = await seed({ userId, createdAt: T(10), count: 2 })
      expect((await history(userId)).items.find((x) => x.id === b.id)).toMatchObject({
        status: 'superseded',
        endedAt: T(10),
      })
      expect(await consume(userId, c!, T(11))).toBeNull()
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ id: next.batch.id, unused: 2 })
    })

    test('exists: a batch id already there (any user, any content) writes nothing, and wins over conflict', async () => {
      const userId = user()
      const b = await imported(buildImported({ userId, createdAt: T(0), states: ['active', 'used'] }))
      const before = await history(userId)
      const fresh = buildImported({ userId, createdAt: T(5), status: 'superseded' })
      const again = [
        b,
        { ...b, codes: fresh.codes },
        { ...fresh, id: b.id },
        { ...buildImported({ userId: user(), createdAt: T(5) }), id: b.id },
      ]
      for (const x of again) expect(await importBatch(x)).toBe('exists')
      expect(await history(userId)).toEqual(before)
      expect(await importAudits(userId)).toHaveLength(1)
      for (const code of fresh.codes) expect(await find(userId, code, T(6))).toBeNull()
      await nothingFor(again[3]!.userId, again[3]!)
      // The id of a generated batch is taken too.
      const generated = await seed({ userId: user(), createdAt: T(0) })
      const clash = {
        ...buildImported({ userId: generated.batch.userId, createdAt: T(1) }),
        id: generated.batch.id,
      }
      expect(await importBatch(clash)).toBe('exists')
      expect(await importAudits(generated.batch.userId)).toEqual([])
    })

    test('conflict: an active import for a user with an active batch writes nothing and supersedes nothing', async () => {
      const userId = user()
      const own = await seed({ userId, createdAt: T(0), count: 2 })
      const active = buildImported({ userId, createdAt: T(10) })
      expect(await importBatch(active)).toBe('conflict')
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ id: own.batch.id, endedAt: null })
      expect((await history(userId)).total).toBe(1)
      expect(await importAudits(userId)).toEqual([])
      for (const code of active.codes) expect(await find(userId, code, T(11))).toBeNull()
      expect(await consume(userId, own.codes[0]!, T(12))).toMatchObject({ batchId: own.batch.id })

      // Batches that are not active never conflict; once the user has no active batch, it imports.
      await imported(buildImported({ userId, createdAt: T(20), status: 'disabled' }))
      expect((await ctx.store.getActiveBatch(userId))?.id).toBe(own.batch.id)
      await ctx.store.endBatch({ userId, batchId: own.batch.id, to: 'deleted', now: T(30) })
      await imported(active)
      expect(await ctx.store.getActiveBatch(userId)).toEqual(summaryOf(active))
      // An imported active batch blocks the next active import like a generated one.
      expect(await importBatch(buildImported({ userId, createdAt: T(40) }))).toBe('conflict')
      expect((await history(userId)).total).toBe(3)
      expect(await importAudits(userId)).toHaveLength(2)
    })

    test('all or nothing: a code id that exists already, in the middle, leaves no batch, code or audit row', async () => {
      const owner = user()
      const existing = await seed({ userId: owner, createdAt: T(0), count: 2 })
      for (const status of ['active', 'superseded'] as const) {
        const userId = user()
        const b = buildImported({ userId, createdAt: T(10), status, states: [...STATES, 'active', 'used'] })
        const clashing = {
          ...b,
          codes: b.codes.map((c, i) => (i === 3 ? { ...c, id: existing.codes[0]!.id } : c)),
        }
        await expect(importBatch(clashing)).rejects.toThrow()
        await nothingFor(userId, b)
        // Nothing was left behind under the batch id either: the clean batch imports.
        expect(await importBatch(b)).toBe('imported')
        expect(await history(userId)).toEqual({ items: [summaryOf(b)], total: 1 })
      }
      expect(await consume(owner, existing.codes[0]!, T(20))).toMatchObject({ codeId: existing.codes[0]!.id })
    })

    test("all or nothing: a digest that repeats one of the user's rows is refused; another user's is not", async () => {
      const userId = user()
      const first = await seed({ userId, createdAt: T(0), count: 2 })
      await seed({ userId, createdAt: T(10), count: 2 })
      const b = buildImported({ userId, createdAt: T(20), status: 'superseded', states: STATES })
      const clashing = {
        ...b,
        codes: b.codes.map((c, i) => (i === 2 ? { ...c, digest: first.codes[1]!.digest.slice() } : c)),
      }
      await expect(importBatch(clashing)).rejects.toThrow()
      expect((await history(userId)).total).toBe(2)
      expect(await importAudits(userId)).toEqual([])
      const elsewhere = {
        ...clashing,
        id: uniqueId('imported'),
        userId: user(),
        codes: clashing.codes.map((c) => ({ ...c, id: uniqueId('icode') })),
      }
      expect(await importBatch(elsewhere, importAudit(elsewhere))).toBe('imported')
      expect(await importBatch(b)).toBe('imported')
    })

    test('malformed input is INVALID_INPUT before any write', async () => {
      const userId = user()
      const valid = buildImported({ userId, createdAt: T(0), states: ['active', 'used', 'invalidated'] })
      const ended = { ...valid, status: 'superseded' as const, endedAt: T(5) }
      const code = (i: number, change: object) => ({
        ...valid,
        codes: valid.codes.map((c, j) => (j === i ? { ...c, ...change } : c)),
      })
      const audit = importAudit(valid)
      const cases: [string, unknown, unknown?][] = [
        ['a digest that is an array', code(0, { digest: Array.from(randomDigest()) })],
        ['a 31-byte digest', code(0, { digest: new Uint8Array(31) })],
        ['a 33-byte digest', code(0, { digest: new Uint8Array(33) })],
        ['a digest that is a string', code(0, { digest: 'ab'.repeat(32) })],
        ['an unknown status', { ...valid, status: 'pending' }],
        ['status expired (derived, never stored)', { ...ended, status: 'expired' }],
        ['an unknown code state', code(0, { state: 'revoked' })],
        ['an empty batch id', { ...valid, id: '' }],
        ['a batch id that is a number', { ...valid, id: 42 }],
        ['an empty user id', { ...valid, userId: '' }],
        ['a user id that is not a string', { ...valid, userId: null }],
        ['an empty key id', { ...valid, keyId: '' }],
        ['an empty code id', code(1, { id: '' })],
        ['a code id that is not a string', code(1, { id: 7 })],
        ['a fractional createdAt', { ...valid, createdAt: T(0) + 0.5 }],
        ['a NaN createdAt', { ...valid, createdAt: Number.NaN }],
        ['a createdAt that is a string', { ...valid, createdAt: String(T(0)) }],
        ['a fractional expiresAt', { ...valid, expiresAt: T(10) + 0.5 }],
        ['endedAt null on a batch that ended', { ...ended, endedAt: null }],
        ['a fractional endedAt', { ...ended, endedAt: T(5) + 0.5 }],
        ['endedAt set on an active batch', { ...valid, endedAt: T(5) }],
        ['usedAt null on a used code', code(1, { usedAt: null })],
        ['a fractional usedAt', code(1, { usedAt: T(1) + 0.5 })],
        ['usedAt on an active code', code(0, { usedAt: T(1) })],
        ['usedAt on an invalidated code', code(2, { usedAt: T(1) })],
        ['codes that are not an array', { ...valid, codes: null }],
        ['no codes (an empty batch)', { ...valid, codes: [] }],
        ['no codes, ended', { ...ended, codes: [] }],
        ['a code that is null', { ...valid, codes: [...valid.codes, null] }],
        ['a code id twice in the batch', code(2, { id: valid.codes[0]!.id })],
        ['a digest twice in the batch', code(2, { digest: valid.codes[0]!.digest.slice() })],
        ['a batch that is null', null],
        ['no audit record', valid, null],
        ['a fractional audit time', valid, { ...audit, at: T(0) + 0.5 }],
      ]
      for (const [label, batch, record = audit] of cases) {
        const error = await ctx.store.importBatch!(batch as never, record as never).then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(isRecoveryCodesError(error, 'INVALID_INPUT'), label).toBe(true)
        const hex = Buffer.from(valid.codes[0]!.digest).toString('hex')
        expect(String((error as Error).message), label).not.toContain(hex)
      }
      await nothingFor(userId, valid)
      expect(await importBatch(valid, audit)).toBe('imported')
    })

    test('purge treats imported batches like generated ones; their counts survive it', async () => {
      // u1: a superseded batch ended at T(500) (all 3 codes dead then), and an active batch created at
      // T(200) whose invalidated and deleted codes are dead since then (the source gives no time);
      // its used and active codes stay. u2: an active batch that expires at T(800).
      const u1 = user()
      const u2 = user()
      const old = await imported(
        buildImported({
          userId: u1,
          createdAt: T(0),
          status: 'superseded',
          endedAt: T(500),
          states: ['active', 'used', 'invalidated'],
        }),
      )
      const current = await imported(
        buildImported({
          userId: u1,
          createdAt: T(200),
          states: ['active', 'used', 'invalidated', 'deleted'],
        }),
      )
      const expiring = await imported(
        buildImported({ userId: u2, createdAt: T(0), expiresAt: T(800), states: ['active', 'active'] }),
      )
      const summaries = [summaryOf(current), summaryOf(old)]

      const purge = (before: number) => ctx.store.purgeCodes({ before, limit: 100 })
      expect(await purge(T(200))).toBe(0)
      expect(await purge(T(201))).toBe(2)
      expect(await purge(T(500))).toBe(0)
      expect(await purge(T(501))).toBe(3)
      expect(await purge(T(800))).toBe(0)
      expect(await purge(T(801))).toBe(2)
      expect(await purge(T(1_000))).toBe(0)

      expect(await history(u1)).toEqual({ items: summaries, total: 2 })
      expect(await history(u2)).toEqual({ items: [summaryOf(expiring)], total: 1 })
      expect(await consume(u1, current.codes[0]!, T(900))).toMatchObject({
        codeId: current.codes[0]!.id,
        remaining: 0,
      })
      expect(await ctx.store.purgeEmptyBatches({ before: T(1_000), limit: 100 })).toBe(1)
      expect((await history(u1)).items.map((b) => b.id)).toEqual([current.id])
    })
  })
}
