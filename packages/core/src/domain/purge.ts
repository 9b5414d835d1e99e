/**
 * The purge loop, free of any store: it asks a `deleteChunk` callback for bounded chunks until
 * nothing is left, a per-run cap is reached, or the caller asks it to stop. With a time budget the
 * chunks are sized from how long the previous one took ({@link nextChunkLimit}), never above
 * `chunkSize`: a purge never runs one unbounded delete, and a slow database gets small chunks.
 */
import { RecoveryCodesError, type RecoveryCodesIssue } from '../errors.ts'

/** Progress after each chunk. */
export interface PurgeProgress {
  /** Rows deleted so far in this run. */
  deleted: number
  /** Chunks completed so far. */
  rounds: number
  /** Rows deleted by the chunk just completed. */
  lastChunk: number
}

/** Options of {@link runPurge}. */
export interface RunPurgeOptions {
  /**
   * Deletes at most `limit` eligible rows in one statement and resolves to how many it deleted.
   * Fewer than `limit` means nothing eligible was left.
   */
  deleteChunk: (limit: number) => Promise<number>
  /** Largest chunk asked for; an integer ≥ 1. */
  chunkSize: number
  /** Most rows deleted in one run; `null` = until done. An integer ≥ 1 otherwise. */
  maxDeletionsPerRun: number | null
  /**
   * Time budget of one chunk in milliseconds, an integer ≥ 1. When set, the first chunk asks for
   * {@link firstChunkLimit} rows and each next one for {@link nextChunkLimit} of the one before,
   * timed by `timer`; without it every chunk asks for `chunkSize`.
   */
  chunkBudgetMs?: number
  /**
   * A monotonic clock in milliseconds that times each `deleteChunk` (the service passes
   * `performance.now`); required with `chunkBudgetMs`. Never the service's clock: a chunk's
   * duration is not a timestamp of any row.
   */
  timer?: () => number
  /** Checked after each chunk; `true` ends the run early. */
  shouldStop?: () => boolean
  /** Called after each chunk. */
  onChunk?: (progress: PurgeProgress) => void
}

/** How the chunks of a time-budgeted run went (see {@link RunPurgeOptions.chunkBudgetMs}). */
export interface PurgeChunkStats {
  /** Chunks completed and timed. */
  count: number
  /** The longest chunk, in milliseconds. */
  slowestMs: number
  /** Chunks that took longer than the budget (each made the next one smaller). */
  overBudget: number
  /** The limit the last chunk asked for. */
  lastLimit: number
}

/** The typed report of one run. */
export interface PurgeRunResult {
  /** Rows deleted in this run. */
  deleted: number
  /** Chunks completed. */
  rounds: number
  /** `true` when the last chunk came back short: nothing eligible was left. */
  done: boolean
  /** Set when a chunk (or a callback) failed; the run ended there. */
  error?: unknown
  /** Set for a time-budgeted run (`chunkBudgetMs`). */
  chunks?: PurgeChunkStats
}

/** The bounds of time-budgeted chunk sizing. */
export interface ChunkSizing {
  /** Time budget of one chunk in milliseconds; an integer ≥ 1. */
  budgetMs: number
  /** Largest limit ever asked for (the run's `chunkSize`); an integer ≥ 1. */
  maxLimit: number
}

/** One timed chunk: the limit it asked for and how long it took, in milliseconds. */
export interface TimedChunk {
  limit: number
  ms: number
}

/**
 * Rows per millisecond the first chunk of a time-budgeted run assumes: about what SQLite deletes
 * (PostgreSQL does more), so the first chunk lands near the budget and the next ones follow what
 * was measured.
 */
export const FIRST_CHUNK_ROWS_PER_MS = 100

/**
 * The limit of the first chunk of a time-budgeted run: `budgetMs × {@link FIRST_CHUNK_ROWS_PER_MS}`,
 * within `[1, maxLimit]`.
 *
 * @throws RecoveryCodesError `INVALID_INPUT` for a `budgetMs` or `maxLimit` that is not an integer ≥ 1.
 * @example firstChunkLimit({ budgetMs: 10, maxLimit: 50_000 }) // 1000
 */
export function firstChunkLimit(sizing: ChunkSizing): number {
  assertSizing(sizing)
  return Math.min(sizing.maxLimit, sizing.budgetMs * FIRST_CHUNK_ROWS_PER_MS)
}

/**
 * The limit of the next chunk, from how long the last one took. Under half the budget: twice the
 * limit. Within the budget: the same. Over it: the limit scaled by `budgetMs / ms`, at most
 * halved, so a one-off stall (a lock wait, a pause) does not collapse the size, and a slow
 * database halves it chunk by chunk until a chunk fits. Always within `[1, maxLimit]`.
 *
 * @param chunk - The chunk just completed: the limit it asked for and its duration in ms.
 * @throws RecoveryCodesError `INVALID_INPUT` for bad sizing, a limit that is not an integer ≥ 1, or
 *   a duration that is not a finite number ≥ 0.
 * @example
 * ```ts
 * const sizing = { budgetMs: 10, maxLimit: 5000 }
 * nextChunkLimit({ limit: 1000, ms: 2 }, sizing) // 2000: well under budget
 * nextChunkLimit({ limit: 1000, ms: 8 }, sizing) // 1000
 * nextChunkLimit({ limit: 1000, ms: 12.5 }, sizing) // 800
 * nextChunkLimit({ limit: 1000, ms: 40 }, sizing) // 500: at most halved
 * ```
 */
