/** Every reader takes its options as given: frozen inputs work and are never changed. */
import { randomBytes } from 'node:crypto'
import { symmetricEncrypt } from 'better-auth/crypto'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { describe, expect, it } from 'vitest'
import { betterAuthSource, djangoRecoveryCodesSource, fortifySource, LARAVEL_CIPHERS } from '../src/index.ts'
import { fortifyEncrypt } from './fixtures/laravel.ts'
import { readAll } from './fixtures/read.ts'

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o)
    for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}

describe('options are never mutated', () => {
  it('better-auth and Fortify read frozen options and rows', async () => {
    const secret = 'frozen-options test secret, long enough for it'
    const ba = deepFreeze({
      rows: [{ userId: 'u', backupCodes: await symmetricEncrypt({ key: secret, data: '["abcde-fghij"]' }) }],
      secret: { secrets: [{ version: 1, value: 'unused' }], legacySecret: secret },
      now: 1,
    })
    const before = JSON.stringify(ba)
    expect((await readAll(betterAuthSource(ba))).batches).toHaveLength(1)
    expect(JSON.stringify(ba)).toBe(before)
    const key = randomBytes(32)
    const ft = deepFreeze({
      rows: [{ userId: 1, recoveryCodes: fortifyEncrypt([`${'a'.repeat(10)}-${'b'.repeat(10)}`], key) }],
      appKey: `base64:${key.toString('base64')}`,
      previousKeys: [],
      now: 1,
    })
    expect((await readAll(fortifySource(ft))).batches).toHaveLength(1)
  })

  it('django-auth-recovery-codes takes frozen options; the cipher table is frozen', () => {
    const db = new Kysely({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
    expect(djangoRecoveryCodesSource(Object.freeze({ db, legacyKeyId: 'k', pageSize: 3 })).name).toBe(
      'django-auth-recovery-codes',
    )
    expect(Object.isFrozen(LARAVEL_CIPHERS['aes-256-cbc'])).toBe(true)
  })
})
