/**
 * Acceptance 2: 8 child processes × 10 concurrent consumes of one code, released together on an
 * IPC barrier → exactly one success and `used_at` written once; 100 rounds on PostgreSQL. The same
 * with whole redeems (`redeemCode`: limiter, consume, settle, audit), which also share two limiter
 * keys: every loser's reservation stays, the winner's is given back, one audit row. The same on
 * MySQL / MariaDB (100 and 30 rounds).
 */
import type { Kysely } from 'kysely'
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
import { batch, codes, uid } from './contract.ts'
import { startWorker, stopWorkers, type Worker } from './race.helpers.ts'

const CHILDREN = 8
const PER_CHILD = 10

async function raceRounds(backend: Backend, workers: Worker[], rounds: number, mode: 'consume' | 'redeem') {
  const store = kyselyStore(backend.db)
  const db: Kysely<any> = backend.db
  let doubles = 0
  for (let round = 0; round < rounds; round++) {
    const userId = uid('race')
    const [code] = codes(1)
    const b = batch(userId, 1000)
    await store.createBatch(b, [code!, ...codes(2)])
    const hex = Buffer.from(code!.digest).toString('hex')
    const keys = mode === 'redeem' ? [`${userId}:id`, `${userId}:ip`] : undefined
    workers.forEach((w, i) => {
      w.send({ type: 'prepare', round, userId, digest: hex, now: 100_000 + i * 1000, n: PER_CHILD, keys })
    })
    await Promise.all(workers.map((w) => w.next('ready')))
    for (const w of workers) w.send({ type: 'go', round })
    const results = await Promise.all(workers.map((w) => w.next('result', 60_000)))
    const errors = results.flatMap((r) => r.errors)
    const successes = results.flatMap((r) => r.successes)
    expect(errors, `round ${round}: store errors`).toEqual([])
    if (successes.length > 1) doubles++
    expect(successes, `round ${round}`).toHaveLength(1)
    expect(successes[0].codeId).toBe(code!.id)
    // used_at holds the `now` of the one winner: no second write landed after it.
    const row = await db
      .selectFrom('rc_codes')
      .select(['state', 'used_at'])
      .where('id', '=', code!.id)
      .executeTakeFirstOrThrow()
    expect(row.state).toBe('used')
    expect(row.used_at instanceof Date ? row.used_at.getTime() : Number(row.used_at)).toBe(successes[0].now)
    expect(await store.getActiveBatch(userId)).toMatchObject({ used: 1, unused: 2 })
    if (keys !== undefined) {
      const losers = CHILDREN * PER_CHILD - 1
      expect(results.reduce((n, r) => n + r.misses, 0)).toBe(losers)
      expect(await store.getAttempts(keys[1]!)).toMatchObject({ failures: losers, consecutive: losers })
      expect((await store.getAttempts(keys[0]!)).failures).toBeLessThanOrEqual(losers)
      expect(await store.listAudit({ limit: 10, userId })).toMatchObject([
        { event: 'race.redeem', batchId: b.id, data: { remaining: 2 } },
      ])
    }
  }
  return doubles
}

describe('cross-process consume race: SQLite (one WAL file)', () => {
  let backend: Backend
  let workers: Worker[] = []
  beforeAll(async () => {
    backend = await sqliteBackend()
    workers = await Promise.all(
      // Every other process redeems through `sqliteDatabase` (one synchronous transaction).
      Array.from({ length: CHILDREN }, (_, i) =>
        startWorker({ kind: 'sqlite', file: backend.where.file, sync: i % 2 === 1 }),
      ),
    )
  }, 180_000)
  afterAll(async () => {
    await stopWorkers(workers)
    await backend?.close()
  })

  it(`${CHILDREN} processes × ${PER_CHILD} consumes, 20 rounds: exactly one success each`, async () => {
    expect(await raceRounds(backend, workers, 20, 'consume')).toBe(0)
  })

  it(`${CHILDREN} processes × ${PER_CHILD} redeems, 10 rounds: exactly one consumed each`, async () => {
    expect(await raceRounds(backend, workers, 10, 'redeem')).toBe(0)
  })
})

/**
 * The race on a server (PostgreSQL, MySQL): 100 consume rounds and 30 redeem rounds. Unreachable:
 * skipped with a message, except under `CI=true`, where it fails.
 */
function serverRace(
  name: string,
  where: string,
  unavailable: string | null,
  open: () => Promise<Backend>,
  worker: (b: Backend) => Parameters<typeof startWorker>[0],
) {
  if (unavailable !== null && !isCI) {
    describe(`cross-process consume race: ${name}`, () => {
      it.skip(`SKIPPED: ${name} at ${where} unreachable (${unavailable})`, () => {})
    })
    return
  }
  describe(`cross-process consume race: ${name}`, () => {
    let backend: Backend
    let workers: Worker[] = []
    beforeAll(async () => {
      if (unavailable !== null)
        throw new Error(`${name} at ${where} unreachable under CI=true: ${unavailable}`)
      backend = await open()
      workers = await Promise.all(Array.from({ length: CHILDREN }, () => startWorker(worker(backend))))
    }, 180_000)
    afterAll(async () => {
      await stopWorkers(workers)
      await backend?.close()
    })

    it(`${CHILDREN} processes × ${PER_CHILD} consumes, 100 rounds: 0 double successes`, async () => {
      expect(await raceRounds(backend, workers, 100, 'consume')).toBe(0)
    })

    it(`${CHILDREN} processes × ${PER_CHILD} redeems, 30 rounds: 0 double successes`, async () => {
      expect(await raceRounds(backend, workers, 30, 'redeem')).toBe(0)
    })
  })
}

serverRace(
  'PostgreSQL',
  PG_URL,
  pgUnavailable,
  () => postgresBackend(4),
  (b) => ({
    kind: 'postgres',
    url: b.where.url,
    schema: b.where.schema,
    max: 5,
  }),
)

serverRace(
  'MySQL',
  MYSQL_URL,
  mysqlUnavailable,
  () => mysqlBackend(4),
  (b) => ({
    kind: 'mysql',
    url: b.where.url,
    database: b.where.database,
    max: 5,
  }),
)
