/**
 * From the other system's rows to a recovery login here, on the memory store: import through
 * `rc.importCodes`, then `rc.redeem` every code the builders returned. Live codes redeem exactly
 * once, dead ones never. (`seed-import.e2e.test.ts` does the same at scale on the Kysely store.)
 */
import { randomBytes } from 'node:crypto'
import { symmetricEncrypt } from 'better-auth/crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { betterAuthSource, djangoRecoveryCodesSource, fortifySource } from '../src/index.ts'
import { buildDjangoSeed, createPrng, type DjangoSeed } from './fixtures/django-seed.ts'
import { fortifyCode, fortifyEncrypt } from './fixtures/laravel.ts'
import { importService } from './fixtures/read.ts'
import { openSeedDb, type SeedDb } from './fixtures/seed-db.ts'

const KEY = 'test-only DJANGO_AUTH_RECOVERY_KEY (e2e)'
const NOW = Date.now()

describe('import, then redeem', () => {
  let seed: SeedDb
  let built: DjangoSeed
  beforeAll(async () => {
    seed = await openSeedDb('sqlite')
    built = await buildDjangoSeed(seed, {
      users: 4,
      codesPerBatch: 6,
      batchesPerUser: 2,
      used: 1 / 6,
      deactivated: 1 / 6,
      markedForDeletion: 1 / 6,
      key: KEY,
      now: NOW,
    })
  })
  afterAll(async () => {
    await seed?.close()
  })

  it('django-auth-recovery-codes: live codes once, as printed; used, invalidated, deleted and old ones never', async () => {
    const rc = importService({
      legacyDigests: [{ id: 'seed1', scheme: 'django-auth-recovery-codes', secret: KEY }],
    })
    const report = await rc.importCodes(djangoRecoveryCodesSource({ db: seed.db, legacyKeyId: 'seed1' }))
    expect(report.batches.imported).toBe(8)
    for (const c of built.byState.active) {
      expect(await rc.redeem({ userId: c.userId, code: c.code })).toMatchObject({ ok: true })
    }
    const [first] = built.byState.active
    expect(await rc.redeem({ userId: first!.userId, code: first!.code })).toMatchObject({ ok: false })
    for (const state of ['used', 'invalidated', 'deleted'] as const) {
      const c = built.byState[state].find((x) => x.userId !== first!.userId)!
      expect(await rc.redeem({ userId: c.userId, code: c.code }), state).toMatchObject({ ok: false })
    }
  })

  it('better-auth and Fortify: every listed code redeems once', async () => {
    const random = createPrng(5)
    const secret = 'test-only better-auth secret for e2e, long enough'
    const appKey = randomBytes(32)
    const baCodes = ['abcde-12345', 'ABCDE-67890']
    const ftCodes = [fortifyCode(random), fortifyCode(random)]
    const rc = importService({ formats: ['better-auth', 'fortify'] })
    await rc.importCodes(
      betterAuthSource({
        rows: [
          {
            userId: 'ba-1',
            backupCodes: await symmetricEncrypt({ key: secret, data: JSON.stringify(baCodes) }),
          },
        ],
        secret,
        now: NOW,
      }),
    )
    await rc.importCodes(
      fortifySource({
        rows: [{ userId: 'ft-1', recoveryCodes: fortifyEncrypt(ftCodes, appKey) }],
        appKey: `base64:${appKey.toString('base64')}`,
        now: NOW,
      }),
    )
    const pairs: [string, string][] = [
      ...baCodes.map((c): [string, string] => ['ba-1', c]),
      ...ftCodes.map((c): [string, string] => ['ft-1', c]),
    ]
    for (const [userId, code] of pairs) {
      expect(await rc.redeem({ userId, code })).toMatchObject({ ok: true })
      expect(await rc.redeem({ userId, code })).toMatchObject({ ok: false })
    }
  })
})
