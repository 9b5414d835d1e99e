/**
 * `@recovery-codes/testing/store-conformance`: the shared conformance suite of the store port, whole
 * ({@link runStoreConformance}) or one aggregate at a time, so a store author can run the part they
 * are writing. Each runner registers one `describe` block under `vitest`.
 */
import type {
  AttemptStore,
  AuditStore,
  BatchStore,
  ImportStore,
  RecoveryCodeStore,
  RedeemStore,
  ReplaceStore,
  RetentionStore,
} from '@recovery-codes/core'
import { attemptSuite } from './attempts.ts'
import { auditSuite } from './audit.ts'
import { batchSuite } from './batches.ts'
import { runSuites, type StoreConformanceOptions } from './context.ts'
import { importSuite } from './import.ts'
import { redeemSuite } from './redeem.ts'
import { replaceSuite } from './replace.ts'
import { retentionSuite } from './retention.ts'

export type { StoreConformanceContext, StoreConformanceOptions } from './context.ts'

/**
 * Registers the shared conformance suite for a `RecoveryCodeStore`: every method's contract,
 * including the concurrency races (real parallel calls started together behind a barrier).
 * Every store package calls it in one line from its own `test/`. It runs what the seven
 * per-aggregate runners run, in one `describe` block with one `concurrency` block; the tests of
 * the optional `importBatch` and `addCodes` skip on a store without them.
 *
 * @example
 * ```ts
 * // packages/store-memory/test/conformance.test.ts
 * runStoreConformance({ name: 'memory', setup: () => memoryStore() })
 * ```
 */
export function runStoreConformance(options: StoreConformanceOptions): void {
  runSuites(options, [
    batchSuite,
    attemptSuite,
    retentionSuite,
    auditSuite,
    redeemSuite,
    importSuite,
    replaceSuite,
  ])
}

/**
 * The `BatchStore` part: `createBatch` (supersede, digest uniqueness, all or nothing), `consumeCode`
 * and `findCode` (the usable predicate), the compare-and-set methods, the reads, and their races.
 * Needs nothing but the batch methods.
 *
 * @example
 * ```ts
 * runBatchStoreConformance({ name: 'dynamo batches', setup: () => dynamoBatchStore(client) })
 * ```
 */
export function runBatchStoreConformance(options: StoreConformanceOptions<BatchStore>): void {
  runSuites(options, [batchSuite])
}

/**
 * The `AttemptStore` part: all-or-nothing reservations over several keys, locks, settles, and the
 * `reserveAttempts` races. Needs nothing but the attempt methods.
 *
 * @example
 * ```ts
 * runAttemptStoreConformance({ name: 'dynamo attempts', setup: () => dynamoAttemptStore(client) })
 * ```
 */
export function runAttemptStoreConformance(options: StoreConformanceOptions<AttemptStore>): void {
  runSuites(options, [attemptSuite])
}

/**
 * The `RetentionStore` part, except `purgeAudit` (run with the audit part): exact, bounded,
 * idempotent purges of codes, empty batches and counters, and a purge race beside consumes. Seeds
 * its rows through the batch and attempt methods.
 *
 * @example
 * ```ts
 * runRetentionStoreConformance({ name: 'dynamo', setup: () => dynamoStore(client) })
 * ```
 */
export function runRetentionStoreConformance(
  options: StoreConformanceOptions<BatchStore & AttemptStore & RetentionStore>,
): void {
  runSuites(options, [retentionSuite])
}

/**
 * The `AuditStore` part: append, list, `purgeAudit`, the email log, and the audit rows that
 * `createBatch`, `setCodeState`, `endBatch`, `purgeCodes` and `purgeEmptyBatches` commit with
 * their change.
 *
 * @example
 * ```ts
 * runAuditStoreConformance({ name: 'dynamo', setup: () => dynamoStore(client) })
 * ```
 */
export function runAuditStoreConformance(
  options: StoreConformanceOptions<BatchStore & RetentionStore & AuditStore>,
): void {
  runSuites(options, [auditSuite])
}

/**
 * The `RedeemStore` part: the store's own `redeemCode`, or `composeRedeemCode` over the other
 * aggregates when it has none (consumed, missed, denied, and the single-use and limiter races).
 *
 * @example
 * ```ts
 * runRedeemStoreConformance({ name: 'dynamo', setup: () => dynamoStore(client) })
 * ```
 */
export function runRedeemStoreConformance(
  options: StoreConformanceOptions<BatchStore & AttemptStore & AuditStore & RedeemStore>,
): void {
  runSuites(options, [redeemSuite])
}

/**
 * The `ImportStore` part (the optional `importBatch`): every status and code state round-trips
 * with its counts; imported codes consume, redeem and expire like generated ones; `exists` (any
 * user) and `conflict` (never a supersede) write nothing; a colliding code id or digest and
 * malformed input leave no trace; purge treats imported batches like any batch; and the races (20
 * calls with one id, one id for 10 users, 5 active imports for one user, `createBatch` racing an
 * active import). Reads back through the rest of the store.
 *
 * @example
 * ```ts
 * runImportStoreConformance({ name: 'dynamo', setup: () => dynamoStore(client) })
 * ```
 */
export function runImportStoreConformance(
  options: StoreConformanceOptions<RecoveryCodeStore & ImportStore>,
): void {
  runSuites(options, [importSuite])
}

/**
 * The `ReplaceStore` part (the optional `addCodes`, NIST SP 800-63B-4 §4.2.1.1 replacement on
 * use): codes appended to the user's live batch raise `issued` and `unused` and are usable at once
 * (consume, redeem, expiry and purge with the batch), with their audit row; a superseded,
 * disabled, deleted, expired, foreign or unknown batch is `false` with nothing written; a colliding
 * digest or code id and malformed input leave no trace; and the races (`addCodes` against
 * `createBatch` and against `endBatch`, 10 rounds each: nothing lands in the ended batch after
 * its end; 20 concurrent `addCodes` on one batch all land). Reads back through the rest of the
 * store; every test skips on a store without `addCodes`.
 *
 * @example
 * ```ts
 * runReplaceStoreConformance({ name: 'dynamo', setup: () => dynamoStore(client) })
 * ```
 */
export function runReplaceStoreConformance(
  options: StoreConformanceOptions<RecoveryCodeStore & ReplaceStore>,
): void {
  runSuites(options, [replaceSuite])
}
