/**
 * The batches aggregate's writes on MySQL (see `store/mysql.ts`): batch creation and ending under
 * the user's named lock, the consume as row locks (code row, then its batch row), and
 * compare-and-set state changes whose one affected row says who won (no `RETURNING`).
 */
import type { AuditRecord, ConsumedCode, RecoveryCodeStore } from '@recovery-codes/core'
import { RecoveryCodesError } from '@recovery-codes/core'
import { auditRecord, newBatch, oneOf, time, unreadable } from '../checks.ts'
import type { Db } from '../queries/index.ts'
import { bytes, slotNames, slotValues } from '../sql/template.ts'
import { Rollback } from './context.ts'
import type { MysqlContext } from './mysql.ts'

/** Rows per multi-row insert of codes. */
const INSERT_CHUNK = 200
/** The widest digest the `varbinary(255)` column holds (a digest is 32 bytes). */
const MAX_DIGEST_BYTES = 255

/** A consume inside the caller's transaction: the code, or `null` when nothing usable matched. */
export type MysqlConsume = (
  trx: Db,
  userId: string,
  digests: readonly Buffer[],
  now: number,
) => Promise<ConsumedCode | null>

/**
 * The consume as three row-lock steps in the caller's READ COMMITTED transaction: lock the first
 * usable code row (`queries/mysql.ts` `pickCode`), lock its batch row (the batch must still be
 * active: every path that ends a batch ends its live codes first, so this only guards the
 * invariant), mark the code used, then count the batch's codes still active (a fresh snapshot,
 * taken after the batch row lock, so it sees every earlier consume of the batch). Writes the code
 * row only.
 */
export function mysqlConsume({ k, q, m, d, exec, shaped }: MysqlContext): MysqlConsume {
  const { ts } = d
  const lockBatch = shaped('consume:batch', ['batchId'], (s) => m.lockBatchRow(k, s.batchId))
  const markUsed = shaped('consume:mark', ['codeId', 'now'], (s) => m.markUsed(k, s))
  const remaining = shaped('consume:left', ['batchId'], (s) => q.remaining(k, { batchId: s.batchId }))
  return async (trx, userId, digests, now) => {
    const names = slotNames('d', digests.length)
    const pick = shaped(`consume:pick:${digests.length}`, ['userId', 'now', ...names], (s) =>
      m.pickCode(k, { userId: s.userId, digests: names.map((n) => s[n]), now: s.now }),
    )
    type Code = { id: string; batch_id: string; key_id: string }
    const code = (await exec<Code>(trx, pick(slotValues('d', digests, { userId, now: ts(now) })))).rows[0]
    if (code === undefined) return null
    const batch = (await exec<{ status: string }>(trx, lockBatch({ batchId: code.batch_id }))).rows[0]
    if (batch?.status !== 'active') return null
    await exec(trx, markUsed({ codeId: code.id, now: ts(now) }))
    const left = (await exec<{ n: unknown }>(trx, remaining({ batchId: code.batch_id }))).rows[0]?.n
    return { codeId: code.id, batchId: code.batch_id, keyId: code.key_id, remaining: Number(left ?? 0) }
  }
}

type BatchWrites = Pick<
  RecoveryCodeStore,
  'createBatch' | 'consumeCode' | 'setCodeState' | 'endBatch' | 'setBatchFlag'
>

/** The batches aggregate's writes on MySQL. */
export function mysqlBatches(ctx: MysqlContext): BatchWrites {
  const { k, q, m, exec, run, tx, keyBytes, tooLong, auditBytes, appendAudit, userLocked } = ctx
  const consume = mysqlConsume(ctx)
  const withAudit = async (trx: Db, audit: AuditRecord | undefined) => {
    if (audit !== undefined) await exec(trx, appendAudit(audit))
  }
  const changed = (r: { numUpdatedRows: bigint } | undefined) => Number(r?.numUpdatedRows ?? 0) === 1

  return {
    createBatch: (batch, codes, audit) =>
      run('createBatch', async () => {
        newBatch(batch, codes, audit)
        for (const c of codes) {
          if (bytes(c.digest).byteLength > MAX_DIGEST_BYTES) {
            throw new RecoveryCodesError(
              'INVALID_INPUT',
              `a digest is at most ${MAX_DIGEST_BYTES} bytes on MySQL`,
            )
          }
          keyBytes('code.id', c.id)
        }
        keyBytes('batch.id', batch.id)
        keyBytes('batch.userId', batch.userId)
        auditBytes(audit)
        const { userId, createdAt: now } = batch
        // The named lock lives on one connection: taken before the transaction (before any row
        // lock), released after it, on the same connection, whatever happened in between.
        await userLocked('createBatch', userId, (conn) =>
          tx(
            async (trx) => {
              const active = await m.activeBatchId(trx, userId).executeTakeFirst()
              if (active !== undefined) {
                await m.endCodesOf(trx, { userId, batchId: active.id, now }).execute()
                await m.supersede(trx, { batchId: active.id, now }).execute()
              }
              await q.insertBatch(trx, batch, codes.length).execute()
              for (let i = 0; i < codes.length; i += INSERT_CHUNK) {
                await q.insertCodes(trx, batch, codes.slice(i, i + INSERT_CHUNK)).execute()
              }
              await withAudit(trx, audit)
            },
            undefined,
            conn,
          ),
        )
      }),

    consumeCode: (input) =>
      run('consumeCode', async () => {
        time('now', input.now)
        const digests = input.digests.map(bytes)
        if (digests.length === 0 || unreadable(input.userId) || tooLong(input.userId)) return null
        return tx((trx) => consume(trx, input.userId, digests, input.now))
      }),

    setCodeState: (input) =>
      run('setCodeState', async () => {
        oneOf('to', input.to, ['invalidated', 'deleted'])
        time('now', input.now)
        if (input.audit !== undefined) auditRecord(input.audit)
        auditBytes(input.audit)
        if (unreadable(input.userId, input.codeId) || tooLong(input.userId, input.codeId)) return false
        return tx(async (trx) => {
          if (!changed(await m.setCodeState(trx, input).executeTakeFirst())) return false
          const row = await m.codeBatch(trx, input.codeId).executeTakeFirstOrThrow()
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
        auditBytes(input.audit)
        if (unreadable(input.userId, input.batchId) || tooLong(input.userId, input.batchId)) return false
        // Under the user's named lock, like `createBatch` and `addCodes` (`store/mysql-replace.ts`):
        // codes added after the first step would otherwise stay live in the ended batch.
        return userLocked('endBatch', input.userId, (conn) =>
          tx(
            async (trx) => {
              // Codes before their batch. Only an active batch has live codes, so no sub-select on
              // the batch (whose rows an UPDATE's sub-select would lock first) is needed here.
              await m.endCodesOf(trx, input).execute()
              if (!changed(await m.endBatch(trx, input).executeTakeFirst())) throw new Rollback()
              await withAudit(trx, input.audit)
              return true
            },
            false,
            conn,
          ),
        )
      }),

    setBatchFlag: (input) =>
      run('setBatchFlag', async () => {
        oneOf('flag', input.flag, ['viewed', 'downloaded', 'emailed', 'verified'])
        time('now', input.now)
        if (unreadable(input.userId, input.batchId) || tooLong(input.userId, input.batchId)) return false
        return changed(await m.setBatchFlag(k, input).executeTakeFirst())
      }),
  }
}
