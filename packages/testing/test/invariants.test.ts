/**
 * The post-fault sweep must be able to fail: each rule is broken on purpose, on a `memoryStore()`
 * (written through the port, or seen through a wrapper that misreports what a broken store would),
 * and the sweep must name exactly that rule, for exactly that user and batch.
 */
import type { BatchSummary, RecoveryCodeStore } from '@recovery-codes/core'
import { consumedAudit, createRecoveryCodes } from '@recovery-codes/core'
import { describe, expect, it } from 'vitest'
import { memoryStore } from '../../store-memory/src/index.ts'
import {
  buildAudit,
  checkStoreInvariants,
  createManualClock,
  expectStoreInvariants,
  formatViolation,
  seedBatch,
  TEST_PEPPER,
} from '../src/index.ts'

const T0 = 1_800_000_000_000
const DAY = 86_400_000

/** A store the service wrote to: two users, a superseded and an active batch, redeems and a miss. */
async function serviceState() {
  const store = memoryStore()
  const clock = createManualClock(T0)
  const rc = createRecoveryCodes({ peppers: [{ id: 'k1', secret: TEST_PEPPER }], store, clock })
  const codes: Record<string, string[]> = {}
  for (const userId of ['u1', 'u2']) {
    const g = await rc.generate({ userId, count: 4 })
    if (!g.ok) throw new Error('generate refused')
    await rc.confirm({ userId, reveal: g.reveal })
    codes[userId] = g.codes
    expect(await rc.redeem({ userId, code: g.codes[0]! })).toMatchObject({ ok: true })
  }
  expect((await rc.redeem({ userId: 'u1', code: codes.u1![0]! })).ok).toBe(false)
  clock.advance(DAY)
  const again = await rc.generate({ userId: 'u1', count: 3 })
  if (!again.ok) throw new Error('generate refused')
  await rc.confirm({ userId: 'u1', reveal: again.reveal })
  expect(await rc.redeem({ userId: 'u1', code: again.codes[1]! })).toMatchObject({ ok: true, remaining: 2 })
  const active = (await store.getActiveBatch('u1'))!
  return {
    store,
    clock,
    active,
    old: (await store.listBatches({ userId: 'u1', offset: 0, limit: 9 })).items[1]!,
  }
}

/** `inner` with some methods' results rewritten: a store that misreports its own state. */
function misreporting(
  inner: RecoveryCodeStore,
  rewrite: {
    summary?: (b: BatchSummary) => BatchSummary
    active?: (b: BatchSummary | null) => BatchSummary | null
  },
): RecoveryCodeStore {
  const summary = rewrite.summary ?? ((b) => b)
  return new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'listBatches') {
        return async (input: Parameters<RecoveryCodeStore['listBatches']>[0]) => {
          const page = await target.listBatches(input)
          return { ...page, items: page.items.map(summary) }
        }
      }
      if (property === 'getActiveBatch') {
        return async (userId: string) => {
          const b = await target.getActiveBatch(userId)
          const s = b === null ? null : summary(b)
          return rewrite.active ? rewrite.active(s) : s
        }
      }
      return Reflect.get(target, property, receiver)
    },
  })
}

const rulesOf = async (store: RecoveryCodeStore, userIds = ['u1', 'u2']) =>
  (await checkStoreInvariants(store, { userIds })).violations.map((v) => [v.rule, v.userId, v.batchId])

