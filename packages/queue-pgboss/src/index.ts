export {
  DEFAULT_PGBOSS_SCHEMA,
  FREQUENCY_CRON,
  type PgBossQueue,
  type PgBossQueueOptions,
  pgBossQueue,
  QUEUE_NAMESPACE,
  SCHEDULE_QUEUE_PREFIX,
  type Schedule,
  type ScheduledJob,
  type ScheduleFrequency,
  type ScheduleInput,
  type ScheduleRunOptions,
} from './queue.ts'
