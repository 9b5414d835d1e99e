import {
  EMAIL_JOB,
  type Job,
  type JobHandler,
  type Logger,
  PURGE_AUDIT_JOB,
  PURGE_JOB,
  type Queue,
  RecoveryCodesError,
} from '@recovery-codes/core'
import PgBoss from 'pg-boss'
import { pgBossTables, SCHEMA_NAME } from './tables.ts'

/** How often a schedule runs. `'once'` runs at `at`. */
export type ScheduleFrequency = 'once' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'quarterly' | 'yearly'

/** The jobs a schedule can run: code purge and audit retention purge. */
export type ScheduledJob = 'purge' | 'purge-audit'

/** Per-run options a schedule passes to its job (in the job data; see the README for the core side). */
export interface ScheduleRunOptions {
  /** Days a dead code (or an audit record) is kept. */
  retentionDays?: number
  /** Rows per delete statement. */
  chunkSize?: number
  /** Most rows deleted in one run; `null` = until nothing is left. */
  maxDeletionsPerRun?: number | null
  /** Also delete ended batches without codes. */
  deleteEmptyBatches?: boolean
  /** Email the report to the admin address. */
  reportToAdmin?: boolean
}

/** What `addSchedule` takes. */
export interface ScheduleInput {
  /** Unique name: letters, digits, `-` and `_`, 1–63 characters, starting with a letter or digit. */
  name: string
  job: ScheduledJob
  frequency: ScheduleFrequency
  /** Epoch ms, for `'once'` (required there, ignored otherwise). */
  at?: number
  options?: ScheduleRunOptions
}

/** A stored schedule. `cron` is `null` for `'once'`. */
export interface Schedule extends ScheduleInput {
  cron: string | null
}

/** The durable queue returned by {@link pgBossQueue}: the core `Queue` port plus operations. */
export interface PgBossQueue extends Queue {
  /** Enqueues a job (starting the queue on first use). The payload is stored as given: ids only. */
  enqueue(job: Job): Promise<void>
  /** Registers the handler for a job name; workers start with `start()` (or at once if started). */
  handle(name: string, handler: JobHandler): void
  /** Starts pg-boss (creating its schema on first run), the queues and a worker per handled job. */
  start(): Promise<void>
  /** Stops this instance's workers; stops pg-boss too when this queue created it. */
  stop(): Promise<void>
  /** Adds or replaces the schedule of that name. */
  addSchedule(input: ScheduleInput): Promise<Schedule>
  /** Every schedule (recurring, and `'once'` schedules that have not run yet), by name. */
  listSchedules(): Promise<Schedule[]>
  /** Removes a schedule and its waiting runs; `false` when there was none of that name. */
  removeSchedule(name: string): Promise<boolean>
  /**
   * Deletes failed jobs (`'failed'`), every schedule (`'scheduled'`), or both (`'all'`), and
   * returns how many of each were removed. Nothing else is touched.
   */
  flush(kind: 'failed' | 'scheduled' | 'all'): Promise<{ failed: number; scheduled: number }>
  /** Counts by state, for `recovery-codes stats`. */
  stats(): Promise<{ queued: number; active: number; failed: number; completed: number; schedules: number }>
}

/**
 * What {@link PgBossQueueOptions.pool} needs of a node-postgres pool: `query(text, values)`.
 * Pass one built by `createPgPool` from `@recovery-codes/store-kysely`.
 */
export interface PgBossPoolLike {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>
}

/**
 * Connection settings of the pool pg-boss opens for a `connectionString` (node-postgres `Pool`
 * options that pg-boss passes through; its typings only name some of them).
 */
