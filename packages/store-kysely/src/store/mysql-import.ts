/**
 * The import aggregate on MySQL / MariaDB (see `store/mysql.ts`): `importBatch` in one READ
 * COMMITTED transaction, checks first, then the inserts.
 *
 * - An active import first takes the user's named lock (`GET_LOCK`, as `createBatch` does, on the
 *   connection the transaction then runs on), so no other batch of the user can become active
 *   between its check and its commit; each statement reads a fresh snapshot, taken after the lock.
 * - The batch insert is guarded by the primary key: a concurrent import of the same id (for any
 *   user) waits on the row, then fails with `ER_DUP_ENTRY` once that one commits; a fresh read
 *   then finds the batch and the call is `exists`, having written nothing (the failed statement
 *   alone rolls back). A deadlock (1213) reruns the whole transaction.
 */
import type { ImportBatchOutcome, ImportedBatch, ImportStore } from '@recovery-codes/core'
import { RecoveryCodesError } from '@recovery-codes/core'
import type { Kysely } from 'kysely'
import { importedBatch } from '../checks.ts'
import { MYSQL_DUP_ENTRY, mysqlErrno } from '../mysql-errors.ts'
import type { RecoveryCodesDatabase } from '../schema.ts'
import type { MysqlContext } from './mysql.ts'

/** Rows per multi-row insert of codes. */
const INSERT_CHUNK = 200

type Trx = Kysely<RecoveryCodesDatabase>

/** The import aggregate on MySQL. */
export function mysqlImport(ctx: MysqlContext): ImportStore {
  const { k, q, m, d, exec, run, tx, keyBytes, auditBytes, appendAudit } = ctx
  const userLock = d.sessionUserLock!

  /** What decides `exists` and `conflict`, read in the transaction (a fresh snapshot each). */
  async function taken(trx: Trx, batch: ImportedBatch): Promise<ImportBatchOutcome | null> {
    if ((await q.batchWithId(trx, batch.id).executeTakeFirst()) !== undefined) return 'exists'
    if (
      batch.status === 'active' &&
      (await m.activeBatchId(trx, batch.userId).executeTakeFirst()) !== undefined
    ) {
      return 'conflict'
    }
    return null
  }

  const write =
    (batch: ImportedBatch, audit: Parameters<ImportStore['importBatch']>[1]) =>
    async (trx: Trx): Promise<ImportBatchOutcome> => {
      const before = await taken(trx, batch)
      if (before !== null) return before
      try {
        await q.insertImportedBatch(trx, batch).execute()
      } catch (error) {
        if (mysqlErrno(error) !== MYSQL_DUP_ENTRY) throw error
        const after = await taken(trx, batch)
        if (after === null) throw error
        return after
      }
      for (let i = 0; i < batch.codes.length; i += INSERT_CHUNK) {
        await q.insertImportedCodes(trx, batch, batch.codes.slice(i, i + INSERT_CHUNK)).execute()
      }
      await exec(trx, appendAudit(audit))
      return 'imported'
    }

  return {
    importBatch: (batch, audit) =>
      run('importBatch', async () => {
        importedBatch(batch, audit)
        keyBytes('batch.id', batch.id)
        keyBytes('batch.userId', batch.userId)
        for (const c of batch.codes) keyBytes('code.id', c.id)
        auditBytes(audit)
        if (batch.status !== 'active') return tx(write(batch, audit))
        const { userId } = batch
        // The named lock lives on one connection: taken before the transaction (before any row
        // lock), released after it, on the same connection, whatever happened in between.
        return k.connection().execute(async (conn) => {
          const granted = (await userLock.take(userId).execute(conn)).rows[0] as { got?: unknown } | undefined
          if (Number(granted?.got) !== 1) {
            throw new RecoveryCodesError('STORE_TIMEOUT', 'store-kysely: importBatch timed out (user lock)')
          }
          try {
            return await tx(write(batch, audit), undefined, conn)
          } finally {
            await userLock
              .release(userId)
              .execute(conn)
              .catch(() => {})
          }
        })
      }),
  }
}
