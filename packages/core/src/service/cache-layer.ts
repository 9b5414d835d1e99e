/**
 * The read-through cache of history pages and status, keyed by a per-user version that every write
 * bumps: a bump makes every page cached under the old version unreachable at once.
 */
import { errorName, type ServiceContext } from './context.ts'

/** What {@link createCacheLayer} returns. */
export interface CacheLayer {
  /** Moves the user to a new version; a failure is logged, never thrown. */
  bumpVersion(userId: string): Promise<void>
  /**
   * The value cached under the user's current version and `name`, else `load()` (stored for
   * `cacheTtlSeconds`). A cache failure falls back to `load()`.
   */
  readThrough<T>(userId: string, name: string, load: () => Promise<T>, now: number): Promise<T>
}

/**
 * Builds the cache layer of one service. Reads one id from `random` (the instance's version
 * prefix).
 */
export function createCacheLayer(sc: ServiceContext): CacheLayer {
  const { config, cache, logger, memoised, userLabel } = sc
  const cacheTtlMs = config.cacheTtlSeconds * 1000

  const versionKey = (userId: string) => memoised('version-key', userId, () => `rc:ver:${userLabel(userId)}`)
  // A version only needs to differ from every earlier one of the user, across instances sharing
  // the cache: a random instance prefix and a counter, with no CSPRNG read per write.
  const versionPrefix = sc.newId()
  let versionCounter = 0
  const nextVersion = () => `${versionPrefix}.${(++versionCounter).toString(36)}`

  // The default cache is private to this service, so no other instance can hold a page of it:
  // its versions live beside it, in process, and a bump is a `Map` delete instead of a cache write
  // on every redeem. A configured cache may be shared by instances: there the version lives in it.
  // A dropped local version only costs a miss: the next read starts a version never used before.
  const local = sc.cacheIsPrivate ? new Map<string, string>() : null

  async function bumpVersion(userId: string): Promise<void> {
    if (local !== null) {
      local.delete(userLabel(userId))
      return
    }
    try {
      await cache.setItem(versionKey(userId), nextVersion())
    } catch (error) {
      // Pages already cached may then be served until their TTL runs out (≤ cacheTtl.maxSeconds).
      logger.warn('recovery-codes: cache version bump failed', { error: errorName(error) })
    }
  }

  /** The user's current version, started when there is none. */
  async function currentVersion(userId: string): Promise<string> {
    if (local !== null) {
      const owner = userLabel(userId)
      let version = local.get(owner)
      if (version === undefined) {
        version = nextVersion()
        if (local.size >= MAX_LOCAL_VERSIONS) local.clear()
        local.set(owner, version)
      }
      return version
    }
    let version = (await cache.getItem<string>(versionKey(userId))) ?? null
    if (version === null) {
      version = nextVersion()
      await cache.setItem(versionKey(userId), version)
    }
    return version
  }

  async function readThrough<T>(
    userId: string,
    name: string,
    load: () => Promise<T>,
    now: number,
  ): Promise<T> {
    const owner = userLabel(userId)
    let version: string
    try {
      version = await currentVersion(userId)
      const hit = await cache.getItem<{ e: number; v: T }>(`rc:data:${owner}:${version}:${name}`)
      if (hit && typeof hit === 'object' && now < hit.e) return hit.v
    } catch (error) {
      logger.warn('recovery-codes: cache read failed', { error: errorName(error) })
      return load()
    }
    const value = await load()
    try {
      await cache.setItem(
        `rc:data:${owner}:${version}:${name}`,
        { e: now + cacheTtlMs, v: value },
        {
          ttl: config.cacheTtlSeconds,
        },
      )
    } catch (error) {
      logger.warn('recovery-codes: cache write failed', { error: errorName(error) })
    }
    return value
  }

  return { bumpVersion, readThrough }
}

/** Users whose local version is kept at once; when full the map starts over (misses, never stale). */
const MAX_LOCAL_VERSIONS = 50_000