export interface PgBossPoolSettings {
  /**
   * `application_name` of every connection, to find them in `pg_stat_activity`.
   * @default 'recovery-codes-queue'
   */
  application_name?: string
  /**
   * Most connections of this instance's pool.
   * @default 5
   */
  max?: number
  /**
   * Wait for a new connection, in ms, before the call fails (node-postgres: forever).
   * @default 5000
   */
  connectionTimeoutMillis?: number
  /**
   * Idle time before a pooled connection is closed, in ms.
   * @default 10000
   */
  idleTimeoutMillis?: number
  /** Client-side deadline of each statement, in ms (node-postgres: none). */
  query_timeout?: number
  /** Server-side `statement_timeout` of each connection, in ms (pg-boss's maintenance runs through it too). */
  statement_timeout?: number
}

/** Options of {@link pgBossQueue}. */
export interface PgBossQueueOptions {
  /**
   * PostgreSQL connection string; pg-boss opens its own pool (see {@link PgBossPoolSettings} for its
   * defaults). One of `connectionString`, `pool` and `boss` (a `boss` wins over a `connectionString`).
   */
  connectionString?: string
  /**
   * Your own node-postgres pool, ideally from `createPgPool` (`@recovery-codes/store-kysely`), which
   * already logs connection errors and enforces a deadline: pg-boss runs every statement through
   * `pool.query` (its `db` option) and opens no pool of its own. `stop()` leaves the pool open.
   * Its deadline applies to pg-boss's maintenance too: give this pool a generous one (e.g. 30 s).
   */
  pool?: PgBossPoolLike
  /**
   * Your own `PgBoss` instance. `start()` starts it if needed; `stop()` leaves it running. Pass the
   * same `schema` it was built with. **Attach your own `'error'` listener to it** before it starts:
   * pg-boss emits pool and worker errors as `'error'` events, and an `'error'` event without a
   * listener throws and ends the process. This queue listens (and logs) only between its creation
   * and `stop()`.
   */
  boss?: PgBoss
  /**
   * pg-boss schema (letters, digits, `_`).
   * @default 'rc_pgboss'
   */
  schema?: string
  /**
   * Retries after a failed run.
   * @default 5
   */
  retryLimit?: number
  /**
   * Exponential backoff between retries (with jitter).
   * @default true
   */
  retryBackoff?: boolean
  /**
   * Seconds before the first retry (the backoff base).
   * @default 15
   */
  retryDelay?: number
  /**
   * Cron expressions per frequency, overriding {@link FREQUENCY_CRON} (for example `daily: '30 2 * * *'`).
   * @default FREQUENCY_CRON
   */
  cron?: Partial<Record<Exclude<ScheduleFrequency, 'once'>, string>>
  /**
   * Time zone of the cron expressions.
   * @default 'UTC'
   */
  timezone?: string
  /**
   * Seconds between looks for schedules added by other processes (each gets a worker here).
   * @default 30
   */
  scheduleRefreshSeconds?: number
  /**
   * Extra pg-boss constructor options (polling, cron monitor, retention …) and, with a
   * `connectionString`, the pool's settings ({@link PgBossPoolSettings}); ignored with `boss`.
   */
  bossOptions?: Omit<PgBoss.ConstructorOptions, 'connectionString' | 'schema' | 'db'> & PgBossPoolSettings
  /**
   * Receives pg-boss errors (lost connections, failed polls and maintenance): the error's name,
   * its SQLSTATE `code` and the queue, never a message, a payload or the connection string.
   * Without one they are swallowed, never thrown.
   */
  logger?: Logger
}

/** The cron expression of each recurring frequency (UTC by default): 03:00 for daily and longer. */
export const FREQUENCY_CRON: Record<Exclude<ScheduleFrequency, 'once'>, string> = Object.freeze({
  hourly: '0 * * * *',
  daily: '0 3 * * *',
  weekly: '0 3 * * 1',
  monthly: '0 3 1 * *',
  quarterly: '0 3 1 1,4,7,10 *',
  yearly: '0 3 1 1 *',
})

/** The default pg-boss schema. */
export const DEFAULT_PGBOSS_SCHEMA = 'rc_pgboss'