describe('checkStoreInvariants', () => {
  it('passes on a state the service wrote, and reports what it swept', async () => {
    const { store } = await serviceState()
    const report = await checkStoreInvariants(store, { userIds: ['u1', 'u2', 'u1', 'nobody'] })
    expect(report.violations).toEqual([])
    expect(report.ok).toBe(true)
    expect(report.checked).toEqual({
      users: 3,
      batches: 3,
      usedCodes: 3,
      redeemAuditRows: 3,
      generatedAuditRows: 3,
    })
    await expectStoreInvariants(store, { userIds: ['u1', 'u2'] })
  })

  it('batch-generated-audited: a batch written without its batch.generated row', async () => {
    const { store, clock } = await serviceState()
    const { batch } = await seedBatch(store, { userId: 'u2', createdAt: clock.now() + 1 })
    const report = await checkStoreInvariants(store, { userIds: ['u1', 'u2'] })
    expect(report.violations).toEqual([
      {
        rule: 'batch-generated-audited',
        userId: 'u2',
        batchId: batch.id,
        figures: { status: 'active', createdAt: clock.now() + 1, generatedAuditRows: 1 },
      },
    ])
    // A batch.generated row for another batch or another user does not count.
    await store.appendAudit(
      buildAudit({ at: clock.now(), event: 'batch.generated', userId: 'u1', batchId: batch.id }),
    )
    await store.appendAudit(
      buildAudit({ at: clock.now(), event: 'batch.generated', userId: 'u2', batchId: 'some-other-batch' }),
    )
    expect(await rulesOf(store)).toEqual([['batch-generated-audited', 'u2', batch.id]])
    await store.appendAudit(
      buildAudit({ at: clock.now(), event: 'batch.generated', userId: 'u2', batchId: batch.id }),
    )
    expect(await rulesOf(store)).toEqual([])
  })

  it('used-matches-redeem-audit: a code consumed without its login.success row', async () => {
    const store = memoryStore()
    const { batch, codes } = await seedBatch(store, { userId: 'u1', createdAt: T0, count: 3 })
    await store.appendAudit(buildAudit({ at: T0, event: 'batch.generated', userId: 'u1', batchId: batch.id }))
    expect(await rulesOf(store)).toEqual([])
    expect(await store.consumeCode({ userId: 'u1', digests: [codes[1]!.digest], now: T0 + 1 })).not.toBeNull()
    const report = await checkStoreInvariants(store, { userIds: ['u1'] })
    expect(report.violations).toEqual([
      {
        rule: 'used-matches-redeem-audit',
        userId: 'u1',
        batchId: null,
        figures: { usedCodes: 1, redeemAuditRows: 0, importedUsed: 0, byBatch: `${batch.id} 1/0` },
      },
    ])
  })

  it('used-matches-redeem-audit: a login.success row with no consume (a failure row does not count)', async () => {
    const { store, clock, active } = await serviceState()
    await store.appendAudit(
      buildAudit({
        at: clock.now(),
        event: 'login.success',
        userId: 'u1',
        batchId: active.id,
        outcome: 'failure',
      }),
    )
    expect(await rulesOf(store)).toEqual([])
    await store.appendAudit(
      buildAudit({
        at: clock.now(),
        event: 'login.success',
        userId: 'u1',
        batchId: active.id,
        outcome: 'success',
      }),
    )
    const report = await checkStoreInvariants(store, { userIds: ['u1', 'u2'] })
    expect(report.violations).toMatchObject([
      {
        rule: 'used-matches-redeem-audit',
        userId: 'u1',
        batchId: null,
        figures: { usedCodes: 2, redeemAuditRows: 3, importedUsed: 0, byBatch: `${active.id} 1/2` },
      },
    ])
  })

  it('batch-issued-nonzero: a batch of zero codes', async () => {
    const store = memoryStore()
    const { batch } = await seedBatch(store, { userId: 'u1', createdAt: T0, count: 0 })
    await store.appendAudit(buildAudit({ at: T0, event: 'batch.generated', userId: 'u1', batchId: batch.id }))
    const report = await checkStoreInvariants(store, { userIds: ['u1'] })
    expect(report.violations).toEqual([
      {
        rule: 'batch-issued-nonzero',
        userId: 'u1',
        batchId: batch.id,
        figures: { issued: 0, unused: 0, used: 0, invalidated: 0, deleted: 0 },
      },
    ])
  })

  it('batch-counts-balance: a batch that lost a code from its counts', async () => {
    const { store, old } = await serviceState()
    const lossy = misreporting(store, {
      summary: (b) =>
        b.id === old.id ? { ...b, invalidated: b.invalidated + b.unused, unused: 0, used: 0 } : b,
    })
    const report = await checkStoreInvariants(lossy, { userIds: ['u1', 'u2'] })
    // used 1 → 0 for the old batch also unbalances the redeem audit: two rules, each named.
    expect(report.violations.map((v) => [v.rule, v.batchId])).toEqual([
      ['batch-counts-balance', old.id],
      ['used-matches-redeem-audit', null],
    ])
    expect(report.violations[0]!.figures).toEqual({
      issued: 4,
      unused: 0,
      used: 0,
      invalidated: 3,
      deleted: 0,
      accounted: 3,
    })
    // Only the balance broken: one code missing from the unused count.
    const missing = misreporting(store, {
      summary: (b) => (b.id === old.id ? { ...b, unused: b.unused - 1 } : b),
    })
    expect(await rulesOf(missing)).toEqual([['batch-counts-balance', 'u1', old.id]])
    // And one counted twice.
    const twice = misreporting(store, {
      summary: (b) => (b.id === old.id ? { ...b, deleted: b.deleted + 1 } : b),
    })
    expect(await rulesOf(twice)).toEqual([['batch-counts-balance', 'u1', old.id]])
  })

  it('one-active-batch: a superseded batch still active', async () => {
    const { store, old, active } = await serviceState()
    const two = misreporting(store, { summary: (b) => (b.id === old.id ? { ...b, status: 'active' } : b) })
    const report = await checkStoreInvariants(two, { userIds: ['u1', 'u2'] })
    expect(report.violations).toEqual([
      {
        rule: 'one-active-batch',
        userId: 'u1',
        batchId: null,
        figures: { active: 2, batchIds: `${active.id},${old.id}` },
      },
    ])
  })

  it('active-batch-agrees: getActiveBatch and listBatches disagree', async () => {
    const { store, active } = await serviceState()
    expect(await rulesOf(misreporting(store, { active: (b) => (b?.userId === 'u1' ? null : b) }))).toEqual([
      ['active-batch-agrees', 'u1', active.id],
    ])
    const stale = misreporting(store, {
      active: (b) => (b?.userId === 'u2' ? { ...b, used: 0, unused: 4 } : b),
    })
    expect(await rulesOf(stale)).toEqual([['active-batch-agrees', 'u2', expect.any(String)]])
    const ended = misreporting(store, {
      summary: (b) => (b.userId === 'u2' ? { ...b, status: 'disabled' } : b),
      active: (b) => (b?.userId === 'u2' ? { ...b, status: 'active' } : b),
    })
    expect(await rulesOf(ended)).toEqual([['active-batch-agrees', 'u2', expect.any(String)]])
  })

  it('sweeps only the users asked for', async () => {
    const { store, clock } = await serviceState()
    await seedBatch(store, { userId: 'u3', createdAt: clock.now() })
    expect(await rulesOf(store, ['u1', 'u2'])).toEqual([])
    expect((await rulesOf(store, ['u3'])).map(([rule]) => rule)).toEqual(['batch-generated-audited'])
  })

  it('pages listBatches and listAudit: 120 batches and 1,500 redeem rows, no false violation', async () => {
    const store = memoryStore()
    let at = T0
    for (let i = 0; i < 120; i++) {
      const { batch } = await seedBatch(store, { userId: 'u1', createdAt: ++at, count: 1 })
      await store.appendAudit(buildAudit({ at, event: 'batch.generated', userId: 'u1', batchId: batch.id }))
    }
    // 1,500 consumes, each with its row, through the one-call redeem.
    const seeded = await seedBatch(store, { userId: 'u4', createdAt: ++at, count: 1_500 })
    await store.appendAudit(
      buildAudit({ at, event: 'batch.generated', userId: 'u4', batchId: seeded.batch.id }),
    )
    for (const c of seeded.codes) {
      const out = await store.redeemCode({
        userId: 'u4',
        digests: [c.digest],
        now: ++at,
        keys: [],
        reset: [],
        audit: buildAudit({ at, event: 'login.success', userId: 'u4', outcome: 'success' }),
      })
      expect(out.outcome).toBe('consumed')
    }
    const report = await checkStoreInvariants(store, { userIds: ['u1', 'u4'] })
    expect(report.violations).toEqual([])
    expect(report.checked).toMatchObject({ batches: 121, usedCodes: 1_500, redeemAuditRows: 1_500 })
    // The 1,501st redeem row, past the first page, is still counted.
    await store.appendAudit(
      consumedAudit(buildAudit({ at: ++at, event: 'login.success', userId: 'u4', outcome: 'success' }), {
        codeId: 'x',
        batchId: seeded.batch.id,
        keyId: 'k1',
        remaining: 0,
      }),
    )
    expect(await rulesOf(store, ['u4'])).toEqual([['used-matches-redeem-audit', 'u4', null]])
  })

  it('never reports a digest; expectStoreInvariants fails with one readable line per violation', async () => {
    const store = memoryStore()
    const { batch, codes } = await seedBatch(store, { userId: 'u1', createdAt: T0, count: 2 })
    await store.consumeCode({ userId: 'u1', digests: [codes[0]!.digest], now: T0 + 1 })
    const report = await checkStoreInvariants(store, { userIds: ['u1'] })
    expect(report.violations.map((v) => v.rule)).toEqual([
      'used-matches-redeem-audit',
      'batch-generated-audited',
    ])
    const text = JSON.stringify(report) + report.violations.map(formatViolation).join('\n')
    for (const c of codes) {
      expect(text).not.toContain(Buffer.from(c.digest).toString('hex'))
      expect(text).not.toContain(Buffer.from(c.digest).toString('base64'))
    }
    expect(report.violations.map(formatViolation)).toEqual([
      `used-matches-redeem-audit user=u1 usedCodes=1 redeemAuditRows=0 importedUsed=0 byBatch=${batch.id} 1/0`,
      `batch-generated-audited user=u1 batch=${batch.id} status=active createdAt=${T0} generatedAuditRows=0`,
    ])
    const error = await expectStoreInvariants(store, { userIds: ['u1'] }, 'self-test').then(
      () => null,
      (e: unknown) => e as Error,
    )
    expect(error?.message).toContain('store invariants (self-test): 2 violation(s)')
    expect(String((error as { actual?: unknown })?.actual)).toContain('batch-generated-audited user=u1')
  })
})
