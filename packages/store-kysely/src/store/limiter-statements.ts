/**
 * The limiter statements compiled once per shape (key count; for a settle, the two list lengths),
 * shared by the attempts aggregate and the SQLite redeem.
 */
import type { Compilable, CompiledQuery } from 'kysely'
import { type Compiled, slotNames, slotValues, template } from '../sql/template.ts'
import type { StoreContext } from './context.ts'

/** Limiter statements with more slots than this (many keys) are compiled per call, not cached. */
const MAX_CACHED_SLOTS = 32

type Keys = readonly { key: string; maxAttempts: number }[]

/** The compiled limiter statements of one store. */
export function limiterStatements({ k, q, d }: StoreContext) {
  const cache = new Map<string, Compiled<any>>()
  const getAttempts = template((i: any) => q.getAttempts(k, i.key), ['key'])
  /**
   * A statement compiled once per shape: `build` gets the slots `k0…`, `m0…` (keys, maxAttempts),
   * `r0…`, `l0…` (settle lists) and `now`, as `lists` says.
   */
  const shaped = (
    shape: string,
    lists: { k?: number; m?: number; r?: number; l?: number; now?: boolean },
    build: (i: any, names: typeof slotNames) => Compilable<unknown>,
  ) => {
    let t = cache.get(shape)
    if (t === undefined) {
      const all = [
        ...slotNames('k', lists.k ?? 0),
        ...slotNames('m', lists.m ?? 0),
        ...slotNames('r', lists.r ?? 0),
        ...slotNames('l', lists.l ?? 0),
        ...(lists.now ? ['now'] : []),
      ]
      t = template((i: any) => build(i, slotNames), all)
      // Cache the shapes a service uses (a few keys); an odd large call compiles for itself.
      if (all.length <= MAX_CACHED_SLOTS) cache.set(shape, t)
    }
    return t
  }
  const keyList =
    (op: 'read' | 'delete' | 'release', build: (keys: string[]) => Compilable<unknown>) =>
    (keys: readonly string[]): CompiledQuery =>
      shaped(`${op}:${keys.length}`, { k: keys.length }, (i, names) =>
        build(names('k', keys.length).map((n) => i[n])),
      )(slotValues('k', keys))

  return {
    get: (key: string) => getAttempts({ key }),
    /** Multi-row reserve (the conditional upsert); `keys` already in byte order. */
    reserve: (keys: Keys, now: number): CompiledQuery => {
      const n = keys.length
      const t = shaped(`reserve:${n}`, { k: n, m: n, now: true }, (i, names) => {
        const ms = names('m', n)
        return q.reserveAttempts(k, {
          keys: names('k', n).map((kn, j) => ({ key: i[kn], maxAttempts: i[ms[j]!] })),
          now: i.now,
        })
      })
      const values: Record<string, unknown> = { now: d.ts(now) }
      keys.forEach((x, j) => {
        values[`k${j}`] = x.key
        values[`m${j}`] = x.maxAttempts
      })
      return t(values)
    },
    read: keyList('read', (keys) => q.readAttempts(k, keys)),
    /** SQLite settle, step 1. */
    delete: keyList('delete', (keys) => q.deleteAttempts(k, keys)),
    /** SQLite settle, step 2. */
    release: keyList('release', (keys) => q.releaseAttempts(k, keys)),
    /** PostgreSQL: the one-statement settle. */
    settle: (reset: readonly string[], release: readonly string[]): CompiledQuery =>
      shaped(`settle:${reset.length}:${release.length}`, { r: reset.length, l: release.length }, (i, names) =>
        q.settleAttempts(k, {
          reset: names('r', reset.length).map((n) => i[n]),
          release: names('l', release.length).map((n) => i[n]),
        }),
      )(slotValues('l', release, slotValues('r', reset))),
  }
}

/** The compiled limiter statements' type. */
export type LimiterStatements = ReturnType<typeof limiterStatements>