/**
 * The pool settings of a boss this queue creates from a `connectionString`; `bossOptions` wins.
 * pg-boss's own defaults are 10 connections and no connection timeout (a dead server then queues
 * every call forever).
 */
export const DEFAULT_PGBOSS_POOL: Readonly<
  Required<
    Pick<PgBossPoolSettings, 'application_name' | 'max' | 'connectionTimeoutMillis' | 'idleTimeoutMillis'>
  >
> = Object.freeze({
  application_name: 'recovery-codes-queue',
  max: 5,
  connectionTimeoutMillis: 5_000,
  idleTimeoutMillis: 10_000,
})

/** Every queue of this package starts with this; `flush` and `stats` look at nothing else. */
export const QUEUE_NAMESPACE = 'recovery-codes.'

/** Schedule `x` runs on the pg-boss queue `recovery-codes.schedule.x` (pg-boss 10: one schedule per queue). */
export const SCHEDULE_QUEUE_PREFIX = `${QUEUE_NAMESPACE}schedule.`

const FREQUENCIES: readonly ScheduleFrequency[] = [
  'once',
  'hourly',
  'daily',
  'weekly',
  'monthly',
  'quarterly',
  'yearly',
]
const JOB_OF: Record<ScheduledJob, string> = { purge: PURGE_JOB, 'purge-audit': PURGE_AUDIT_JOB }
const SCHEDULE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/
const JOB_NAME = /^[A-Za-z0-9][\w.-]{0,99}$/
const CORE_JOBS = [EMAIL_JOB, PURGE_JOB, PURGE_AUDIT_JOB]

/** The job data of a schedule run. Options only; never a code or secret. */
interface ScheduleData {
  rc: 1
  schedule: string
  job: ScheduledJob
  frequency: ScheduleFrequency
  at: number | null
  options: ScheduleRunOptions
}

function invalid(path: string, message: string): RecoveryCodesError {
  return new RecoveryCodesError('INVALID_INPUT', `${path} ${message}`, { issues: [{ path, message }] })
}

function unavailable(error: unknown): RecoveryCodesError {
  if (error instanceof RecoveryCodesError) return error
  return new RecoveryCodesError('STORE_UNAVAILABLE', 'The job queue is unavailable.', { cause: error })
}

function int(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max)
    throw invalid(path, `must be an integer from ${min} to ${max}`)
  return value
}

function runOptions(raw: unknown): ScheduleRunOptions {
  if (raw === undefined) return {}
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw invalid('options', 'must be an object')
  const o = raw as Record<string, unknown>
  const known = ['retentionDays', 'chunkSize', 'maxDeletionsPerRun', 'deleteEmptyBatches', 'reportToAdmin']
  for (const key of Object.keys(o))
    if (!known.includes(key)) throw invalid(`options.${key}`, 'is not an option')
  const out: ScheduleRunOptions = {}
  if (o.retentionDays !== undefined)
    out.retentionDays = int(o.retentionDays, 'options.retentionDays', 0, 3650)
  if (o.chunkSize !== undefined) out.chunkSize = int(o.chunkSize, 'options.chunkSize', 1, 100_000)
  if (o.maxDeletionsPerRun !== undefined)
    out.maxDeletionsPerRun =
      o.maxDeletionsPerRun === null
        ? null
        : int(o.maxDeletionsPerRun, 'options.maxDeletionsPerRun', 1, 10_000_000)
  for (const key of ['deleteEmptyBatches', 'reportToAdmin'] as const) {
    if (o[key] === undefined) continue
    if (typeof o[key] !== 'boolean') throw invalid(`options.${key}`, 'must be a boolean')
    out[key] = o[key]
  }
  return out
}

function isScheduleData(value: unknown): value is ScheduleData {
  if (typeof value !== 'object' || value === null) return false
  const d = value as Record<string, unknown>
  return (
    d.rc === 1 &&
    typeof d.schedule === 'string' &&
    (d.job === 'purge' || d.job === 'purge-audit') &&
    FREQUENCIES.includes(d.frequency as ScheduleFrequency) &&
    (d.at === null || typeof d.at === 'number') &&
    typeof d.options === 'object' &&
    d.options !== null
  )
}

