/**
 * The fixtures reproduce the seed's hashes and Django's schema names exactly, checked against
 * vectors computed independently with python3 (hashlib / hmac: the same primitives Django and the
 * seed call), and the reader's value parsing and expiry rule.
 */
import { djangoLookupHashDigest, legacyDigest } from '@recovery-codes/core'
import { describe, expect, it } from 'vitest'
import { expiryOf } from '../src/django.ts'
import { readBool, readDate, readDatetime } from '../src/django-values.ts'
import { authUserModel, codeModel, createIndexName, createModelSql } from './fixtures/django-schema.ts'
import {
  createPrng,
  generateSeedCode,
  makeLookupHash,
  makePassword,
  SAFE_ALPHABET,
} from './fixtures/django-seed.ts'
import { djangoDatetimeText } from './fixtures/seed-db.ts'

const KEY = 'test-only DJANGO_AUTH_RECOVERY_KEY'
/** The generator docstring's example code. */
const CODE = '7G2HJK-9M4PQR-AB2DFG-3HJKLM-6N7PQR-8T2VWX'

// python3 -c "import hmac,hashlib;print(hmac.new('test-only DJANGO_AUTH_RECOVERY_KEY'.encode(),'7G2HJK-9M4PQR-AB2DFG-3HJKLM-6N7PQR-8T2VWX'.replace('-','').strip().encode(),hashlib.sha3_512).hexdigest())"
const LOOKUP_HASH =
  '5ab6563aa0e64d5393bf06d463eb9ccbef12a46813c9010a7bdb383508599253f1143f1e680b95bc43f7c510c940a2df66d84bc1a43ff49194f1b43eaac15afc'

// python3 -c "import hashlib,base64;c='7G2HJK-9M4PQR-AB2DFG-3HJKLM-6N7PQR-8T2VWX'.replace('-','').strip();print('pbkdf2_sha256\$1000000\$Q2x4dYm9Rk3bT7wLp0sVzA\$'+base64.b64encode(hashlib.pbkdf2_hmac('sha256',c.encode(),b'Q2x4dYm9Rk3bT7wLp0sVzA',1000000)).decode())"
const HASH_CODE_1M =
  'pbkdf2_sha256$1000000$Q2x4dYm9Rk3bT7wLp0sVzA$4JVMt6v7Vn/sboCJntey94AlO6YEHT10uOUji3HrMBI='
// python3 -c "import hashlib,base64;c='7G2HJK-9M4PQR-AB2DFG-3HJKLM-6N7PQR-8T2VWX'.replace('-','').strip();print('pbkdf2_sha256\$1\$Q2x4dYm9Rk3bT7wLp0sVzA\$'+base64.b64encode(hashlib.pbkdf2_hmac('sha256',c.encode(),b'Q2x4dYm9Rk3bT7wLp0sVzA',1)).decode())"
const HASH_CODE_1 = 'pbkdf2_sha256$1$Q2x4dYm9Rk3bT7wLp0sVzA$0YI0rBCV440ROtHkfZenthbIIbNj05sUUYCRxfWCpyU='
// python3 -c "import hashlib,base64;print('pbkdf2_sha256\$1000000\$seasalt\$'+base64.b64encode(hashlib.pbkdf2_hmac('sha256','lètmein'.encode(),b'seasalt',1000000)).decode())"
// (also the value Django 5.2's own hasher tests expect for make_password('lètmein', 'seasalt', 'pbkdf2_sha256'))
const DJANGO_TEST_VECTOR = 'pbkdf2_sha256$1000000$seasalt$r1uLUxoxpP2Ued/qxvmje7UH9PUJBkRrvf9gGPL7Cps='

