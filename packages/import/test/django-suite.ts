/**
 * The django-auth-recovery-codes reader against a seed-shaped database, run on SQLite and on
 * PostgreSQL by `django.sqlite.test.ts` and `django.postgres.test.ts`.
 */
import { legacyDigest, type SourceBatch } from '@recovery-codes/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { djangoRecoveryCodesSource } from '../src/index.ts'
import { createIndexName, type Dialect } from './fixtures/django-schema.ts'
import {
  batchRow,
  buildDjangoSeed,
  codeRow,
  createPrng,
  DAY_US,
  type DjangoSeed,
  generateSeedCode,
  makeLookupHash,
  makePassword,
  seedUuid,
  us,
  userRow,
} from './fixtures/django-seed.ts'
import {
  dryRun,
  expectImportInvalid,
  expectNoSecret,
  readAll,
  readError,
  rowCounter,
} from './fixtures/read.ts'
import { openSeedDb, type Row, type SeedDb } from './fixtures/seed-db.ts'

export const KEY = 'test-only DJANGO_AUTH_RECOVERY_KEY (not a real one)'
const NOW = Date.UTC(2025, 9, 6, 12, 0, 0)
const DAY = 86_400_000
const LEGACY = {
  id: 'seed1',
  scheme: 'django-auth-recovery-codes' as const,
  secret: new TextEncoder().encode(KEY),
}
const IMPORT_CONFIG = {
  legacyDigests: [{ id: 'seed1', scheme: 'django-auth-recovery-codes' as const, secret: KEY }],
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

/** A compact view of a read: per batch its id, status, times and code states. */
function summary(batches: SourceBatch[]) {
  return batches.map((b) => ({
    id: b.sourceId,
    user: b.userId,
    status: b.status,
    createdAt: b.createdAt,
    endedAt: b.endedAt,
    expiresAt: b.expiresAt,
    codes: b.codes.map((c) => `${c.sourceId}:${c.state}:${c.usedAt}:${hex(c.legacyDigest!)}`),
  }))
}

export function djangoReaderSuite(dialect: Dialect) {
  describe(`10,000 users × 10 codes (${dialect})`, () => {
    let seed: SeedDb
    let built: DjangoSeed
    beforeAll(async () => {
      seed = await openSeedDb(dialect, { deferIndexes: true })
      built = await buildDjangoSeed(seed, {
        users: 10_000,
        codesPerBatch: 10,
        used: 0.2,
        deactivated: 0.1,
        markedForDeletion: 0.1,
        expiryDays: 30,
        key: KEY,
        now: NOW,
      })
      console.info(`[${dialect}] seed of 10,000 users × 10 codes built in ${built.buildMs} ms`)
    }, 180_000)
    afterAll(async () => {
      await seed?.close()
    })

    it('builds in a few seconds (bulk inserts)', () => {
      expect(built.codes).toBe(100_000)
      expect(built.buildMs).toBeLessThan(dialect === 'sqlite' ? 8_000 : 60_000)
    })

    it('streams every batch, in order, with the states the seed gave the codes, a page at a time', async () => {
      const counter = rowCounter()
      const source = djangoRecoveryCodesSource({
        db: seed.db.withPlugin(counter.plugin),
        legacyKeyId: 'seed1',
      })
      const started = performance.now()
      const { batches, skipped } = await readAll(source)
      console.info(
        `[${dialect}] read in ${Math.round(performance.now() - started)} ms, ${counter.queries} queries`,
      )
      expect(skipped).toEqual([])
      expect(batches.map((b) => b.sourceId)).toEqual(built.batchOrder)
      expect(
        batches.every((b) => b.status === 'active' && b.endedAt === null && b.legacyKeyId === 'seed1'),
      ).toBe(true)
      const states = { active: 0, used: 0, invalidated: 0, deleted: 0 }
      for (const b of batches) for (const c of b.codes) states[c.state]++
      expect(states).toEqual({
        active: built.byState.active.length,
        used: built.byState.used.length,
        invalidated: built.byState.invalidated.length,
        deleted: built.byState.deleted.length,
      })
      expect(states).toEqual({ active: 60_000, used: 20_000, invalidated: 10_000, deleted: 10_000 })
      // Never the whole table: at most a page of users' codes per query (500 users × 10 codes).
      expect(counter.maxRows).toBeLessThanOrEqual(5_000)
      expect(counter.queries).toBeGreaterThanOrEqual(2 * 20)
      // Each code's digest is the one redeem computes (core's legacyDigest) from the printed code.
      const byCode = new Map(batches.flatMap((b) => b.codes.map((c) => [c.sourceId, { b, c }] as const)))
      for (const state of ['active', 'used', 'invalidated', 'deleted'] as const) {
        for (const p of built.byState[state].filter((_, i) => i % 50 === 0)) {
          const hit = byCode.get(p.codeId)!
          expect(hit.c.state).toBe(state)
          expect(hit.b.userId).toBe(p.userId)
          expect(hex(hit.c.legacyDigest!)).toBe(hex(legacyDigest(LEGACY, p.code)!))
        }
      }
      // Expiry: created + 30 days, exactly as the seed computed expiry_date.
      expect(batches.every((b) => b.expiresAt === b.createdAt + 30 * DAY)).toBe(true)
    })

    it('passes every check of rc.importCodes (dry run) with the counts of the seed', async () => {
      const report = await dryRun(
        djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }),
        IMPORT_CONFIG,
      )
      expect(report.users).toBe(10_000)
      expect(report.batches.read).toBe(10_000)
      expect(report.batches.byStatus).toEqual({ active: 10_000, superseded: 0, disabled: 0, deleted: 0 })
      expect(report.codes.byState).toEqual({
        active: 60_000,
        used: 20_000,
        invalidated: 10_000,
        deleted: 10_000,
      })
      expect(report.codes.legacy).toBe(100_000)
      expect(report.skipped).toEqual([])
    })
  })

  describe(`pagination and order (${dialect})`, () => {
    let seed: SeedDb
    let built: DjangoSeed
    beforeAll(async () => {
      seed = await openSeedDb(dialect)
      built = await buildDjangoSeed(seed, {
        users: 23,
        codesPerBatch: 4,
        batchesPerUser: 3,
        used: 0.25,
        key: KEY,
        now: NOW,
        firstUserId: 5,
      })
      // Users whose ids sort differently as text and as numbers, and a batch of a deleted user.
      await buildDjangoSeed(seed, {
        users: 2,
        codesPerBatch: 2,
        key: KEY,
        now: NOW,
        firstUserId: 100,
        seed: 2,
      })
      await seed.insert(seed.batches, [
        batchRow({ id: seedUuid(createPrng(9)), user_id: null, created_at: us(NOW) }),
      ])
    }, 60_000)
    afterAll(async () => {
      await seed?.close()
    })

    it('gives the same batches, in the same order, at every page size', async () => {
      const read = (pageSize?: number) =>
        readAll(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1', pageSize })).then((r) => ({
          skipped: r.skipped,
          batches: summary(r.batches),
        }))
      const whole = await read()
      expect(whole.batches).toHaveLength(23 * 3 + 2)
      expect(whole.batches.slice(0, 69).map((b) => b.id)).toEqual(built.batchOrder)
      expect(whole.batches.map((b) => b.user)).toEqual(
        [...whole.batches.map((b) => b.user)].sort((a, b) => Number(a) - Number(b)),
      )
      for (const pageSize of [1, 2, 4, 7, 24, 25]) expect(await read(pageSize)).toEqual(whole)
      // Twice with one source: a source can be read again (a dry run, then the import).
      const source = djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1', pageSize: 3 })
      expect(summary((await readAll(source)).batches)).toEqual(whole.batches)
      expect(summary((await readAll(source)).batches)).toEqual(whole.batches)
    })

    it('maps regeneration: older batches deleted, ended when the next one was created', async () => {
      const { batches } = await readAll(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }))
      const first = batches.filter((b) => b.userId === '5')
      expect(first.map((b) => b.status)).toEqual(['deleted', 'deleted', 'active'])
      expect(first[0]!.endedAt).toBe(first[1]!.createdAt)
      expect(first[1]!.endedAt).toBe(first[2]!.createdAt)
      expect(first[0]!.codes.map((c) => c.state)).toEqual(['used', 'deleted', 'deleted', 'deleted'])
      expect(first[2]!.codes.map((c) => c.state)).toEqual(['used', 'active', 'active', 'active'])
    })

    it('reports the batch of a deleted user as skipped', async () => {
      const { skipped } = await readAll(
        djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1', pageSize: 1 }),
      )
      expect(skipped).toHaveLength(1)
      expect(skipped[0]!.row).toMatch(/^django_auth_recovery_codes_recoverycodesbatch [0-9a-f-]{36}$/)
      expect(skipped[0]!.reason).toBe('its user was deleted (user_id is NULL)')
    })
  })

  describe(`lifecycle mapping (${dialect})`, () => {
    let seed: SeedDb
    let batches: SourceBatch[]
    let skipped: { row: string; reason: string }[]
    const random = createPrng(42)
    const t = (days: number, micro = 0) => us(NOW) - days * DAY_US + micro
    const ids: Record<string, string> = {}
    const batch = (name: string, user: number | null, values: Row) => {
      ids[name] = seedUuid(random)
      return batchRow({ id: ids[name]!, user_id: user, ...values } as Parameters<typeof batchRow>[0])
    }
    const code = (
      name: string,
      user: number,
      values: Row,
      action?: Parameters<typeof codeRow>[1],
      at?: number,
    ) => {
      const plain = generateSeedCode(random)
      return codeRow(
        {
          id: seedUuid(random),
          batch_id: ids[name]!,
          user_id: user,
          created_at: values.created_at as number,
          hash_code: makePassword(plain, 'salt', 1),
          look_up_hash: makeLookupHash(KEY, plain),
          ...values,
        },
        action,
        at,
      )
    }
    beforeAll(async () => {
      seed = await openSeedDb(dialect)
      await seed.insert(
        seed.users,
        Array.from({ length: 12 }, (_, i) => userRow(i + 1, t(500))),
      )
      const b: Row[] = [
        // 1: three 'a' batches (supersede is not atomic in the seed): the newest stays active.
        batch('1a', 1, { created_at: t(30, 123_456) }),
        batch('1b', 1, { created_at: t(20) }),
        batch('1c', 1, { created_at: t(10, 5) }),
        // 2: regeneration left 'p' without deleted_at.
        batch('2a', 2, { created_at: t(30), status: 'p', modified_at: t(29) }),
        batch('2b', 2, { created_at: t(5) }),
        // 3: delete_recovery_batch: 'p' with deleted_at.
        batch('3', 3, {
          created_at: t(30),
          status: 'p',
          deleted_at: t(3, 999_999),
          modified_at: t(3, 999_999),
        }),
        // 4: 'i' (invalidated batch) → disabled at modified_at.
        batch('4', 4, { created_at: t(30), status: 'i', modified_at: t(4) }),
        // 5: 'd' without deleted_at → deleted at modified_at.
        batch('5', 5, { created_at: t(30), status: 'd', modified_at: t(6) }),
        // 6: expiry_date = the day of created + 7 days → created + 7 days exactly.
        batch('6', 6, { created_at: t(2, 250_000), expiry_date: isoDay(t(2, 250_000) + 7 * DAY_US) }),
        // 7: expiry_date edited (not created + 7) → the end of that day (UTC).
        batch('7', 7, { created_at: t(2), expiry_date: '2030-01-31' }),
        // 8: no expiry_date but days_to_expire → created + 3 days.
        batch('8', 8, { created_at: t(2) }),
        // 9: no codes left (purged).
        batch('9', 9, { created_at: t(2) }),
        // 10: 'p' without deleted_at and nothing newer → modified_at.
        batch('10', 10, { created_at: t(30), status: 'p', modified_at: t(12) }),
        // 11: a batch whose user was deleted.
        batch('11', null, { created_at: t(2) }),
        // 12: 'a' created after its modified_at (clock skew): endedAt never before createdAt.
        batch('12a', 12, { created_at: t(9), modified_at: t(9) }),
        batch('12b', 12, { created_at: t(9) }),
      ]
      await seed.insert(seed.batches, b)
      const c: Row[] = [
        code('1a', 1, { created_at: t(30, 123_456) }),
        code('1b', 1, { created_at: t(20) }, 'used', t(15, 7)),
        code('1c', 1, { created_at: t(10, 5) }),
        code('1c', 1, { created_at: t(10, 6_000) }, 'invalidated', t(9)),
        code('1c', 1, { created_at: t(10, 7_000) }, 'deleted', t(8)),
        // status 'i' alone, and is_deactivated alone, are both invalidated.
        code('1c', 1, { created_at: t(10, 8_000), status: 'i' }),
        code('1c', 1, { created_at: t(10, 9_000), is_deactivated: true }),
        // mark_for_deletion alone is deleted; is_used wins over everything.
        code('1c', 1, { created_at: t(10, 10_000), mark_for_deletion: true }),
        code('1c', 1, { created_at: t(10, 11_000), is_used: true, status: 'i', modified_at: t(1) }),
        code('2a', 2, { created_at: t(30) }, 'superseded'),
        code('2b', 2, { created_at: t(5) }),
        code('3', 3, {
          created_at: t(30),
          status: 'p',
          is_deactivated: true,
          mark_for_deletion: true,
          deleted_at: t(3, 999_999),
        }),
        code('4', 4, { created_at: t(30) }),
        code('5', 5, { created_at: t(30) }),
        code('6', 6, { created_at: t(2, 250_000), days_to_expire: 7 }),
        code('7', 7, { created_at: t(2), days_to_expire: 7 }),
        code('8', 8, { created_at: t(2), days_to_expire: 3 }),
        code('10', 10, { created_at: t(30) }),
        code('12a', 12, { created_at: t(9) }),
        code('12b', 12, { created_at: t(9) }),
      ]
      await seed.insert(seed.codes, c)
      ;({ batches, skipped } = await readAll(
        djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }),
      ))
    }, 60_000)
    afterAll(async () => {
      await seed?.close()
    })
    const get = (name: string) => batches.find((b) => b.sourceId === ids[name])!
    const ms = (micro: number) => Math.floor(micro / 1000)

    it('several active batches: the newest stays active, older ones are superseded when the next came', () => {
      expect(['1a', '1b', '1c'].map((n) => get(n).status)).toEqual(['superseded', 'superseded', 'active'])
      expect(get('1a').endedAt).toBe(get('1b').createdAt)
      expect(get('1b').endedAt).toBe(get('1c').createdAt)
      expect(get('1c').endedAt).toBeNull()
      expect(get('1a').createdAt).toBe(ms(t(30, 123_456)))
    })

    it('code states: is_used, then mark_for_deletion or p/d, then is_deactivated or i, else active', () => {
      expect(get('1c').codes.map((c) => c.state)).toEqual([
        'active',
        'invalidated',
        'deleted',
        'invalidated',
        'invalidated',
        'deleted',
        'used',
      ])
      expect(get('1b').codes[0]).toMatchObject({ state: 'used', usedAt: ms(t(15, 7)) })
      expect(get('1c').codes[6]!.usedAt).toBe(ms(t(1)))
      expect(
        get('1c')
          .codes.filter((c) => c.state !== 'used')
          .every((c) => c.usedAt === null),
      ).toBe(true)
    })

    it("batch status: 'p'/'d' → deleted, 'i' → disabled, with when they ended", () => {
      expect(get('2a')).toMatchObject({ status: 'deleted', endedAt: get('2b').createdAt })
      expect(get('2a').codes[0]!.state).toBe('deleted')
      expect(get('3')).toMatchObject({ status: 'deleted', endedAt: ms(t(3, 999_999)) })
      expect(get('3').codes[0]!.state).toBe('deleted')
      expect(get('4')).toMatchObject({ status: 'disabled', endedAt: ms(t(4)) })
      expect(get('5')).toMatchObject({ status: 'deleted', endedAt: ms(t(6)) })
      expect(get('10')).toMatchObject({ status: 'deleted', endedAt: ms(t(12)) })
      expect(get('12a')).toMatchObject({ status: 'superseded', endedAt: get('12a').createdAt })
    })

    it('expiry: the instant the seed computed, else the end of expiry_date (UTC), else none', () => {
      expect(get('6').expiresAt).toBe(ms(t(2, 250_000)) + 7 * DAY)
      expect(get('7').expiresAt).toBe(Date.UTC(2030, 1, 1))
      expect(get('8').expiresAt).toBe(ms(t(2)) + 3 * DAY)
      expect(get('1c').expiresAt).toBeNull()
    })

    it('skips a batch with no codes and a batch whose user was deleted', () => {
      expect(batches.find((b) => b.sourceId === ids['9'])).toBeUndefined()
      expect(batches.find((b) => b.sourceId === ids['11'])).toBeUndefined()
      expect(skipped).toEqual([
        {
          row: `django_auth_recovery_codes_recoverycodesbatch ${ids['11']}`,
          reason: 'its user was deleted (user_id is NULL)',
        },
        {
          row: `django_auth_recovery_codes_recoverycodesbatch ${ids['9']}`,
          reason: 'has no codes left (purged)',
        },
      ])
    })

    it('names batches by table and UUID, in one form on SQLite and PostgreSQL', () => {
      expect(get('1a').row).toBe(`django_auth_recovery_codes_recoverycodesbatch ${ids['1a']}`)
      expect(get('1a').sourceId).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      )
    })

    it('maps user ids with the userId option', async () => {
      const { batches: mapped } = await readAll(
        djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1', userId: (id) => `django:${id}` }),
      )
      expect(mapped.map((b) => b.userId)).toEqual(batches.map((b) => `django:${b.userId}`))
    })

    it('passes the checks of rc.importCodes (dry run)', async () => {
      const report = await dryRun(
        djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }),
        IMPORT_CONFIG,
      )
      expect(report.batches.byStatus).toEqual({ active: 6, superseded: 3, disabled: 1, deleted: 4 })
      expect(report.skipped).toHaveLength(2)
    })
  })

  describe(`errors name the row and never a hash, code or key (${dialect})`, () => {
    const random = createPrng(7)
    /** A database with one user, one batch and `codes` codes; `change` then breaks it. */
    async function broken(
      change: (s: SeedDb, ids: { batch: string; codes: string[] }) => Promise<void>,
      prefix?: string,
    ) {
      const seed = await openSeedDb(dialect, { prefix })
      const batch = seedUuid(random)
      const codes = [seedUuid(random), seedUuid(random)]
      const plains = codes.map(() => generateSeedCode(random))
      await seed.insert(seed.users, [userRow(1, us(NOW)), userRow(2, us(NOW))])
      await seed.insert(seed.batches, [batchRow({ id: batch, user_id: 1, created_at: us(NOW) })])
      await seed.insert(
        seed.codes,
        codes.map((id, i) =>
          codeRow({
            id,
            batch_id: batch,
            user_id: 1,
            created_at: us(NOW) + i,
            hash_code: makePassword(plains[i]!, 'salt', 1),
            look_up_hash: makeLookupHash(KEY, plains[i]!),
          }),
        ),
      )
      await change(seed, { batch, codes })
      const hashes = plains.map((p) => makeLookupHash(KEY, p))
      return {
        seed,
        batch,
        codes,
        secrets: [KEY, ...plains, ...plains.map((p) => p.replaceAll('-', '')), ...hashes],
      }
    }
    const codeTable = 'django_auth_recovery_codes_recoverycode'
    const batchTable = 'django_auth_recovery_codes_recoverycodesbatch'

    it.each([
      ['127 hex digits', (h: string) => h.slice(1)],
      ['non-hex', (h: string) => `${h.slice(0, 127)}g`],
      ['empty', () => ''],
      ['hex with a space', (h: string) => ` ${h.slice(1)}`],
    ])('a look_up_hash that is not 128 hex digits (%s)', async (_, corrupt) => {
      const { seed, batch, codes, secrets } = await broken(async (s, ids) => {
        const h = makeLookupHash(KEY, 'x')
        await s.exec(
          `UPDATE "${codeTable}" SET "look_up_hash" = '${corrupt(h)}' WHERE "id" = '${dialect === 'sqlite' ? ids.codes[1]!.replaceAll('-', '') : ids.codes[1]}'`,
        )
      })
      try {
        const e = await readError(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }))
        expectImportInvalid(
          e,
          `${codeTable} ${codes[1]} (batch ${batch})`,
          /look_up_hash is not 128 hex digits/,
          secrets,
        )
      } finally {
        await seed.close()
      }
    })

    it('a code whose batch is missing', async () => {
      const ghost = seedUuid(random)
      const { seed, codes, secrets } = await broken(async (s, ids) => {
        if (dialect === 'sqlite') {
          await s.exec('PRAGMA foreign_keys = OFF')
          await s.exec(
            `UPDATE "${codeTable}" SET "batch_id" = '${ghost.replaceAll('-', '')}' WHERE "id" = '${ids.codes[0]!.replaceAll('-', '')}'`,
          )
        } else {
          // The FK name as Django's schema editor names it (a wrong name fails here).
          const fk = createIndexName('postgres', codeTable, ['batch_id'], `_fk_${batchTable}_id`)
          await s.exec(`ALTER TABLE "${codeTable}" DROP CONSTRAINT "${fk}"`)
          await s.exec(`UPDATE "${codeTable}" SET "batch_id" = '${ghost}' WHERE "id" = '${ids.codes[0]}'`)
        }
      })
      try {
        const e = await readError(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }))
        expectImportInvalid(e, `${codeTable} ${codes[0]} (batch ${ghost})`, /its batch is missing/, secrets)
      } finally {
        await seed.close()
      }
    })

    it('an unknown batch status, and an unknown code status', async () => {
      const { seed, batch, codes, secrets } = await broken(async (s) => {
        await s.exec(`UPDATE "${batchTable}" SET "status" = 'x'`)
      })
      try {
        const e = await readError(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }))
        expectImportInvalid(e, `${batchTable} ${batch}`, /status is not one of 'a', 'i', 'p', 'd'/, secrets)
        await seed.exec(`UPDATE "${batchTable}" SET "status" = 'a'`)
        await seed.exec(`UPDATE "${codeTable}" SET "status" = 'z'`)
        const e2 = await readError(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }))
        const first = [...codes].sort()[0]
        expectImportInvalid(e2, `${codeTable} ${first} (batch ${batch})`, /status is not one of/, secrets)
      } finally {
        await seed.close()
      }
    })

    it('a code of another user than its batch', async () => {
      const { seed, batch, codes, secrets } = await broken(async (s, ids) => {
        const id = dialect === 'sqlite' ? ids.codes[1]!.replaceAll('-', '') : ids.codes[1]
        await s.exec(`UPDATE "${codeTable}" SET "user_id" = 2 WHERE "id" = '${id}'`)
      })
      try {
        const e = await readError(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }))
        expectImportInvalid(
          e,
          `${codeTable} ${codes[1]} (batch ${batch})`,
          /belongs to user 2, its batch to user 1/,
          secrets,
        )
      } finally {
        await seed.close()
      }
    })

    it('a userId option that gives no user id', async () => {
      const { seed, batch, secrets } = await broken(async () => {})
      try {
        const e = await readError(
          djangoRecoveryCodesSource({
            db: seed.db,
            legacyKeyId: 'seed1',
            userId: () => {
              throw new Error('lookup failed')
            },
          }),
        )
        expectImportInvalid(
          e,
          `${batchTable} ${batch}`,
          /the userId option gave no user id for Django user 1/,
          secrets,
        )
      } finally {
        await seed.close()
      }
    })

    if (dialect === 'sqlite') {
      it('an unreadable date (SQLite keeps any text)', async () => {
        const { seed, batch, codes, secrets } = await broken(async (s) => {
          await s.exec(`UPDATE "${batchTable}" SET "created_at" = 'yesterday'`)
        })
        try {
          const e = await readError(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }))
          expectImportInvalid(
            e,
            `${batchTable} ${batch}`,
            /created_at is not a Django date and time/,
            secrets,
          )
          await seed.exec(`UPDATE "${batchTable}" SET "created_at" = '2025-02-30 10:00:00'`)
          const e2 = await readError(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }))
          expectImportInvalid(
            e2,
            `${batchTable} ${batch}`,
            /created_at is not a valid date and time/,
            secrets,
          )
          await seed.exec(
            `UPDATE "${batchTable}" SET "created_at" = '2025-02-03 10:00:00', "expiry_date" = '2025-13-01'`,
          )
          const e3 = await readError(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }))
          expectImportInvalid(e3, `${batchTable} ${batch}`, /expiry_date is not a valid date/, secrets)
          await seed.exec(`UPDATE "${batchTable}" SET "expiry_date" = NULL`)
          await seed.exec(`UPDATE "${codeTable}" SET "is_used" = 'yes'`)
          const e4 = await readError(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }))
          expectImportInvalid(
            e4,
            `${codeTable} ${[...codes].sort()[0]} (batch ${batch})`,
            /is_used is not a boolean/,
            secrets,
          )
        } finally {
          await seed.close()
        }
      })
    }

    it('reads tables under another prefix; a wrong prefix is a database error, not a skip', async () => {
      const { seed } = await broken(async () => {}, 'seed_')
      try {
        const { batches } = await readAll(
          djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1', tablePrefix: 'seed_' }),
        )
        expect(batches).toHaveLength(1)
        expect(batches[0]!.row).toMatch(/^seed_recoverycodesbatch /)
        await expect(
          readAll(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' })),
        ).rejects.toThrow()
      } finally {
        await seed.close()
      }
    })

    it('rejects unusable options at once, without quoting them', () => {
      const db = {} as never
      const bad = (o: object) => () => djangoRecoveryCodesSource({ db, legacyKeyId: 'seed1', ...o } as never)
      expect(bad({})).toThrow(/db must be a Kysely instance/)
      const kysely = { selectFrom() {} } as never
      const opts = (o: object) => () =>
        djangoRecoveryCodesSource({ db: kysely, legacyKeyId: 'seed1', ...o } as never)
      expect(opts({ legacyKeyId: 'has space' })).toThrow(/legacyKeyId must match/)
      expect(opts({ tablePrefix: 'x"; drop table y; --' })).toThrow(
        /tablePrefix must be a plain SQL identifier/,
      )
      expect(opts({ pageSize: 0 })).toThrow(/pageSize must be an integer from 1 to 10000/)
      expect(opts({ pageSize: 1.5 })).toThrow(/pageSize/)
      expect(opts({ userId: 'x' })).toThrow(/userId must be a function/)
      const e = (() => {
        try {
          opts({ legacyKeyId: KEY })()
        } catch (err) {
          return err as Error & { code: string }
        }
      })()!
      expect(e.code).toBe('INVALID_INPUT')
      expectNoSecret(e.message, [KEY])
    })
  })
}

function isoDay(micro: number): string {
  return new Date(Math.floor(micro / 1000)).toISOString().slice(0, 10)
}
