/**
 * MySQL / MariaDB (`RC_BENCH_DB=mysql`): the place for a third backend with the same rows.
 *
 * The rows (`runBackend(report, db, dialect, raw)` in kysely.bench.ts, which runs redeem.ts and
 * purge.ts) only need the store's Kysely instance, its dialect name and the raw side (floor
 * statement, seeding, maintenance, one-shot DELETE, a replayer for captured statements, and how a
 * worker opens its own connection). {@link storeSupports} asks
 * the store itself, at run time, whether it takes a Kysely instance of that dialect; until it does
 * (and until {@link mysqlTarget} below builds the raw side), `pnpm bench kysely` prints a note and
 * skips MySQL.
 *
 * To add it: build a `Kysely` over `MysqlDialect` (mysql2 pool, database of `MYSQL_URL`), migrate,
 * and fill in the Target members — `seedSql` needs a MySQL variant (`CONCAT` for `||`, `DIV` for
 * integer division, `WITH RECURSIVE` inside `INSERT … SELECT`, and the store's timestamp
 * representation), `floor` a prepared `UPDATE rc_codes …` + `SELECT` (MySQL has no `RETURNING`;
 * MariaDB ≥ 10.5 has `RETURNING` for DELETE/INSERT only), `replayer` mysql2 `execute()` (server-side
 * prepared statements), the worker a `WorkerConnection` of dialect `mysql` (redeemer.ts opens it).
 */
import { createRequire } from 'node:module'
import { kyselyStore } from '@recovery-codes/store-kysely'
import { Kysely, MysqlDialect } from 'kysely'
import { type BenchDialect, MYSQL_URL } from './common.ts'
import type { Target } from './targets.ts'

/**
 * Whether `kyselyStore` accepts `db` as a store of `dialect` (nothing is sent to the database:
 * building a store runs no SQL). `null` when it does, the store's refusal otherwise.
 */
export function storeSupports(db: Kysely<any>, dialect: BenchDialect): string | null {
  try {
    kyselyStore(db, { dialect: dialect as never })
    kyselyStore(db)
    return null
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  }
}

/** mysql2, resolved from the bench or, failing that, from store-kysely (its dev dependency). */
function loadMysql2(): { createPool(config: unknown): unknown } | null {
  for (const from of [import.meta.url, import.meta.resolve('@recovery-codes/store-kysely')]) {
    try {
      return createRequire(from)('mysql2') as never
    } catch {
      // try the next place
    }
  }
  return null
}

/** The MySQL target, or the reason it is skipped. */
export async function mysqlTarget(): Promise<Target | string> {
  const mysql2 = loadMysql2()
  if (mysql2 === null) return 'mysql2 is not installed where the bench can load it'
  // A pool is created lazily by mysql2: no connection is opened by building the store.
  const pool = mysql2.createPool({ uri: MYSQL_URL, connectionLimit: 10 })
  const db = new Kysely<any>({ dialect: new MysqlDialect({ pool: pool as never }) })
  const refused = storeSupports(db, 'mysql')
  if (refused !== null) {
    await db.destroy()
    return `store-kysely does not take a MySQL Kysely instance yet (${refused})`
  }
  await db.destroy()
  return 'store-kysely supports MySQL, but the bench has no MySQL raw side yet: fill in mysqlTarget() in bench/kysely/mysql.ts'
}
