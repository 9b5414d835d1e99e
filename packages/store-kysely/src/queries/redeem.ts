/** The one-statement redeem of PostgreSQL: a call of the `rc_redeem` function. */
import type { AuditRecord } from '@recovery-codes/core'
import { type Kysely, sql } from 'kysely'
import type { SqlDialect } from '../dialect.ts'
import type { RecoveryCodesDatabase } from '../schema.ts'
import { boundList, bytes } from '../sql/template.ts'
import type { Db } from './db.ts'

/** The input of the PostgreSQL redeem statement (see {@link redeemQueries}' `redeem`). */
export interface RedeemQueryInput {
  /** The limiter keys (any order: the function locks them in byte order) and their maxAttempts. */
  keys: readonly string[]
  max: readonly number[]
  /** The keys of `keys` a consume resets. */
  reset: readonly string[]
  now: number
  userId: string
  /** Empty: no lookup (the redeem can only be `denied` or `missed`). */
  digests: readonly Uint8Array[]
  audit: Omit<AuditRecord, 'batchId' | 'data'> & { data: string | null }
  /** Server-clock epoch ms after which the call must not start; `null` = no deadline. */
  deadline: number | null
}

/** The audit fields of {@link RedeemQueryInput}, in the function's argument order. */
export const REDEEM_AUDIT_FIELDS = [
  'id',
  'at',
  'event',
  'userId',
  'identifierHash',
  'clientHash',
  'outcome',
  'reason',
  'data',
] as const

/** The redeem statement for dialect `d` (PostgreSQL only). */
export function redeemQueries(d: SqlDialect) {
  const { ts } = d
  return {
    /**
     * A whole redeem on PostgreSQL, one statement: the `rc_redeem` function (of migration
     * `0005_store_v2` since then). Every input is a bound parameter; a list is an `array[…]` of
     * one parameter per element, so the statement text depends only on the list lengths.
     */
    redeem: (db: Db, i: RedeemQueryInput) => {
      const a = i.audit
      const call = sql`rc_redeem(array[${boundList(i.keys)}]::text[], array[${boundList(i.max)}]::integer[], array[${boundList(i.reset)}]::text[], ${ts(i.now)}::timestamptz, ${i.userId}::text, array[${boundList(i.digests.map(bytes))}]::bytea[], ${a.id}::text, ${ts(a.at)}::timestamptz, ${a.event}::text, ${a.userId}::text, ${a.identifierHash}::text, ${a.clientHash}::text, ${a.outcome}::text, ${a.reason}::text, ${a.data}::jsonb, ${i.deadline === null ? null : ts(i.deadline)}::timestamptz)`
      return (db as Kysely<RecoveryCodesDatabase>).selectFrom(call.as('r')).selectAll()
    },
  }
}