function scheduleOf(data: ScheduleData, cron: string | null): Schedule {
  return {
    name: data.schedule,
    job: data.job,
    frequency: data.frequency,
    ...(data.at === null ? {} : { at: data.at }),
    ...(Object.keys(data.options).length > 0 ? { options: { ...data.options } } : {}),
    cron,
  }
}

/** The payload a schedule run hands to the core handler: the schedule name and its options. */
function runPayload(data: ScheduleData): Job['payload'] {
  const payload: Job['payload'] = { schedule: data.schedule }
  for (const [key, value] of Object.entries(data.options)) {
    if (value === null || ['number', 'boolean'].includes(typeof value))
      payload[key] = value as number | boolean | null
  }
  return payload
}

function checkPayload(payload: unknown): Job['payload'] {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    throw invalid('payload', 'must be an object')
  for (const [key, value] of Object.entries(payload)) {
    if (value !== null && !['string', 'number', 'boolean'].includes(typeof value))
      throw invalid(`payload.${key}`, 'must be a string, number, boolean or null')
  }
  return payload as Job['payload']
}

/**
 * A durable {@link Queue} on PostgreSQL with pg-boss 10, for several instances: jobs survive
 * restarts and run once on whichever instance fetches them (`SKIP LOCKED`), retry with
 * exponential backoff, and recurring schedules fire once per cron tick across all instances
 * (pg-boss's cron monitor runs on one instance per interval, and each tick's job is a singleton).
 *
 * Core job names (`EMAIL_JOB`, `PURGE_JOB`, `PURGE_AUDIT_JOB`) are pg-boss queue names as they are;
 * schedule `x` runs on its own queue `recovery-codes.schedule.x` (policy `stately`: at most one run
 * waiting and one running) and calls the handler of `PURGE_JOB` or `PURGE_AUDIT_JOB` with
 * `{ schedule: x, ...options }` as payload.
 *
 * @example
 * ```ts
 * import { pgBossQueue } from '@recovery-codes/queue-pgboss'
 *
 * const queue = pgBossQueue({ connectionString: process.env.DATABASE_URL })
 * const rc = createRecoveryCodes({ ...config, queue }) // registers the handlers
 * await queue.start()
 * await queue.addSchedule({ name: 'nightly-purge', job: 'purge', frequency: 'daily', options: { chunkSize: 500 } })
 * ```
 */
