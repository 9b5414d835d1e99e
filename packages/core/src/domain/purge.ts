/**
 * The purge loop, free of any store: it asks a `deleteChunk` callback for bounded chunks until
 * nothing is left, a per-run cap is reached, or the caller asks it to stop.
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
  /** Checked after each chunk; `true` ends the run early. */
  shouldStop?: () => boolean
  /** Called after each chunk. */
  onChunk?: (progress: PurgeProgress) => void
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
}

/**
 * Runs one purge: each round asks `deleteChunk` for `min(chunkSize, cap − deleted)` rows. The
 * run ends when a chunk deletes fewer than asked (`done: true`), when the cap is reached or
 * `shouldStop()` returns true after a chunk (`done: false` unless that chunk was short), or when
 * a chunk throws. A failure is reported, never thrown: `error` is set and `deleted` counts what
 * was deleted before it. A chunk resolving to anything but an integer in `0..limit` is a failure.
 * Chunks are independent, so a run that ends early is resumed by the next one.
 *
 * @throws RecoveryCodesError `INVALID_INPUT` (as a rejection) for a bad `chunkSize` or cap.
 * @example
 * ```ts
 * const report = await runPurge({
 *   deleteChunk: (limit) => store.purgeCodes({ before: now - retentionMs, limit }),
 *   chunkSize: 500,
 *   maxDeletionsPerRun: 50_000,
 * })
 * // { deleted: 1234, rounds: 3, done: true }
 * ```
 */
export async function runPurge(options: RunPurgeOptions): Promise<PurgeRunResult> {
  const { deleteChunk, chunkSize, maxDeletionsPerRun: cap, shouldStop, onChunk } = options
  const issues: RecoveryCodesIssue[] = []
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) {
    issues.push({ path: 'chunkSize', message: 'must be an integer ≥ 1' })
  }
  if (cap !== null && (!Number.isSafeInteger(cap) || cap < 1)) {
    issues.push({ path: 'maxDeletionsPerRun', message: 'must be null or an integer ≥ 1' })
  }
  if (issues.length > 0) throw new RecoveryCodesError('INVALID_INPUT', 'invalid purge options', { issues })

  let deleted = 0
  let rounds = 0
  for (;;) {
    const limit = cap === null ? chunkSize : Math.min(chunkSize, cap - deleted)
    try {
      const n = await deleteChunk(limit)
      if (!Number.isInteger(n) || n < 0 || n > limit) {
        throw new RecoveryCodesError('INTERNAL', `deleteChunk(${limit}) returned ${String(n)}`)
      }
      deleted += n
      rounds++
      onChunk?.({ deleted, rounds, lastChunk: n })
      if (n < limit) return { deleted, rounds, done: true }
      if (cap !== null && deleted >= cap) return { deleted, rounds, done: false }
      if (shouldStop?.()) return { deleted, rounds, done: false }
    } catch (error) {
      return { deleted, rounds, done: false, error }
    }
  }
}
