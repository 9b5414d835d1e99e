/**
 * What the import suite (`import.ts`, `import-races.ts`) shares: the store it needs, builders of
 * imported batches and their audit rows, the summary a batch must read back as, and the guard that
 * skips the suite on a store without the optional `importBatch`.
 */
import type {
  AttemptStore,
  AuditRecord,
  AuditStore,
  BatchStatus,
  BatchStore,
  BatchSummary,
  CodeState,
  ImportedBatch,
  ImportStore,
  RedeemStore,
  RetentionStore,
} from '@recovery-codes/core'
import { it } from 'vitest'
import { buildAudit, randomDigest, uniqueId } from '../fixtures.ts'
import type { StoreConformanceContext } from './context.ts'

/** What the import suite runs on; `importBatch` is optional (the tests skip without it). */
export type ImportSuiteStore = BatchStore &
  AttemptStore &
  AuditStore &
  RetentionStore &
  RedeemStore &
  Partial<ImportStore>

export const STATUSES: readonly BatchStatus[] = ['active', 'superseded', 'disabled', 'deleted']
export const STATES: readonly CodeState[] = ['active', 'used', 'invalidated', 'deleted']

/**
 * An {@link ImportedBatch}: `userId` and `createdAt` required; `status` default `active`, `endedAt`
 * default `createdAt + 100` for a batch that is not active; one code per entry of `states`
 * (default three `active`), a `used` one used at `createdAt + 10 + its index`.
 */
export function buildImported(
  input: Pick<ImportedBatch, 'userId' | 'createdAt'> &
    Partial<Omit<ImportedBatch, 'codes'>> & { states?: readonly CodeState[] },
): ImportedBatch {
  const { states = ['active', 'active', 'active'], ...rest } = input
  const status = rest.status ?? 'active'
  return {
    id: uniqueId('imported'),
    keyId: 'legacy1',
    expiresAt: null,
    status,
    endedAt: status === 'active' ? null : input.createdAt + 100,
    ...rest,
    codes: states.map((state, i) => ({
      id: uniqueId('icode'),
      digest: randomDigest(),
      state,
      usedAt: state === 'used' ? input.createdAt + 10 + i : null,
    })),
  }
}

/** The `batch.imported` audit row of `batch`, at `at` (default its `createdAt`), with a fresh id. */
export function importAudit(batch: ImportedBatch, at = batch.createdAt): AuditRecord {
  return buildAudit({
    at,
    event: 'batch.imported',
    userId: batch.userId,
    batchId: batch.id,
    outcome: 'success',
    data: { codes: batch.codes.length, status: batch.status },
  })
}

/** The summary an imported batch reads back as: its fields, and counts by its codes' states. */
export function summaryOf(batch: ImportedBatch): BatchSummary {
  const count = (state: CodeState) => batch.codes.filter((c) => c.state === state).length
  const uses = batch.codes.flatMap((c) => (c.state === 'used' ? [c.usedAt!] : []))
  return {
    id: batch.id,
    userId: batch.userId,
    keyId: batch.keyId,
    status: batch.status,
    createdAt: batch.createdAt,
    expiresAt: batch.expiresAt,
    endedAt: batch.endedAt,
    issued: batch.codes.length,
    unused: count('active'),
    used: count('used'),
    invalidated: count('invalidated'),
    deleted: count('deleted'),
    viewedAt: null,
    downloadedAt: null,
    emailedAt: null,
    verifiedAt: null,
    lastUsedAt: uses.length === 0 ? null : Math.max(...uses),
  }
}

/** The import calls of the running store (it must have `importBatch`: tests skip otherwise). */
export function importCallsOf(ctx: StoreConformanceContext<ImportSuiteStore>) {
  const importBatch = (batch: ImportedBatch, audit: AuditRecord = importAudit(batch)) =>
    ctx.store.importBatch!(batch, audit)
  return {
    importBatch,
    /** Imports `batch` and fails unless the outcome is `imported`. */
    imported: async (batch: ImportedBatch): Promise<ImportedBatch> => {
      const outcome = await importBatch(batch)
      if (outcome !== 'imported') throw new Error(`expected imported, got ${outcome}`)
      return batch
    },
    /** The user's `batch.imported` audit rows, newest first. */
    importAudits: (userId: string) => ctx.store.listAudit({ limit: 100, userId, event: 'batch.imported' }),
  }
}

/** An `it` that skips on a store without `importBatch` (the method is optional in the port). */
export function importIt(ctx: StoreConformanceContext<ImportSuiteStore>) {
  return (name: string, fn: () => Promise<void>, timeout?: number) =>
    it(
      name,
      async (t) => {
        if (typeof ctx.store.importBatch !== 'function') return t.skip('the store has no importBatch')
        await fn()
      },
      timeout,
    )
}
