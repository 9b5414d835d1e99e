/**
 * Every state change commits with its audit row: generate, regenerate, invalidate, delete, disable
 * and purge hand the row to the store call that makes the change, so a failing `appendAudit` (the
 * best-effort path) loses none of them, and a change the store refuses leaves no row.
 */
import { describe, expect, it } from 'vitest'
import { memoryStore } from '../../../store-memory/src/index.ts'
import { createManualClock } from '../../../testing/src/clock.ts'
import { randomPepperSecret } from '../../../testing/src/fixtures.ts'
import { createCaptureLogger } from '../../../testing/src/logger.ts'
import { isRecoveryCodesError } from '../errors.ts'
import type { RecoveryCodeStore } from '../ports/store.ts'
import { createRecoveryCodes } from './create.ts'

const DAY_MS = 86_400_000

/** The memory store, with `appendAudit` (the separate, best-effort append) always failing. */
function withoutSeparateAudit(inner: RecoveryCodeStore): RecoveryCodeStore & { appends: number } {
  const wrapped = Object.create(inner) as RecoveryCodeStore & { appends: number }
  wrapped.appends = 0
  wrapped.appendAudit = async () => {
    wrapped.appends++
    throw new Error('audit table unavailable')
  }
  return wrapped
}

function setup(options: { hardFailureCap?: number } = {}) {
  const inner = memoryStore()
  const store = withoutSeparateAudit(inner)
  const clock = createManualClock()
  const logger = createCaptureLogger()
  const rc = createRecoveryCodes({
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    activation: 'immediate',
    store,
    clock,
    logger,
    cooldown: { baseSeconds: 1, multiplier: 1, cutoffSeconds: 1 },
    purge: { retentionDays: 1, maxDeletionsPerRun: null, deleteEmptyBatches: true, batchSize: 4 },
    ...options,
  })
  const events = async (userId: string | null) =>
    (await inner.listAudit({ limit: 1_000, ...(userId === null ? {} : { userId }) }))
      .map((r) => r.event)
      .reverse()
  return { rc, inner, store, clock, logger, events }
}

async function generate(rc: ReturnType<typeof setup>['rc'], userId: string) {
  const g = await rc.generate({ userId })
  if (!g.ok) throw new Error(`generate refused: ${g.reason}`)
  return g
}

describe('state changes commit with their audit rows', () => {
  it('generate, regenerate, invalidate, delete code and delete batch each leave their row', async () => {
    const { rc, clock, store, events } = setup()
    const first = await generate(rc, 'u1')
    clock.advance(2_000)
    const second = await generate(rc, 'u1')
    expect(await rc.invalidateCode({ userId: 'u1', code: second.codes[0]! })).toMatchObject({ ok: true })
    expect(await rc.deleteCode({ userId: 'u1', code: second.codes[1]! })).toMatchObject({ ok: true })
    await rc.deleteBatch({ userId: 'u1' })

    expect(await events('u1')).toEqual([
      'batch.generated',
      'batch.generated',
      'code.invalidated',
      'code.deleted',
      'batch.deleted',
    ])
    // None of them went through the separate append.
    expect(store.appends).toBe(0)
    const rows = await store.listAudit({ limit: 10, userId: 'u1', event: 'batch.generated' })
    expect(rows.map((r) => r.batchId)).toEqual([second.batchId, first.batchId])
    expect(rows[0]).toMatchObject({ outcome: 'success', data: { count: 10, expires: false } })
  })

  it('a refused change leaves no row: an unknown code, a second delete', async () => {
    const { rc, events } = setup()
    const g = await generate(rc, 'u1')
    expect(await rc.invalidateCode({ userId: 'u1', code: 'AAAA-BBBB-CCCC' })).toMatchObject({ ok: false })
    expect(await rc.invalidateCode({ userId: 'u1', code: g.codes[0]! })).toMatchObject({ ok: true })
    expect(await rc.invalidateCode({ userId: 'u1', code: g.codes[0]! })).toMatchObject({ ok: false })
    await rc.deleteBatch({ userId: 'u1' })
    await expect(rc.deleteBatch({ userId: 'u1' })).rejects.toSatisfy((e) =>
      isRecoveryCodesError(e, 'NOT_FOUND'),
    )
    const rows = (await events('u1')).filter((e) => !e.endsWith('.failure'))
    expect(rows).toEqual(['batch.generated', 'code.invalidated', 'batch.deleted'])
  })

  it('a generate the store refuses writes neither the batch nor its row', async () => {
    const { rc, inner, store, events } = setup()
    store.createBatch = async () => {
      throw new Error('disk full')
    }
    await expect(rc.generate({ userId: 'u1' })).rejects.toSatisfy((e) =>
      isRecoveryCodesError(e, 'STORE_UNAVAILABLE'),
    )
    expect(await inner.getActiveBatch('u1')).toBeNull()
    expect(await events('u1')).toEqual([])
  })

  it('the hard cap disables the batch with its batch.disabled row', async () => {
    const { rc, clock, inner, events } = setup({ hardFailureCap: 5 })
    await generate(rc, 'u1')
    for (let i = 0; i < 12 && (await inner.getActiveBatch('u1')) !== null; i++) {
      await rc.redeem({ userId: 'u1', code: `WRNG-${String(i).padStart(4, '0')}-CODE` })
      clock.advance(2_000)
    }
    expect(await inner.getActiveBatch('u1')).toBeNull()
    expect((await events('u1')).filter((e) => e.startsWith('batch.'))).toEqual([
      'batch.generated',
      'batch.disabled',
    ])
  })

  it('purge commits one row per chunk with its count; the counts sum to the run', async () => {
    const { rc, clock, inner } = setup()
    for (const userId of ['u1', 'u2']) {
      await generate(rc, userId)
      await rc.deleteBatch({ userId })
    }
    clock.advance(2 * DAY_MS)
    const report = await rc.purge()
    expect(report).toMatchObject({ deleted: 20, batchesDeleted: 2, done: true })
    const chunks = await inner.listAudit({ limit: 100, event: 'codes.purged' })
    // Chunks of 4: 4 + 4 + 4 + 4 + 4.
    expect(chunks.map((r) => r.data?.deleted)).toEqual([4, 4, 4, 4, 4])
    const batches = await inner.listAudit({ limit: 100, event: 'batches.purged' })
    expect(batches.map((r) => r.data?.deleted)).toEqual([2])
  })
})
