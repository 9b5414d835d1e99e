/**
 * Purge runs of the service: per-run options checked against the config's bounds, the chunked
 * deletes, the audit row, event and admin report of each run, and the queue jobs that start them.
 */
import { type PurgeChunkStats, type PurgeRunResult, type RunPurgeOptions, runPurge } from '../domain/purge.ts'
import { RecoveryCodesError } from '../errors.ts'
import type { JobHandler } from '../ports/queue.ts'
import { monotonicNow } from '../runtime.ts'
import { errorName, type ServiceContext } from './context.ts'
import type { PurgeChunkReport, PurgeReport } from './types.ts'

const DAY_MS = 86_400_000
/**
 * The most limiter counters deleted per statement (the ceiling of their time-budgeted chunks).
 * Larger than a code chunk: no index serves the pick (see the store's `purgeAttempts`), so each
 * statement scans, and fewer statements scan less.
 */
const ATTEMPT_CHUNK = 5_000

/** Job names of scheduled purges. A schedule's options travel in the payload. */
export const PURGE_JOB = 'recovery-codes.purge'
export const PURGE_AUDIT_JOB = 'recovery-codes.purge-audit'

/**
 * Per-run overrides of the `purge` config (a schedule's options), plus progress hooks. Omitted
 * values come from the config.
 */
export interface PurgeRunInput {
  retentionDays?: number
  /**
   * The most rows one chunk deletes (default `purge.batchSize`): the ceiling of the chunks that
   * `purge.chunkBudgetMs` sizes.
   */
  chunkSize?: number
  /** `null` = unlimited. */
  maxDeletionsPerRun?: number | null
  deleteEmptyBatches?: boolean
  /** Only takes effect with a mailer and `email.adminEmail` configured. */
  reportToAdmin?: boolean
  /** Asked after each chunk; `true` stops the run (Ctrl-C in the CLI). */
  shouldStop?: () => boolean
  onChunk?: (p: { deleted: number; rounds: number }) => void
}

/** Input of an audit purge: the options of {@link PurgeRunInput} that apply to it. */
export type PurgeAuditInput = Pick<
  PurgeRunInput,
  'retentionDays' | 'chunkSize' | 'maxDeletionsPerRun' | 'shouldStop' | 'onChunk'
>

/** What {@link createPurgeRuns} returns. */
export interface PurgeRuns {
  /**
   * Purges codes past retention in chunks sized by `purge.chunkBudgetMs` (then empty batches and
   * expired limiter counters, alike). Each chunk commits with its own audit row (`codes.purged`,
   * `batches.purged`, with `data.deleted`); one `purge.run` row sums up the run.
   */
  purge(input?: PurgeRunInput): Promise<PurgeReport>
  /** Purges audit records past retention, in chunks sized the same way. */
  purgeAudit(input?: PurgeAuditInput): Promise<PurgeReport>
  /** The {@link PURGE_JOB} handler; a failed run throws so the queue retries it. */
  handlePurgeJob: JobHandler
  /** The {@link PURGE_AUDIT_JOB} handler; a failed run throws so the queue retries it. */
  handlePurgeAuditJob: JobHandler
}

