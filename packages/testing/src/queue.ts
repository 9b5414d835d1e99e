import type { Job, JobHandler, Queue } from '@recovery-codes/core'

/** The outcome of one job run by {@link createInlineQueue}. */
export interface InlineJobRun {
  job: Job
  ok: boolean
  error?: unknown
}

/** A {@link Queue} that runs jobs in-process and records them. */
export interface InlineQueue extends Queue {
  enqueue(job: Job): Promise<void>
  handle(name: string, handler: JobHandler): void
  /** Every accepted job, oldest first (payloads copied at enqueue time). */
  readonly jobs: readonly Job[]
  /** Every finished run, in completion order. */
  readonly runs: readonly InlineJobRun[]
  /** Jobs waiting for a handler of their name. */
  readonly pending: readonly Job[]
  /** Resolves once every started handler has settled (handlers that enqueue more are awaited too). */
  idle(): Promise<void>
  /** Forgets recorded jobs and runs (not handlers). */
  clear(): void
}

/**
 * An in-process queue for tests. `enqueue` resolves as soon as the job is recorded; the handler
 * then runs on the next turn of the event loop (`setImmediate`), after the caller's own
 * continuation, as with a real queue; `await queue.idle()` to wait for it. Handler errors never reach the caller of `enqueue`; they are
 * recorded in `runs`. A job with no handler yet waits in `pending` until `handle` registers one.
 *
 * @example
 * ```ts
 * const queue = createInlineQueue()
 * const rc = createRecoveryCodes({ ...config, queue })
 * await rc.generate({ userId })
 * await queue.idle()
 * expect(queue.jobs.map((j) => j.name)).toContain('notify')
 * ```
 */
export function createInlineQueue(): InlineQueue {
  const handlers = new Map<string, JobHandler>()
  const jobs: Job[] = []
  const runs: InlineJobRun[] = []
  const pending: Job[] = []
  const inFlight = new Set<Promise<void>>()

  const run = (job: Job, handler: JobHandler): void => {
    const p: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => handler(structuredClone(job.payload)))
      .then(
        () => {
          runs.push({ job, ok: true })
        },
        (error: unknown) => {
          runs.push({ job, ok: false, error })
        },
      )
      .finally(() => inFlight.delete(p))
    inFlight.add(p)
  }

  return {
    jobs,
    runs,
    pending,
    async enqueue(job) {
      const copy: Job = { name: job.name, payload: structuredClone(job.payload) }
      jobs.push(copy)
      const handler = handlers.get(copy.name)
      if (handler) run(copy, handler)
      else pending.push(copy)
    },
    handle(name, handler) {
      handlers.set(name, handler)
      for (let i = 0; i < pending.length; ) {
        const job = pending[i]!
        if (job.name === name) {
          pending.splice(i, 1)
          run(job, handler)
        } else i++
      }
    },
    async idle() {
      while (inFlight.size > 0) await Promise.all([...inFlight])
    },
    clear() {
      jobs.length = 0
      runs.length = 0
      pending.length = 0
    },
  } satisfies InlineQueue
}
