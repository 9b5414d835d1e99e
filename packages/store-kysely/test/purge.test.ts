/**
 * Acceptance 4: purge beside itself and beside redeems never loses an active code; a purge killed
 * with SIGKILL mid-run and re-run leaves 0 eligible rows and every active row.
 */
import type { RecoveryCodeStore } from '@recovery-codes/core'
import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { kyselyStore } from '../src/store.ts'
import { type Backend, isCI, PG_URL, pgUnavailable, postgresBackend, sqliteBackend } from './backends.ts'
import { batch, codes, uid } from './contract.ts'
import { startWorker, stopWorkers } from './race.helpers.ts'
import { seedCodes } from './seed.ts'

const BEFORE = 1_000_000

async function eligible(db: Kysely<any>, dialect: 'sqlite' | 'postgres'): Promise<number> {
  const before = dialect === 'postgres' ? new Date(BEFORE) : BEFORE
  const r = await db
    .selectFrom('rc_codes')
    .select((eb) => eb.fn.countAll().as('n'))
    .where((eb) => eb.or([eb('changed_at', '<', before), eb('expires_at', '<', before)]))
    .executeTakeFirstOrThrow()
  return Number(r.n)
}

async function ids(db: Kysely<any>, batchId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('rc_codes')
    .select('id')
    .where('batch_id', '=', batchId)
    .orderBy('id')
    .execute()
  return rows.map((r) => r.id)
}

function suite(label: string, open: () => Promise<Backend>, dialect: 'sqlite' | 'postgres') {
  describe(`purge under concurrency and SIGKILL: ${label}`, () => {
    let backend: Backend
    beforeAll(async () => {
      backend = await open()
    })
    afterAll(async () => {
      await backend?.close()
    })

    it('a purge killed with SIGKILL mid-run, then re-run, leaves 0 eligible rows and every active row', async () => {
      await backend.reset()
      const db = backend.db
      const DEAD = 40_000
      await seedCodes(db, dialect, {
        userId: 'u-dead',
        batchId: 'b-dead',
        count: DEAD,
        status: 'superseded',
        state: 'used',
        endedAt: 900,
        changedAt: (i) => 100 + (i % 500),
      })
      await seedCodes(db, dialect, { userId: 'u-exp', batchId: 'b-exp', count: 5_000, expiresAt: 500 })
      const live = await seedCodes(db, dialect, { userId: 'u-live', batchId: 'b-live', count: 2_000 })
      const liveExpiring = await seedCodes(db, dialect, {
        userId: 'u-live2',
        batchId: 'b-live2',
        count: 500,
        expiresAt: BEFORE * 10,
      })
      expect(await eligible(db, dialect)).toBe(DEAD + 5_000)

      const worker = await startWorker(
        dialect === 'sqlite'
          ? { kind: 'sqlite', file: backend.where.file }
          : { kind: 'postgres', url: backend.where.url, schema: backend.where.schema, max: 2 },
      )
      const exited = new Promise((resolve) => worker.child.once('exit', (_code, signal) => resolve(signal)))
      worker.send({ type: 'purge', before: BEFORE, limit: 250 })
      for (let i = 0; i < 5; i++) expect((await worker.next('chunk')).deleted).toBeGreaterThan(0)
      worker.child.kill('SIGKILL')
      expect(await exited).toBe('SIGKILL')
      await stopWorkers([worker])

      const left = await eligible(db, dialect)
      expect(left, 'killed before it finished').toBeGreaterThan(0)
      expect(left).toBeLessThan(DEAD + 5_000)

      const store = kyselyStore(db)
      let rounds = 0
      while ((await store.purgeCodes({ before: BEFORE, limit: 1_000 })) > 0) rounds++
      expect(rounds).toBeGreaterThan(1)
      expect(await eligible(db, dialect)).toBe(0)
      expect(await ids(db, 'b-live')).toEqual([...live].sort())
      expect(await ids(db, 'b-live2')).toEqual([...liveExpiring].sort())
      expect(await store.purgeCodes({ before: BEFORE, limit: 1_000 })).toBe(0)
    })

    it('two purgers beside redeems of every active code: each active code redeems exactly once', async () => {
      await backend.reset()
      const db = backend.db
      await seedCodes(db, dialect, {
        userId: 'u-dead',
        batchId: 'b-dead',
        count: 10_000,
        status: 'superseded',
        state: 'used',
        endedAt: 900,
        changedAt: (i) => 100 + (i % 500),
      })
      const store: RecoveryCodeStore = kyselyStore(db)
      const users = Array.from({ length: 20 }, () => uid('u'))
      const live: { userId: string; digest: Uint8Array }[] = []
      for (const u of users) {
        const cs = codes(10)
        await store.createBatch(batch(u, 10), cs)
        for (const c of cs) live.push({ userId: u, digest: c.digest })
      }
      const purger = async () => {
        let total = 0
        for (;;) {
          const n = await store.purgeCodes({ before: BEFORE, limit: 300 })
          total += n
          if (n === 0) return total
        }
      }
      // Redeemed rows get changed_at = 2_000_000 >= BEFORE, so these purgers never take them: the
      // final count of used rows proves no active row was deleted before or after its redeem.
      const redeems = live.flatMap((c) =>
        [0, 1].map(() => store.consumeCode({ userId: c.userId, digests: [c.digest], now: 2_000_000 })),
      )
      const [p1, p2, ...results] = await Promise.all([purger(), purger(), ...redeems])
      expect((p1 as number) + (p2 as number)).toBe(10_000)
      for (let i = 0; i < live.length; i++) {
        const pair = [results[2 * i], results[2 * i + 1]]
        expect(
          pair.filter((r) => r !== null),
          `code ${i}`,
        ).toHaveLength(1)
      }
      expect(await eligible(db, dialect)).toBe(0)
      const count = await sql<{ n: number }>`select count(*) as n from rc_codes where state = 'used'`.execute(
        db,
      )
      expect(Number(count.rows[0]!.n)).toBe(live.length)
    })
  })
}

suite('SQLite (WAL file)', sqliteBackend, 'sqlite')
if (pgUnavailable === null) {
  suite('PostgreSQL', () => postgresBackend(8), 'postgres')
} else if (isCI) {
  describe('purge: PostgreSQL', () => {
    it(`requires PostgreSQL at ${PG_URL} under CI=true`, () => {
      throw new Error(`PostgreSQL unreachable under CI=true: ${pgUnavailable}`)
    })
  })
} else {
  describe('purge: PostgreSQL', () => {
    it.skip(`SKIPPED: PostgreSQL at ${PG_URL} unreachable (${pgUnavailable})`, () => {})
  })
}
