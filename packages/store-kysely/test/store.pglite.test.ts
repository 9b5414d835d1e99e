import { PGlite } from '@electric-sql/pglite'
import { runServiceConformance, runStoreConformance } from '@recovery-codes/testing'
import { Kysely, sql } from 'kysely'
import { PGliteDialect } from 'kysely-pglite-dialect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateRecoveryCodes, recoveryCodesMigrations } from '../src/migrations.ts'
import type { RecoveryCodesDatabase } from '../src/schema.ts'
import { kyselyStore } from '../src/store.ts'
import { type Backend, dumpTables, pgliteBackend } from './backends.ts'
import { batch, codes, storeContract } from './contract.ts'

let backend: Backend
beforeAll(async () => {
  backend = await pgliteBackend()
})
afterAll(async () => {
  await backend?.close()
})

storeContract('PGlite (in-process PostgreSQL)', async () => {
  await backend.reset()
  return { store: kyselyStore(backend.db), db: backend.db }
})

runStoreConformance({
  name: 'kysely (PGlite)',
  setup: async () => {
    await backend.reset()
    return kyselyStore(backend.db)
  },
})

runServiceConformance({
  name: 'kysely (PGlite)',
  setup: async () => {
    await backend.reset()
    return kyselyStore(backend.db)
  },
  dump: () => dumpTables(backend.db),
  purgeScale: { eligible: 2_000, active: 100 },
})

describe('redeemCode on a database without migration 0002_redeem', () => {
  it('falls back to the four calls (same result) when rc_redeem does not exist', async () => {
    const db = new Kysely<RecoveryCodesDatabase>({ dialect: new PGliteDialect(new PGlite()) })
    try {
      await migrateRecoveryCodes(db)
      await recoveryCodesMigrations['0002_redeem']!.down!(db)
      const { rows } = await sql<{
        n: number
      }>`select count(*)::int as n from pg_proc where proname = 'rc_redeem'`.execute(db)
      expect(rows[0]!.n).toBe(0)
      const store = kyselyStore(db)
      const cs = codes(2)
      const b = batch('u1', 1000)
      await store.createBatch(b, cs)
      const audit = {
        id: 'a1',
        at: 2000,
        event: 'login.success',
        userId: 'u1',
        batchId: null,
        identifierHash: null,
        clientHash: null,
        outcome: 'success' as const,
        reason: null,
        data: null,
      }
      const keys = [{ key: 'id:u1', maxAttempts: 5 }]
      const input = { userId: 'u1', digests: [cs[0]!.digest], now: 2000, keys, reset: ['id:u1'], audit }
      expect(await store.redeemCode(input)).toEqual({
        outcome: 'consumed',
        code: { codeId: cs[0]!.id, batchId: b.id, keyId: 'k1', remaining: 1 },
      })
      expect(await store.redeemCode({ ...input, audit: { ...audit, id: 'a2' } })).toMatchObject({
        outcome: 'missed',
        states: [{ failures: 1, consecutive: 1 }],
      })
      expect(await store.listAudit({ limit: 5 })).toMatchObject([{ id: 'a1', data: { remaining: 1 } }])
    } finally {
      await db.destroy()
    }
  })
})
