/**
 * The read-through cache of history pages and status, keyed by a per-user version that every write
 * bumps: a bump makes every page cached under the old version unreachable at once. Also the
 * deadline every call to a configured cache runs under ({@link withBoundedCache}).
 */
import type { Cache } from '../ports/cache.ts'
import { monotonicNow, settleWithin } from '../runtime.ts'
import { errorName, type ServiceContext } from './context.ts'

/** After a cache call times out, calls fail at once for this long: a dead cache costs one deadline. */
export const CACHE_SKIP_AFTER_TIMEOUT_MS = 1000

/**
 * `cache` with a deadline on every call: a call that does not settle within `timeoutMs` rejects
 * with a `TimeoutError` (the call itself is left to finish or not). After a timeout every call
 * rejects at once (`CacheSkippedError`) for {@link CACHE_SKIP_AFTER_TIMEOUT_MS}, then the cache is
 * tried again. A method that throws synchronously rejects instead. Callers treat every rejection
 * as a miss or a skipped write, so the cache never blocks nor decides anything.
 */
export function boundedCache(cache: Cache, timeoutMs: number, now: () => number = monotonicNow): Cache {
  let skipUntil = Number.NEGATIVE_INFINITY
  function call<T>(run: () => Promise<T>): Promise<T> {
    if (now() < skipUntil) return Promise.reject(skipped())
    let work: Promise<T>
    try {
      work = Promise.resolve(run())
    } catch (error) {
      return Promise.reject(error)
    }
    return settleWithin(work, timeoutMs).catch((error: unknown) => {
      if (error instanceof Error && error.name === 'TimeoutError') {
        skipUntil = now() + CACHE_SKIP_AFTER_TIMEOUT_MS
      }
      throw error
    })
  }
  return {
    getItem: <T>(key: string) => call(() => cache.getItem<T>(key)),
    setItem: (key, value, options) => call(() => cache.setItem(key, value, options)),
    removeItem: (key) => call(() => cache.removeItem(key)),
  }
}

/**
 * `sc` with its cache under {@link boundedCache} (`config.cacheTimeoutMs`). The default in-process
 * cache answers at once and stays as it is.
 */
export function withBoundedCache(sc: ServiceContext): ServiceContext {
  if (sc.cacheIsPrivate) return sc
  return { ...sc, cache: boundedCache(sc.cache, sc.config.cacheTimeoutMs) }
}

function skipped(): Error {
  const error = new Error('The cache timed out recently; skipped.')
  error.name = 'CacheSkippedError'
  return error
}

/** What {@link createCacheLayer} returns. */
export interface CacheLayer {
  /**
   * Moves the user to a new version; a failure is logged, never thrown. Returns `undefined` when
   * the bump is done at once (the private default cache: a `Map` delete), so the hot path has
   * nothing to await; a promise when it writes to a configured cache.
   */
  bumpVersion(userId: string): Promise<void> | undefined
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
  const { config, cache, clock, logger, memo, userLabel } = sc
  const cacheTtlMs = config.cacheTtlSeconds * 1000

  const versionKey = memo((userId) => `rc:ver:${userLabel(userId)}`)
  // A version only needs to differ from every earlier one of the user, across instances sharing
  // the cache: a random instance prefix and a counter, with no CSPRNG read per write.
  const versionPrefix = sc.newId()
  let versionCounter = 0
  const nextVersion = () => `${versionPrefix}.${(++versionCounter).toString(36)}`

  // The default cache is private to this service, so no other instance can hold a page of it:
  // its versions live beside it, in process, and a bump is a `Map` delete instead of a cache write
  // on every redeem. A configured cache may be shared by instances: there the version lives in it.
  // A dropped local version only costs a miss: the next read starts a version never used before.
  // Keyed by the user id itself (held in process only, like the label memo), so a bump needs no
  // label.
  const local = sc.cacheIsPrivate ? new Map<string, string>() : null

  // Users whose last bump failed (the cache threw or timed out): a page cached under their old
  // version may be stale, so their reads skip the cache until a later bump succeeds or until every
  // page written before the failure has expired (pages carry their own expiry, checked on read).
  // The marks are in process: another instance sharing the cache learns of the write only from a
  // bump that reached it (a cache that is down for one instance and up for another).
  // `seq` orders bumps: a success clears only a mark set before it started, since a bump that
  // landed earlier says nothing about a write committed after it.
  const unbumped = new Map<string, { until: number; seq: number }>()
  let allUnbumpedUntil = Number.NEGATIVE_INFINITY
  let bumpSeq = 0

  function isUnbumped(owner: string, now: number): boolean {
    if (now < allUnbumpedUntil) return true
    const mark = unbumped.get(owner)
    if (mark === undefined) return false
    if (now < mark.until) return true
    unbumped.delete(owner)
    return false
  }

  function bumpVersion(userId: string): Promise<void> | undefined {
    if (local !== null) {
      local.delete(userId)
      return undefined
    }
    return bumpShared(userId)
  }

  async function bumpShared(userId: string): Promise<void> {
    const owner = userLabel(userId)
    const started = ++bumpSeq
    try {
      await cache.setItem(versionKey(userId), nextVersion())
      const mark = unbumped.get(owner)
      if (mark !== undefined && mark.seq < started) unbumped.delete(owner)
    } catch (error) {
      const until = clock.now() + cacheTtlMs
      if (unbumped.size >= MAX_LOCAL_VERSIONS) {
        // Too many to track one by one: every user skips the cache for one TTL instead.
        unbumped.clear()
        allUnbumpedUntil = Math.max(allUnbumpedUntil, until)
      }
      unbumped.set(owner, { until, seq: ++bumpSeq })
      logger.warn('recovery-codes: cache version bump failed', { error: errorName(error) })
    }
  }

  /** The user's current version, started when there is none. */
  async function currentVersion(userId: string): Promise<string> {
    if (local !== null) {
      let version = local.get(userId)
      if (version === undefined) {
        version = nextVersion()
        if (local.size >= MAX_LOCAL_VERSIONS) local.clear()
        local.set(userId, version)
      }
      return version
    }
    const stored = await cache.getItem<unknown>(versionKey(userId))
    // A value that is not a version (unset, or unreadable) starts a new one: a miss, never stale.
    let version = typeof stored === 'string' && stored.length > 0 ? stored : null
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
    if (local === null && isUnbumped(owner, now)) return load()
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
