/**
 * The post-fault sweep of `@recovery-codes/testing` (`checkStoreInvariants`), in SQL over the raw
 * `rc_` rows instead of the store port: it sees what the port's counters could hide (a code row
 * that is missing or in another state than its batch's counters say). Runs on SQLite and
 * PostgreSQL through any Kysely instance, optionally in a named schema.
 */
import {
  GENERATED_AUDIT_EVENT,
  type InvariantReport,
  type InvariantRule,
  type InvariantViolation,
  REDEEM_AUDIT_EVENT,
} from '@recovery-codes/testing'
import type { Kysely } from 'kysely'

/**
 * The rules of {@link checkSqlInvariants}: those of `checkStoreInvariants` that read stored rows
 * (`active-batch-agrees` is about the port's two reads, so it has no SQL form), plus
 *
 * - `code-rows-match-counters`: each batch's `rc_codes` rows, by state, equal its counters
 *   (`active` rows = `unused`, `invalidated` = `invalidated`, …, all rows + `purged_used` =
 *   `issued`); a code row whose batch row is missing counts against an `issued` of 0. Only before
 *   `purgeCodes` deletes rows other than used ones (it folds those into `purged_used`).
 * - `used-rows-match-redeem-audit`: the user's `rc_codes` rows in state `used` equal the user's
 *   `login.success` + `success` audit rows.
 */
export type SqlInvariantRule =
  | Exclude<InvariantRule, 'active-batch-agrees'>
  | 'code-rows-match-counters'
  | 'used-rows-match-redeem-audit'

const STATES = ['active', 'used', 'invalidated', 'deleted'] as const
const COUNTER = { active: 'unused', used: 'used', invalidated: 'invalidated', deleted: 'deleted' } as const

/** Rows per `in (…)` list, well under SQLite's bound-parameter limit. */
const IN_CHUNK = 500

/** Runs `query` over `ids` in chunks (or once, unfiltered, when `ids` is `undefined`). */
async function chunked<T>(
  ids: readonly string[] | undefined,
  query: (ids: readonly string[] | undefined) => Promise<T[]>,
): Promise<T[]> {
  if (ids === undefined) return query(undefined)
  const out: T[] = []
  for (let i = 0; i < ids.length; i += IN_CHUNK) out.push(...(await query(ids.slice(i, i + IN_CHUNK))))
  return out
}

/**
 * Sweeps the `rc_` tables for the state a fault must never leave behind: see
 * {@link SqlInvariantRule}. Read-only; returns violations as data (ids and counts, never a digest),
 * in the report shape of `checkStoreInvariants`, so `expectInvariantReport` prints them.
 *
 * `userIds` limits the sweep to those users (default: every user with a batch, a code or a redeem
 * row). `schema` qualifies the tables (PostgreSQL); without it the connection's `search_path`, or
 * SQLite's main database, decides. The rules hold before any purge and for rows only the service
 * wrote (tests that write store rows directly, with other audit events, do not fit).
 *
 * @example
 * ```ts
 * expectInvariantReport(await checkSqlInvariants(db, { schema, userIds }), 'after the kill')
 * ```
 */
