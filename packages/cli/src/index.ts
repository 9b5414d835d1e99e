/**
 * `@recovery-codes/cli`: the `recovery-codes` command and its command functions, for hosts that
 * want to run them from their own tooling.
 */

export { type CheckResult, formatCheck, runCheck } from './commands/check.ts'
export { type ComplianceResult, formatCompliance, runCompliance } from './commands/compliance.ts'
export { confirm, ensureFlushConfirmed, type FlushKind, flushQuestion, runFlush } from './commands/flush.ts'
export { type MigrationOutcome, runMigrate } from './commands/migrate.ts'
export { generatePepper, pepperEnvLine } from './commands/pepper.ts'
export {
  countEligibleAudit,
  countEligibleCodes,
  formatPurge,
  type PurgeCommandOptions,
  type PurgeCommandResult,
  type PurgeKind,
  type PurgeOverrides,
  purgeConfig,
  runPurgeCommand,
} from './commands/purge.ts'
export { addSchedule, formatScheduleOptions, formatSchedules } from './commands/schedule.ts'
export { collectStats, formatStats, type Stats } from './commands/stats.ts'
export {
  CONFIG_PRESETS,
  type LoadedConfig,
  loadConfig,
  readEnvFile,
  type SourcedIssue,
  sourceOfIssue,
} from './config-source.ts'
export {
  type DatabaseTarget,
  describeTarget,
  type OpenDatabase,
  openDatabase,
  resolveDatabase,
} from './db.ts'
export { CliError, type CliIO, EXIT_INTERRUPTED } from './io.ts'
export { main, type RunDeps, run } from './main.ts'
export { formatDuration, lineProgress, type ProgressSink, rateAndEta, ttyProgress } from './progress.ts'
export type { QueueClient, QueueFactory, Schedule, ScheduleInput } from './queue.ts'
