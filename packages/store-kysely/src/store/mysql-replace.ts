/**
 * The replacement aggregate on MySQL / MariaDB (see `store/mysql.ts`): `addCodes` in one READ
 * COMMITTED transaction on a connection that holds the user's named lock, the one `createBatch`
 * and `endBatch` take, so the batch cannot be superseded or ended between its check and the commit
 * (an ending that missed the added rows would leave them live in an ended batch, never purged).
 *
 * In the store's lock order (code rows → batch rows): the batch's key and expiry are read first
 * (they never change; a batch that is not the user's live one is `false` at once, nothing
 * written), then the codes are inserted, then the compare-and-set on the batch row
 * (`raiseIssued`: active, the user's, unexpired) decides: one affected row, and the audit row is
 * appended; none, and the transaction rolls back. A digest that repeats one of the user's rows
 * fails the insert (`ER_DUP_ENTRY`) and leaves no trace.
 */
import type { ReplaceStore } from '@recovery-codes/core'
import { addedCodes, unreadable } from '../checks.ts'
import { toMs } from '../rows.ts'
import { Rollback } from './context.ts'
import type { MysqlContext } from './mysql.ts'

/** Rows per multi-row insert of codes. */
const INSERT_CHUNK = 200

/** The replacement aggregate on MySQL. */
export function mysqlReplace(ctx: MysqlContext): ReplaceStore {
  const { q, m, exec, run, tx, keyBytes, tooLong, auditBytes, appendAudit, userLocked } = ctx
  const changed = (r: { numUpdatedRows: bigint } | undefined) => Number(r?.numUpdatedRows ?? 0) === 1

  return {
    addCodes: (input) =>
      run('addCodes', async () => {
        addedCodes(input)
        for (const c of input.codes) keyBytes('code.id', c.id)
        auditBytes(input.audit)
        const { userId, batchId, codes, now, audit } = input
        if (unreadable(userId, batchId) || tooLong(userId, batchId)) return false
        return userLocked('addCodes', userId, (conn) =>
          tx(
            async (trx) => {
              const batch = await m.addedTo(trx, { userId, batchId }).executeTakeFirst()
              if (batch === undefined) return false
              const expiresAt = batch.expires_at === null ? null : toMs(batch.expires_at)
              if (batch.status !== 'active' || (expiresAt !== null && now >= expiresAt)) return false
              const target = { id: batchId, userId, keyId: batch.key_id, createdAt: now, expiresAt }
              for (let i = 0; i < codes.length; i += INSERT_CHUNK) {
                await q.insertCodes(trx, target, codes.slice(i, i + INSERT_CHUNK)).execute()
              }
              const raised = await q.raiseIssued(trx, { userId, batchId, now, count: codes.length })
              if (!changed(await raised.executeTakeFirst())) throw new Rollback()
              if (audit !== undefined) await exec(trx, appendAudit(audit))
              return true
            },
            false,
            conn,
          ),
        )
      }),
  }
}
