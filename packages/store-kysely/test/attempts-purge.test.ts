/**
 * "rc_attempts grows without bound": 200k failed redeems with fresh user ids and client keys leave
 * 400k limiter counters. After `attemptRetentionDays` a purge deletes every one of them and keeps
 * exactly the counters of recent failures, on SQLite and on the real PostgreSQL.
 */
import { createRecoveryCodes } from '@recovery-codes/core'
import { createManualClock, TEST_PEPPER } from '@recovery-codes/testing'
import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { kyselyStore } from '../src/store.ts'
import { type Backend, isCI, pgUnavailable, postgresBackend, sqliteBackend } from './backends.ts'

/**
 * Failed redeems per backend: the 200k on SQLite; 20k on PostgreSQL, where the same
 * service path costs about ten times as much wall time on a 2-core CI machine.
 */
const FAILURES = { sqlite: 200_000, postgres: 20_000 } as const
const RECENT = 50
const DAY_MS = 86_400_000

const counters = async (db: Kysely<any>) =>
  Number((await sql<{ n: number | string }>`select count(*) as n from rc_attempts`.execute(db)).rows[0]!.n)

/** `n` failed second-factor redeems, each with a fresh user id and client key, `parallel` at a time. */
async function failFresh(
  rc: ReturnType<typeof createRecoveryCodes>,
  prefix: string,
  n: number,
  parallel: number,
) {
  let next = 0
  let refused = 0
  const worker = async () => {
    while (next < n) {
      const i = next++
      const r = await rc.redeem({
        userId: `${prefix}-u${i}`,
        clientKey: `${prefix}-ip${i}`,
        code: 'ABCD-EFGH-JKLM',
      })
      if (!r.ok) refused++
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  return refused
}

const backends: ['sqlite' | 'postgres', () => Promise<Backend>, number, boolean][] = [
  ['sqlite', sqliteBackend, 1, false],
  ['postgres', () => postgresBackend(8), 8, pgUnavailable !== null && !isCI],
]

describe('expired limiter counters are purged', () => {
  for (const [name, open, parallel, skip] of backends) {
    const failures = FAILURES[name]
    it.skipIf(skip)(
      `${name}: ${failures} failed redeems with fresh keys, then a purge: rc_attempts holds only unexpired rows`,
      async () => {
        const backend = await open()
        try {
          const clock = createManualClock()
          const rc = createRecoveryCodes({
            peppers: [{ id: 'k1', secret: TEST_PEPPER }],
            // SQLite as the README sets it up: the redeem as one transaction on the handle.
            store: kyselyStore(backend.db, backend.sqlite ? { sqliteDatabase: backend.sqlite } : {}),
            clock,
            activation: 'immediate',
            purge: { attemptRetentionDays: 1 },
          })
          const t0 = performance.now()
          expect(await failFresh(rc, 'old', failures, parallel)).toBe(failures)
          const failSeconds = (performance.now() - t0) / 1000
          // One counter per user id and one per client key.
          expect(await counters(backend.db)).toBe(2 * failures)

          clock.advance(DAY_MS + 1)
          expect(await failFresh(rc, 'new', RECENT, parallel)).toBe(RECENT)
          const t1 = performance.now()
          const report = await rc.purge()
          const purgeSeconds = (performance.now() - t1) / 1000
          expect(report).toMatchObject({ attemptsDeleted: 2 * failures, done: true })
          expect(report.error).toBeUndefined()
          expect(await counters(backend.db)).toBe(2 * RECENT)
          const oldest = await sql<{ n: number | string }>`select count(*) as n from rc_attempts
            where key in (select key from rc_attempts) and touched_at < ${
              backend.name === 'postgres' ? new Date(clock.now() - DAY_MS) : clock.now() - DAY_MS
            }`.execute(backend.db)
          expect(Number(oldest.rows[0]!.n)).toBe(0)
          // The recent counters kept their counts: purge took nothing that still matters.
          expect((await rc.purge()).attemptsDeleted).toBe(0)
          console.info(
            `[attempts purge] ${name}: ${failures} failed redeems in ${failSeconds.toFixed(1)} s; purge deleted ${report.attemptsDeleted} counters in ${purgeSeconds.toFixed(2)} s, ${await counters(backend.db)} left`,
          )
        } finally {
          await backend.close()
        }
      },
      300_000,
    )
  }
})
