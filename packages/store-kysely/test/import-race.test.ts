/**
 * Cross-process `importBatch`: 4 child processes import the same list of 200 batches × 10 codes
 * (100 users, a superseded and an active batch each, codes in every state) at once, released
 * together on an IPC barrier, 4 calls in flight each, two in list order and two in reverse.
 * Afterwards every batch and code exists exactly once, with one audit row per batch, every batch
 * reads back with its status and counts, and the outcomes sum to exactly 200 `imported` (the rest
 * `exists`). Then 20 users with two active batches each, raced the same way (half the processes
 * take A first, half B): exactly one of each pair is imported, the other is a `conflict` for every
 * process. On SQLite (one WAL file), PostgreSQL (a private schema) and MySQL / MariaDB (a private
 * database); an unreachable server skips, except under `CI=true`, where it fails.
 */
import type { BatchSummary, CodeState, ImportBatchOutcome, ImportedBatch } from '@recovery-codes/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { kyselyStore } from '../src/store.ts'
import {
  type Backend,
  isCI,
  MYSQL_URL,
  mysqlBackend,
  mysqlUnavailable,
  PG_URL,
  pgUnavailable,
  postgresBackend,
  sqliteBackend,
} from './backends.ts'
import { digest, uid } from './contract.ts'
import { startWorker, stopWorkers, type Worker } from './race.helpers.ts'

const CHILDREN = 4
const CONCURRENCY = 4
const USERS = 100
const CODES = 10
const STATES: CodeState[] = ['active', 'used', 'active', 'invalidated', 'active', 'deleted', 'used', 'active']

function importedBatch(userId: string, status: 'active' | 'superseded', createdAt: number): ImportedBatch {
  return {
    id: uid('ib'),
    userId,
    keyId: 'legacy1',
    createdAt,
    expiresAt: status === 'active' ? createdAt + 1_000_000_000 : null,
    status,
    endedAt: status === 'active' ? null : createdAt + 100,
    codes: Array.from({ length: CODES }, (_, i) => {
      const state = STATES[i % STATES.length]!
      return { id: uid('ic'), digest: digest(), state, usedAt: state === 'used' ? createdAt + 10 + i : null }
    }),
  }
}

/** What a batch reads back as (as `summaryOf` in the conformance suite). */
function expected(b: ImportedBatch): BatchSummary {
  const n = (s: CodeState) => b.codes.filter((c) => c.state === s).length
  const uses = b.codes.flatMap((c) => (c.usedAt === null ? [] : [c.usedAt]))
  return {
    id: b.id,
    userId: b.userId,
    keyId: b.keyId,
    status: b.status,
    createdAt: b.createdAt,
    expiresAt: b.expiresAt,
    endedAt: b.endedAt,
    issued: b.codes.length,
    unused: n('active'),
    used: n('used'),
    invalidated: n('invalidated'),
    deleted: n('deleted'),
    viewedAt: null,
    downloadedAt: null,
    emailedAt: null,
    verifiedAt: null,
    lastUsedAt: uses.length === 0 ? null : Math.max(...uses),
  }
}

const wire = (batches: readonly ImportedBatch[]) =>
  batches.map((b) => ({
    ...b,
    codes: b.codes.map((c) => ({ ...c, digest: Buffer.from(c.digest).toString('hex') })),
  }))

/** Sends each worker its list, releases them together, returns each one's outcomes by batch id. */
async function race(
  workers: Worker[],
  round: number,
  listFor: (worker: number) => readonly ImportedBatch[],
): Promise<Record<string, ImportBatchOutcome>[]> {
  workers.forEach((w, i) => {
    w.send({ type: 'import', round, batches: wire(listFor(i)), concurrency: CONCURRENCY })
  })
  await Promise.all(workers.map((w) => w.next('ready')))
  for (const w of workers) w.send({ type: 'go', round })
  const results = await Promise.all(workers.map((w) => w.next('imports', 180_000)))
  expect(results.flatMap((r) => r.errors)).toEqual([])
  return results.map((r) => r.outcomes)
}

/** How many of `outcomes` (one map per worker) say `outcome` for batch `id`. */
const tally = (outcomes: Record<string, ImportBatchOutcome>[], id: string, outcome: ImportBatchOutcome) =>
  outcomes.filter((o) => o[id] === outcome).length

/** Rows of `table`. */
async function rows(db: Backend['db'], table: 'rc_batches' | 'rc_codes'): Promise<number> {
  const r = await db.selectFrom(table).select(db.fn.countAll().as('n')).executeTakeFirstOrThrow()
  return Number(r.n)
}

