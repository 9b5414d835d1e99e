/** Migrations `0002_redeem`, `0003_purge_at`, `0004_attempts_touched` (shipped: their SQL is pinned). */
import type { Migration } from 'kysely'
import { sql } from 'kysely'
import { detectDialect, PURGE_AT_PRESENT, purgeAtSql, columnTypes as types } from '../dialect.ts'
import { createColumnPurgeIndexes } from './0001-init.ts'
import {
  constantSql,
  REDEEM_FUNCTION_V1,
  REDEEM_V1_ARGS,
  REDEEM_V2_ARGS,
  redeemFunctionV2,
} from './redeem-function.ts'

/**
 * `0002_redeem` (PostgreSQL; a no-op on SQLite): the function `rc_redeem`, a whole redeem in one
 * statement and one round trip (`kyselyStore().redeemCode`). Created unqualified, so it lands in the
 * schema the migration runs in, beside the tables, and resolves the `rc_` tables through the
 * caller's `search_path` exactly like every other statement of the store.
 *
 * In one transaction (the caller's autocommit statement):
 * 1. reserve: the multi-row conditional upsert of `reserveAttempts`, rows in byte order
 *    (`COLLATE "C"`, the order every limiter statement locks in). A closed key's row is locked too
 *    (`ON CONFLICT DO UPDATE … WHERE` locks the row it does not update), so when some key is closed
 *    the reservations just taken are given back before anyone can see them: `denied`, strictly all
 *    or nothing;
 * 2. consume: the conditional UPDATE of `consumeCode` (one digest: the `(user_id, digest)` row;
 *    several: the first usable one in digest order, `FOR UPDATE`), then the batch counters;
 *    nothing usable: `missed`, the reservations stay;
 * 3. settle: the `p_reset` keys deleted, every other key of `p_keys` given back (`failures > 0`);
 * 4. audit: the row appended with `batch_id` and `data.remaining` from the consumed code.
 *
 * Returns one row per key (`denied`, `missed`: the counters after the call; one all-null row when
 * there are no keys) or one row with the code (`consumed`). Locks: attempts rows (in byte order),
 * then the code row, then the batch row, the order of the store's other statements.
 *
 * `plan_cache_mode = force_generic_plan`: every statement here is a key lookup whose generic plan
 * is the right one, but PostgreSQL's cost comparison (it cannot see the array lengths) would
 * otherwise re-plan them on every call, about a fifth of the function's time.
 */
export const redeem: Migration = {
  async up(db) {
    if (detectDialect(db) !== 'postgres') return
    await constantSql(REDEEM_FUNCTION_V1).execute(db)
  },

  async down(db) {
    if (detectDialect(db) !== 'postgres') return
    await sql`drop function if exists rc_redeem${REDEEM_V1_ARGS}`.execute(db)
  },
}

/**
 * `0003_purge_at`: one purge index in death order, `rc_codes(purge_at) WHERE changed_at IS NOT NULL
 * OR expires_at IS NOT NULL` (see {@link purgeAtSql}), replacing the two per-column partial indexes
 * of `0001_init`. A purge chunk is then one statement over one index: no second branch that walks
 * again the rows the first branch already deleted (on PostgreSQL their entries stay in the other
 * index until VACUUM, which made the branch switch the slowest chunk of a run), and every write that
 * ends a code maintains one purge index instead of two.
 */
export const purgeAt: Migration = {
  async up(db) {
    // MySQL: `0001_init` created the final schema (`migrations/mysql.ts`).
    if (detectDialect(db) === 'mysql') return
    const expression = purgeAtSql(detectDialect(db))
    await sql`create index rc_codes_purge_at on rc_codes (${expression}) where ${PURGE_AT_PRESENT}`.execute(
      db,
    )
    await db.schema.dropIndex('rc_codes_purge_changed').execute()
    await db.schema.dropIndex('rc_codes_purge_expires').execute()
  },

  async down(db) {
    // MySQL: `0001_init` created the final schema (`migrations/mysql.ts`).
    if (detectDialect(db) === 'mysql') return
    await createColumnPurgeIndexes(db)
    await db.schema.dropIndex('rc_codes_purge_at').execute()
  },
}

/**
 * `0004_attempts_touched`: `rc_attempts.touched_at`, when the counter was last reserved, so purge
 * can delete counters nobody has failed on for `purge.attemptRetentionDays`. Existing rows count
 * as touched at the migration (their age is unknown: none is dropped early). No index: see the
 * store's `purgeAttempts`. On PostgreSQL `rc_redeem` is replaced by {@link redeemFunctionV2}: it sets
 * `touched_at` and takes a start deadline.
 */
export const attemptsTouched: Migration = {
  async up(db) {
    // MySQL: `0001_init` created the final schema (`migrations/mysql.ts`).
    if (detectDialect(db) === 'mysql') return
    const dialect = detectDialect(db)
    const { ts } = types(dialect)
    await db.schema
      .alterTable('rc_attempts')
      .addColumn('touched_at', ts, (c) =>
        c.notNull().defaultTo(dialect === 'postgres' ? sql`to_timestamp(0)` : 0),
      )
      .execute()
    const now = dialect === 'postgres' ? sql`now()` : sql`cast(unixepoch('subsec') * 1000 as integer)`
    await sql`update rc_attempts set touched_at = ${now}`.execute(db)
    if (dialect === 'postgres') {
      await sql`drop function rc_redeem${REDEEM_V1_ARGS}`.execute(db)
      await constantSql(redeemFunctionV2()).execute(db)
    }
  },

  async down(db) {
    // MySQL: `0001_init` created the final schema (`migrations/mysql.ts`).
    if (detectDialect(db) === 'mysql') return
    if (detectDialect(db) === 'postgres') {
      await sql`drop function rc_redeem${REDEEM_V2_ARGS}`.execute(db)
      await constantSql(REDEEM_FUNCTION_V1).execute(db)
    }
    await db.schema.alterTable('rc_attempts').dropColumn('touched_at').execute()
  },
}
