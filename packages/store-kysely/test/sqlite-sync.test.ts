/**
 * `sqliteDatabase`: the redeem as one synchronous transaction on the host's better-sqlite3 handle.
 * It is refused for another dialect or a non-handle, checked to be the connection under the
 * Kysely instance, and steps aside (the async path, which waits for Kysely's connection) while a
 * transaction is open on the handle.
 */

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RecoveryCodesError } from '@recovery-codes/core'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { kyselyStore } from '../src/store.ts'
import { openSqliteHandle, pgliteBackend, useSqliteBackend } from './backends.ts'
import { auditRow } from './contract.ts'

const USER = 'u-sync'
const NOW = 1_700_000_000_000
const digest = (n: number) => new Uint8Array(32).fill(n)

const sqlite = useSqliteBackend()

/** A connection held across an await: `inside()` once it is held, `await held` until `release()`. */
function gate() {
  let release!: () => void
  const held = new Promise<void>((r) => {
    release = r
  })
  let inside!: () => void
  const opened = new Promise<void>((r) => {
    inside = r
  })
  return { held, release, inside, opened }
}

const audit = (id: string) => auditRow({ id, at: NOW, event: 'code.consumed', userId: USER })

async function seed(store: ReturnType<typeof kyselyStore>, codes: number) {
  await store.createBatch(
    { id: 'b-sync', userId: USER, keyId: 'k1', createdAt: NOW, expiresAt: null },
    Array.from({ length: codes }, (_, i) => ({ id: `c-${i}`, digest: digest(i + 1) })),
    { ...audit('a-create'), event: 'codes.generated' },
  )
}

const redeem = (store: ReturnType<typeof kyselyStore>, n: number, auditId: string) =>
  store.redeemCode({
    userId: USER,
    digests: [digest(n)],
    keys: [{ key: `u:${USER}`, maxAttempts: 5 }],
    reset: [`u:${USER}`],
    now: NOW + 1,
    audit: audit(auditId),
  })

describe('kyselyStore purgeRestRatio', () => {
  it('is a number from 0 to 10; anything else is CONFIG_INVALID', () => {
    for (const ok of [0, 0.5, 10])
      expect(() => kyselyStore(sqlite().db, { purgeRestRatio: ok })).not.toThrow()
    for (const bad of [-0.1, 10.5, Number.NaN, Number.POSITIVE_INFINITY, '0.5', null]) {
      expect(() => kyselyStore(sqlite().db, { purgeRestRatio: bad as never })).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      )
    }
  })
})

describe('kyselyStore sqliteDatabase', () => {
  it('is refused (CONFIG_INVALID) on another dialect and for a value that is no better-sqlite3 handle', async () => {
    const pglite = await pgliteBackend()
    try {
      expect(() => kyselyStore(pglite.db, { sqliteDatabase: sqlite().sqlite! })).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      )
    } finally {
      await pglite.close()
    }
    for (const bad of [null, {}, 'app.db', { prepare() {}, function() {} }]) {
      expect(() => kyselyStore(sqlite().db, { sqliteDatabase: bad as never })).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      )
    }
  })

  it('is checked to be the connection under db: another handle fails the redeem with CONFIG_INVALID and changes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-sync-other-'))
    const other = openSqliteHandle(join(dir, 'other.db'))
    try {
      const plain = kyselyStore(sqlite().db)
      await seed(plain, 2)
      const wrong = kyselyStore(sqlite().db, { sqliteDatabase: other.database })
      const e = await redeem(wrong, 1, 'a-wrong').catch((x: unknown) => x)
      expect(e).toBeInstanceOf(RecoveryCodesError)
      expect((e as RecoveryCodesError).code).toBe('CONFIG_INVALID')
      expect(String((e as Error).message)).not.toMatch(/[0-9a-f]{24}/)
      const active = await plain.getActiveBatch(USER)
      expect(active).toMatchObject({ used: 0 })
    } finally {
      await other.db.destroy()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('runs the redeem on the handle: consumed once, the reset counter deleted, the audit row written', async () => {
    const store = kyselyStore(sqlite().db, { sqliteDatabase: sqlite().sqlite! })
    await seed(store, 3)
    await store.reserveAttempts({ keys: [{ key: `u:${USER}`, maxAttempts: 5 }], now: NOW })
    const first = await redeem(store, 1, 'a-1')
    expect(first).toMatchObject({ outcome: 'consumed', code: { codeId: 'c-0', remaining: 2 } })
    expect((await redeem(store, 1, 'a-2')).outcome).toBe('missed')
    const counters = await sql<{
      n: number
    }>`select count(*) as n from rc_attempts where failures > 0`.execute(sqlite().db)
    // The miss after the consume reserved the key again; the consume had deleted the first counter.
    expect(Number(counters.rows[0]!.n)).toBe(1)
    const rows = await sql<{ id: string }>`select id from rc_audit_log where event = 'code.consumed'`.execute(
      sqlite().db,
    )
    expect(rows.rows.map((r) => r.id)).toEqual(['a-1'])
  })

  it('steps aside while a transaction is open on the handle: the redeem waits for it and sees its outcome', async () => {
    const store = kyselyStore(sqlite().db, { sqliteDatabase: sqlite().sqlite! })
    await seed(store, 2)
    const { held, release, inside, opened } = gate()
    // A host transaction that invalidates code 1 and holds the connection across an await.
    const host = sqlite()
      .db.transaction()
      .execute(async (trx) => {
        await sql`update rc_codes set state = 'invalidated', changed_at = ${NOW} where id = 'c-0'`.execute(
          trx,
        )
        inside()
        await held
      })
    await opened
    expect(sqlite().sqlite!.inTransaction).toBe(true)
    const during = redeem(store, 1, 'a-during')
    let settled = false
    void during.then(() => {
      settled = true
    })
    await new Promise((r) => setTimeout(r, 50))
    // Not run inside the host's transaction: it waits for the connection.
    expect(settled).toBe(false)
    release()
    await host
    expect((await during).outcome).toBe('missed')
    expect((await redeem(store, 2, 'a-after')).outcome).toBe('consumed')
  })

  it('runs without Kysely: it completes while the Kysely connection is held outside a transaction, which the plain store waits for', async () => {
    const fast = kyselyStore(sqlite().db, { sqliteDatabase: sqlite().sqlite! })
    const plain = kyselyStore(sqlite().db)
    await seed(fast, 2)
    // The store checks the handle once through Kysely: done before the connection is held.
    expect((await redeem(fast, 9, 'a-probe')).outcome).toBe('missed')
    const { held, release, inside, opened } = gate()
    const holder = sqlite()
      .db.connection()
      .execute(async () => {
        inside()
        await held
      })
    await opened
    expect(sqlite().sqlite!.inTransaction).toBe(false)
    expect((await redeem(fast, 1, 'a-fast')).outcome).toBe('consumed')
    let plainDone = false
    const slow = redeem(plain, 2, 'a-plain').then((o) => {
      plainDone = true
      return o
    })
    await new Promise((r) => setTimeout(r, 50))
    expect(plainDone).toBe(false)
    release()
    await holder
    expect((await slow).outcome).toBe('consumed')
  })

  it('many redeems of one code in parallel on one handle: exactly one consumes', async () => {
    const store = kyselyStore(sqlite().db, { sqliteDatabase: sqlite().sqlite! })
    await seed(store, 1)
    const out = await Promise.all(Array.from({ length: 40 }, (_, i) => redeem(store, 1, `a-p${i}`)))
    expect(out.filter((o) => o.outcome === 'consumed')).toHaveLength(1)
  })
})