export function nextChunkLimit(chunk: TimedChunk, sizing: ChunkSizing): number {
  assertSizing(sizing)
  const { limit, ms } = chunk
  const { budgetMs, maxLimit } = sizing
  if (!Number.isSafeInteger(limit) || limit < 1 || !Number.isFinite(ms) || ms < 0) {
    throw new RecoveryCodesError('INVALID_INPUT', 'invalid chunk', {
      issues: [{ path: 'chunk', message: 'limit must be an integer ≥ 1 and ms a finite number ≥ 0' }],
    })
  }
  const within = (n: number) => Math.max(1, Math.min(maxLimit, n))
  if (ms < budgetMs / 2) return within(limit * 2)
  if (ms <= budgetMs) return within(limit)
  return within(Math.floor(limit * Math.max(budgetMs / ms, 0.5)))
}

function sizingIssues(sizing: ChunkSizing): RecoveryCodesIssue[] {
  const issues: RecoveryCodesIssue[] = []
  if (!Number.isSafeInteger(sizing?.budgetMs) || sizing.budgetMs < 1) {
    issues.push({ path: 'chunkBudgetMs', message: 'must be an integer ≥ 1' })
  }
  if (!Number.isSafeInteger(sizing?.maxLimit) || sizing.maxLimit < 1) {
    issues.push({ path: 'chunkSize', message: 'must be an integer ≥ 1' })
  }
  return issues
}

function assertSizing(sizing: ChunkSizing): void {
  const issues = sizingIssues(sizing)
  if (issues.length > 0) throw new RecoveryCodesError('INVALID_INPUT', 'invalid purge options', { issues })
}

/**
 * Runs one purge: each round asks `deleteChunk` for `min(limit, cap − deleted)` rows, where
 * `limit` is `chunkSize`, or with `chunkBudgetMs` the time-budgeted size ({@link firstChunkLimit},
 * then {@link nextChunkLimit} of each timed chunk). The run ends when a chunk deletes fewer than
 * asked (`done: true`), when the cap is reached or `shouldStop()` returns true after a chunk
 * (`done: false` unless that chunk was short), or when a chunk throws. A failure is reported, never
 * thrown: `error` is set and `deleted` counts what was deleted before it. A chunk resolving to
 * anything but an integer in `0..limit` is a failure. Chunks are independent, so a run that ends
 * early is resumed by the next one.
 *
 * @throws RecoveryCodesError `INVALID_INPUT` (as a rejection) for a bad `chunkSize`, cap or
 *   `chunkBudgetMs`, or a budget without a `timer`.
 * @example
 * ```ts
 * const report = await runPurge({
 *   deleteChunk: (limit) => store.purgeCodes({ before: now - retentionMs, limit }),
 *   chunkSize: 5000,
 *   maxDeletionsPerRun: 50_000,
 *   chunkBudgetMs: 10,
 *   timer: () => performance.now(),
 * })
 * // { deleted: 1234, rounds: 3, done: true, chunks: { count: 3, slowestMs: 4.1, overBudget: 0, lastLimit: 2000 } }
 * ```
 */
export async function runPurge(options: RunPurgeOptions): Promise<PurgeRunResult> {
  const { deleteChunk, chunkSize, maxDeletionsPerRun: cap, shouldStop, onChunk } = options
  const { chunkBudgetMs, timer } = options
  const issues: RecoveryCodesIssue[] = []
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) {
    issues.push({ path: 'chunkSize', message: 'must be an integer ≥ 1' })
  }
  if (cap !== null && (!Number.isSafeInteger(cap) || cap < 1)) {
    issues.push({ path: 'maxDeletionsPerRun', message: 'must be null or an integer ≥ 1' })
  }
  const sizing = chunkBudgetMs === undefined ? null : { budgetMs: chunkBudgetMs, maxLimit: chunkSize }
  if (sizing !== null) {
    for (const issue of sizingIssues(sizing)) if (issue.path !== 'chunkSize') issues.push(issue)
    if (typeof timer !== 'function') {
      issues.push({ path: 'timer', message: 'is required with chunkBudgetMs' })
    }
  }
  if (issues.length > 0) throw new RecoveryCodesError('INVALID_INPUT', 'invalid purge options', { issues })

  let deleted = 0
  let rounds = 0
  let limit = sizing === null ? chunkSize : firstChunkLimit(sizing)
  const stats: PurgeChunkStats = { count: 0, slowestMs: 0, overBudget: 0, lastLimit: limit }
  const result = (done: boolean, error?: unknown): PurgeRunResult => ({
    deleted,
    rounds,
    done,
    ...(error === undefined ? {} : { error }),
    ...(sizing === null ? {} : { chunks: stats }),
  })
  for (;;) {
    const ask = cap === null ? limit : Math.min(limit, cap - deleted)
    try {
      const started = sizing === null ? 0 : timer!()
      const n = await deleteChunk(ask)
      if (!Number.isInteger(n) || n < 0 || n > ask) {
        throw new RecoveryCodesError('INTERNAL', `deleteChunk(${ask}) returned ${String(n)}`)
      }
      deleted += n
      rounds++
      if (sizing !== null) {
        const chunk = { limit: ask, ms: Math.max(0, timer!() - started) }
        stats.count++
        stats.slowestMs = Math.max(stats.slowestMs, chunk.ms)
        if (chunk.ms > sizing.budgetMs) stats.overBudget++
        stats.lastLimit = ask
        limit = nextChunkLimit(chunk, sizing)
      }
      onChunk?.({ deleted, rounds, lastChunk: n })
      if (n < ask) return result(true)
      if (cap !== null && deleted >= cap) return result(false)
      if (shouldStop?.()) return result(false)
    } catch (error) {
      return result(false, error)
    }
  }
}
