/**
 * The replacement aggregate's contract (`ReplaceStore`, optional: every test skips on a store
 * without `addCodes`): codes appended to the user's live batch raise `issued` and `unused`, are
 * usable at once (consume, redeem, expiry with the batch, purge with it), and carry their audit
 * row; every batch that is not the user's live one is `false` with nothing written; collisions and
 * malformed input leave no trace. Races: `addCodes` against `createBatch` (supersede) and against
 * `endBatch` leave no live code in an ended batch; concurrent `addCodes` on one batch all land.
 */
import {
  type AddCodesInput,
  type AttemptStore,
  type AuditRecord,
  type AuditStore,
  type BatchStore,
  type BatchSummary,
  composeRedeemCode,
  isRecoveryCodesError,
  type NewBatch,
  type NewCode,
  type RecoveryCodeStore,
  type RedeemStore,
  type ReplaceStore,
  type RetentionStore,
} from '@recovery-codes/core'
import { describe, expect, it } from 'vitest'
import { startTogether } from '../barrier.ts'
import { buildAudit, buildBatch, buildCodes, randomDigest, uniqueId } from '../fixtures.ts'
import { expectStoreInvariants, GENERATED_AUDIT_EVENT } from '../invariants.ts'
import type { AggregateSuite, StoreConformanceContext } from './context.ts'
import { batchCallsOf, timeOf, user, values } from './helpers.ts'

/** What the replacement suite runs on; `addCodes` is optional (the tests skip without it). */
export type ReplaceSuiteStore = BatchStore &
  AttemptStore &
  AuditStore &
  RetentionStore &
  RedeemStore &
  Partial<ReplaceStore>

/** The event of the audit row the service commits with a replacement (`replaceOnUse`). */
const REPLACED_EVENT = 'code.replaced'

/** `ReplaceStore` (reading back through the batch, audit, retention and redeem methods), then its races. */
export const replaceSuite: AggregateSuite<ReplaceSuiteStore> = { tests: replaceTests, races: replaceRaces }

/** An `it` that skips on a store without `addCodes` (the method is optional in the port). */
function replaceIt(ctx: StoreConformanceContext<ReplaceSuiteStore>) {
  return (name: string, fn: () => Promise<void>, timeout?: number) =>
    it(
      name,
      async (t) => {
        if (typeof ctx.store.addCodes !== 'function') return t.skip('the store has no addCodes')
        await fn()
      },
      timeout,
    )
}

/** The calls the replacement tests share, on the running store. */
function replaceCallsOf(ctx: StoreConformanceContext<ReplaceSuiteStore>) {
  const history = (userId: string) => ctx.store.listBatches({ userId, offset: 0, limit: 100 })
  /** The `code.replaced` row of adding `count` codes to `batchId` at `now`. */
  const replacedAudit = (userId: string, batchId: string, now: number, count = 1): AuditRecord =>
    buildAudit({ at: now, event: REPLACED_EVENT, userId, batchId, outcome: 'success', data: { count } })
  return {
    history,
    replacedAudit,
    /** `addCodes` of `codes` (default one fresh code), with its audit row unless `audit` is `null`. */
    add: (
      input: Pick<AddCodesInput, 'userId' | 'batchId' | 'now'> & {
        codes?: NewCode[]
        audit?: AuditRecord | null
      },
    ) => {
      const { codes = buildCodes(1), audit, ...rest } = input
      const record =
        audit === undefined ? replacedAudit(rest.userId, rest.batchId, rest.now, codes.length) : audit
      return ctx.store.addCodes!({ ...rest, codes, ...(record === null ? {} : { audit: record }) })
    },
    /** The user's `code.replaced` audit rows, newest first. */
    replacedAudits: (userId: string) => ctx.store.listAudit({ limit: 1000, userId, event: REPLACED_EVENT }),
    /** A batch written with its `batch.generated` audit row (what the store invariants expect). */
    generate: async (batch: NewBatch, codes: NewCode[]) => {
      const audit = buildAudit({
        at: batch.createdAt,
        event: GENERATED_AUDIT_EVENT,
        userId: batch.userId,
        batchId: batch.id,
        outcome: 'success',
      })
      await ctx.store.createBatch(batch, codes, audit)
      return { batch, codes }
    },
  }
}

/** `summary` with `n` more codes issued, all unused. */
const plus = (summary: BatchSummary, n: number): BatchSummary => ({
  ...summary,
  issued: summary.issued + n,
  unused: summary.unused + n,
})

