/**
 * The replacement aggregate on SQLite and PostgreSQL: `addCodes` appends codes to the user's live
 * batch (NIST SP 800-63B-4 §4.2.1.1, replacement on use) in one transaction: the compare-and-set
 * on the batch row (`raiseIssued`: active, the user's, unexpired), then the codes, then the audit
 * row; nothing is written when the compare-and-set changed no row.
 *
 * - SQLite: the transaction holds the write lock from `BEGIN IMMEDIATE`, so every other writer
 *   runs before or after it.
 * - PostgreSQL (READ COMMITTED): it first takes the per-user advisory lock that `createBatch` and
 *   `endBatch` take, so a batch cannot end between the compare-and-set and the commit: an ending
 *   that missed the added rows (they were not committed when it marked the batch's codes dead)
 *   would leave live rows in an ended batch, never purged. The compare-and-set then reads what
 *   committed before the lock was granted.
 */
import type { ReplaceStore } from '@recovery-codes/core'
import { addedCodes, unreadable } from '../checks.ts'
import { toMs } from '../rows.ts'
import type { StoreContext } from './context.ts'

/** Rows per multi-row insert of codes (well under SQLite's 32,766 bound parameters). */
const INSERT_CHUNK = 200

/** The replacement aggregate of one store (SQLite, PostgreSQL). */
export function replaceStore({ q, exec, run, tx, appendAudit }: StoreContext): ReplaceStore {
  return {
    addCodes: (input) =>
      run('addCodes', async () => {
        addedCodes(input)
        const { userId, batchId, codes, now, audit } = input
        if (unreadable(userId, batchId)) return false
        return tx(async (trx) => {
          const lock = q.lockUser(userId)
          if (lock !== null) await lock.execute(trx)
          const batch = await q
            .raiseIssued(trx, { userId, batchId, now, count: codes.length })
            .returning(['key_id', 'expires_at'])
            .executeTakeFirst()
          if (batch === undefined) return false
          const target = {
            id: batchId,
            userId,
            keyId: batch.key_id,
            createdAt: now,
            expiresAt: batch.expires_at === null ? null : toMs(batch.expires_at),
          }
          for (let i = 0; i < codes.length; i += INSERT_CHUNK) {
            await q.insertCodes(trx, target, codes.slice(i, i + INSERT_CHUNK)).execute()
          }
          if (audit !== undefined) await exec(trx, appendAudit(audit))
          return true
        })
      }),
  }
}
