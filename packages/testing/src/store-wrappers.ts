import type { RecoveryCodeStore } from '@recovery-codes/core'

type StoreMethod = keyof RecoveryCodeStore

/** A store wrapped by {@link createCountingStore}. */
export interface CountingStore<S extends object = RecoveryCodeStore> {
  /** The wrapper: pass it where the store goes. */
  readonly store: S
  /** Calls per method name since the last reset. */
  counts(): Record<string, number>
  /** Calls of one method since the last reset. */
  count(method: StoreMethod | (string & {})): number
  /** Method names in call order since the last reset: compare two runs for identical work. */
  sequence(): string[]
  reset(): void
}

/**
 * Wraps a store and counts calls per method, for tests that demand identical store work on two paths
 * (unknown identifier vs wrong code: R-ENUM-1/R-VER-4).
 *
 * @example
 * ```ts
 * const counting = createCountingStore(memoryStore())
 * const rc = createRecoveryCodes({ ...config, store: counting.store })
 * await rc.redeem(unknownUser); const a = counting.sequence(); counting.reset()
 * await rc.redeem(knownUserWrongCode); expect(counting.sequence()).toEqual(a)
 * ```
 */
export function createCountingStore<S extends object = RecoveryCodeStore>(inner: S): CountingStore<S> {
  let calls: string[] = []
  const wrappers = new Map<PropertyKey, unknown>()
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      let wrapper = wrappers.get(property)
      if (!wrapper) {
        wrapper = function (this: unknown, ...args: unknown[]) {
          calls.push(String(property))
          return (value as (...a: unknown[]) => unknown).apply(this === store ? target : this, args)
        }
        wrappers.set(property, wrapper)
      }
      return wrapper
    },
  })
  return {
    store,
    counts() {
      const out: Record<string, number> = {}
      for (const name of calls) out[name] = (out[name] ?? 0) + 1
      return out
    },
    count: (method) => calls.filter((name) => name === method).length,
    sequence: () => [...calls],
    reset() {
      calls = []
    },
  }
}

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/**
 * Wraps a store so that every method yields to the event loop (`setImmediate`, `ticks` times)
 * between being entered and calling the inner store. Races in the caller (read, then write) are
 * widened so tests expose them; an atomic store stays correct behind it.
 *
 * @param options.ticks - How many `setImmediate` turns to wait. @default 1
 * @example
 * ```ts
 * const rc = createRecoveryCodes({ ...config, store: createSlowStore(memoryStore()) })
 * ```
 */
export function createSlowStore<S extends object = RecoveryCodeStore>(
  inner: S,
  options: { ticks?: number } = {},
): S {
  const ticks = options.ticks ?? 1
  if (!Number.isInteger(ticks) || ticks < 0) throw new RangeError('ticks must be a non-negative integer')
  const wrappers = new Map<PropertyKey, unknown>()
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      let wrapper = wrappers.get(property)
      if (!wrapper) {
        wrapper = async (...args: unknown[]) => {
          for (let i = 0; i < ticks; i++) await nextTick()
          return (value as (...a: unknown[]) => unknown).apply(target, args)
        }
        wrappers.set(property, wrapper)
      }
      return wrapper
    },
  })
}
