/** `recovery-codes schedule add|list|remove`: purge schedules on the durable queue. */
import type { QueueClient, Schedule, ScheduleInput } from '../queue.ts'

/** Adds (or replaces) a schedule; returns it as stored, with its cron expression. */
export function addSchedule(queue: QueueClient, input: ScheduleInput): Promise<Schedule> {
  return queue.addSchedule(input)
}

/** Renders schedules as an aligned table (or a line saying there are none). */
export function formatSchedules(schedules: readonly Schedule[]): string {
  if (schedules.length === 0) return 'no schedules\n'
  const rows = schedules.map((s) => [
    s.name,
    s.job,
    s.frequency,
    s.cron ?? '-',
    s.at === undefined ? '-' : new Date(s.at).toISOString(),
    formatScheduleOptions(s.options),
  ])
  const head = ['NAME', 'JOB', 'EVERY', 'CRON', 'AT', 'OPTIONS']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()
  return `${[line(head), ...rows.map(line)].join('\n')}\n`
}

/** `retention=30d chunk=500 max=unlimited empty-batches report` style summary of schedule options. */
export function formatScheduleOptions(o: ScheduleInput['options']): string {
  if (!o) return '-'
  const parts: string[] = []
  if (o.retentionDays !== undefined) parts.push(`retention=${o.retentionDays}d`)
  if (o.chunkSize !== undefined) parts.push(`chunk=${o.chunkSize}`)
  if (o.maxDeletionsPerRun !== undefined) parts.push(`max=${o.maxDeletionsPerRun ?? 'unlimited'}`)
  if (o.deleteEmptyBatches) parts.push('empty-batches')
  if (o.reportToAdmin) parts.push('report')
  return parts.length > 0 ? parts.join(' ') : '-'
}
