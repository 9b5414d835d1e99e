/** A reusable promise barrier. */
export interface Barrier {
  /** Resolves once `parties` callers are waiting; the barrier then resets for the next round. */
  wait(): Promise<void>
  /** How many callers are waiting in the current round. */
  readonly waiting: number
}

/**
 * A promise barrier so concurrent calls start together: every `wait()` stays pending until
 * `parties` callers wait, then all are released at once and the barrier rearms.
 *
 * @example
 * ```ts
 * const go = createBarrier(64)
 * const results = await Promise.all(
 *   Array.from({ length: 64 }, async () => { await go.wait(); return store.consumeCode(input) }),
 * )
 * ```
 */
export function createBarrier(parties: number): Barrier {
  if (!Number.isInteger(parties) || parties < 1) throw new RangeError('parties must be a positive integer')
  let waiters: (() => void)[] = []
  return {
    get waiting() {
      return waiters.length
    },
    wait() {
      return new Promise<void>((resolve) => {
        waiters.push(resolve)
        if (waiters.length === parties) {
          const release = waiters
          waiters = []
          for (const r of release) r()
        }
      })
    },
  }
}

/**
 * Starts every task at the same moment (behind a {@link createBarrier}) and settles them all.
 * Each result keeps its task's index.
 *
 * @example
 * ```ts
 * const settled = await startTogether(Array.from({ length: 20 }, () => () => store.setBatchFlag(input)))
 * expect(settled.filter((s) => s.status === 'fulfilled' && s.value)).toHaveLength(1)
 * ```
 */
export function startTogether<T>(tasks: readonly (() => Promise<T>)[]): Promise<PromiseSettledResult<T>[]> {
  if (tasks.length === 0) return Promise.resolve([])
  const barrier = createBarrier(tasks.length)
  return Promise.allSettled(
    tasks.map(async (task) => {
      await barrier.wait()
      return task()
    }),
  )
}
