/**
 * SQLite purges codes in row order: a walk over the rowids that the store carries from chunk to
 * chunk of one run (`before`), with the purge-time index filling a chunk whose window holds fewer
 * eligible rows than asked. Whatever the layout (dense stretches, a sparse stretch longer than a
 * window, eligible rows after it, a lone one in the middle), a run ends exactly when nothing
 * eligible is left, having deleted every eligible row once and no other.
 */
import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { kyselyStore } from '../src/store.ts'
import { useSqliteBackend } from './backends.ts'
import { auditRow, batch, codes } from './contract.ts'

const BEFORE = 1_000_000
const LIMIT = 5

const sqlite = useSqliteBackend()

const count = async (db: Kysely<any>, where: ReturnType<typeof sql<boolean>>) =>
  Number((await sql<{ n: number }>`select count(*) as n from rc_codes where ${where}`.execute(db)).rows[0]!.n)
const eligibleWhere = sql<boolean>`coalesce(changed_at, expires_at) < ${BEFORE} or expires_at < ${BEFORE}`

/**
 * 30 batches of 10 codes, one user each, written in order (rowids 1..300). Eligible (used long
 * ago): every code of batches 0–4, one code of batch 12, every other code of batches 25–29.
 */
async function layout(store: ReturnType<typeof kyselyStore>, db: Kysely<any>) {
  const ids: string[][] = []
  for (let b = 0; b < 30; b++) {
    const cs = codes(10)
    await store.createBatch(batch(`walk-u${b}`, 2_000_000 + b), cs)
    ids.push(cs.map((c) => c.id))
  }
  const old: string[] = [...ids.slice(0, 5).flat(), ids[12]![3]!]
  for (const b of ids.slice(25)) old.push(...b.filter((_, j) => j % 2 === 0))
  await sql`update rc_codes set state = 'used', used_at = 500000, changed_at = 500000 where id in (${sql.join(old)})`.execute(
    db,
  )
  return old.length
}

async function run(store: ReturnType<typeof kyselyStore>, before = BEFORE) {
  let total = 0
  let chunks = 0
  for (;;) {
    const n = await store.purgeCodes({ before, limit: LIMIT })
    total += n
    chunks++
    if (n < LIMIT) return { total, chunks }
    if (chunks > 1000) throw new Error('the purge run does not end')
  }
}

describe('SQLite purge walk (row order)', () => {
  it('deletes every eligible row once and nothing else, over dense, sparse and trailing stretches', async () => {
    const store = kyselyStore(sqlite().db)
    const eligible = await layout(store, sqlite().db)
    const others = (await count(sqlite().db, sql<boolean>`1 = 1`)) - eligible
    expect(eligible).toBe(76)
    const r = await run(store)
    expect(r.total).toBe(eligible)
    expect(await count(sqlite().db, eligibleWhere)).toBe(0)
    expect(await count(sqlite().db, sql<boolean>`1 = 1`)).toBe(others)
    // Chunks of LIMIT rows each, and one short last chunk: the run never stops early.
    expect(r.chunks).toBe(Math.floor(eligible / LIMIT) + 1)
    // The uses deleted are folded into their batches.
    const folded = await sql<{ n: number }>`select sum(purged_used) as n from rc_batches`.execute(sqlite().db)
    expect(Number(folded.rows[0]!.n)).toBe(eligible)
  })

  it('a new run (another before) starts its walk again: rows behind the last walk are found', async () => {
    const store = kyselyStore(sqlite().db)
    await layout(store, sqlite().db)
    await run(store)
    // Code rows that become eligible later, at the start of the table (behind any walk).
    await sql`update rc_codes set state = 'used', used_at = 600000, changed_at = 600000 where rowid in (select rowid from rc_codes order by rowid limit 7)`.execute(
      sqlite().db,
    )
    const r = await run(store, BEFORE + 1)
    expect(r.total).toBe(7)
    expect(await count(sqlite().db, eligibleWhere)).toBe(0)
  })

  it('a chunk that fails leaves the walk where it was; the run then finishes', async () => {
    const store = kyselyStore(sqlite().db)
    const eligible = await layout(store, sqlite().db)
    expect(await store.purgeCodes({ before: BEFORE, limit: LIMIT })).toBe(LIMIT)
    // The chunk's audit row cannot be written (a NUL-free but duplicate id fails the insert).
    const audit = auditRow({ id: 'walk-audit', at: BEFORE, event: 'codes.purged' })
    expect(await store.purgeCodes({ before: BEFORE, limit: LIMIT, audit })).toBe(LIMIT)
    await expect(store.purgeCodes({ before: BEFORE, limit: LIMIT, audit })).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
    })
    const r = await run(store)
    expect(r.total + 2 * LIMIT).toBe(eligible)
    expect(await count(sqlite().db, eligibleWhere)).toBe(0)
  })
})