async function sameList(backend: Backend, workers: Worker[]): Promise<void> {
  const list: ImportedBatch[] = []
  for (let u = 0; u < USERS; u++) {
    const userId = uid('import-race')
    const t = 1_700_000_000_000 + u * 1_000
    list.push(importedBatch(userId, 'superseded', t), importedBatch(userId, 'active', t + 200))
  }
  const outcomes = await race(workers, 1, (i) => (i % 2 ? [...list].reverse() : list))

  for (const b of list) {
    expect(tally(outcomes, b.id, 'imported'), b.id).toBe(1)
    expect(tally(outcomes, b.id, 'exists'), b.id).toBe(CHILDREN - 1)
  }
  const all = outcomes.flatMap((o) => Object.values(o))
  expect(all.filter((o) => o === 'imported')).toHaveLength(list.length)
  expect(all).toHaveLength(list.length * CHILDREN)

  const db = backend.db
  const ids = list.map((b) => b.id)
  expect(await rows(db, 'rc_batches')).toBe(list.length)
  expect(await rows(db, 'rc_codes')).toBe(list.length * CODES)
  const perBatch = await db
    .selectFrom('rc_codes')
    .select(['batch_id', db.fn.countAll().as('n')])
    .groupBy('batch_id')
    .execute()
  expect(new Map(perBatch.map((r) => [r.batch_id, Number(r.n)]))).toEqual(
    new Map(ids.map((id) => [id, CODES])),
  )
  const audits = await db
    .selectFrom('rc_audit_log')
    .select(['batch_id', db.fn.countAll().as('n')])
    .where('event', '=', 'batch.imported')
    .groupBy('batch_id')
    .execute()
  expect(new Map(audits.map((r) => [r.batch_id, Number(r.n)]))).toEqual(new Map(ids.map((id) => [id, 1])))

  const store = kyselyStore(db)
  for (let u = 0; u < USERS; u++) {
    const [ended, active] = [list[2 * u]!, list[2 * u + 1]!]
    expect(await store.listBatches({ userId: active.userId, offset: 0, limit: 10 })).toEqual({
      items: [expected(active), expected(ended)],
      total: 2,
    })
  }
  // An imported code consumes once, as a generated one does.
  const first = list[1]!
  const live = first.codes.find((c) => c.state === 'active')!
  const now = first.createdAt + 1_000
  expect(await store.consumeCode({ userId: first.userId, digests: [live.digest], now })).toMatchObject({
    codeId: live.id,
    remaining: expected(first).unused - 1,
  })
  expect(await store.consumeCode({ userId: first.userId, digests: [live.digest], now })).toBeNull()
}

async function activePairs(backend: Backend, workers: Worker[]): Promise<void> {
  const pairs = Array.from({ length: 20 }, (_, u) => {
    const userId = uid('import-pair')
    const t = 1_600_000_000_000 + u * 1_000
    return [importedBatch(userId, 'active', t), importedBatch(userId, 'active', t + 1)] as const
  })
  const outcomes = await race(workers, 2, (i) => pairs.flatMap(([a, b]) => (i % 2 ? [b, a] : [a, b])))
  const store = kyselyStore(backend.db)
  for (const pair of pairs) {
    const winners = pair.filter((b) => tally(outcomes, b.id, 'imported') === 1)
    expect(winners).toHaveLength(1)
    const [winner] = winners
    const loser = pair.find((b) => b !== winner)!
    expect(tally(outcomes, winner!.id, 'exists')).toBe(CHILDREN - 1)
    expect(tally(outcomes, loser.id, 'conflict')).toBe(CHILDREN)
    expect(await store.listBatches({ userId: winner!.userId, offset: 0, limit: 10 })).toEqual({
      items: [expected(winner!)],
      total: 1,
    })
  }
}

function importRace(
  name: string,
  where: string,
  unavailable: string | null,
  open: () => Promise<Backend>,
  worker: (b: Backend) => Parameters<typeof startWorker>[0],
) {
  if (unavailable !== null && !isCI) {
    describe(`cross-process importBatch race: ${name}`, () => {
      it.skip(`SKIPPED: ${name} at ${where} unreachable (${unavailable})`, () => {})
    })
    return
  }
  describe(`cross-process importBatch race: ${name}`, () => {
    let backend: Backend
    let workers: Worker[] = []
    beforeAll(async () => {
      // Under CI the real server is mandatory: unreachability fails the run.
      if (unavailable !== null)
        throw new Error(`${name} at ${where} unreachable under CI=true: ${unavailable}`)
      backend = await open()
      workers = await Promise.all(Array.from({ length: CHILDREN }, () => startWorker(worker(backend))))
    }, 180_000)
    afterAll(async () => {
      await stopWorkers(workers)
      await backend?.close()
    })

    it(`${CHILDREN} processes import the same ${2 * USERS} batches × ${CODES} codes: each written once, ${2 * USERS} imported`, async () => {
      await sameList(backend, workers)
    }, 240_000)

    it(`${CHILDREN} processes race two active batches per user (20 users): one imported, the other a conflict`, async () => {
      await activePairs(backend, workers)
    }, 120_000)
  })
}

importRace(
  'SQLite (one WAL file)',
  'a temporary file',
  null,
  () => sqliteBackend(),
  (b) => ({ kind: 'sqlite', file: b.where.file }),
)

importRace(
  'PostgreSQL',
  PG_URL,
  pgUnavailable,
  () => postgresBackend(4),
  (b) => ({ kind: 'postgres', url: b.where.url, schema: b.where.schema, max: 5 }),
)

importRace(
  'MySQL',
  MYSQL_URL,
  mysqlUnavailable,
  () => mysqlBackend(4),
  (b) => ({ kind: 'mysql', url: b.where.url, database: b.where.database, max: 5 }),
)
