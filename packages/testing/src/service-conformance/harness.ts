/**
 * What every group of the service conformance suite shares: the running store, a service over it
 * (`make`), a generated batch (`batchFor`), and the store wrappers that pick a redeem path.
 */
import {
  createRecoveryCodes,
  type RecoveryCodeStore,
  type RecoveryCodes,
  type RecoveryCodesConfig,
  type RedeemCodeInput,
  type RedeemCodeOutcome,
  STORE_METHODS,
} from '@recovery-codes/core'
import { pdfExport } from '@recovery-codes/pdf'
import { beforeEach } from 'vitest'
import { createManualClock, type ManualClock } from '../clock.ts'
import { uniqueId } from '../fixtures.ts'
import type { ServiceConformanceOptions } from '../service-conformance.ts'

export const DAY = 86_400_000

/** A pepper for tests (decodes to 36 bytes); never use it anywhere else. */
export const TEST_PEPPER = 'ZmFrZS1wZXBwZXItZm9yLXRlc3RzLW9ubHktMzItYnl0ZXMhIQ=='

/** The two ways the service redeems: the store's own `redeemCode` (when it has one), or composed. */
export const REDEEM_PATHS = ['one call', 'composed'] as const

/** One service under test, with the store it runs on (possibly wrapped) and its manual clock. */
export interface Harness {
  rc: RecoveryCodes
  store: RecoveryCodeStore
  clock: ManualClock
}

/** What each group of tests gets from {@link createServiceSuite}. */
export interface ServiceSuite {
  readonly options: ServiceConformanceOptions
  /** The store of the running test, from `options.setup()`. */
  readonly store: RecoveryCodeStore
  /** A service over the running store (through `wrap`, when given), with its own manual clock. */
  make(overrides?: Partial<RecoveryCodesConfig>, wrap?: (s: RecoveryCodeStore) => RecoveryCodeStore): Harness
  /** Generates a batch of `count` codes (default 5) for `userId` (default: a fresh user). */
  batchFor: typeof generateBatch
}

/**
 * Registers the `beforeEach` that sets a store up for each test, inside the running `describe`
 * block, and returns what the groups share.
 */
export function createServiceSuite(options: ServiceConformanceOptions): ServiceSuite {
  let current: RecoveryCodeStore | undefined
  beforeEach(async () => {
    current = await options.setup()
  })
  const suite: ServiceSuite = {
    options,
    get store() {
      if (current === undefined) throw new Error('the store is only available inside a test')
      return current
    },
    make(overrides = {}, wrap) {
      const clock = createManualClock()
      const s = wrap ? wrap(suite.store) : suite.store
      const rc = createRecoveryCodes({
        peppers: [{ id: 'k1', secret: TEST_PEPPER }],
        store: s,
        clock,
        // The suites of one behaviour each generate and use a batch at once; the activation
        // suite (`activation.ts`) runs the default, `'confirm'`, on every store.
        activation: 'immediate',
        export: { pdf: pdfExport() },
        ...overrides,
      })
      return { rc, store: s, clock }
    },
    batchFor: generateBatch,
  }
  return suite
}

async function generateBatch(h: Harness, userId = uniqueId('user'), count = 5, expiresInDays?: number) {
  const r = await h.rc.generate({ userId, count, ...(expiresInDays ? { expiresInDays } : {}) })
  if (!r.ok) throw new Error('unexpected cooldown')
  return { userId, ...r }
}

/** Changes one symbol of a code: a wrong code of the same shape. */
export function flip(code: string): string {
  const i = code.search(/[0-9A-Za-z]/)
  const c = code[i]!
  return code.slice(0, i) + (c === '2' ? '3' : '2') + code.slice(i + 1)
}

/**
 * The store's methods bound to it, without `redeemCode`: a test that wraps `consumeCode` or
 * `settleAttempts` then sees every redeem go through them (the composed path).
 */
export function bindAll(store: RecoveryCodeStore): RecoveryCodeStore {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(store) as (keyof RecoveryCodeStore)[]) {
    if (key === 'redeemCode') continue
    const v = store[key]
    out[key] = typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(store) : v
  }
  // Proxies (counting store) have no own keys: fall back to the port's method names.
  for (const key of STORE_METHODS)
    if (!(key in out)) out[key] = (...a: unknown[]) => (store[key] as (...a: unknown[]) => unknown)(...a)
  return out as unknown as RecoveryCodeStore
}

/**
 * `store` on one redeem path: `'one call'` keeps its own `redeemCode` (when it has one),
 * reporting each outcome and digest list; `'composed'` leaves it out.
 */
export function onPath(
  path: 'one call' | 'composed',
  store: RecoveryCodeStore,
  onOutcome: (out: RedeemCodeOutcome) => void,
  onInput: (input: RedeemCodeInput) => void = () => {},
): RecoveryCodeStore {
  const bound = bindAll(store)
  const own = store.redeemCode
  if (path === 'composed' || !own) return bound
  return {
    ...bound,
    async redeemCode(input) {
      onInput(input)
      const out = await own.call(store, input)
      onOutcome(out)
      return out
    },
  }
}
