/**
 * `recovery-codes purge` and `purge-audit`: the service's purge with live progress, a stop after
 * the current chunk on Ctrl-C, a dry run that only counts, and a report checked against a count.
 */
import { randomBytes } from 'node:crypto'
import { setImmediate as nextTurn } from 'node:timers/promises'
import {
  createRecoveryCodes,
  type RecoveryCodeStore,
  type RecoveryCodesConfig,
  type ResolvedConfig,
  resolveConfig,
} from '@recovery-codes/core'
import { kyselyStore, type RecoveryCodesDialect } from '@recovery-codes/store-kysely'
import type { Kysely } from 'kysely'
import { toDbTime } from '../db.ts'
import type { ProgressSink } from '../progress.ts'

const DAY_MS = 86_400_000

/** What is purged: code rows (`purge`) or audit records (`purge-audit`). */
export type PurgeKind = 'codes' | 'audit'

/** Flag overrides of the purge options. */
export interface PurgeOverrides {
  /** `--retention-days` (codes: `purge.retentionDays`; audit: `audit.retentionDays`). */
  retentionDays?: number | undefined
  /** `--chunk-size`: `purge.batchSize`. */
  chunkSize?: number | undefined
  /** `--max-deletions`: `purge.maxDeletionsPerRun` (`null` = unlimited). */
  maxDeletions?: number | null | undefined
  /** `--delete-empty-batches`: `purge.deleteEmptyBatches`. */
  deleteEmptyBatches?: boolean | undefined
}

/** The result of {@link runPurgeCommand}. */
export interface PurgeCommandResult {
  /** What was purged. */
  kind: PurgeKind
  /** Only counted (`--dry-run`). */
  dryRun: boolean
  /** Rows eligible when the run started (from a count query). */
  eligible: number
  /** Rows deleted by this run (the service's report). */
  deleted: number
  /** Empty batches deleted (codes with `deleteEmptyBatches` only). */
  batchesDeleted: number
  /** Expired limiter counters deleted (codes purge only). */
  attemptsDeleted: number
  /** Chunks run. */
  rounds: number
  /** Nothing eligible is left. */
  done: boolean
  /** Stopped by Ctrl-C after a chunk. */
  interrupted: boolean
  /** Set when a chunk failed (an error name, never SQL). */
  error?: string
  /** Rows still eligible after the run (from a count query). */
  remaining: number
  /** The retention used, in days. */
  retentionDays: number
  /** Wall time, in seconds. */
  seconds: number
}

/** Options of {@link runPurgeCommand}. */
export interface PurgeCommandOptions {
  kind: PurgeKind
  db: Kysely<any>
  dialect: RecoveryCodesDialect
  /** Options from the environment and config file (no ports). */
  config: Partial<RecoveryCodesConfig>
  overrides?: PurgeOverrides
  /** Only count. */
  dryRun?: boolean
  /** Checked after every chunk: `true` stops the run there. */
  shouldStop?: () => boolean
  /** Progress receiver (none: silent). */
  progress?: ProgressSink | null
  /** Notes for the operator (options the CLI cannot honour). */
  onNote?: (note: string) => void
  /** @default Date.now */
  now?: () => number
}

/**
 * Prepares the configuration for a purge-only service: overrides applied; a throwaway pepper when
 * none is configured (purge never hashes); and options that need ports the CLI has not got
 * (mailer, shared cache, identifier resolver) turned off, each with a note.
 */
export function purgeConfig(
  kind: PurgeKind,
  config: Partial<RecoveryCodesConfig>,
  overrides: PurgeOverrides,
  onNote: (note: string) => void,
): Omit<RecoveryCodesConfig, 'store'> {
  const purge = { ...config.purge }
  const audit = { ...config.audit }
  if (overrides.retentionDays !== undefined) {
    if (kind === 'codes') purge.retentionDays = overrides.retentionDays
    else audit.retentionDays = overrides.retentionDays
  }
  if (overrides.chunkSize !== undefined) purge.batchSize = overrides.chunkSize
  if (overrides.maxDeletions !== undefined) purge.maxDeletionsPerRun = overrides.maxDeletions
  if (overrides.deleteEmptyBatches !== undefined) purge.deleteEmptyBatches = overrides.deleteEmptyBatches
  if (purge.reportToAdmin) {
    onNote(
      'purge.reportToAdmin is not honoured by the CLI (no mailer); schedule the purge on the queue for a report',
    )
    purge.reportToAdmin = false
  }
  const email = { ...config.email, enabled: false }
  const peppers =
    config.peppers && config.peppers.length > 0
      ? config.peppers
      : [{ id: 'cli', secret: randomBytes(32).toString('base64') }]
  return {
    ...config,
    peppers,
    purge,
    audit,
    email,
    deployment: 'single',
    ...(config.loginMode === 'identifier-and-code' ? { resolveUserId: async () => null } : {}),
  }
}

function count(row: { n: unknown } | undefined): number {
  return Number(row?.n ?? 0)
}

/**
 * Code rows the store's purge would delete now: the same predicate as its two purge branches
 * (`changed_at < before` or `expires_at < before`), read-only and with bound parameters only.
 */
export async function countEligibleCodes(
  db: Kysely<any>,
  dialect: RecoveryCodesDialect,
  before: number,
): Promise<number> {
  const t = toDbTime(dialect, before)
  const row = await db
    .selectFrom('rc_codes')
    .select((eb) => eb.fn.countAll().as('n'))
    .where((eb) => eb.or([eb('changed_at', '<', t), eb('expires_at', '<', t)]))
    .executeTakeFirst()
  return count(row)
}

