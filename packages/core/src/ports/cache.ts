/**
 * A value core writes to the cache: strings (versions, slot ids, sealed slots) and plain
 * JSON-serialisable objects (cached pages). A shared cache must serialise them (unstorage does).
 */
export type CacheValue = string | number | boolean | null | object

/** Options of {@link Cache.setItem}. */
export interface CacheSetOptions {
  /** Time to live in seconds; the entry must be gone (or unreadable) after it. */
  ttl?: number
}

/**
 * The cache port: exactly the three methods the service calls. An unstorage `Storage` satisfies it
 * as is (memory or lru-cache driver in one process, the Redis driver for several instances); so
 * does any small object with the same methods.
 *
 * The cache is never authoritative for consume, the limiter, once-only flags or batch validity;
 * it holds history pages, status and the encrypted reveal slots. Keys are built from immutable ids
 * (hashed user id, batch id, random slot id), never from raw user strings. A failing call is
 * logged and treated as a miss; values read back are checked before use.
 *
 * @example
 * ```ts
 * import { createStorage } from 'unstorage'
 * import redisDriver from 'unstorage/drivers/redis'
 *
 * // Fail fast while Redis is down, and log its errors (docs/redis.md):
 * const driver = redisDriver({
 *   url: process.env.REDIS_URL,
 *   enableOfflineQueue: false,
 *   commandTimeout: 500,
 *   maxRetriesPerRequest: 1,
 * })
 * driver.getInstance?.().on('error', (error) => logger.warn('redis error', { error: error.name }))
 * const cache: Cache = createStorage({ driver })
 * ```
 */
export interface Cache {
  /** The value stored under `key`, or `null` when there is none (or it expired). */
  getItem<T = unknown>(key: string): Promise<T | null>
  /** Stores `value` under `key`, replacing any previous value; `ttl` in seconds when given. */
  setItem(key: string, value: CacheValue, options?: CacheSetOptions): Promise<void>
  /** Deletes `key`; deleting a missing key is not an error. */
  removeItem(key: string): Promise<void>
}
