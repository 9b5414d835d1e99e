/** `recovery-codes stats`: batches by status, codes by state, locked accounts, queue counters. */
import type { RecoveryCodesDialect } from '@recovery-codes/store-kysely'
import type { Kysely } from 'kysely'
import { toDbTime } from '../db.ts'
import type { QueueStats } from '../queue.ts'

/** The numbers {@link collectStats} reads. */
export interface Stats {
  /** Batches by status (`active`, `superseded`, `disabled`, `deleted`). */
  batches: Record<string, number>
  /** Code rows by state (`active`, `used`, `invalidated`, `deleted`). */
  codes: Record<string, number>
  /** Active code rows past their expiry (counted under `active` too). */
  expiredCodes: number
  /** Limiter keys currently locked (`locked_until > now`): accounts and clients in a cooldown. */
  lockedAccounts: number
  /** Audit records. */
  auditRecords: number
  /** Queue counters (PostgreSQL with the queue), or why they are missing. */
  queue?: QueueStats | { unavailable: string }
}

async function grouped(db: Kysely<any>, table: string, column: string): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom(table)
    .select((eb) => [eb.ref(column).as('k'), eb.fn.countAll().as('n')])
    .groupBy(column)
    .orderBy(column)
    .execute()
  return Object.fromEntries(rows.map((r) => [String(r.k), Number(r.n)]))
}

/** Reads the counters with read-only, bound-parameter queries. */
export async function collectStats(
  db: Kysely<any>,
  dialect: RecoveryCodesDialect,
  now: number = Date.now(),
): Promise<Stats> {
  const t = toDbTime(dialect, now)
  const one = async (q: Promise<{ n: unknown } | undefined>) => Number((await q)?.n ?? 0)
  return {
    batches: await grouped(db, 'rc_batches', 'status'),
    codes: await grouped(db, 'rc_codes', 'state'),
    expiredCodes: await one(
      db
        .selectFrom('rc_codes')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('state', '=', 'active')
        .where('expires_at', '<=', t)
        .executeTakeFirst(),
    ),
    lockedAccounts: await one(
      db
        .selectFrom('rc_attempts')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('locked_until', '>', t)
        .executeTakeFirst(),
    ),
    auditRecords: await one(
      db
        .selectFrom('rc_audit_log')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst(),
    ),
  }
}

/** Renders {@link Stats} for humans. */
export function formatStats(s: Stats): string {
  const group = (r: Record<string, number>) => {
    const entries = Object.entries(r)
    const total = entries.reduce((a, [, n]) => a + n, 0)
    return `${total}${entries.length ? ` (${entries.map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}`
  }
  const lines = [
    `batches:         ${group(s.batches)}`,
    `codes:           ${group(s.codes)}`,
    `expired codes:   ${s.expiredCodes}`,
    `locked accounts: ${s.lockedAccounts}`,
    `audit records:   ${s.auditRecords}`,
  ]
  if (s.queue) {
    lines.push(
      'unavailable' in s.queue
        ? `queue:           unavailable (${s.queue.unavailable})`
        : `queue:           queued ${s.queue.queued}, active ${s.queue.active}, failed ${s.queue.failed}, completed ${s.queue.completed}, schedules ${s.queue.schedules}`,
    )
  }
  return `${lines.join('\n')}\n`
}
