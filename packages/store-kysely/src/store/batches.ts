/**
 * The batches aggregate: batches and their codes. Batch creation supersedes and inserts in one
 * transaction (per-user advisory lock on PostgreSQL, one writer at a time on SQLite), and so does
 * ending a batch (the same lock: `addCodes` takes it too, `store/replace.ts`); consume is
 * one conditional `UPDATE … RETURNING` on the unique `(user_id, digest)` row; flags and state
 * changes are compare-and-set, each with its audit row in the same transaction.
 */
import type { AuditRecord, CodeMatch, ConsumedCode, RecoveryCodeStore } from '@recovery-codes/core'
import type { CompiledQuery } from 'kysely'
import { auditRecord, count, newBatch, oneOf, time, unreadable } from '../checks.ts'
import { summary } from '../rows.ts'
import { bytes } from '../sql/template.ts'
import { Rollback, type StoreContext } from './context.ts'

/** Rows per multi-row insert of codes (well under SQLite's 32,766 bound parameters). */
const INSERT_CHUNK = 200

type BatchMethods = Pick<
  RecoveryCodeStore,
  | 'createBatch'
  | 'consumeCode'
  | 'findCode'
  | 'setCodeState'
  | 'endBatch'
  | 'setBatchFlag'
  | 'getActiveBatch'
  | 'listBatches'
>

/** The batches aggregate; `consume` and `remaining` are the redeem's compiled statements. */
export function batchStore(
  { k, q, exec, run, tx, appendAudit }: StoreContext,
  consume: (userId: string, digests: Buffer[], now: number) => CompiledQuery,
  remaining: (i: { batchId: string }) => CompiledQuery,
): BatchMethods {
  /** The audit row of a change, in its transaction (`undefined`: none asked for). */
  const withAudit = async (trx: Parameters<StoreContext['exec']>[0], audit: AuditRecord | undefined) => {
    if (audit !== undefined) await exec(trx, appendAudit(audit))
  }

  return {
    createBatch: (batch, codes, audit) =>
      run('createBatch', async () => {
        newBatch(batch, codes, audit)
        await tx(async (trx) => {
          const lock = q.lockUser(batch.userId)
          if (lock !== null) await lock.execute(trx)
          // Every SQLite transaction here starts with a write, so it takes the write lock at once
          // (busy handler honoured) instead of failing a read-to-write upgrade.
          await q.endActiveBatchCodes(trx, { userId: batch.userId, now: batch.createdAt }).execute()
          await q.supersedeActive(trx, { userId: batch.userId, now: batch.createdAt }).execute()
          await q.insertBatch(trx, batch, codes.length).execute()
          for (let i = 0; i < codes.length; i += INSERT_CHUNK) {
            await q.insertCodes(trx, batch, codes.slice(i, i + INSERT_CHUNK)).execute()
          }
          await withAudit(trx, audit)
        })
      }),

    consumeCode: (input) =>
      run('consumeCode', async (): Promise<ConsumedCode | null> => {
        time('now', input.now)
        const digests = input.digests.map(bytes)
        if (digests.length === 0 || unreadable(input.userId)) return null
        type Row = { id: string; batch_id: string; key_id: string }
        const found = (row: Row, left: unknown): ConsumedCode => ({
          codeId: row.id,
          batchId: row.batch_id,
          keyId: row.key_id,
          remaining: Number(left ?? 0),
        })
        return tx(async (trx) => {
          const row = (await exec<Row>(trx, consume(input.userId, digests, input.now))).rows[0]
          if (row === undefined) return null
          const lock = q.lockBatch(row.batch_id)
          if (lock !== null) await lock.execute(trx)
          return found(row, (await exec<{ n: number }>(trx, remaining({ batchId: row.batch_id }))).rows[0]?.n)
        })
      }),

    findCode: (input) =>
      run('findCode', async (): Promise<CodeMatch | null> => {
        time('now', input.now)
        const digests = input.digests.map(bytes)
        if (digests.length === 0 || unreadable(input.userId)) return null
        const rows = await q.find(k, { userId: input.userId, digests, now: input.now }).execute()
        for (const digest of digests) {
          const row = rows.find((r) => Buffer.from(r.digest).equals(digest))
          if (row !== undefined) return { codeId: row.id, batchId: row.batch_id, keyId: row.key_id }
        }
        return null
      }),

    setCodeState: (input) =>
      run('setCodeState', async () => {
        oneOf('to', input.to, ['invalidated', 'deleted'])
        time('now', input.now)
        if (input.audit !== undefined) auditRecord(input.audit)
        if (unreadable(input.userId, input.codeId)) return false
        return tx(async (trx) => {
          const row = await q.setCodeState(trx, input).executeTakeFirst()
          if (row === undefined) return false
          await q.countStateChange(trx, { batchId: row.batch_id, to: input.to }).execute()
          await withAudit(trx, input.audit)
          return true
        })
      }),

    endBatch: (input) =>
      run('endBatch', async () => {
        oneOf('to', input.to, ['disabled', 'deleted'])
        time('now', input.now)
        if (input.audit !== undefined) auditRecord(input.audit)
        if (unreadable(input.userId, input.batchId)) return false
        return tx(async (trx) => {
          // PostgreSQL: under the user's lock, like `createBatch` and `addCodes` (`store/replace.ts`):
          // codes added after the first step would otherwise stay live in the ended batch.
          const lock = q.lockUser(input.userId)
          if (lock !== null) await lock.execute(trx)
          await q.endBatchCodes(trx, input).execute()
          const row = await q.endBatch(trx, input).executeTakeFirst()
          if (row === undefined) throw new Rollback()
          await withAudit(trx, input.audit)
          return true
        }, false)
      }),

    setBatchFlag: (input) =>
      run('setBatchFlag', async () => {
        oneOf('flag', input.flag, ['viewed', 'downloaded', 'emailed', 'verified'])
        time('now', input.now)
        if (unreadable(input.userId, input.batchId)) return false
        const row = await q.setBatchFlag(k, input).executeTakeFirst()
        return row !== undefined
      }),

    getActiveBatch: (userId) =>
      run('getActiveBatch', async () => {
        if (unreadable(userId)) return null
        const row = await q.activeBatch(k, userId).executeTakeFirst()
        return row === undefined ? null : summary(row)
      }),

    listBatches: (input) =>
      run('listBatches', async () => {
        count('offset', input.offset)
        count('limit', input.limit)
        if (unreadable(input.userId)) return { items: [], total: 0 }
        const [rows, total] = await Promise.all([
          input.limit === 0 ? Promise.resolve([]) : q.history(k, input).execute(),
          q.historyTotal(k, input.userId).executeTakeFirst(),
        ])
        return { items: rows.map(summary), total: Number(total?.total ?? 0) }
      }),
  }
}
