/**
 * The audit aggregate: append-only audit rows (also written by the other aggregates in their own
 * transactions) and the sent-email log.
 */
import type { AuditRecord, RecoveryCodeStore } from '@recovery-codes/core'
import { auditRecord, count, oneOf, time, unreadable, writeText } from '../checks.ts'
import { auditRow } from '../rows.ts'
import type { StoreContext } from './context.ts'

type AuditMethods = Pick<RecoveryCodeStore, 'appendAudit' | 'listAudit' | 'appendEmailLog'>

/** The audit aggregate of one store. */
export function auditStore({ k, q, exec, run, appendAudit }: StoreContext): AuditMethods {
  return {
    appendAudit: (record) =>
      run('appendAudit', async () => {
        auditRecord(record)
        await exec(k, appendAudit(record))
      }),

    listAudit: (input) =>
      run('listAudit', async (): Promise<AuditRecord[]> => {
        count('limit', input.limit)
        if (input.limit === 0) return []
        if (
          (input.userId !== undefined && unreadable(input.userId)) ||
          (input.event !== undefined && unreadable(input.event))
        ) {
          return []
        }
        return (await q.listAudit(k, input).execute()).map(auditRow)
      }),

    appendEmailLog: (record) =>
      run('appendEmailLog', async () => {
        writeText('id', record.id)
        time('at', record.at)
        writeText('userId', record.userId)
        writeText('batchId', record.batchId)
        writeText('kind', record.kind)
        writeText('recipient', record.recipient)
        oneOf('outcome', record.outcome, ['sent', 'failed'])
        await q.appendEmailLog(k, record).execute()
      }),
  }
}
