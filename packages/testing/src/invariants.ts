import type { AuditRecord, BatchSummary, RecoveryCodeStore } from '@recovery-codes/core'
import { expect } from 'vitest'

/**
 * The rules {@link checkStoreInvariants} sweeps, one name per violated rule:
 *
 * - `one-active-batch`: a user has at most one batch with status `active`.
 * - `active-batch-agrees`: `getActiveBatch(userId)` returns exactly the batch `listBatches` shows as
 *   `active` (or `null` when none is).
 * - `batch-issued-nonzero`: every batch was issued at least one code.
 * - `batch-counts-balance`: every batch accounts for each code it issued:
 *   `issued === unused + used + invalidated + deleted` (no code missing, none counted twice).
 * - `used-matches-redeem-audit`: the sum of `used` over the user's batches equals the number of the
 *   user's audit rows with event `login.success` and outcome `success` (every consume has its audit
 *   row and every such row a consume), plus the codes imported as used (`data.used` of the user's
 *   `batch.imported` rows).
 * - `batch-generated-audited`: every batch id appears in one of the user's `batch.generated` or
 *   `batch.imported` rows.
 *
 * The SQL sweep of `store-kysely`'s tests adds rules over the raw rows with the same report shape.
 */
export type InvariantRule =
  | 'one-active-batch'
  | 'active-batch-agrees'
  | 'batch-issued-nonzero'
  | 'batch-counts-balance'
  | 'used-matches-redeem-audit'
  | 'batch-generated-audited'

/** One broken rule, as data: ids and counts only, never a code or a digest. */
export interface InvariantViolation<R extends string = InvariantRule> {
  rule: R
  userId: string
  /** The batch the rule is about, or `null` for a per-user rule. */
  batchId: string | null
  /** The figures the rule compared (counts, ids, statuses). */
  figures: Record<string, string | number | null>
}

/** The outcome of a sweep. */
export interface InvariantReport<R extends string = InvariantRule> {
  /** `true` when `violations` is empty. */
  ok: boolean
  violations: InvariantViolation<R>[]
  /** What the sweep looked at, to log next to a pass ("0 violations over …"). */
  checked: {
    users: number
    batches: number
    /** Sum of `used` over every batch swept. */
    usedCodes: number
    /** `login.success` + `success` audit rows of the swept users. */
    redeemAuditRows: number
    /** `batch.generated` audit rows of the swept users. */
    generatedAuditRows: number
  }
}

/** The event and outcome of the audit row every consume appends. */
export const REDEEM_AUDIT_EVENT = 'login.success'
/** The event of the audit row every generate appends. */
export const GENERATED_AUDIT_EVENT = 'batch.generated'
/** The event of the audit row every imported batch commits with (`rc.importCodes`). */
export const IMPORTED_AUDIT_EVENT = 'batch.imported'

const BATCH_PAGE = 100
const FIRST_AUDIT_LIMIT = 1_000

/** Every batch of the user, through `listBatches` pages. */
async function allBatches(store: RecoveryCodeStore, userId: string): Promise<BatchSummary[]> {
  const out: BatchSummary[] = []
  for (let offset = 0; ; offset += BATCH_PAGE) {
    const page = await store.listBatches({ userId, offset, limit: BATCH_PAGE })
    out.push(...page.items)
    if (page.items.length < BATCH_PAGE || out.length >= page.total) return out
  }
}

/**
 * Every audit row of the user with `event`. `listAudit` has no cursor, so the limit grows until a
 * read returns fewer rows than it asked for.
 */
async function allAudit(store: RecoveryCodeStore, userId: string, event: string): Promise<AuditRecord[]> {
  for (let limit = FIRST_AUDIT_LIMIT; ; limit *= 8) {
    const rows = await store.listAudit({ limit, userId, event })
    if (rows.length < limit) return rows
  }
}

const counts = (b: BatchSummary) => ({
  issued: b.issued,
  unused: b.unused,
  used: b.used,
  invalidated: b.invalidated,
  deleted: b.deleted,
})

/**
 * Sweeps the store for the state a fault must never leave behind ("Dependable under faults"), per
 * user of `input.userIds`, through the store port only (`listBatches`, `getActiveBatch`,
 * `listAudit`), so it runs against any store: see {@link InvariantRule} for the rules.
 *
 * Run it after a scenario, over every user the scenario touched, once the calls have settled. The
 * rules hold for a store the service alone wrote to, before any purge (`purgeEmptyBatches` drops
 * batches and their `used` counts while their audit rows stay; `purgeAudit` drops audit rows).
 * Nothing is changed; violations come back as data, never thrown. Use
 * {@link expectStoreInvariants} to fail a test with a readable list.
 *
 * @example
 * ```ts
 * const report = await checkStoreInvariants(store, { userIds: ['u1', 'u2'] })
 * expect(report.violations).toEqual([])
 * ```
 */
