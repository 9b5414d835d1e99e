/**
 * Issue 15, acceptance 5: the audit and history queries of the pages and admins use an index at
 * 1,000,000 audit rows. `rc_audit_log` is keyed by `(at, id)` with the indexes `(user_id, at, id)`
 * and `(event, at, id)`; every `listAudit` shape and the audit purge chunk must read a range of one
 * of them, newest first, never sort, never scan the table. The pages' history (`rc_batches`) is
 * covered by explain.test.ts.
 */
import { CompiledQuery, type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createQueries } from '../src/store.ts'
import { type Backend, isCI, pgUnavailable, postgresBackend, sqliteBackend } from './backends.ts'

const ROWS = 1_000_000
const EVENTS = ['login.success', 'login.failure', 'batch.generated', 'batch.viewed', 'purge.run']

/** The audit statements, each with the index that must serve it. */
const SHAPES = [
  ['recent (admin)', /rc_audit_log_pk|PRIMARY KEY/],
  ['by user (pages, admin)', /rc_audit_log_user/],
  ['by event (admin)', /rc_audit_log_event/],
  ['by user and event', /rc_audit_log_(user|event)/],
  ['purge chunk', /rc_audit_log_pk|PRIMARY KEY/],
] as const

function auditQuery(db: Kysely<any>, dialect: 'sqlite' | 'postgres', name: (typeof SHAPES)[number][0]) {
  const q = createQueries(dialect)
  const k = db as never
  const before = dialect === 'postgres' ? 500_000_000 : 500_000
  return {
    'recent (admin)': () => q.listAudit(k, { limit: 50 }),
    'by user (pages, admin)': () => q.listAudit(k, { limit: 50, userId: 'u4242' }),
    'by event (admin)': () => q.listAudit(k, { limit: 50, event: 'batch.viewed' }),
    'by user and event': () => q.listAudit(k, { limit: 50, userId: 'u4242', event: 'login.failure' }),
    'purge chunk': () => q.purgeAudit(k, { before, limit: 1000 }),
  }
    [name]()
    .compile()
}

async function seed(db: Kysely<any>, dialect: 'sqlite' | 'postgres') {
  const events = sql.raw(`array['${EVENTS.join("','")}']`)
  if (dialect === 'postgres') {
    await sql`insert into rc_audit_log (id, at, event, user_id, outcome)
      select 'a' || i, to_timestamp(i / 1000.0), (${events})[1 + i % ${EVENTS.length}], 'u' || (i % 10000), 'success'
      from generate_series(1, ${ROWS}) as i`.execute(db)
  } else {
    const cases = sql.raw(EVENTS.map((e, n) => `when ${n} then '${e}'`).join(' '))
    await sql`with recursive s(i) as (select 1 union all select i + 1 from s where i < ${ROWS})
      insert into rc_audit_log (id, at, event, user_id, outcome)
      select 'a' || i, i, case i % ${EVENTS.length} ${cases} end, 'u' || (i % 10000), 'success' from s`.execute(
      db,
    )
  }
  await sql`analyze`.execute(db)
}

describe('EXPLAIN audit at 1M rows: SQLite', () => {
  let backend: Backend
  beforeAll(async () => {
    backend = await sqliteBackend()
    await seed(backend.db, 'sqlite')
  }, 120_000)
  afterAll(async () => {
    await backend?.close()
  })

  it('holds 1,000,000 audit rows', async () => {
    const { rows } = await sql<{ n: number }>`select count(*) as n from rc_audit_log`.execute(backend.db)
    expect(Number(rows[0]!.n)).toBe(ROWS)
  })

  for (const [name, index] of SHAPES) {
    it(`${name}: a range of ${index.source}, no sort, no table scan`, async () => {
      const query = auditQuery(backend.db, 'sqlite', name)
      const { rows } = await backend.db.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`EXPLAIN QUERY PLAN ${query.sql}`, [...query.parameters]),
      )
      const plan = rows.map((r) => r.detail).join('\n')
      expect(plan).not.toMatch(/TEMP B-TREE/)
      if (name.startsWith('recent')) {
        // The table is its `(at, id)` key (WITHOUT ROWID): a plain SCAN walks that key backwards
        // and stops after `limit` rows (no sort step above).
        expect(plan).toBe('SCAN rc_audit_log')
        const { rows: ddl } = await sql<{
          sql: string
        }>`select sql from sqlite_master where name = 'rc_audit_log'`.execute(backend.db)
        expect(ddl[0]!.sql.toLowerCase()).toContain('without rowid')
        return
      }
      expect(plan).toMatch(/(SEARCH|SCAN) rc_audit_log USING (COVERING )?(INDEX|PRIMARY KEY)/)
      if (!name.startsWith('purge')) expect(plan).toMatch(index)
    })
  }
})

type PlanNode = { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; Plans?: PlanNode[] }
const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)]

describe.skipIf(pgUnavailable !== null && !isCI)('EXPLAIN audit at 1M rows: PostgreSQL', () => {
  let backend: Backend
  beforeAll(async () => {
    backend = await postgresBackend()
    await seed(backend.db, 'postgres')
  }, 180_000)
  afterAll(async () => {
    await backend?.close()
  })

  for (const [name, index] of SHAPES) {
    it(`${name}: an index scan of ${index.source}, no sort, no seq scan`, async () => {
      const query = auditQuery(backend.db, 'postgres', name)
      const { rows } = await backend.db.executeQuery<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        CompiledQuery.raw(`EXPLAIN (FORMAT JSON) ${query.sql}`, [...query.parameters]),
      )
      const all = nodes(rows[0]!['QUERY PLAN'][0].Plan)
      const text = JSON.stringify(all.map((n) => [n['Node Type'], n['Relation Name'], n['Index Name']]))
      expect(
        all.some((n) => n['Node Type'] === 'Seq Scan'),
        text,
      ).toBe(false)
      // With both filters the planner may sort the user's rows of that event (a few): allowed there.
      if (name !== 'by user and event')
        expect(
          all.some((n) => n['Node Type'] === 'Sort'),
          text,
        ).toBe(false)
      expect(
        all.some((n) => n['Index Name'] !== undefined && index.test(n['Index Name'])),
        text,
      ).toBe(true)
    })
  }
})
