/**
 * The retention aggregate on MySQL (see `store/mysql.ts`). A chunk of codes, of empty batches or
 * of limiter counters is one short transaction: pick at most `limit` eligible rows
 * `FOR UPDATE SKIP LOCKED` (purgers, consumers and reservations pass each other), then delete
 * exactly those by key with eligibility checked again; a chunk of codes first folds the used ones
 * into their batches (`purged_used`, `purged_last_used_at`). A chunk of audit rows is one DELETE
 * along the `(at, id)` key. The chunk's audit row, when asked for, is in its transaction.
 */
import { type AuditRecord, purgedAudit, type RecoveryCodeStore } from '@recovery-codes/core'
import { auditRecord, chunk } from '../checks.ts'
import type { Db } from '../queries/index.ts'
import type { MysqlFold } from '../queries/mysql.ts'
import type { MysqlContext } from './mysql.ts'

type RetentionMethods = Pick<
  RecoveryCodeStore,
  'purgeCodes' | 'purgeEmptyBatches' | 'purgeAttempts' | 'purgeAudit'
>
type Chunk = { before: number; limit: number; audit?: AuditRecord }
type Picked = { id: string; batch_id: string; state: string; used_at: unknown }

/** The used codes of a chunk, per batch, in batch-id byte order (the order their rows are locked in). */
function foldsOf(rows: readonly Picked[]): MysqlFold[] {
  const byBatch = new Map<string, MysqlFold>()
  for (const r of rows) {
    if (r.state !== 'used' || r.used_at === null) continue
    const at = Number(r.used_at)
    const f = byBatch.get(r.batch_id)
    if (f === undefined) byBatch.set(r.batch_id, { batchId: r.batch_id, used: 1, lastUsedAt: at })
    else {
      f.used += 1
      f.lastUsedAt = Math.max(f.lastUsedAt, at)
    }
  }
  return [...byBatch.values()].sort((a, b) => Buffer.compare(Buffer.from(a.batchId), Buffer.from(b.batchId)))
}

/** The retention aggregate on MySQL. */
export function mysqlRetention({
  k,
  m,
  exec,
  run,
  tx,
  retry,
  auditBytes,
  appendAudit,
}: MysqlContext): RetentionMethods {
  const deleted = (r: { numDeletedRows: bigint } | undefined) => Number(r?.numDeletedRows ?? 0)

  /** One chunk: checked input, nothing for `limit` 0, `purge` in a transaction with its audit row. */
  function purgeChunk(op: string, input: Chunk, purge: (trx: Db) => Promise<number>): Promise<number> {
    return run(op, async () => {
      chunk(input)
      const { audit } = input
      if (audit !== undefined) auditRecord(audit)
      auditBytes(audit)
      if (input.limit === 0) return 0
      return tx(async (trx) => {
        const n = await purge(trx)
        if (n > 0 && audit !== undefined) await exec(trx, appendAudit(purgedAudit(audit, n)))
        return n
      })
    })
  }

  return {
    purgeCodes: (input) =>
      purgeChunk('purgeCodes', input, async (trx) => {
        const rows = (await m.pickPurgeableCodes(trx, input).execute()) as Picked[]
        if (rows.length === 0) return 0
        const folds = foldsOf(rows)
        if (folds.length > 0) await m.foldPurgedUses(trx, folds).execute()
        const ids = rows.map((r) => r.id)
        return deleted(await m.deletePurgedCodes(trx, { ids, before: input.before }).executeTakeFirst())
      }),

    purgeEmptyBatches: (input) =>
      purgeChunk('purgeEmptyBatches', input, async (trx) => {
        const ids = (await m.pickEmptyBatches(trx, input).execute()).map((r) => r.id)
        if (ids.length === 0) return 0
        return deleted(await m.deleteEmptyBatches(trx, { ids, before: input.before }).executeTakeFirst())
      }),

    purgeAttempts: (input) =>
      purgeChunk('purgeAttempts', input, async (trx) => {
        const keys = (await m.pickStaleAttempts(trx, input).execute()).map((r) => r.key)
        if (keys.length === 0) return 0
        return deleted(await m.deleteStaleAttempts(trx, { keys, before: input.before }).executeTakeFirst())
      }),

    purgeAudit: (input) =>
      run('purgeAudit', async () => {
        chunk(input)
        if (input.limit === 0) return 0
        return deleted(await retry(() => m.purgeAudit(k, input).executeTakeFirst()))
      }),
  }
}