export async function checkSqlInvariants(
  db: Kysely<any>,
  options: { schema?: string; userIds?: readonly string[] } = {},
): Promise<InvariantReport<SqlInvariantRule>> {
  const q = options.schema === undefined ? db : db.withSchema(options.schema)
  const ids = options.userIds === undefined ? undefined : [...new Set(options.userIds)]
  const num = (v: unknown) => Number(v ?? 0)

  const batches = await chunked(ids, (some) => {
    let b = q
      .selectFrom('rc_batches')
      .select(['id', 'user_id', 'status', 'issued', 'purged_used', 'invalidated', 'deleted'])
    if (some !== undefined) b = b.where('user_id', 'in', some)
    return b.orderBy('user_id').orderBy('id').execute()
  })
  // Code rows per (user, batch, state), with the batch row joined: a code row of a missing batch
  // comes back with a null `batch_user`.
  const codeCounts = await chunked(ids, (some) => {
    let c = q
      .selectFrom('rc_codes')
      .select((e) => ['rc_codes.user_id', 'rc_codes.batch_id', 'rc_codes.state', e.fn.countAll().as('n')])
      .groupBy(['rc_codes.user_id', 'rc_codes.batch_id', 'rc_codes.state'])
    if (some !== undefined) c = c.where('rc_codes.user_id', 'in', some)
    return c.execute()
  })
  const redeemRows = await chunked(ids, (some) => {
    let a = q
      .selectFrom('rc_audit_log')
      .select((e) => ['user_id', e.fn.countAll().as('n')])
      .where('event', '=', REDEEM_AUDIT_EVENT)
      .where('outcome', '=', 'success')
      .where('user_id', 'is not', null)
      .groupBy('user_id')
    if (some !== undefined) a = a.where('user_id', 'in', some)
    return a.execute()
  })
  const generatedRows = await chunked(ids, (some) => {
    let a = q
      .selectFrom('rc_audit_log')
      .select((e) => e.fn.countAll().as('n'))
      .where('event', '=', GENERATED_AUDIT_EVENT)
    if (some !== undefined) a = a.where('user_id', 'in', some)
    return a.execute()
  })
  // Batches with no `batch.generated` row of the same user and batch id.
  const unaudited = await chunked(ids, (some) => {
    let b = q
      .selectFrom('rc_batches as b')
      .select(['b.id', 'b.user_id', 'b.status'])
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('rc_audit_log as a')
              .select('a.id')
              .whereRef('a.batch_id', '=', 'b.id')
              .whereRef('a.user_id', '=', 'b.user_id')
              .where('a.event', '=', GENERATED_AUDIT_EVENT),
          ),
        ),
      )
    if (some !== undefined) b = b.where('b.user_id', 'in', some)
    return b.orderBy('b.user_id').orderBy('b.id').execute()
  })

  const violations: InvariantViolation<SqlInvariantRule>[] = []
  const users = new Set<string>(ids ?? [])
  for (const b of batches) users.add(b.user_id)
  for (const c of codeCounts) users.add(c.user_id)
  for (const r of redeemRows) users.add(r.user_id)

  // Per user: more than one active batch.
  const activeByUser = new Map<string, string[]>()
  for (const b of batches) {
    if (b.status !== 'active') continue
    activeByUser.set(b.user_id, [...(activeByUser.get(b.user_id) ?? []), b.id])
  }
  for (const [userId, active] of activeByUser) {
    if (active.length > 1) {
      violations.push({
        rule: 'one-active-batch',
        userId,
        batchId: null,
        figures: { active: active.length, batchIds: active.join(',') },
      })
    }
  }

  // Per batch: counters, and the code rows behind them.
  const rowsOf = new Map<string, { userId: string; states: Record<string, number> }>()
  for (const c of codeCounts) {
    const key = `${c.user_id}\u0000${c.batch_id}`
    const entry = rowsOf.get(key) ?? { userId: String(c.user_id), states: {} as Record<string, number> }
    const state = String(c.state)
    entry.states[state] = (entry.states[state] ?? 0) + num(c.n)
    rowsOf.set(key, entry)
  }
  const usedCounterByUser = new Map<string, number>()
  const usedRowsByUser = new Map<string, number>()
  for (const c of codeCounts) {
    if (c.state === 'used') usedRowsByUser.set(c.user_id, (usedRowsByUser.get(c.user_id) ?? 0) + num(c.n))
  }
  for (const b of batches) {
    const key = `${b.user_id}\u0000${b.id}`
    const states = rowsOf.get(key)?.states ?? {}
    rowsOf.delete(key)
    // A batch's use counts are derived (`purged_used` + its used rows), as the store's summary does.
    const used = num(b.purged_used) + (states.used ?? 0)
    const counters = {
      issued: num(b.issued),
      unused: num(b.issued) - used - num(b.invalidated) - num(b.deleted),
      used,
      invalidated: num(b.invalidated),
      deleted: num(b.deleted),
    }
    usedCounterByUser.set(b.user_id, (usedCounterByUser.get(b.user_id) ?? 0) + counters.used)
    if (!(counters.issued > 0)) {
      violations.push({ rule: 'batch-issued-nonzero', userId: b.user_id, batchId: b.id, figures: counters })
    }
    if (counters.unused < 0) {
      violations.push({
        rule: 'batch-counts-balance',
        userId: b.user_id,
        batchId: b.id,
        figures: { ...counters, purgedUsed: num(b.purged_used) },
      })
    }
    const rows = Object.values(states).reduce((n, v) => n + v, 0)
    const matches =
      rows === counters.issued - num(b.purged_used) &&
      STATES.every(
        (s) => (states[s] ?? 0) === counters[COUNTER[s]] - (s === 'used' ? num(b.purged_used) : 0),
      ) &&
      Object.keys(states).every((s) => (STATES as readonly string[]).includes(s))
    if (!matches) {
      violations.push({
        rule: 'code-rows-match-counters',
        userId: b.user_id,
        batchId: b.id,
        figures: {
          ...counters,
          rows,
          ...Object.fromEntries(Object.entries(states).map(([s, n]) => [`rows.${s}`, n])),
        },
      })
    }
  }
  // Code rows whose batch row (for that user) does not exist.
  for (const [key, { userId, states }] of rowsOf) {
    violations.push({
      rule: 'code-rows-match-counters',
      userId,
      batchId: key.slice(userId.length + 1),
      figures: {
        issued: 0,
        rows: Object.values(states).reduce((n, v) => n + v, 0),
        batchRow: 'missing',
      },
    })
  }

  // Per user: used codes against the redeem audit rows.
  const redeemByUser = new Map(redeemRows.map((r) => [r.user_id as string, num(r.n)]))
  for (const userId of [...users].sort()) {
    const audit = redeemByUser.get(userId) ?? 0
    const usedCodes = usedCounterByUser.get(userId) ?? 0
    const usedRows = usedRowsByUser.get(userId) ?? 0
    if (usedCodes !== audit) {
      violations.push({
        rule: 'used-matches-redeem-audit',
        userId,
        batchId: null,
        figures: { usedCodes, redeemAuditRows: audit },
      })
    }
    if (usedRows !== audit) {
      violations.push({
        rule: 'used-rows-match-redeem-audit',
        userId,
        batchId: null,
        figures: { usedRows, redeemAuditRows: audit },
      })
    }
  }

  for (const b of unaudited) {
    violations.push({
      rule: 'batch-generated-audited',
      userId: b.user_id,
      batchId: b.id,
      figures: { status: b.status },
    })
  }

  return {
    ok: violations.length === 0,
    violations,
    checked: {
      users: users.size,
      batches: batches.length,
      usedCodes: [...usedCounterByUser.values()].reduce((n, v) => n + v, 0),
      redeemAuditRows: [...redeemByUser.values()].reduce((n, v) => n + v, 0),
      generatedAuditRows: generatedRows.reduce((n, r) => n + num(r.n), 0),
    },
  }
}
