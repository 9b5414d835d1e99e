/**
 * `0006_redeem_v4` (PostgreSQL; a no-op on SQLite and MySQL): `rc_redeem` becomes
 * {@link REDEEM_FUNCTION_V4}, the same function with one read of the limiter counters, the reset
 * delete only when a counter exists, and no `SET` clause. `down` restores `0005`'s.
 */
import type { Migration } from 'kysely'
import { detectDialect } from '../dialect.ts'
import { constantSql } from './redeem-function.ts'
import { REDEEM_FUNCTION_V3 } from './redeem-function-v3.ts'
import { REDEEM_FUNCTION_V4 } from './redeem-function-v4.ts'

export const redeemV4: Migration = {
  async up(db) {
    if (detectDialect(db) === 'postgres') await constantSql(REDEEM_FUNCTION_V4).execute(db)
  },
  async down(db) {
    if (detectDialect(db) === 'postgres') await constantSql(REDEEM_FUNCTION_V3).execute(db)
  },
}
