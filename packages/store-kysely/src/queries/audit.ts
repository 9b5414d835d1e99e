/** Statements of the audit aggregate: the append-only audit log and the sent-email log. */
import type { AuditRecord, EmailLogRecord } from '@recovery-codes/core'
import type { SqlDialect } from '../dialect.ts'
import { Slot } from '../sql/template.ts'
import type { Db } from './db.ts'

/** The statements of the audit aggregate for dialect `d`. */
export function auditQueries(d: SqlDialect) {
  const { ts } = d
  return {
    /** One row at the right edge of the `(at, id)` key, plus one entry in each of its two indexes. */
    appendAudit: (db: Db, r: AuditRecord) =>
      db.insertInto('rc_audit_log').values({
        id: r.id,
        at: ts(r.at),
        event: r.event,
        user_id: r.userId,
        batch_id: r.batchId,
        identifier_hash: r.identifierHash,
        client_hash: r.clientHash,
        outcome: r.outcome,
        reason: r.reason,
        data: r.data === null || (r.data as unknown) instanceof Slot ? r.data : JSON.stringify(r.data),
      }),

    /**
     * Newest first: a backward range of the `(at, id)` key, of `(user_id, at, id)` or of
     * `(event, at, id)`; with both filters, the user's range checked for the event.
     */
    listAudit: (db: Db, i: { limit: number; userId?: string; event?: string }) => {
      let q = db.selectFrom('rc_audit_log').selectAll()
      if (i.userId !== undefined) q = q.where('user_id', '=', i.userId)
      if (i.event !== undefined) q = q.where('event', '=', i.event)
      return q.orderBy('at', 'desc').orderBy('id', 'desc').limit(i.limit)
    },

    appendEmailLog: (db: Db, r: EmailLogRecord) =>
      db.insertInto('rc_email_log').values({
        id: r.id,
        at: ts(r.at),
        user_id: r.userId,
        batch_id: r.batchId,
        kind: r.kind,
        recipient: r.recipient,
        outcome: r.outcome,
      }),
  }
}
