/**
 * The import aggregate on SQLite and PostgreSQL: `importBatch` writes a batch as its source had
 * it, codes and audit row in one transaction, after the checks that decide `exists` and
 * `conflict` in that same transaction, so nothing is read first and written by another call.
 *
 * - SQLite: the transaction holds the write lock from `BEGIN IMMEDIATE`, so every writer of the
 *   file (any connection, any process) runs before or after it, never between its reads and writes.
 * - PostgreSQL (READ COMMITTED): an active import first takes the per-user advisory lock that
 *   `createBatch` takes, so "the user has an active batch" cannot change until it commits; each
 *   later statement reads what committed before the lock was granted. The batch insert is
 *   `ON CONFLICT (id) DO NOTHING`: a concurrent import of the same id (for any user) waits on the
 *   primary key and, once that one commits, inserts nothing, which reads as `exists`.
 */
import type { ImportBatchOutcome, ImportStore } from '@recovery-codes/core'
import { importedBatch } from '../checks.ts'
import type { StoreContext } from './context.ts'

/** Rows per multi-row insert of codes (well under SQLite's 32,766 bound parameters). */
const INSERT_CHUNK = 200

/** The import aggregate of one store (SQLite, PostgreSQL). */
export function importStore({ q, exec, run, tx, appendAudit }: StoreContext): ImportStore {
  return {
    importBatch: (batch, audit) =>
      run('importBatch', async () => {
        importedBatch(batch, audit)
        const active = batch.status === 'active'
        return tx(async (trx): Promise<ImportBatchOutcome> => {
          const lock = active ? q.lockUser(batch.userId) : null
          if (lock !== null) await lock.execute(trx)
          // `exists` before `conflict`: an active batch imported again is `exists`.
          if ((await q.batchWithId(trx, batch.id).executeTakeFirst()) !== undefined) return 'exists'
          if (active && (await q.activeBatchOf(trx, batch.userId).executeTakeFirst()) !== undefined) {
            return 'conflict'
          }
          const inserted = await q
            .insertImportedBatch(trx, batch)
            .onConflict((oc) => oc.column('id').doNothing())
            .returning('id')
            .executeTakeFirst()
          if (inserted === undefined) return 'exists'
          for (let i = 0; i < batch.codes.length; i += INSERT_CHUNK) {
            await q.insertImportedCodes(trx, batch, batch.codes.slice(i, i + INSERT_CHUNK)).execute()
          }
          await exec(trx, appendAudit(audit))
          return 'imported'
        })
      }),
  }
}
