import { createStorage, type Storage } from 'unstorage'
import lruCacheDriver from 'unstorage/drivers/lru-cache'
import memoryDriver from 'unstorage/drivers/memory'
import redisDriver from 'unstorage/drivers/redis'
import { describe, expect, expectTypeOf, it } from 'vitest'
import type { Cache } from './cache.ts'

describe('Cache port', () => {
  it('an unstorage Storage is a Cache, with no cast', () => {
    expectTypeOf<Storage>().toExtend<Cache>()
    expectTypeOf<Storage<string>>().toExtend<Cache>()
    // The drivers core documents; the redis client connects lazily, so nothing is opened here.
    const caches = [
      createStorage(),
      createStorage({ driver: memoryDriver() }),
      createStorage({ driver: lruCacheDriver({ max: 10 }) }),
      createStorage({
        driver: redisDriver({ base: 'rc-test', url: 'redis://127.0.0.1:1', lazyConnect: true }),
      }),
    ] satisfies Cache[]
    expect(caches).toHaveLength(4)
  })

  it('a plain object with the three methods is a Cache', () => {
    const entries = new Map<string, unknown>()
    const cache = {
      async getItem<T>(key: string) {
        return (entries.get(key) ?? null) as T | null
      },
      async setItem(key: string, value: unknown) {
        entries.set(key, value)
      },
      async removeItem(key: string) {
        entries.delete(key)
      },
    } satisfies Cache
    expectTypeOf(cache).toExtend<Cache>()
  })

  it('round-trips what core stores, with a ttl, through the lru-cache driver', async () => {
    const cache: Cache = createStorage({ driver: lruCacheDriver({ max: 10 }) })
    await cache.setItem('rc:version:u', 'v1.1', { ttl: 60 })
    await cache.setItem('rc:data:u:v1.1:status', { e: 1, v: { remaining: 3 } }, { ttl: 60 })
    expect(await cache.getItem<string>('rc:version:u')).toBe('v1.1')
    expect(await cache.getItem('rc:data:u:v1.1:status')).toEqual({ e: 1, v: { remaining: 3 } })
    await cache.removeItem('rc:version:u')
    await cache.removeItem('rc:missing')
    expect(await cache.getItem('rc:version:u')).toBeNull()
  })
})
