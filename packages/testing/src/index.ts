/**
 * `@recovery-codes/testing`: the shared conformance suites and the test doubles every package uses.
 *
 * - {@link runStoreConformance}: the store contract, including the concurrency races; one runner per
 *   aggregate too ({@link runBatchStoreConformance}, …), also at `@recovery-codes/testing/store-conformance`.
 * - Doubles for the ports: {@link createManualClock}, {@link createSeededRandom} (insecure),
 *   {@link createRecordingMailer}, {@link createInlineQueue}, {@link createCaptureLogger},
 *   {@link createEventRecorder}.
 * - Race wideners: {@link createBarrier}, {@link startTogether}, {@link createSlowStore};
 *   {@link createCountingStore} for same-work (enumeration) tests.
 * - Data builders in `fixtures`; {@link permutations} for "in any order" tests.
 * - {@link checkStoreInvariants}: the post-fault sweep (one active batch, no missing codes, every
 *   used code audited, every batch's `batch.generated` row).
 *
 * `vitest` is a peer dependency: the suites register `describe`/`it` blocks.
 */
export { type Barrier, createBarrier, startTogether } from './barrier.ts'
export { createManualClock, type ManualClock } from './clock.ts'
export { createEventRecorder, type EventRecorder } from './events.ts'
export {
  buildAudit,
  buildBatch,
  buildCodes,
  buildEmailLog,
  FIRST_TIME_BASE,
  nextTimeBase,
  randomDigest,
  randomPepperSecret,
  type SeededBatch,
  seedBatch,
  signedInHooks,
  TEST_TIME_WINDOW,
  uniqueId,
} from './fixtures.ts'
export {
  type HttpAdapterConformanceOptions,
  type MountedAdapter,
  runHttpAdapterConformance,
} from './http-conformance.ts'
export {
  checkStoreInvariants,
  expectInvariantReport,
  expectStoreInvariants,
  formatViolation,
  GENERATED_AUDIT_EVENT,
  type InvariantReport,
  type InvariantRule,
  type InvariantViolation,
  REDEEM_AUDIT_EVENT,
} from './invariants.ts'
export { type CapturedLevel, type CapturedLine, type CaptureLogger, createCaptureLogger } from './logger.ts'
export { createRecordingMailer, type RecordingMailer } from './mailer.ts'
export { permutations } from './permutations.ts'
export { createInlineQueue, type InlineJobRun, type InlineQueue } from './queue.ts'
export { createSeededRandom, type SeededRandom } from './random.ts'
export { IS_CI, PG_URL, probePostgres } from './servers.ts'
// Service-level races (`runServiceConformance`, redeem via createRecoveryCodes) go in
// './service-conformance.ts' and are exported here.
export { runServiceConformance, type ServiceConformanceOptions, TEST_PEPPER } from './service-conformance.ts'
export { type ReceivedMail, startSmtp, type TestSmtp } from './smtp.ts'
export {
  runAttemptStoreConformance,
  runAuditStoreConformance,
  runBatchStoreConformance,
  runImportStoreConformance,
  runRedeemStoreConformance,
  runReplaceStoreConformance,
  runRetentionStoreConformance,
  runStoreConformance,
  type StoreConformanceContext,
  type StoreConformanceOptions,
} from './store-conformance/index.ts'
export { type CountingStore, createCountingStore, createSlowStore } from './store-wrappers.ts'
