/**
 * The harness every store conformance runner shares: its options, the context its tests read, and
 * the `describe` block that sets a store up and tears it down around each test.
 */
import type { RecoveryCodeStore } from '@recovery-codes/core'
import { afterEach, beforeEach, describe } from 'vitest'
import { nextTimeBase } from '../fixtures.ts'

/**
 * What `runStoreConformance` (or a per-aggregate runner) hands to `additionalTests`. Read its
 * fields inside tests only. `S` is the part of the store the runner tests.
 */
export interface StoreConformanceContext<S = RecoveryCodeStore> {
  /** The store of the running test, from `setup()`. */
  readonly store: S
  /**
   * Base time of the running test: the suite writes only times in `[t0, t0 + TEST_TIME_WINDOW)`, and
   * each test's window lies below every earlier one, so purges never reach rows of earlier tests.
   */
  readonly t0: number
}

/** Options of `runStoreConformance` and of each per-aggregate runner (`S`: the store they test). */
export interface StoreConformanceOptions<S = RecoveryCodeStore> {
  /** Name of the `describe` block, e.g. `'memory'` or `'kysely (postgres)'`. */
  name: string
  /**
   * Called before each test. Return a fresh store, or a store on a database shared between tests:
   * the suite uses unique ids and per-test time windows, so leftovers of earlier tests do not
   * interfere. Use one database (or schema) per test file and per run.
   */
  setup: () => Promise<S> | S
  /** Called after each test with the store from `setup()`. */
  teardown?: (store: S) => Promise<void> | void
  /** Registers store-specific tests inside the same `describe` block. */
  additionalTests?: (ctx: StoreConformanceContext<S>) => void
}

/** The tests of one aggregate of the port. */
export interface AggregateSuite<S> {
  /** Registers the aggregate's `describe` blocks. */
  tests: (ctx: StoreConformanceContext<S>) => void
  /** Registers the aggregate's races (`it` blocks) inside the shared `concurrency` block. */
  races?: (ctx: StoreConformanceContext<S>) => void
}

/**
 * Registers `suites` in one `describe(options.name)` block: a fresh time window and `setup()`
 * before each test, `teardown()` after it; each suite's tests, then one `concurrency` block with
 * every suite's races, then `additionalTests`.
 */
export function runSuites<S>(
  options: StoreConformanceOptions<S>,
  suites: readonly AggregateSuite<S>[],
): void {
  const { name, setup, teardown, additionalTests } = options
  const state = { store: undefined as S | undefined, t0: 0 }
  const ctx: StoreConformanceContext<S> = {
    get store() {
      if (state.store === undefined) throw new Error('ctx.store is only available inside a test')
      return state.store
    },
    get t0() {
      return state.t0
    },
  }

  describe(name, () => {
    beforeEach(async () => {
      state.t0 = nextTimeBase()
      state.store = await setup()
    })
    afterEach(async () => {
      const store = state.store
      state.store = undefined
      if (store !== undefined && teardown) await teardown(store)
    })

    for (const suite of suites) suite.tests(ctx)
    const races = suites.flatMap((suite) => (suite.races ? [suite.races] : []))
    if (races.length > 0) {
      describe('concurrency', () => {
        for (const register of races) register(ctx)
      })
    }
    additionalTests?.(ctx)
  })
}