describe('seed hashes, against python3 vectors', () => {
  it('look_up_hash = hex HMAC-SHA3-512(utf8 key, code without dashes, stripped)', () => {
    expect(makeLookupHash(KEY, CODE)).toBe(LOOKUP_HASH)
    expect(makeLookupHash(KEY, ` ${CODE.replaceAll('-', '')} `)).toBe(LOOKUP_HASH)
  })

  it("core's legacy digest (what redeem computes) is the first 32 bytes of that look_up_hash", () => {
    const key = {
      id: 'seed1',
      scheme: 'django-auth-recovery-codes' as const,
      secret: new TextEncoder().encode(KEY),
    }
    const expected = LOOKUP_HASH.slice(0, 64)
    expect(Buffer.from(djangoLookupHashDigest(LOOKUP_HASH)!).toString('hex')).toBe(expected)
    for (const typed of [CODE, CODE.replaceAll('-', ''), CODE.replaceAll('-', ' '), ` ${CODE}\n`]) {
      expect(Buffer.from(legacyDigest(key, typed)!).toString('hex')).toBe(expected)
    }
  })

  it("hash_code = Django's make_password with PBKDF2PasswordHasher (1,000,000 and 1 iterations)", () => {
    expect(makePassword('lètmein', 'seasalt', 1_000_000)).toBe(DJANGO_TEST_VECTOR)
    expect(makePassword(CODE, 'Q2x4dYm9Rk3bT7wLp0sVzA', 1_000_000)).toBe(HASH_CODE_1M)
    expect(makePassword(CODE, 'Q2x4dYm9Rk3bT7wLp0sVzA', 1)).toBe(HASH_CODE_1)
  })

  it("codes as generate_2fa_secure_recovery_code: 6 × 6 over SAFE_ALPHABET (with its doubled 'z')", () => {
    expect(SAFE_ALPHABET).toHaveLength(58)
    expect(new Set(SAFE_ALPHABET).size).toBe(57)
    const random = createPrng(3)
    const codes = Array.from({ length: 2000 }, () => generateSeedCode(random))
    for (const c of codes) expect(c).toMatch(/^[A-HJ-NP-Za-wyz2-9]{6}(-[A-HJ-NP-Za-wyz2-9]{6}){5}$/)
    const all = codes.join('').replaceAll('-', '')
    const count = (ch: string) => all.split(ch).length - 1
    // 'z' is drawn for two of the 58 positions: about twice as often as any other symbol.
    expect(count('z') / count('A')).toBeGreaterThan(1.6)
    expect(count('z') / count('A')).toBeLessThan(2.5)
    expect(all.includes('x')).toBe(false)
  })
})

