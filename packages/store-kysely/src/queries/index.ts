/**
 * The query-builder layer of the store: every statement it runs, as an uncompiled Kysely builder,
 * one file per aggregate. Exposed to tests (not from the package index) so they can `.compile()`
 * exactly what runs and check that input only ever reaches `.parameters`.
 *
 * @internal
 */
import { type RecoveryCodesDialect, sqlDialect } from '../dialect.ts'
import { attemptQueries } from './attempts.ts'
import { auditQueries } from './audit.ts'
import { batchQueries } from './batches.ts'
import { importQueries } from './import.ts'
import { redeemQueries } from './redeem.ts'
import { retentionQueries } from './retention.ts'

export type { Db } from './db.ts'
export { REDEEM_AUDIT_FIELDS, type RedeemQueryInput } from './redeem.ts'

/** Every statement of the store for `dialect`. @internal */
export function createQueries(dialect: RecoveryCodesDialect) {
  const d = sqlDialect(dialect)
  return {
    ...batchQueries(d),
    ...attemptQueries(d),
    ...retentionQueries(d),
    ...auditQueries(d),
    ...redeemQueries(d),
    ...importQueries(d),
  }
}

/** The query layer's type, for tests. @internal */
export type RecoveryCodesQueries = ReturnType<typeof createQueries>
