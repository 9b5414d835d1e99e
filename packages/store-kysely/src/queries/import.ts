/**
 * Statements of the import aggregate: the batch id and the user's active batch looked up, then an
 * imported batch and its codes written as the source had them (status, end, each code's state and
 * use), with the row fields every other statement reads: `invalidated` / `deleted` counters on the
 * batch, `changed_at` on each code that was dead already (see {@link importedChangedAt}).
 * Uncompiled Kysely builders, like the other `queries/` files.
 */
import type { ImportedBatch, ImportedCode } from '@recovery-codes/core'
import type { SqlDialect } from '../dialect.ts'
import { bytes } from '../sql/template.ts'
import type { Db } from './db.ts'

/**
 * When an imported code's row became purgeable for a reason other than expiry (`changed_at`):
 * every code of a batch that ended, at its `endedAt` (as `endBatch` and supersede set it); in an
 * active batch, an invalidated or deleted code at the batch's `createdAt` (the source gives no
 * time); `null` for the active and used codes of an active batch, which consume and history read
 * as a redeem leaves them.
 */
export function importedChangedAt(batch: ImportedBatch, code: ImportedCode): number | null {
  if (batch.status !== 'active') return batch.endedAt
  return code.state === 'invalidated' || code.state === 'deleted' ? batch.createdAt : null
}

/** The statements of the import aggregate for dialect `d`. */
export function importQueries(d: SqlDialect) {
  const { ts } = d
  const count = (b: ImportedBatch, state: ImportedCode['state']) =>
    b.codes.reduce((n, c) => (c.state === state ? n + 1 : n), 0)

  return {
    /** Whether a batch with this id exists, for any user (the primary key). */
    batchWithId: (db: Db, id: string) => db.selectFrom('rc_batches').select('id').where('id', '=', id),

    /**
     * The user's active batch, through the partial one-active-batch index (MySQL has none: its
     * store reads the generated `active_user_id`, `queries/mysql.ts` `activeBatchId`).
     */
    activeBatchOf: (db: Db, userId: string) =>
      db.selectFrom('rc_batches').select('id').where('user_id', '=', userId).where('status', '=', 'active'),

    /** The batch row: counters from its codes' states (`used` is derived from the code rows). */
    insertImportedBatch: (db: Db, b: ImportedBatch) =>
      db.insertInto('rc_batches').values({
        id: b.id,
        user_id: b.userId,
        key_id: b.keyId,
        status: b.status,
        created_at: ts(b.createdAt),
        expires_at: b.expiresAt === null ? null : ts(b.expiresAt),
        ended_at: b.endedAt === null ? null : ts(b.endedAt),
        issued: b.codes.length,
        purged_used: 0,
        invalidated: count(b, 'invalidated'),
        deleted: count(b, 'deleted'),
      }),

    /** One chunk of the batch's codes, each in its own state. */
    insertImportedCodes: (db: Db, b: ImportedBatch, codes: readonly ImportedCode[]) =>
      db.insertInto('rc_codes').values(
        codes.map((c) => {
          const changedAt = importedChangedAt(b, c)
          return {
            id: c.id,
            user_id: b.userId,
            batch_id: b.id,
            key_id: b.keyId,
            digest: bytes(c.digest),
            state: c.state,
            created_at: ts(b.createdAt),
            expires_at: b.expiresAt === null ? null : ts(b.expiresAt),
            used_at: c.usedAt === null ? null : ts(c.usedAt),
            changed_at: changedAt === null ? null : ts(changedAt),
          }
        }),
      ),
  }
}