/** Builds the purge runs of one service. */
export function createPurgeRuns(sc: ServiceContext): PurgeRuns {
  const { config, store, clock, logger, audit, auditRecord, emit } = sc

  /** The audit row each purge chunk commits with ({@link purgedAudit} fills in the count). */
  const chunkAudit = (event: string, at: number) =>
    auditRecord({ at, event, userId: null, outcome: 'success' })

  /**
   * One phase of a run (codes, empty batches, limiter counters, audit rows): {@link runPurge} with
   * chunks sized by `purge.chunkBudgetMs` and timed on the monotonic clock, never on `clock`.
   */
  const phase = (options: Omit<RunPurgeOptions, 'chunkBudgetMs' | 'timer'>): Promise<PurgeRunResult> =>
    runPurge({ ...options, chunkBudgetMs: config.purge.chunkBudgetMs, timer: monotonicNow })

  async function purge(inp: PurgeRunInput = {}): Promise<PurgeReport> {
    const opts = purgeOptions(inp)
    const now = clock.now()
    const before = now - opts.retentionDays * DAY_MS
    const run = await phase({
      deleteChunk: (limit) => store.purgeCodes({ before, limit, audit: chunkAudit('codes.purged', now) }),
      chunkSize: opts.chunkSize,
      maxDeletionsPerRun: opts.maxDeletionsPerRun,
      ...(inp.shouldStop ? { shouldStop: inp.shouldStop } : {}),
      ...(inp.onChunk
        ? {
            onChunk: (p: { deleted: number; rounds: number }) =>
              inp.onChunk!({ deleted: p.deleted, rounds: p.rounds }),
          }
        : {}),
    })
    const phases = [run]
    let batchesDeleted = 0
    let error = run.error
    if (opts.deleteEmptyBatches && error === undefined && !inp.shouldStop?.()) {
      const b = await phase({
        deleteChunk: (limit) =>
          store.purgeEmptyBatches({ before, limit, audit: chunkAudit('batches.purged', now) }),
        chunkSize: opts.chunkSize,
        maxDeletionsPerRun: null,
      })
      phases.push(b)
      batchesDeleted = b.deleted
      error = b.error
    }
    let attemptsDeleted = 0
    if (error === undefined && !inp.shouldStop?.()) {
      const attemptsBefore = now - config.purge.attemptRetentionDays * DAY_MS
      const a = await phase({
        deleteChunk: (limit) => store.purgeAttempts({ before: attemptsBefore, limit }),
        chunkSize: ATTEMPT_CHUNK,
        maxDeletionsPerRun: null,
        ...(inp.shouldStop ? { shouldStop: inp.shouldStop } : {}),
      })
      phases.push(a)
      attemptsDeleted = a.deleted
      error = a.error
    }
    const report: PurgeReport = {
      deleted: run.deleted,
      batchesDeleted,
      attemptsDeleted,
      rounds: run.rounds,
      done: run.done && error === undefined,
      ...(error === undefined ? {} : { error: errorName(error) }),
      chunks: chunkReport(config.purge.chunkBudgetMs, phases),
    }
    await audit({
      at: now,
      event: 'purge.run',
      userId: null,
      outcome: error === undefined ? 'success' : 'failure',
      data: {
        deleted: report.deleted,
        batchesDeleted,
        attemptsDeleted,
        rounds: report.rounds,
        done: report.done,
      },
      ...(error === undefined ? {} : { reason: report.error ?? 'error' }),
    })
    if (error !== undefined)
      logger.error('recovery-codes: purge stopped by an error', {
        deleted: report.deleted,
        error: report.error,
      })
    await emit('purged', now, null, null, { deleted: report.deleted, batchesDeleted, done: report.done })
    if (opts.reportToAdmin && config.mailer && config.email.adminEmail) {
      try {
        await config.mailer.send({
          to: config.email.adminEmail,
          subject: `${config.siteName}: recovery-code purge report`,
          text: `Deleted ${report.deleted} codes, ${batchesDeleted} empty batches and ${attemptsDeleted} expired limiter counters in ${report.rounds} rounds. Done: ${report.done}.${report.error ? ` Error: ${report.error}.` : ''}\n`,
        })
      } catch (e) {
        logger.error('recovery-codes: purge report mail failed', { error: errorName(e) })
      }
    }
    return report
  }

  async function purgeAudit(inp: PurgeAuditInput = {}): Promise<PurgeReport> {
    const opts = purgeOptions({ retentionDays: config.audit.retentionDays, ...inp })
    const now = clock.now()
    const before = now - opts.retentionDays * DAY_MS
    const run = await phase({
      deleteChunk: (limit) => store.purgeAudit({ before, limit }),
      chunkSize: opts.chunkSize,
      maxDeletionsPerRun: opts.maxDeletionsPerRun,
      ...(inp.shouldStop ? { shouldStop: inp.shouldStop } : {}),
      ...(inp.onChunk ? { onChunk: (p: { deleted: number; rounds: number }) => inp.onChunk!(p) } : {}),
    })
    const report: PurgeReport = {
      deleted: run.deleted,
      batchesDeleted: 0,
      attemptsDeleted: 0,
      rounds: run.rounds,
      done: run.done && run.error === undefined,
      ...(run.error === undefined ? {} : { error: errorName(run.error) }),
      chunks: chunkReport(config.purge.chunkBudgetMs, [run]),
    }
    await audit({
      at: now,
      event: 'audit.purged',
      userId: null,
      outcome: run.error === undefined ? 'success' : 'failure',
      data: { deleted: report.deleted, rounds: report.rounds },
    })
    return report
  }

  /** Per-run overrides merged over the config, each checked against the config's bounds. */
  function purgeOptions(inp: PurgeRunInput) {
    const opts = {
      retentionDays: inp.retentionDays ?? config.purge.retentionDays,
      chunkSize: inp.chunkSize ?? config.purge.batchSize,
      maxDeletionsPerRun:
        inp.maxDeletionsPerRun === undefined ? config.purge.maxDeletionsPerRun : inp.maxDeletionsPerRun,
      deleteEmptyBatches: inp.deleteEmptyBatches ?? config.purge.deleteEmptyBatches,
      reportToAdmin: inp.reportToAdmin ?? config.purge.reportToAdmin,
    }
    const issues: { path: string; message: string }[] = []
    const int = (v: unknown, min: number, max: number) =>
      Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max
    if (!int(opts.retentionDays, 0, 3650))
      issues.push({ path: 'retentionDays', message: 'must be an integer from 0 to 3650' })
    if (!int(opts.chunkSize, 1, 100_000))
      issues.push({ path: 'chunkSize', message: 'must be an integer from 1 to 100000' })
    if (opts.maxDeletionsPerRun !== null && !int(opts.maxDeletionsPerRun, 1, 10_000_000)) {
      issues.push({ path: 'maxDeletionsPerRun', message: 'must be null or an integer from 1 to 10000000' })
    }
    if (typeof opts.deleteEmptyBatches !== 'boolean')
      issues.push({ path: 'deleteEmptyBatches', message: 'must be a boolean' })
    if (typeof opts.reportToAdmin !== 'boolean')
      issues.push({ path: 'reportToAdmin', message: 'must be a boolean' })
    if (issues.length > 0) {
      throw new RecoveryCodesError(
        'INVALID_INPUT',
        `Invalid purge options: ${issues.map((i) => i.path).join(', ')}`,
        { issues },
      )
    }
    return opts
  }

  // A schedule's options travel in the payload; only known keys are read, and a failed run
  // throws so the queue retries it.
  async function handlePurgeJob(payload: Parameters<JobHandler>[0]): Promise<void> {
    const report = await purge(pickPurgeOptions(payload))
    if (report.error) throw new RecoveryCodesError('STORE_UNAVAILABLE', `purge stopped: ${report.error}`)
  }

  async function handlePurgeAuditJob(payload: Parameters<JobHandler>[0]): Promise<void> {
    const { retentionDays, chunkSize, maxDeletionsPerRun } = pickPurgeOptions(payload)
    const report = await purgeAudit({
      ...(retentionDays === undefined ? {} : { retentionDays }),
      ...(chunkSize === undefined ? {} : { chunkSize }),
      ...(maxDeletionsPerRun === undefined ? {} : { maxDeletionsPerRun }),
    })
    if (report.error)
      throw new RecoveryCodesError('STORE_UNAVAILABLE', `audit purge stopped: ${report.error}`)
  }

  return { purge, purgeAudit, handlePurgeJob, handlePurgeAuditJob }
}

/** The chunk figures of a run's phases, summed. */
function chunkReport(budgetMs: number, phases: readonly PurgeRunResult[]): PurgeChunkReport {
  const all = phases.map((p) => p.chunks).filter((c): c is PurgeChunkStats => c !== undefined)
  return {
    budgetMs,
    count: all.reduce((n, c) => n + c.count, 0),
    slowestMs: Math.round(Math.max(0, ...all.map((c) => c.slowestMs)) * 1000) / 1000,
    overBudget: all.reduce((n, c) => n + c.overBudget, 0),
  }
}

function pickPurgeOptions(payload: Record<string, unknown> | undefined): PurgeRunInput {
  const out: PurgeRunInput = {}
  if (!payload) return out
  for (const key of [
    'retentionDays',
    'chunkSize',
    'maxDeletionsPerRun',
    'deleteEmptyBatches',
    'reportToAdmin',
  ] as const) {
    if (payload[key] !== undefined) (out as Record<string, unknown>)[key] = payload[key]
  }
  return out
}
