/** A job: a name and a JSON payload that never carries a plaintext code or secret. */
export interface Job {
  name: string
  payload: Record<string, string | number | boolean | null>
}

/** A job handler. */
export type JobHandler = (payload: Job['payload']) => Promise<void>

/**
 * The queue port. The default runs jobs in-process right away; a durable queue (pg-boss) runs them
 * on any instance.
 *
 * Contract: `enqueue` resolves once the job is accepted; the payload is persisted as given, so
 * callers put only references (ids) in it.
 */
export interface Queue {
  enqueue(job: Job): Promise<void>
  /** Registers the handler for a job name. */
  handle(name: string, handler: JobHandler): void
}