function replaceTests(ctx: StoreConformanceContext<ReplaceSuiteStore>): void {
  const T = timeOf(ctx)
  const test = replaceIt(ctx)
  const { consume, find, batchOf, seed } = batchCallsOf(ctx)
  const { history, add, replacedAudit, replacedAudits } = replaceCallsOf(ctx)

  describe('addCodes', () => {
    test('adds codes to the active batch: true, issued and unused +n in getActiveBatch and listBatches', async () => {
      const userId = user()
      const old = await seed({ userId, createdAt: T(0), count: 2 })
      const { batch, codes } = await seed({ userId, createdAt: T(10), count: 4 })
      expect(await consume(userId, codes[0]!, T(20))).toMatchObject({ remaining: 3 })
      await ctx.store.setCodeState({ userId, codeId: codes[1]!.id, to: 'invalidated', now: T(21) })
      await ctx.store.setBatchFlag({ userId, batchId: batch.id, flag: 'viewed', now: T(22) })
      const before = await history(userId)
      const active = (await ctx.store.getActiveBatch(userId))!
      expect(active).toMatchObject({ issued: 4, unused: 2, used: 1, invalidated: 1 })

      expect(await add({ userId, batchId: batch.id, now: T(30), codes: buildCodes(3) })).toBe(true)
      expect(await ctx.store.getActiveBatch(userId)).toEqual(plus(active, 3))
      expect(await history(userId)).toEqual({ items: [plus(active, 3), before.items[1]!], total: 2 })
      expect(await batchOf(userId, old.batch.id)).toEqual(before.items[1])

      expect(await add({ userId, batchId: batch.id, now: T(31) })).toBe(true)
      expect(await ctx.store.getActiveBatch(userId)).toEqual(plus(active, 4))
    })

    test('an added code is usable at once: found, consumed exactly once, remaining counts it', async () => {
      const userId = user()
      const { batch, codes } = await seed({ userId, createdAt: T(0), count: 2 })
      const added = buildCodes(2)
      expect(await add({ userId, batchId: batch.id, now: T(10), codes: added })).toBe(true)
      expect(await find(userId, added[0]!, T(11))).toEqual({
        codeId: added[0]!.id,
        batchId: batch.id,
        keyId: 'k1',
      })
      expect(await consume(userId, added[0]!, T(12))).toEqual({
        codeId: added[0]!.id,
        batchId: batch.id,
        keyId: 'k1',
        remaining: 3,
      })
      expect(await consume(userId, added[0]!, T(13))).toBeNull()
      expect(await find(userId, added[0]!, T(13))).toBeNull()
      expect(await consume(user(), added[1]!, T(14))).toBeNull()
      expect(await consume(userId, codes[0]!, T(15))).toMatchObject({ remaining: 2 })
      expect(await consume(userId, added[1]!, T(16))).toMatchObject({ codeId: added[1]!.id, remaining: 1 })
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({
        issued: 4,
        unused: 1,
        used: 3,
        lastUsedAt: T(16),
      })
      // A code added after every other code was used: the batch has one left again.
      await consume(userId, codes[1]!, T(17))
      const last = buildCodes(1)
      expect(await add({ userId, batchId: batch.id, now: T(18), codes: last })).toBe(true)
      expect(await consume(userId, last[0]!, T(19))).toMatchObject({ codeId: last[0]!.id, remaining: 0 })
    })

    test('redeemCode (or its composition) redeems an added code once, with remaining counting it', async () => {
      const userId = user()
      const { batch } = await seed({ userId, createdAt: T(0), count: 3 })
      const added = buildCodes(1)
      expect(await add({ userId, batchId: batch.id, now: T(5), codes: added })).toBe(true)
      const redeem = (code: NewCode, now: number) => {
        const input = {
          userId,
          digests: [code.digest],
          now,
          keys: [{ key: uniqueId('id'), maxAttempts: 5 }],
          reset: [],
          audit: buildAudit({ at: now, userId, event: 'login.success', outcome: 'success' }),
        }
        return ctx.store.redeemCode ? ctx.store.redeemCode(input) : composeRedeemCode(ctx.store, input)
      }
      expect(await redeem(added[0]!, T(20))).toMatchObject({
        outcome: 'consumed',
        code: { codeId: added[0]!.id, batchId: batch.id, keyId: 'k1', remaining: 3 },
      })
      expect(await redeem(added[0]!, T(21))).toMatchObject({ outcome: 'missed' })
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ issued: 4, unused: 3, used: 1 })
    })

    test('added codes expire with their batch: usable iff now < expiresAt', async () => {
      const userId = user()
      const { batch } = await seed({ userId, createdAt: T(0), expiresAt: T(1_000), count: 1 })
      const added = buildCodes(2)
      expect(await add({ userId, batchId: batch.id, now: T(500), codes: added })).toBe(true)
      expect(await find(userId, added[0]!, T(1_000))).toBeNull()
      expect(await consume(userId, added[0]!, T(1_000))).toBeNull()
      expect(await consume(userId, added[1]!, T(999))).toMatchObject({ codeId: added[1]!.id })
    })

    test('false, nothing written, no audit row: superseded, disabled, deleted, expired, another user’s, unknown', async () => {
      const userId = user()
      const other = user()
      const superseded = await seed({ userId, createdAt: T(0) })
      const disabled = await seed({ userId, createdAt: T(10) })
      await ctx.store.endBatch({ userId, batchId: disabled.batch.id, to: 'disabled', now: T(15) })
      const deleted = await seed({ userId, createdAt: T(20) })
      await ctx.store.endBatch({ userId, batchId: deleted.batch.id, to: 'deleted', now: T(25) })
      const current = await seed({ userId, createdAt: T(30), expiresAt: T(1_000) })
      const theirs = await seed({ userId: other, createdAt: T(30) })
      const before = await history(userId)
      const theirsBefore = await history(other)

      const codes = buildCodes(2)
      const refused: [string, string, string, number][] = [
        ['superseded (a createBatch resolved since)', userId, superseded.batch.id, T(40)],
        ['disabled', userId, disabled.batch.id, T(40)],
        ['deleted', userId, deleted.batch.id, T(40)],
        ['expired (now = expiresAt)', userId, current.batch.id, T(1_000)],
        ['expired (now > expiresAt)', userId, current.batch.id, T(5_000)],
        ['another user’s batch', userId, theirs.batch.id, T(40)],
        ['the user’s batch, named with another user', other, current.batch.id, T(40)],
        ['an unknown batch id', userId, uniqueId('batch'), T(40)],
        ['an empty batch id', userId, '', T(40)],
        ['a batch id with NUL', userId, `${current.batch.id}\u0000`, T(40)],
      ]
      for (const [label, u, batchId, now] of refused) {
        // The audit row names the batch, unless no stored row could carry its id.
        const named = batchId !== '' && !batchId.includes('\u0000')
        const audit = { ...replacedAudit(u, current.batch.id, now, 2), batchId: named ? batchId : null }
        expect(await add({ userId: u, batchId, now, codes, audit }), label).toBe(false)
      }
      expect(await history(userId)).toEqual(before)
      expect(await history(other)).toEqual(theirsBefore)
      expect(await replacedAudits(userId)).toEqual([])
      expect(await replacedAudits(other)).toEqual([])
      for (const code of codes) {
        expect(await find(userId, code, T(41))).toBeNull()
        expect(await find(other, code, T(41))).toBeNull()
      }
      // Nothing was left behind under the ids and digests: the same codes go into the live batch.
      expect(await add({ userId, batchId: current.batch.id, now: T(999), codes })).toBe(true)
      expect(await consume(userId, codes[0]!, T(999))).toMatchObject({ batchId: current.batch.id })
    })

    test('the audit row is appended with the write, exactly as given; without one, none', async () => {
      const userId = user()
      const { batch } = await seed({ userId, createdAt: T(0) })
      const audit = replacedAudit(userId, batch.id, T(10), 2)
      expect(await add({ userId, batchId: batch.id, now: T(10), codes: buildCodes(2), audit })).toBe(true)
      expect(await replacedAudits(userId)).toEqual([audit])
      expect(await add({ userId, batchId: batch.id, now: T(11), audit: null })).toBe(true)
      expect(await ctx.store.listAudit({ limit: 100, userId })).toEqual([audit])
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ issued: 8, unused: 8 })
      // A refused call with an audit row appends nothing.
      await ctx.store.endBatch({ userId, batchId: batch.id, to: 'disabled', now: T(12) })
      expect(await add({ userId, batchId: batch.id, now: T(13) })).toBe(false)
      expect(await ctx.store.listAudit({ limit: 100, userId })).toEqual([audit])
    })

    test("all or nothing: a digest that repeats one of the user's rows rejects, leaving no code, count or audit row", async () => {
      const userId = user()
      const older = await seed({ userId, createdAt: T(0), count: 2 })
      const { batch, codes } = await seed({ userId, createdAt: T(10), count: 2 })
      const before = await history(userId)
      for (const taken of [codes[1]!.digest, older.codes[0]!.digest]) {
        const clashing = buildCodes(3)
        clashing[1] = { id: uniqueId('code'), digest: taken.slice() }
        await expect(add({ userId, batchId: batch.id, now: T(20), codes: clashing })).rejects.toThrow()
        expect(await history(userId)).toEqual(before)
        expect(await replacedAudits(userId)).toEqual([])
        for (const code of [clashing[0]!, clashing[2]!]) expect(await find(userId, code, T(21))).toBeNull()
        // The rest of the call goes in afterwards: nothing of it stayed.
        const clean = [clashing[0]!, clashing[2]!]
        expect(await add({ userId, batchId: batch.id, now: T(22), codes: clean, audit: null })).toBe(true)
        before.items[0] = plus(before.items[0]!, 2)
      }
      expect(await consume(userId, codes[1]!, T(30))).toMatchObject({ codeId: codes[1]!.id })
      // Digests are unique per user only: another user's digest is fine.
      const theirs = await seed({ userId: user(), createdAt: T(0), count: 1 })
      const same = [{ id: uniqueId('code'), digest: theirs.codes[0]!.digest.slice() }]
      expect(await add({ userId, batchId: batch.id, now: T(31), codes: same })).toBe(true)
      expect(await consume(userId, same[0]!, T(32))).toMatchObject({ batchId: batch.id })
      expect(await consume(theirs.batch.userId, theirs.codes[0]!, T(32))).toMatchObject({
        batchId: theirs.batch.id,
      })
    })

    test('all or nothing: a code id that exists already rejects, leaving no code, count or audit row', async () => {
      const userId = user()
      const elsewhere = await seed({ userId: user(), createdAt: T(0), count: 1 })
      const { batch } = await seed({ userId, createdAt: T(0), count: 2 })
      const before = await history(userId)
      const clashing = buildCodes(3)
      clashing[2] = { id: elsewhere.codes[0]!.id, digest: randomDigest() }
      await expect(add({ userId, batchId: batch.id, now: T(10), codes: clashing })).rejects.toThrow()
      expect(await history(userId)).toEqual(before)
      expect(await replacedAudits(userId)).toEqual([])
      for (const code of clashing) expect(await find(userId, code, T(11))).toBeNull()
    })

    test('malformed input is INVALID_INPUT before any write', async () => {
      const userId = user()
      const { batch } = await seed({ userId, createdAt: T(0), count: 2 })
      const before = await history(userId)
      const valid = buildCodes(2)
      const audit = replacedAudit(userId, batch.id, T(10), 2)
      const base = { userId, batchId: batch.id, now: T(10), codes: valid, audit }
      const code = (change: object) => [valid[0]!, { ...valid[1]!, ...change }]
      const cases: [string, unknown][] = [
        ['no codes (an empty array)', { ...base, codes: [] }],
        ['codes that are not an array', { ...base, codes: null }],
        ['a code that is null', { ...base, codes: [valid[0], null] }],
        ['a 31-byte digest', { ...base, codes: code({ digest: new Uint8Array(31) }) }],
        ['a 33-byte digest', { ...base, codes: code({ digest: new Uint8Array(33) }) }],
        ['an empty digest', { ...base, codes: code({ digest: new Uint8Array(0) }) }],
        ['a digest that is an array', { ...base, codes: code({ digest: Array.from(randomDigest()) }) }],
        ['a digest that is a string', { ...base, codes: code({ digest: 'ab'.repeat(32) }) }],
        ['an empty code id', { ...base, codes: code({ id: '' }) }],
        ['a code id that is not a string', { ...base, codes: code({ id: 7 }) }],
        ['a digest twice in the call', { ...base, codes: code({ digest: valid[0]!.digest.slice() }) }],
        ['a code id twice in the call', { ...base, codes: code({ id: valid[0]!.id }) }],
        ['a fractional now', { ...base, now: T(10) + 0.5 }],
        ['a NaN now', { ...base, now: Number.NaN }],
        ['a now that is a string', { ...base, now: String(T(10)) }],
        ['a missing now', { ...base, now: undefined }],
        ['a fractional audit time', { ...base, audit: { ...audit, at: T(10) + 0.5 } }],
      ]
      for (const [label, input] of cases) {
        const error = await ctx.store.addCodes!(input as AddCodesInput).then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(isRecoveryCodesError(error, 'INVALID_INPUT'), label).toBe(true)
        const hex = Buffer.from(valid[0]!.digest).toString('hex')
        expect(String((error as Error).message), label).not.toContain(hex)
      }
      expect(await history(userId)).toEqual(before)
      expect(await replacedAudits(userId)).toEqual([])
      for (const c of valid) expect(await find(userId, c, T(11))).toBeNull()
      expect(await ctx.store.addCodes!(base)).toBe(true)
    })

    test('added codes are purged with their batch (ended or expired); its counts survive the purge', async () => {
      const u1 = user()
      const u2 = user()
      const ended = await seed({ userId: u1, createdAt: T(0), count: 2 })
      expect(await add({ userId: u1, batchId: ended.batch.id, now: T(100), codes: buildCodes(2) })).toBe(true)
      const next = await seed({ userId: u1, createdAt: T(500), count: 1 })
      const expiring = await seed({ userId: u2, createdAt: T(0), expiresAt: T(800), count: 1 })
      expect(await add({ userId: u2, batchId: expiring.batch.id, now: T(200), codes: buildCodes(3) })).toBe(
        true,
      )
      const summaries = [await history(u1), await history(u2)]

      const purge = (before: number) => ctx.store.purgeCodes({ before, limit: 100 })
      expect(await purge(T(500))).toBe(0)
      expect(await purge(T(501))).toBe(4)
      expect(await purge(T(800))).toBe(0)
      expect(await purge(T(801))).toBe(4)
      expect(await purge(T(10_000))).toBe(0)
      expect([await history(u1), await history(u2)]).toEqual(summaries)
      expect(await ctx.store.purgeEmptyBatches({ before: T(10_000), limit: 100 })).toBe(1)
      expect((await history(u1)).items.map((b) => b.id)).toEqual([next.batch.id])
    })
  })
}

