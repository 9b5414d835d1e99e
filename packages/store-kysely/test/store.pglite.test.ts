import { PGlite } from '@electric-sql/pglite'
import { runServiceConformance, runStoreConformance } from '@recovery-codes/testing'
import { Kysely, sql } from 'kysely'
import { PGliteDialect } from 'kysely-pglite-dialect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateRecoveryCodes } from '../src/migrations.ts'
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
      // The tables of the latest schema without the function (0004 replaced 0002's).
      await sql`drop function rc_redeem(text[], integer[], text[], timestamptz, text, bytea[], text,
        timestamptz, text, text, text, text, text, text, jsonb, timestamptz)`.execute(db)
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

describe('rc_redeem start deadline', () => {
  it('a call that reaches the server after p_deadline raises 57014 and changes nothing', async () => {
    const db = new Kysely<RecoveryCodesDatabase>({ dialect: new PGliteDialect(new PGlite()) })
    try {
      await migrateRecoveryCodes(db)
      const call = (deadline: string) =>
        sql`select * from rc_redeem(array['id:u1']::text[], array[5]::integer[],
        array[]::text[], now(), ''::text, array[]::bytea[], ''::text, now(), ''::text, null::text, null::text,
        null::text, 'info'::text, null::text, null::jsonb, ${deadline}::timestamptz)`.execute(db)
      const late = new Date(Date.now() - 1_000).toISOString()
      await expect(call(late)).rejects.toMatchObject({ code: '57014' })
      const count = async () =>
        (await sql<{ n: number }>`select count(*)::int as n from rc_attempts`.execute(db)).rows[0]!.n
      expect(await count()).toBe(0)
      const inTime = new Date(Date.now() + 60_000).toISOString()
      expect((await call(inTime)).rows).toMatchObject([{ outcome: 'missed', key: 'id:u1', failures: 1 }])
      expect(await count()).toBe(1)
    } finally {
      await db.destroy()
    }
  })
})

describe('kyselyStore startDeadlineMs', () => {
  it.each([0, -1, 1.5, Number.NaN, '5000'])('refuses %s with INVALID_INPUT, before any SQL', (value) => {
    const db = new Kysely<RecoveryCodesDatabase>({ dialect: new PGliteDialect(new PGlite()) })
    try {
      expect(() => kyselyStore(db, { startDeadlineMs: value as number })).toThrow(
        expect.objectContaining({
          code: 'INVALID_INPUT',
          message: expect.stringContaining('startDeadlineMs'),
        }),
      )
      expect(() => kyselyStore(db, { startDeadlineMs: null })).not.toThrow()
    } finally {
      void db.destroy()
    }
  })
})