describe("Django's schema names", () => {
  it('index names as names_digest gives them in real Django databases', () => {
    // Names found in every Django PostgreSQL database (auth and sessions migrations).
    expect(createIndexName('postgres', 'auth_user', ['username'], '_like')).toBe(
      'auth_user_username_6821ab7c_like',
    )
    expect(createIndexName('postgres', 'django_session', ['expire_date'])).toBe(
      'django_session_expire_date_a5c62663',
    )
    expect(createIndexName('postgres', 'auth_user_groups', ['user_id'])).toBe(
      'auth_user_groups_user_id_6a12ed8b',
    )
    expect(createIndexName('postgres', 'django_session', ['session_key'], '_like')).toBe(
      'django_session_session_key_c0390e0f_like',
    )
  })

  it("shortens names past PostgreSQL's 63 characters as _create_index_name does", () => {
    // python3: Django's _create_index_name transcribed, max_length = 63.
    expect(
      createIndexName('postgres', 'django_auth_recovery_codes_recoverycodesbatch', ['status'], '_like'),
    ).toBe('django_auth_recovery_cod_status_13ed2ac1_like')
    expect(
      createIndexName(
        'postgres',
        'django_auth_recovery_codes_recoverycode',
        ['batch_id'],
        '_fk_django_auth_recovery_codes_recoverycodesbatch_id',
      ),
    ).toBe('django_auth_recovery_batch_id_155d596e_fk_django_au')
  })

  it('creates the tables as migrate does', () => {
    const [table, ...rest] = createModelSql(codeModel(), 'sqlite')
    expect(table).toContain('"look_up_hash" varchar(128) NOT NULL UNIQUE')
    expect(table).toContain('"days_to_expire" smallint unsigned NOT NULL CHECK ("days_to_expire" >= 0)')
    expect(table).toContain(
      '"batch_id" char(32) NOT NULL REFERENCES "django_auth_recovery_codes_recoverycodesbatch" ("id") DEFERRABLE INITIALLY DEFERRED',
    )
    expect(table).toContain('CONSTRAINT "unique_user_lookup_hash" UNIQUE ("user_id", "look_up_hash")')
    expect(rest).toContain(
      'CREATE INDEX "user_lookup_idx" ON "django_auth_recovery_codes_recoverycode" ("user_id", "look_up_hash")',
    )
    const pg = createModelSql(codeModel(), 'postgres')
    expect(pg[0]).toContain('"id" uuid NOT NULL PRIMARY KEY')
    expect(pg[0]).toContain('"created_at" timestamp with time zone NOT NULL')
    // Shortened to 63 characters (python3: _create_index_name transcribed, as above).
    expect(pg).toContain(
      'CREATE INDEX "django_auth_recovery_cod_look_up_hash_1ab713ac_like" ON "django_auth_recovery_codes_recoverycode" ("look_up_hash" varchar_pattern_ops)',
    )
    expect(createModelSql(authUserModel('sqlite'), 'sqlite')[0]).toMatch(
      /^CREATE TABLE "auth_user" \("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, .*"date_joined" datetime NOT NULL, "first_name" varchar\(150\) NOT NULL\)$/,
    )
    expect(createModelSql(authUserModel('postgres'), 'postgres')[0]).toContain(
      '"id" integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY',
    )
  })
})

describe('Django values as the drivers return them', () => {
  const fail = (what: string): never => {
    throw new Error(what)
  }

  it("datetimes: SQLite text (with or without microseconds), text with an offset, pg's Date", () => {
    const t = Date.UTC(2025, 9, 6, 12, 34, 56, 789)
    expect(readDatetime('2025-10-06 12:34:56.789123', 'c', fail)).toBe(t)
    expect(readDatetime('2025-10-06 12:34:56.7', 'c', fail)).toBe(t - 89)
    expect(readDatetime('2025-10-06 12:34:56', 'c', fail)).toBe(t - 789)
    expect(readDatetime('2025-10-06T12:34:56.789Z', 'c', fail)).toBe(t)
    expect(readDatetime('2025-10-06 14:34:56.789+02', 'c', fail)).toBe(t)
    expect(readDatetime('2025-10-06 07:04:56.789-05:30', 'c', fail)).toBe(t)
    expect(readDatetime(new Date(t), 'c', fail)).toBe(t)
    expect(readDatetime(null, 'c', fail)).toBeNull()
    for (const bad of [
      '2025-10-06',
      '2025-02-29 00:00:00',
      '2025-10-06 24:00:00',
      'now',
      1759754096789,
      '',
    ]) {
      expect(() => readDatetime(bad, 'created_at', fail)).toThrow(/^created_at is not/)
    }
    expect(() => readDatetime(new Date(Number.NaN), 'c', fail)).toThrow(/not a valid/)
  })

  it("the fixture writes datetimes as Django's str(datetime)", () => {
    expect(djangoDatetimeText(Date.UTC(2025, 0, 2, 3, 4, 5) * 1000)).toBe('2025-01-02 03:04:05')
    expect(djangoDatetimeText(Date.UTC(2025, 0, 2, 3, 4, 5) * 1000 + 42)).toBe('2025-01-02 03:04:05.000042')
  })

  it('dates and booleans', () => {
    expect(readDate('2024-02-29', 'd', fail)).toBe(Date.UTC(2024, 1, 29))
    expect(() => readDate('2023-02-29', 'd', fail)).toThrow(/not a valid date/)
    expect(() => readDate('2023-02-03 00:00:00', 'd', fail)).toThrow(/not a date/)
    expect([1, 0, true, false, 1n, 0n].map((v) => readBool(v, 'b', fail))).toEqual([
      true,
      false,
      true,
      false,
      true,
      false,
    ])
    for (const bad of ['1', 2, null]) expect(() => readBool(bad, 'b', fail)).toThrow(/b is not a boolean/)
  })
})

describe('expiry', () => {
  const DAY = 86_400_000
  const created = Date.UTC(2025, 0, 10, 18, 30)

  it('the instant the seed computed (created + N days) when expiry_date is its day', () => {
    expect(expiryOf(Date.UTC(2025, 0, 17), created, 7)).toBe(created + 7 * DAY)
  })

  it('otherwise valid through the whole of expiry_date (UTC): never earlier than the seed said', () => {
    expect(expiryOf(Date.UTC(2025, 0, 18), created, 7)).toBe(Date.UTC(2025, 0, 19))
    expect(expiryOf(Date.UTC(2025, 0, 17), created, 0)).toBe(Date.UTC(2025, 0, 18))
  })

  it('created + N days without expiry_date; never without either', () => {
    expect(expiryOf(null, created, 3)).toBe(created + 3 * DAY)
    expect(expiryOf(null, created, 0)).toBeNull()
  })
})
