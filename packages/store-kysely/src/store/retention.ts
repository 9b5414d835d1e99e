/**
 * The retention aggregate: purge chunks. Each call deletes at most `limit` rows in one short
 * statement (or one chunk-sized transaction with its audit row and, for codes, the fold of their
 * uses into their batch); no transaction spans chunks, and the service sizes chunks by a time
 * budget. SQLite: codes go in row order, a walk over the table's rowids that the store carries
 * from chunk to chunk of one run (so each page is written about once), and after each chunk a
 * passive WAL checkpoint, so the pages a purge writes are copied back by the purge (steady chunks,
 * one fsync each) and not by the autocheckpoint of some later redeem's commit, then a pause of a
 * fraction of the chunk's time (`purgeRestRatio`) so that writers waiting for the lock get in.
 */

import { setTimeout as pause } from 'node:timers/promises'
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
/** SQLite: a chunk of `limit` rows looks for them among the next `limit × WALK_SPAN` rowids. */
const WALK_SPAN = 20

/** The retention aggregate of one store. */
export function retentionStore(
  { k, q, d, exec, run, tx, appendAudit }: StoreContext,
  restRatio: number,
): RetentionMethods {
  const { ts } = d
  const purgeFolded = template(
    (i: any) => ({ compile: () => q.purgeCodesFolded(k, i).compile(k) }),
    ['before', 'limit'],
  )
  const purgeReturning = template((i: any) => q.purgeCodes(k, i), ['before', 'limit'])
  const purgeInRowOrder = template(
    (i: any) => q.purgeCodesInRowOrder(k, i),
    ['before', 'after', 'span', 'limit'],
  )
  /**
   * SQLite: where the row-order walk of the current run stands (the last rowid it deleted), for
   * the run whose `before` it was. A chunk with another `before` starts a new walk at rowid 0.
   */
  let walk: { before: number; after: number } | null = null
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

  /** PostgreSQL: one chunk, the delete and the fold in one statement. */
  const purgeCodesPg = (input: Chunk) =>
    purgeChunk('purgeCodes', input, async (db) => {
      const r = await exec<{ deleted: number | string }>(
        db,
        purgeFolded({ before: ts(input.before), limit: input.limit }),
      )
      return Number(r.rows[0]?.deleted ?? 0)
    })

  /** SQLite: one chunk of the row-order walk, then a passive checkpoint. */
  async function purgeCodesSqlite(input: Chunk): Promise<number> {
    let walked: { before: number; after: number } | undefined
    const deleted = await purgeChunk(
      'purgeCodes',
      input,
      async (db) => {
        const { before, limit } = input
        const after = walk?.before === before ? walk.after : 0
        const span = limit * WALK_SPAN
        const { rows } = await exec<Deleted & { rowid: number }>(
          db,
          purgeInRowOrder({ before: ts(before), after, span, limit }),
        )
        let all: readonly Deleted[] = rows
        // A window with fewer eligible rows than asked: the rest from the purge-time index, and
        // the walk goes on past the window.
        let next = after + span
        if (rows.length === limit) next = rows.reduce((m, r) => Math.max(m, Number(r.rowid)), after)
        if (rows.length < limit) {
          const more = await exec<Deleted>(
            db,
            purgeReturning({ before: ts(before), limit: limit - rows.length }),
          )
          all = [...rows, ...more.rows]
          if (more.rows.length < limit - rows.length) next = 0
        }
        await foldUses(db, all)
        walked = { before, after: next }
        return all.length
      },
      true,
    )
    // Kept once the chunk has committed (a chunk that throws leaves the walk where it was).
    if (walked !== undefined) walk = walked
    if (deleted > 0) await exec(k, checkpoint({})).catch(() => {})
    return deleted
  }

  const deletedCount = (r: { numAffectedRows?: bigint }) => Number(r.numAffectedRows ?? 0)

  return {
    purgeCodes: async (input) => {
      const started = performance.now()
      const deleted = d.pg ? await purgeCodesPg(input) : await purgeCodesSqlite(input)
      // The pause that gives the database back to the workload (see `purgeRestRatio`); none after
      // the last chunk of a run (fewer than asked).
      if (restRatio > 0 && deleted === input.limit && deleted > 0) {
        await pause((performance.now() - started) * restRatio)
      }
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