/** Registers the replacement races inside the running `concurrency` block. */
function replaceRaces(ctx: StoreConformanceContext<ReplaceSuiteStore>): void {
  const T = timeOf(ctx)
  const test = replaceIt(ctx)
  const { consume, batchOf } = batchCallsOf(ctx)
  const { history, add, replacedAudits, generate } = replaceCallsOf(ctx)
  const ROUNDS = 10
  const ADDERS = 8

  /**
   * After a race of `added` (one code each, `won[i]` its result) against the call that ended
   * `ended` at `endedAt`: the batch counts exactly the codes that went in, one audit row each, no
   * refused code was written (each can still go into the live batch `live`, if any), and a purge
   * just past the end deletes every row of the batch, added ones included (a code written after
   * the end would be a live row of an ended batch, never purged), then the batch itself.
   */
  async function check(input: {
    userId: string
    ended: { batch: NewBatch; codes: NewCode[] }
    status: 'superseded' | 'disabled' | 'deleted'
    endedAt: number
    added: NewCode[][]
    won: boolean[]
    live: NewBatch | null
  }): Promise<number> {
    const { userId, ended, status, endedAt, added, won, live } = input
    const wins = won.filter(Boolean).length
    expect(await batchOf(userId, ended.batch.id)).toMatchObject({
      status,
      endedAt,
      issued: ended.codes.length + wins,
      unused: ended.codes.length + wins,
    })
    expect(await replacedAudits(userId)).toHaveLength(wins)
    for (const code of added.flat()) expect(await consume(userId, code, endedAt + 1)).toBeNull()
    if (live !== null) {
      const refused = added.filter((_, i) => !won[i]).flat()
      if (refused.length > 0) {
        expect(await add({ userId, batchId: live.id, now: endedAt + 1, codes: refused, audit: null })).toBe(
          true,
        )
      }
    }
    await expectStoreInvariants(ctx.store as RecoveryCodeStore, { userIds: [userId] })
    return ended.codes.length + wins
  }

  test(`${ADDERS} concurrent addCodes racing createBatch (supersede), ${ROUNDS} rounds: nothing lands in the superseded batch after it`, async () => {
    let rows = 0
    for (let round = 0; round < ROUNDS; round++) {
      const userId = user()
      const start = T(round * 1_000)
      const old = await generate(buildBatch({ userId, createdAt: start }), buildCodes(3))
      const next = buildBatch({ userId, createdAt: start + 100 })
      const added = Array.from({ length: ADDERS }, () => buildCodes(1))
      const adders = added.map(
        (codes) => () => add({ userId, batchId: old.batch.id, now: start + 50, codes }),
      )
      const create = () => generate(next, buildCodes(2)).then(() => 'created' as const)
      // Both start orders: a store that runs each call to its end at once sees both interleavings.
      const tasks = round % 2 ? [create, ...adders] : [...adders, create]
      const results = values(await startTogether<boolean | 'created'>(tasks))
      const won = round % 2 ? results.slice(1) : results.slice(0, ADDERS)
      expect(results.filter((r) => r === 'created')).toHaveLength(1)
      expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ id: next.id, issued: 2, unused: 2 })
      // After createBatch resolved, no call writes into the old batch.
      expect(await add({ userId, batchId: old.batch.id, now: start + 200 })).toBe(false)
      rows += await check({
        userId,
        ended: old,
        status: 'superseded',
        endedAt: start + 100,
        added,
        won: won as boolean[],
        live: next,
      })
    }
    expect(await ctx.store.purgeCodes({ before: T(ROUNDS * 1_000), limit: 10_000 })).toBe(rows)
    expect(await ctx.store.purgeEmptyBatches({ before: T(ROUNDS * 1_000), limit: 1_000 })).toBe(ROUNDS)
  })

  test(`${ADDERS} concurrent addCodes racing endBatch, ${ROUNDS} rounds: nothing lands in the ended batch after it`, async () => {
    let rows = 0
    for (let round = 0; round < ROUNDS; round++) {
      const userId = user()
      const start = T(round * 1_000)
      const batch = await generate(buildBatch({ userId, createdAt: start }), buildCodes(3))
      const added = Array.from({ length: ADDERS }, () => buildCodes(1))
      const adders = added.map(
        (codes) => () => add({ userId, batchId: batch.batch.id, now: start + 50, codes }),
      )
      const to = round % 2 ? ('disabled' as const) : ('deleted' as const)
      const end = () => ctx.store.endBatch({ userId, batchId: batch.batch.id, to, now: start + 100 })
      const tasks = round % 2 ? [end, ...adders] : [...adders, end]
      const results = values(await startTogether<boolean>(tasks))
      const won = round % 2 ? results.slice(1) : results.slice(0, ADDERS)
      expect(round % 2 ? results[0] : results[ADDERS]).toBe(true)
      expect(await ctx.store.getActiveBatch(userId)).toBeNull()
      expect(await add({ userId, batchId: batch.batch.id, now: start + 200 })).toBe(false)
      rows += await check({ userId, ended: batch, status: to, endedAt: start + 100, added, won, live: null })
    }
    expect(await ctx.store.purgeCodes({ before: T(ROUNDS * 1_000), limit: 10_000 })).toBe(rows)
    expect(await ctx.store.purgeEmptyBatches({ before: T(ROUNDS * 1_000), limit: 1_000 })).toBe(ROUNDS)
  })

  test('20 concurrent addCodes on one batch: all true, issued sums up, every code consumed once', async () => {
    const userId = user()
    const { batch } = await generate(buildBatch({ userId, createdAt: T(0) }), buildCodes(2))
    const added = Array.from({ length: 20 }, () => buildCodes(2))
    const results = values(
      await startTogether(
        added.map((codes, i) => () => add({ userId, batchId: batch.id, now: T(10 + i), codes })),
      ),
    )
    expect(results).toEqual(added.map(() => true))
    expect(await ctx.store.getActiveBatch(userId)).toMatchObject({ issued: 42, unused: 42, used: 0 })
    expect(await replacedAudits(userId)).toHaveLength(20)
    const consumed = values(
      await startTogether(added.flat().map((code) => () => consume(userId, code, T(100)))),
    )
    expect(consumed.every((c) => c?.batchId === batch.id)).toBe(true)
    expect(consumed.map((c) => c!.remaining).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 40 }, (_, i) => i + 2),
    )
    expect((await history(userId)).items[0]).toMatchObject({ issued: 42, unused: 2, used: 40 })
  })
}
