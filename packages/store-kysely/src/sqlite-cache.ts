import { RecoveryCodesError } from '@recovery-codes/core'
import type { SqliteDatabase, SqliteStatement } from 'kysely'

/** Options for {@link sqliteStatementCache}. */
export interface SqliteStatementCacheOptions {
  /**
   * Most statements kept prepared; the least recently used one is dropped past it.
   * @default 256
   */
  max?: number
}

/** A {@link SqliteDatabase} whose `prepare` reuses statements; `size` is the number cached. */
export interface CachedSqliteDatabase extends SqliteDatabase {
  readonly size: number
}

/**
 * Opt-in: wraps a better-sqlite3 `Database` for `new SqliteDialect({ database })` so each SQL text
 * is prepared once and its statement reused. Kysely's `SqliteDriver` calls `database.prepare(sql)`
 * for every query (several µs per statement, more than running it for the store's short
 * statements); the store's statements keep one SQL text per shape with only the parameters
 * changing, so they all hit the cache.
 *
 * A bounded map keyed by the SQL text (least recently used dropped past `max`). A cached
 * statement still iterating (a `stream()` not yet finished, better-sqlite3's `busy`) is never
 * handed out twice: that call gets a fresh statement. The wrapper is for Kysely's use: code that
 * changes a statement's modes (`raw()`, `pluck()`, `expand()`, `safeIntegers()`) must prepare on
 * the database itself. `close()` empties the cache and closes the database.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { Kysely, SqliteDialect } from 'kysely'
 * import { kyselyStore, sqliteStatementCache } from '@recovery-codes/store-kysely'
 *
 * const database = sqliteStatementCache(new Database('app.db'))
 * const db = new Kysely({ dialect: new SqliteDialect({ database }) })
 * const store = kyselyStore(db)
 * ```
 */
export function sqliteStatementCache(
  database: SqliteDatabase,
  options: SqliteStatementCacheOptions = {},
): CachedSqliteDatabase {
  const max = options.max ?? 256
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new RecoveryCodesError('CONFIG_INVALID', 'sqliteStatementCache: max must be an integer >= 1')
  }
  const cache = new Map<string, SqliteStatement>()
  return {
    prepare(sql: string): SqliteStatement {
      const hit = cache.get(sql)
      if (hit !== undefined) {
        // In use by an unfinished iteration: this caller gets its own statement.
        if ((hit as { busy?: boolean }).busy === true) return database.prepare(sql)
        // Most recently used last (a Map keeps insertion order).
        cache.delete(sql)
        cache.set(sql, hit)
        return hit
      }
      const statement = database.prepare(sql)
      cache.set(sql, statement)
      if (cache.size > max) cache.delete(cache.keys().next().value as string)
      return statement
    },
    close() {
      cache.clear()
      database.close()
    },
    get size() {
      return cache.size
    },
  }
}