/** Audit records the store's `purgeAudit` would delete now (`at < before`). */
export async function countEligibleAudit(
  db: Kysely<any>,
  dialect: RecoveryCodesDialect,
  before: number,
): Promise<number> {
  const row = await db
    .selectFrom('rc_audit_log')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('at', '<', toDbTime(dialect, before))
    .executeTakeFirst()
  return count(row)
}

/**
 * Runs one purge (or a dry run) and returns a report whose `eligible` and `remaining` come from
 * count queries, so it can be compared with the database.
 *
 * Codes go through the service's `purge({ shouldStop, onChunk })` (one `purge.run` audit record).
 * Audit records go through the service's `purgeAudit({ shouldStop, onChunk })` (one `audit.purged`
 * audit record).
 *
 * @throws RecoveryCodesError `CONFIG_INVALID` when the configuration is invalid.
 */
export async function runPurgeCommand(options: PurgeCommandOptions): Promise<PurgeCommandResult> {
  const now = options.now ?? Date.now
  const startedAt = now()
  const note = options.onNote ?? (() => {})
  const store = yieldingStore(kyselyStore(options.db, { dialect: options.dialect }))
  const input = { ...purgeConfig(options.kind, options.config, options.overrides ?? {}, note), store }
  // The clock is frozen at the start so the count and the purge use the same cutoff.
  const clock = { now: () => startedAt }
  const resolved: ResolvedConfig = resolveConfig({ ...input, clock })
  const retentionDays = options.kind === 'codes' ? resolved.purge.retentionDays : resolved.audit.retentionDays
  const before = startedAt - retentionDays * DAY_MS
  const counter = options.kind === 'codes' ? countEligibleCodes : countEligibleAudit
  const eligible = await counter(options.db, options.dialect, before)
  const cap = resolved.purge.maxDeletionsPerRun
  const base = { kind: options.kind, eligible, retentionDays, batchesDeleted: 0, attemptsDeleted: 0 }

  if (options.dryRun) {
    return {
      ...base,
      dryRun: true,
      deleted: 0,
      rounds: 0,
      done: eligible === 0,
      interrupted: false,
      remaining: eligible,
      seconds: (now() - startedAt) / 1000,
    }
  }

  let stopped = false
  const shouldStop = () => {
    if (options.shouldStop?.()) stopped = true
    return stopped
  }
  const progress = options.progress ?? null
  progress?.start(cap === null ? eligible : Math.min(eligible, cap))
  const onChunk = (p: { deleted: number }) => progress?.update(p.deleted)

  let report: {
    deleted: number
    batchesDeleted: number
    attemptsDeleted: number
    rounds: number
    done: boolean
    error?: string
  }
  try {
    const rc = createRecoveryCodes({ ...input, clock })
    report =
      options.kind === 'codes'
        ? await rc.purge({ shouldStop, onChunk })
        : await rc.purgeAudit({ shouldStop, onChunk })
  } finally {
    progress?.stop()
  }
  const remaining = await counter(options.db, options.dialect, before)
  return {
    ...base,
    dryRun: false,
    deleted: report.deleted,
    batchesDeleted: report.batchesDeleted,
    attemptsDeleted: report.attemptsDeleted,
    rounds: report.rounds,
    done: report.done,
    interrupted: stopped && !report.done,
    ...(report.error === undefined ? {} : { error: report.error }),
    remaining,
    seconds: (now() - startedAt) / 1000,
  }
}

/**
 * The store with a turn of the event loop before each purge chunk. better-sqlite3 is synchronous,
 * so a chunk loop of resolved promises would never reach the macrotask queue: Ctrl-C would not be
 * seen and progress would not be written until the run ended.
 */
function yieldingStore<S extends RecoveryCodeStore>(store: S): S {
  return {
    ...store,
    purgeCodes: async (input) => {
      await nextTurn()
      return store.purgeCodes(input)
    },
    purgeEmptyBatches: async (input) => {
      await nextTurn()
      return store.purgeEmptyBatches(input)
    },
    purgeAudit: async (input) => {
      await nextTurn()
      return store.purgeAudit(input)
    },
  }
}

function _errorName(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e && typeof e.code === 'string') return e.code
  return e instanceof Error ? e.name : 'Error'
}

/** Renders a {@link PurgeCommandResult} for humans. */
export function formatPurge(r: PurgeCommandResult): string {
  const what = r.kind === 'codes' ? 'code rows' : 'audit records'
  const cmd = r.kind === 'codes' ? 'purge' : 'purge-audit'
  if (r.dryRun) {
    return `${cmd} (dry run): ${r.eligible} ${what} older than ${r.retentionDays} days would be deleted; nothing was deleted\n`
  }
  const rate = r.seconds > 0 ? Math.round(r.deleted / r.seconds) : r.deleted
  const lines = [
    `${cmd}: deleted ${r.deleted} ${what}${r.kind === 'codes' ? `, ${r.batchesDeleted} empty batches and ${r.attemptsDeleted} expired limiter counters` : ''} in ${r.rounds} chunks (${r.seconds.toFixed(1)} s, ${rate} rows/s)`,
    `eligible before: ${r.eligible}, remaining: ${r.remaining}`,
  ]
  if (r.error !== undefined)
    lines.push(`status: FAILED (${r.error}); what was deleted before the failure stays deleted`)
  else if (r.interrupted) lines.push('status: interrupted after the current chunk; run again to continue')
  else if (!r.done) lines.push('status: per-run cap reached; run again (or pass --max-deletions) to continue')
  else lines.push('status: complete')
  return `${lines.join('\n')}\n`
}
