/**
 * `runServiceConformance`: the service-level contract of `createRecoveryCodes` over a store,
 * with real parallel calls. Every store package runs it (in its conformance test) so the races are
 * proven on each backend, not only in memory. The groups of tests live in `service-conformance/`.
 */
import type { RecoveryCodeStore } from '@recovery-codes/core'
import { describe } from 'vitest'
import { activationTests } from './service-conformance/activation.ts'
import { cacheTests } from './service-conformance/cache.ts'
import { deliveryTests } from './service-conformance/delivery.ts'
import { enumerationTest } from './service-conformance/enumeration.ts'
import { generateTests } from './service-conformance/generate.ts'
import { createServiceSuite, REDEEM_PATHS } from './service-conformance/harness.ts'
import { importTests } from './service-conformance/import.ts'
import { noPlaintextTest } from './service-conformance/no-plaintext.ts'
import { purgeTests } from './service-conformance/purge.ts'
import { redeemTests } from './service-conformance/redeem.ts'
import { replaceTests } from './service-conformance/replace.ts'

export { TEST_PEPPER } from './service-conformance/harness.ts'

/** Options of {@link runServiceConformance}. */
export interface ServiceConformanceOptions {
  /** Shown in the describe block. */
  name: string
  /** A store for one test; ids are unique per test, so a shared database works too. */
  setup: () => Promise<RecoveryCodeStore> | RecoveryCodeStore
  /** Every row/map the store holds, as plain data, for the no-plaintext scan (optional). */
  dump?: (store: RecoveryCodeStore) => Promise<unknown> | unknown
  /** Scale down the purge scenario for slow backends (default 10,000 eligible + 500 active). */
  purgeScale?: { eligible: number; active: number }
}

/**
 * Registers the service conformance suite.
 *
 * @example
 * ```ts
 * runServiceConformance({ name: 'memory', setup: () => memoryStore() })
 * ```
 */
export function runServiceConformance(options: ServiceConformanceOptions): void {
  describe(`service conformance: ${options.name}`, () => {
    const suite = createServiceSuite(options)
    redeemTests(suite)
    generateTests(suite)
    activationTests(suite)
    replaceTests(suite)
    // Registered once per redeem path, as before the split (only the enumeration test uses it).
    for (const path of REDEEM_PATHS) {
      enumerationTest(suite, path)
      deliveryTests(suite)
      noPlaintextTest(suite)
    }
    purgeTests(suite)
    cacheTests(suite)
    importTests(suite)
  })
}
