/**
 * The retention aggregate: purge chunks. Each call deletes at most `limit` rows in one short
 * statement (or one chunk-sized transaction with its audit row and, for codes, the fold of their
 * uses into their batch); no transaction spans chunks, and the service sizes chunks by a time
 * budget. SQLite: after each chunk of codes a passive WAL checkpoint, so the pages a purge writes
 * are copied back by the purge (steady chunks, one fsync each) and not by the autocheckpoint of
 * some later redeem's commit.
 */
import { type AuditRecord, purgedAudit, type RecoveryCodeStore } from '@recovery-codes/core'
import { sql } from 'kysely'
import { auditRecord, chunk } from '../checks.ts'
import type { Db } from '../queries/index.ts'
import { constant, template } from '../sql/template.ts'
import type { StoreContext } from './context.ts'

type RetentionMethods = Pick<
  RecoveryCodeStore,
  'purgeCodes' | 'purgeEmptyBatches' | 'purgeAttempts' | 'purgeAudit'
>
type Chunk = { before: number; limit: number; audit?: AuditRecord }
type Deleted = { batch_id: string; state: string; used_at: unknown }

/** The retention aggregate of one store. */
export function retentionStore({ k, q, d, exec, run, tx, appendAudit }: StoreContext): RetentionMethods {
  const { ts } = d
  const purgeFolded = template(
    (i: any) => ({ compile: () => q.purgeCodesFolded(k, i).compile(k) }),
    ['before', 'limit'],
  )
  const purgeReturning = template((i: any) => q.purgeCodes(k, i), ['before', 'limit'])
  const fold = template((i: any) => ({ compile: () => q.foldPurgedUses(i.folds).compile(k) }), ['folds'])
  const checkpoint = constant(sql`pragma wal_checkpoint(PASSIVE)`, k)

  /**
   * One chunk: checked input, nothing for `limit` 0, `purge` alone (autocommit) without an audit
   * row, or with one ({@link purgedAudit}, written only when something was deleted) in one
   * transaction. `own`: the purge needs its own transaction anyway (SQLite codes: delete + fold).
   */
  async function purgeChunk(
    op: string,
    input: Chunk,
    purge: (db: Db) => Promise<number>,
    own = false,
  ): Promise<number> {
    return run(op, async () => {
      chunk(input)
      if (input.audit !== undefined) auditRecord(input.audit)
      if (input.limit === 0) return 0
      const { audit } = input
      if (audit === undefined && !own) return purge(k)
      return tx(async (trx) => {
        const deleted = await purge(trx)
        if (deleted > 0 && audit !== undefined) await exec(trx, appendAudit(purgedAudit(audit, deleted)))
        return deleted
      })
    })
  }

  /** SQLite: the chunk's uses, folded into their batches (one statement for the whole chunk). */
  async function foldUses(trx: Db, rows: readonly Deleted[]): Promise<void> {
    const byBatch = new Map<string, { b: string; n: number; m: number }>()
    for (const r of rows) {
      if (r.state !== 'used' || r.used_at === null) continue
      const m = Number(r.used_at)
      const f = byBatch.get(r.batch_id)
      if (f === undefined) byBatch.set(r.batch_id, { b: r.batch_id, n: 1, m })
      else {
        f.n += 1
        f.m = Math.max(f.m, m)
      }
    }
    if (byBatch.size > 0) await exec(trx, fold({ folds: JSON.stringify([...byBatch.values()]) }))
  }

  const deletedCount = (r: { numAffectedRows?: bigint }) => Number(r.numAffectedRows ?? 0)

  return {
    purgeCodes: async (input) => {
      if (d.pg) {
        return purgeChunk('purgeCodes', input, async (db) => {
          const r = await exec<{ deleted: number | string }>(
            db,
            purgeFolded({ before: ts(input.before), limit: input.limit }),
          )
          return Number(r.rows[0]?.deleted ?? 0)
        })
      }
      const deleted = await purgeChunk(
        'purgeCodes',
        input,
        async (db) => {
          const { rows } = await exec<Deleted>(
            db,
            purgeReturning({ before: ts(input.before), limit: input.limit }),
          )
          await foldUses(db, rows)
          return rows.length
        },
        true,
      )
      if (deleted > 0) await exec(k, checkpoint({})).catch(() => {})
      return deleted
    },

    purgeEmptyBatches: (input) =>
      purgeChunk('purgeEmptyBatches', input, async (db) =>
        deletedCount(await exec(db, q.purgeEmptyBatches(db, input).compile())),
      ),

    purgeAttempts: (input) =>
      purgeChunk('purgeAttempts', input, async (db) =>
        deletedCount(await exec(db, q.purgeAttempts(db, input).compile())),
      ),

    purgeAudit: (input) =>
      purgeChunk('purgeAudit', input, async (db) =>
        deletedCount(await exec(db, q.purgeAudit(db, input).compile())),
      ),
  }
}