export async function checkStoreInvariants(
  store: RecoveryCodeStore,
  input: { userIds: readonly string[] },
): Promise<InvariantReport> {
  const violations: InvariantViolation[] = []
  const checked = { users: 0, batches: 0, usedCodes: 0, redeemAuditRows: 0, generatedAuditRows: 0 }
  for (const userId of new Set(input.userIds)) {
    checked.users++
    const batches = await allBatches(store, userId)
    checked.batches += batches.length

    const active = batches.filter((b) => b.status === 'active')
    if (active.length > 1) {
      violations.push({
        rule: 'one-active-batch',
        userId,
        batchId: null,
        figures: { active: active.length, batchIds: active.map((b) => b.id).join(',') },
      })
    }
    const reported = await store.getActiveBatch(userId)
    const same = (a: BatchSummary, b: BatchSummary) =>
      a.id === b.id && a.status === b.status && JSON.stringify(counts(a)) === JSON.stringify(counts(b))
    const agrees =
      reported === null
        ? active.length === 0
        : reported.status === 'active' && active.some((b) => same(b, reported))
    if (!agrees) {
      violations.push({
        rule: 'active-batch-agrees',
        userId,
        batchId: reported?.id ?? active[0]?.id ?? null,
        figures: {
          getActiveBatch:
            reported === null ? null : `${reported.id} ${reported.status} used=${reported.used}`,
          listBatches: active.map((b) => `${b.id} ${b.status} used=${b.used}`).join(',') || null,
        },
      })
    }

    for (const b of batches) {
      if (!(b.issued > 0)) {
        violations.push({ rule: 'batch-issued-nonzero', userId, batchId: b.id, figures: counts(b) })
      }
      const accounted = b.unused + b.used + b.invalidated + b.deleted
      if (accounted !== b.issued) {
        violations.push({
          rule: 'batch-counts-balance',
          userId,
          batchId: b.id,
          figures: { ...counts(b), accounted },
        })
      }
    }

    const redeems = (await allAudit(store, userId, REDEEM_AUDIT_EVENT)).filter((r) => r.outcome === 'success')
    const imported = await allAudit(store, userId, IMPORTED_AUDIT_EVENT)
    const importedUsed = imported.reduce((n, r) => n + Number(r.data?.used ?? 0), 0)
    const used = batches.reduce((n, b) => n + b.used, 0)
    checked.usedCodes += used
    checked.redeemAuditRows += redeems.length
    if (used !== redeems.length + importedUsed) {
      const perBatch = new Map<string, number>()
      for (const r of redeems)
        perBatch.set(r.batchId ?? '(none)', (perBatch.get(r.batchId ?? '(none)') ?? 0) + 1)
      violations.push({
        rule: 'used-matches-redeem-audit',
        userId,
        batchId: null,
        figures: {
          usedCodes: used,
          redeemAuditRows: redeems.length,
          importedUsed,
          // Where they differ, `batchId used/audit`: points at the batch that lost a row.
          byBatch: [...new Set([...batches.map((b) => b.id), ...perBatch.keys()])]
            .map((id) => [id, batches.find((b) => b.id === id)?.used ?? 0, perBatch.get(id) ?? 0] as const)
            .filter(([, u, a]) => u !== a)
            .map(([id, u, a]) => `${id} ${u}/${a}`)
            .join(', '),
        },
      })
    }

    const generated = await allAudit(store, userId, GENERATED_AUDIT_EVENT)
    checked.generatedAuditRows += generated.length
    const audited = new Set([...generated, ...imported].map((r) => r.batchId))
    for (const b of batches) {
      if (!audited.has(b.id)) {
        violations.push({
          rule: 'batch-generated-audited',
          userId,
          batchId: b.id,
          figures: { status: b.status, createdAt: b.createdAt, generatedAuditRows: generated.length },
        })
      }
    }
  }
  return { ok: violations.length === 0, violations, checked }
}

/** One violation as one line: `rule user=… batch=… figure=value …`. */
export function formatViolation(v: InvariantViolation<string>): string {
  const figures = Object.entries(v.figures)
    .map(([k, value]) => `${k}=${value === null ? 'null' : String(value)}`)
    .join(' ')
  return `${v.rule} user=${v.userId}${v.batchId === null ? '' : ` batch=${v.batchId}`}${figures ? ` ${figures}` : ''}`
}

/**
 * Fails the surrounding vitest test when a report has violations, listing one line per violation
 * ({@link formatViolation}) in the diff. Returns the report so the caller can log `checked`.
 *
 * @example
 * ```ts
 * expectInvariantReport(await checkSqlInvariants(db), 'after the kill')
 * ```
 */
export function expectInvariantReport<R extends string>(report: InvariantReport<R>, label?: string) {
  const lines = report.violations.map(formatViolation)
  expect(lines, `store invariants${label ? ` (${label})` : ''}: ${lines.length} violation(s)`).toEqual([])
  return report
}

/**
 * {@link checkStoreInvariants}, then fails the test with a readable list when any rule is broken.
 *
 * @example
 * ```ts
 * afterEach(() => expectStoreInvariants(store, { userIds: touched }, 'hanging cache'))
 * ```
 */
export async function expectStoreInvariants(
  store: RecoveryCodeStore,
  input: { userIds: readonly string[] },
  label?: string,
): Promise<InvariantReport> {
  return expectInvariantReport(await checkStoreInvariants(store, input), label)
}