export function pgBossQueue(options: PgBossQueueOptions): PgBossQueue {
  const schema = options.schema ?? DEFAULT_PGBOSS_SCHEMA
  if (!SCHEMA_NAME.test(schema)) throw invalid('schema', 'must be letters, digits and _ (at most 50)')
  if (options.pool !== undefined && (options.boss !== undefined || options.connectionString !== undefined))
    throw invalid('pool', 'cannot be combined with boss or connectionString')
  if (!options.boss && !options.pool && typeof options.connectionString !== 'string')
    throw invalid('connectionString', 'is required when no boss or pool is given')
  if (options.pool !== undefined && typeof options.pool?.query !== 'function')
    throw invalid('pool', 'must be a node-postgres pool (with query)')
  const retryLimit = options.retryLimit ?? 5
  int(retryLimit, 'retryLimit', 0, 1000)
  const retryDelay = options.retryDelay ?? 15
  int(retryDelay, 'retryDelay', 0, 86_400)
  const retryBackoff = options.retryBackoff ?? true
  if (typeof retryBackoff !== 'boolean') throw invalid('retryBackoff', 'must be a boolean')
  const cronOf: Record<Exclude<ScheduleFrequency, 'once'>, string> = { ...FREQUENCY_CRON, ...options.cron }
  const timezone = options.timezone ?? 'UTC'
  const refreshMs = int(options.scheduleRefreshSeconds ?? 30, 'scheduleRefreshSeconds', 1, 3600) * 1000
  const retry = { retryLimit, retryDelay, retryBackoff }

  // pg-boss emits pool, worker, cron and maintenance errors as 'error' events on the boss; one
  // without a listener throws and ends the process. Only name, SQLSTATE and queue are logged.
  const onError = (error: unknown) => {
    const e = error as { name?: unknown; code?: unknown; queue?: unknown } | null
    options.logger?.error('recovery-codes: pg-boss error', {
      error: typeof e?.name === 'string' ? e.name : error instanceof Error ? 'Error' : 'unknown',
      code: typeof e?.code === 'string' ? e.code : null,
      queue: typeof e?.queue === 'string' ? e.queue : null,
    })
  }

  const owned = !options.boss
  const pool = options.pool
  const db: PgBoss.Db | undefined = pool && {
    executeSql: (text, values) => pool.query(text, values),
  }
  /** A boss of our own carries our listener for its whole life: it is never taken off. */
  const makeBoss = (): PgBoss => {
    const b = db
      ? new PgBoss({ ...options.bossOptions, db, schema })
      : new PgBoss({
          ...DEFAULT_PGBOSS_POOL,
          ...options.bossOptions,
          connectionString: options.connectionString as string,
          schema,
        })
    b.on('error', onError)
    return b
  }
  let boss: PgBoss = options.boss ?? makeBoss()
  // A host's boss: listened to from here to stop() (its owner must have a listener of its own).
  if (!owned) boss.on('error', onError)
  let tables = pgBossTables(boss.getDb(), schema, QUEUE_NAMESPACE)
  const handlers = new Map<string, JobHandler>()
  const created = new Set<string>()
  const creating = new Map<string, Promise<void>>()
  const watched = new Set<string>()
  let starting: Promise<void> | null = null
  let stopped = false
  let refreshTimer: ReturnType<typeof setInterval> | null = null

  /**
   * After a failed `start()`, pg-boss 10 keeps its "starting" flag and every later `start()`
   * returns at once with nothing started (no supervision, no cron, and `stop()` does nothing). A
   * boss of our own is therefore dropped (its pool closed) and a fresh one built for the next try.
   */
  async function replaceBoss(): Promise<void> {
    const old = boss
    boss = makeBoss()
    tables = pgBossTables(boss.getDb(), schema, QUEUE_NAMESPACE)
    created.clear()
    watched.clear()
    const oldDb = old.getDb() as { opened?: boolean; close?: () => Promise<void> }
    if (!db && oldDb.opened && typeof oldDb.close === 'function') await oldDb.close().catch(onError)
  }

  /**
   * Creates a pg-boss queue once. Concurrent `create_queue` calls for the same new name deadlock in
   * PostgreSQL (one inserts the queue row and attaches its partition with a foreign key to `queue`,
   * the other waits on that row while holding a lock the first one needs), so calls in this process
   * share one attempt, and an existing queue is only looked up.
   */
  function ensureQueue(name: string, policy: PgBoss.QueuePolicy = 'standard'): Promise<void> {
    if (created.has(name)) return Promise.resolve()
    let pending = creating.get(name)
    if (!pending) {
      const owner = boss
      pending = (async () => {
        if (!(await owner.getQueue(name))) await owner.createQueue(name, { name, policy, ...retry })
        if (owner === boss) created.add(name)
      })().finally(() => creating.delete(name))
      creating.set(name, pending)
    }
    return pending
  }

  async function watch(queue: string, run: (data: unknown) => Promise<void>): Promise<void> {
    if (watched.has(queue) || stopped) return
    watched.add(queue)
    try {
      await boss.work(queue, { batchSize: 1 }, async (jobs) => {
        for (const job of jobs) await run(job.data)
      })
    } catch (error) {
      watched.delete(queue)
      throw error
    }
  }

  async function watchJob(name: string): Promise<void> {
    await ensureQueue(name)
    await watch(name, async (data) => {
      const handler = handlers.get(name)
      if (!handler) throw new Error(`no handler for ${name}`)
      await handler(checkPayload(data))
    })
  }

  async function watchSchedule(schedule: Schedule): Promise<void> {
    if (!handlers.has(JOB_OF[schedule.job])) return
    await watch(SCHEDULE_QUEUE_PREFIX + schedule.name, async (data) => {
      if (!isScheduleData(data)) throw new Error('malformed schedule job')
      const handler = handlers.get(JOB_OF[data.job])
      if (!handler) throw new Error(`no handler for ${data.job}`)
      await handler(runPayload(data))
    })
  }

  async function refreshSchedules(): Promise<void> {
    if (stopped) return
    const current = await list()
    for (const s of current) await watchSchedule(s)
    // Schedules removed by another process: stop polling their queues here.
    const live = new Set(current.map((s) => SCHEDULE_QUEUE_PREFIX + s.name))
    for (const queue of watched) {
      if (queue.startsWith(SCHEDULE_QUEUE_PREFIX) && !live.has(queue)) {
        watched.delete(queue)
        await boss.offWork(queue)
      }
    }
  }

  async function ready(): Promise<void> {
    if (stopped) throw new RecoveryCodesError('STORE_UNAVAILABLE', 'The job queue was stopped.')
    starting ??= (async () => {
      try {
        await boss.start()
      } catch (error) {
        if (owned) await replaceBoss()
        throw error
      }
      if (!(await tables.installed()))
        throw new RecoveryCodesError(
          'CONFIG_INVALID',
          `pg-boss tables not found in schema ${schema}: pass the schema the boss was built with`,
          { issues: [{ path: 'schema', message: 'does not hold the pg-boss tables' }] },
        )
      for (const name of new Set([...CORE_JOBS, ...handlers.keys()])) await ensureQueue(name)
      for (const name of handlers.keys()) await watchJob(name)
      await refreshSchedules()
      refreshTimer = setInterval(() => {
        refreshSchedules().catch(onError)
      }, refreshMs)
      refreshTimer.unref()
    })().catch(async (error: unknown) => {
      if (refreshTimer) clearInterval(refreshTimer)
      refreshTimer = null
      starting = null
      throw unavailable(error)
    })
    await starting
  }

  async function guarded<T>(fn: () => Promise<T>): Promise<T> {
    await ready()
    try {
      return await fn()
    } catch (error) {
      throw unavailable(error)
    }
  }

  async function list(): Promise<Schedule[]> {
    const byName = new Map<string, Schedule>()
    for (const row of await boss.getSchedules()) {
      if (!row.name.startsWith(SCHEDULE_QUEUE_PREFIX) || !isScheduleData(row.data)) continue
      byName.set(row.data.schedule, scheduleOf(row.data, row.cron))
    }
    for (const row of await tables.waiting(SCHEDULE_QUEUE_PREFIX)) {
      if (!isScheduleData(row.data) || row.data.frequency !== 'once' || byName.has(row.data.schedule))
        continue
      byName.set(row.data.schedule, scheduleOf(row.data, null))
    }
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  async function remove(name: string): Promise<boolean> {
    const queue = SCHEDULE_QUEUE_PREFIX + name
    const existed = (await list()).some((s) => s.name === name)
    if (watched.delete(queue)) await boss.offWork(queue)
    await boss.unschedule(queue)
    // pg-boss refuses to drop a queue that still has jobs; a run in flight may still land in it,
    // in which case the empty-of-schedule queue stays (harmless) and its jobs are gone.
    await tables.deleteAll(queue)
    try {
      await boss.deleteQueue(queue)
      created.delete(queue)
    } catch (error) {
      onError(error)
    }
    return existed
  }

  const queue = {
    async enqueue(job) {
      if (typeof job?.name !== 'string' || !JOB_NAME.test(job.name))
        throw invalid('name', 'is not a valid job name')
      const payload = checkPayload(job.payload)
      await guarded(async () => {
        await ensureQueue(job.name)
        const id = await boss.send(job.name, payload, retry)
        if (id === null) throw new Error('pg-boss refused the job')
      })
    },

    handle(name, handler) {
      if (typeof name !== 'string' || !JOB_NAME.test(name)) throw invalid('name', 'is not a valid job name')
      if (typeof handler !== 'function') throw invalid('handler', 'must be a function')
      handlers.set(name, handler)
      if (starting && !stopped) {
        // Started already: begin working this job now (errors go to the logger, like worker errors).
        starting
          .then(() => watchJob(name))
          .then(refreshSchedules)
          .catch(onError)
      }
    },

    start: ready,

    async stop() {
      if (stopped) return
      stopped = true
      if (refreshTimer) clearInterval(refreshTimer)
      const wasStarted = starting !== null
      if (wasStarted) await starting?.catch(() => {})
      for (const name of watched) await boss.offWork(name).catch(onError)
      watched.clear()
      if (owned && wasStarted) await boss.stop({ graceful: true, wait: true, close: true, timeout: 10_000 })
      if (!owned) boss.off('error', onError)
    },

    async addSchedule(input) {
      if (typeof input !== 'object' || input === null) throw invalid('schedule', 'must be an object')
      if (typeof input.name !== 'string' || !SCHEDULE_NAME.test(input.name))
        throw invalid('name', 'must be 1–63 letters, digits, - or _, starting with a letter or digit')
      if (!Object.hasOwn(JOB_OF, input.job)) throw invalid('job', "must be 'purge' or 'purge-audit'")
      if (!FREQUENCIES.includes(input.frequency))
        throw invalid('frequency', `must be one of ${FREQUENCIES.join(', ')}`)
      const once = input.frequency === 'once'
      if (once && (typeof input.at !== 'number' || !Number.isSafeInteger(input.at) || input.at < 0))
        throw invalid('at', "is required for 'once': epoch milliseconds")
      const data: ScheduleData = {
        rc: 1,
        schedule: input.name,
        job: input.job,
        frequency: input.frequency,
        at: once ? (input.at as number) : null,
        options: runOptions(input.options),
      }
      const cron = input.frequency === 'once' ? null : cronOf[input.frequency]
      const name = SCHEDULE_QUEUE_PREFIX + input.name
      return guarded(async () => {
        await ensureQueue(name, 'stately')
        // Replacing a schedule drops its waiting run, so a replaced 'once' never runs twice.
        await boss.unschedule(name)
        await tables.deleteWaiting(name)
        if (cron === null) {
          const id = await boss.send(name, data as unknown as object, {
            ...retry,
            startAfter: new Date(data.at as number),
          })
          if (id === null) throw new Error('pg-boss refused the job')
        } else {
          await boss.schedule(name, cron, data as unknown as object, { ...retry, tz: timezone })
        }
        const schedule = scheduleOf(data, cron)
        await watchSchedule(schedule)
        return schedule
      })
    },

    listSchedules: () => guarded(list),

    async removeSchedule(name) {
      if (typeof name !== 'string' || !SCHEDULE_NAME.test(name)) return false
      return guarded(() => remove(name))
    },

    async flush(kind) {
      if (kind !== 'failed' && kind !== 'scheduled' && kind !== 'all')
        throw invalid('kind', "must be 'failed', 'scheduled' or 'all'")
      return guarded(async () => {
        let scheduled = 0
        let failed = 0
        if (kind !== 'failed') for (const s of await list()) if (await remove(s.name)) scheduled++
        if (kind !== 'scheduled') failed = await tables.deleteFailed()
        return { failed, scheduled }
      })
    },

    stats: () =>
      guarded(async () => {
        const c = await tables.countByState()
        return {
          queued: c.created + c.retry,
          active: c.active,
          failed: c.failed,
          completed: c.completed,
          schedules: (await list()).length,
        }
      }),
  } satisfies PgBossQueue
  return queue
}
