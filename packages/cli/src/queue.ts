/**
 * The durable queue (`@recovery-codes/queue-pgboss`, an optional peer), loaded only by the commands
 * that need it so `check`, `migrate` and `purge` never load pg-boss. The types mirror that
 * package's API.
 */
import type { DatabaseTarget } from './db.ts'
import { usageError } from './io.ts'
import { loadOptional } from './optional.ts'

/** A schedule frequency (the reference app's). */
export type ScheduleFrequency = 'once' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'quarterly' | 'yearly'
/** A job a schedule runs. */
export type ScheduledJob = 'purge' | 'purge-audit'

/** A schedule to add. */
export interface ScheduleInput {
  name: string
  job: ScheduledJob
  frequency: ScheduleFrequency
  /** First run (epoch ms); `once` runs then. */
  at?: number
  options?: {
    retentionDays?: number
    chunkSize?: number
    maxDeletionsPerRun?: number | null
    deleteEmptyBatches?: boolean
    reportToAdmin?: boolean
  }
}

/** A stored schedule. */
export interface Schedule extends ScheduleInput {
  /** The cron expression, or `null` for `once`. */
  cron: string | null
}

/** Queue counters. */
export interface QueueStats {
  queued: number
  active: number
  failed: number
  completed: number
  schedules: number
}

/** The part of `PgBossQueue` the CLI uses. */
export interface QueueClient {
  start(): Promise<void>
  stop(): Promise<void>
  addSchedule(input: ScheduleInput): Promise<Schedule>
  listSchedules(): Promise<Schedule[]>
  removeSchedule(name: string): Promise<boolean>
  flush(kind: 'failed' | 'scheduled' | 'all'): Promise<{ failed: number; scheduled: number }>
  stats(): Promise<QueueStats>
}

/** Creates a queue client; injectable for tests. */
export type QueueFactory = (options: { connectionString: string; schema?: string }) => Promise<QueueClient>

/** The real factory: `pgBossQueue()` from the optional peer `@recovery-codes/queue-pgboss`. */
export const pgBossFactory: QueueFactory = async (options) => {
  const { pgBossQueue } = await loadOptional(
    '@recovery-codes/queue-pgboss',
    'the pg-boss queue',
    () => import('@recovery-codes/queue-pgboss'),
  )
  return pgBossQueue(options)
}

/**
 * Starts a queue client on the PostgreSQL target, runs `fn`, and always stops it.
 *
 * @throws CliError (exit 2) when the target is not PostgreSQL.
 */
export async function withQueue<T>(
  target: DatabaseTarget,
  queueSchema: string | undefined,
  fn: (queue: QueueClient) => Promise<T>,
  factory: QueueFactory = pgBossFactory,
): Promise<T> {
  if (target.dialect !== 'postgres') {
    throw usageError('the queue needs PostgreSQL: pass --database postgres://… (or set DATABASE_URL)')
  }
  const queue = await factory({
    connectionString: target.url,
    ...(queueSchema === undefined ? {} : { schema: queueSchema }),
  })
  await queue.start()
  try {
    return await fn(queue)
  } finally {
    await queue.stop()
  }
}
