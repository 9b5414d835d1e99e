/**
 * The Laravel Fortify reader: a hand-verified payload (made with the OpenSSL command line, not
 * with this code), payloads from the Encrypter rebuilt in `fixtures/laravel.ts`, every way a row
 * can be wrong, and the database and file helpers.
 */
import { createDecipheriv, createHmac, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'
import { type FortifyRow, fortifyRowsFromDb, fortifySource, readRowsFile } from '../src/index.ts'
import { createPrng } from './fixtures/django-seed.ts'
import {
  appKeyBytes,
  encodePayload,
  fortifyCode,
  fortifyEncrypt,
  laravelEncrypt,
  payloadOf,
  phpJsonEncode,
  phpSerializeString,
} from './fixtures/laravel.ts'
import { dryRun, expectImportInvalid, readAll, readError } from './fixtures/read.ts'

const NOW = Date.UTC(2025, 9, 6)

/*
 * Hand-verified vector, made with OpenSSL 3.0 and coreutils only (the same steps as Laravel's
 * Encrypter::encrypt, nothing from this package):
 *
 *   KEY_HEX=$(printf '%s' 'fortify-vector-key-32-bytes!!!!!' | xxd -p -c 64)
 *   IV_HEX=000102030405060708090a0b0c0d0e0f
 *   J='["a1B2c3D4e5-F6g7H8i9J0","K1l2M3n4O5-p6Q7r8S9t0"]'
 *   PT="s:$(printf '%s' "$J" | wc -c):\"$J\";"                      # s:49:"[...]";
 *   VALUE=$(printf '%s' "$PT" | openssl enc -aes-256-cbc -K $KEY_HEX -iv $IV_HEX -base64 -A)
 *   IV_B64=$(printf '%s' $IV_HEX | xxd -r -p | base64 -w0)
 *   MAC=$(printf '%s%s' "$IV_B64" "$VALUE" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$KEY_HEX | awk '{print $NF}')
 *   printf '%s' "{\"iv\":\"$IV_B64\",\"value\":\"$VALUE\",\"mac\":\"$MAC\",\"tag\":\"\"}" | base64 -w0
 *
 * APP_KEY = 'base64:' + base64('fortify-vector-key-32-bytes!!!!!').
 */
const VECTOR_APP_KEY = 'base64:Zm9ydGlmeS12ZWN0b3Ita2V5LTMyLWJ5dGVzISEhISE='
const VECTOR_IV = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex')
const VECTOR_CODES = ['a1B2c3D4e5-F6g7H8i9J0', 'K1l2M3n4O5-p6Q7r8S9t0']
const VECTOR =
  'eyJpdiI6IkFBRUNBd1FGQmdjSUNRb0xEQTBPRHc9PSIsInZhbHVlIjoiQm1OcUJ1cldrVUtvY2pyR3RIT2h2K3RkWWFNU2xSR1JOdy9qcjQ1N2Z1UTZLMEdPYnVxYnB1ckN4Q0NmWVJ2ck8zNmc1TDByZDRDbjhwdVJDM2RuVWc9PSIsIm1hYyI6Ijg3YjRkZjdjNDJhODg3MzNlNTZjY2ExM2ViZDAwODc1MGZmOWQ3MjZmYzRiNDI5YTVmOTdhZTRiYzFmNjhiZWYiLCJ0YWciOiIifQ=='

const APP_KEY = `base64:${randomBytes(32).toString('base64')}`
const KEY = appKeyBytes(APP_KEY)
const random = createPrng(11)
const codes = (n = 8) => Array.from({ length: n }, () => fortifyCode(random))
const source = (rows: unknown[], o: object = {}) =>
  fortifySource({ rows: rows as FortifyRow[], appKey: APP_KEY, now: NOW, ...o })
/** Everything that must never appear in a message. */
const secrets = (...values: string[]) => [APP_KEY, APP_KEY.slice(7), KEY.toString('hex'), ...values]

describe('the hand-verified vector', () => {
  it('decrypts to its codes', async () => {
    const { batches } = await readAll(
      fortifySource({ rows: [{ userId: 1, recoveryCodes: VECTOR }], appKey: VECTOR_APP_KEY, now: NOW }),
    )
    expect(batches).toHaveLength(1)
    expect(batches[0]!.codes.map((c) => c.plaintext)).toEqual(VECTOR_CODES)
  })

  it('is what the fixture Encrypter writes for the same key and IV', () => {
    expect(fortifyEncrypt(VECTOR_CODES, appKeyBytes(VECTOR_APP_KEY), { iv: VECTOR_IV })).toBe(VECTOR)
  })

  it('fails with any other key, naming the user', async () => {
    const e = await readError(source([{ userId: 7, recoveryCodes: VECTOR }]))
    expectImportInvalid(
      e,
      'users user 7',
      /MAC does not verify with the given APP_KEY/,
      secrets(VECTOR, ...VECTOR_CODES),
    )
  })
})

describe('rows', () => {
  it('each user one active batch of unused plaintext codes, in row order', async () => {
    const a = codes()
    const b = codes()
    const { batches, skipped } = await readAll(
      source([
        { userId: 3, recoveryCodes: fortifyEncrypt(a, KEY) },
        { userId: 'u-1', recoveryCodes: fortifyEncrypt(b, KEY) },
        { userId: 9, recoveryCodes: null },
        { userId: 10, recoveryCodes: fortifyEncrypt([], KEY) },
      ]),
    )
    expect(batches).toEqual([
      {
        sourceId: '3',
        row: 'users user 3',
        userId: '3',
        createdAt: NOW,
        expiresAt: null,
        status: 'active',
        endedAt: null,
        codes: a.map((plaintext, i) => ({ sourceId: String(i), state: 'active', usedAt: null, plaintext })),
      },
      expect.objectContaining({ sourceId: 'u-1', userId: 'u-1', codes: expect.any(Array) }),
    ])
    expect(batches[1]!.codes.map((c) => c.plaintext)).toEqual(b)
    expect(skipped).toEqual([
      { row: 'users user 9', reason: 'has no recovery codes (recoveryCodes is empty)' },
      { row: 'users user 10', reason: 'has no unused codes left' },
    ])
  })

  it('previous keys (APP_PREVIOUS_KEYS), a raw-text key, AES-128-CBC and the GCM ciphers', async () => {
    const old = randomBytes(32)
    const c = codes(2)
    const rotated = await readAll(
      source([{ userId: 1, recoveryCodes: fortifyEncrypt(c, old) }], {
        previousKeys: [`base64:${randomBytes(32).toString('base64')}`, `base64:${old.toString('base64')}`],
      }),
    )
    expect(rotated.batches[0]!.codes.map((x) => x.plaintext)).toEqual(c)
    const raw = 'this-raw-app-key-is-32-bytes-ok!'
    const plain = await readAll(
      fortifySource({
        rows: [{ userId: 1, recoveryCodes: fortifyEncrypt(c, Buffer.from(raw)) }],
        appKey: raw,
        now: NOW,
      }),
    )
    expect(plain.batches[0]!.codes.map((x) => x.plaintext)).toEqual(c)
    for (const cipher of ['aes-128-cbc', 'aes-128-gcm', 'aes-256-gcm'] as const) {
      const key = randomBytes(cipher.startsWith('aes-128') ? 16 : 32)
      const { batches } = await readAll(
        fortifySource({
          rows: [{ userId: 1, recoveryCodes: fortifyEncrypt(c, key, { cipher }) }],
          appKey: `base64:${key.toString('base64')}`,
          cipher,
          now: NOW,
        }),
      )
      expect(
        batches[0]!.codes.map((x) => x.plaintext),
        cipher,
      ).toEqual(c)
    }
  })

  it('counts the bytes of N, not the characters (a non-ASCII code)', async () => {
    const json = phpJsonEncode(['é-ü'])
    expect(json).toBe('["\\u00e9-\\u00fc"]')
    const raw = '["é-ü"]' // json_encode with JSON_UNESCAPED_UNICODE: 2 bytes per letter
    const ok = await readAll(
      source([{ userId: 1, recoveryCodes: laravelEncrypt(phpSerializeString(raw), KEY) }]),
    )
    expect(ok.batches[0]!.codes[0]!.plaintext).toBe('é-ü')
    const e = await readError(
      source([{ userId: 1, recoveryCodes: laravelEncrypt(`s:${raw.length}:"${raw}";`, KEY) }]),
    )
    expectImportInvalid(e, 'users user 1', /PHP-serialized string/, secrets('é-ü'))
  })

  it('passes the checks of rc.importCodes (dry run) as native codes of the fortify format', async () => {
    const rows = Array.from({ length: 5 }, (_, i) => ({
      userId: i + 1,
      recoveryCodes: fortifyEncrypt(codes(), KEY),
    }))
    const report = await dryRun(source(rows), { formats: ['fortify'] })
    expect(report.batches.read).toBe(5)
    expect(report.codes).toMatchObject({ read: 40, native: 40, legacy: 0 })
    expect(report.codes.byState.active).toBe(40)
  })
})

describe('bad rows: IMPORT_INVALID naming the user, never a code, payload or key', () => {
  const c = codes(2)
  const good = fortifyEncrypt(c, KEY)
  const p = payloadOf(good)
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'a' ? 'b' : 'a') + s.slice(i + 1)
  const serializedWith = (plaintext: string) => laravelEncrypt(plaintext, KEY)
  const cases: [string, unknown, RegExp][] = [
    ['a wrong APP_KEY', fortifyEncrypt(c, randomBytes(32)), /MAC does not verify with the given APP_KEY/],
    ['a tampered MAC', encodePayload({ ...p, mac: flip(p.mac, 10) }), /MAC does not verify/],
    ['a tampered value', encodePayload({ ...p, value: flip(p.value, 3) }), /MAC does not verify/],
    ['a tampered IV', encodePayload({ ...p, iv: flip(p.iv, 2) }), /MAC does not verify/],
    ['an upper-case MAC', encodePayload({ ...p, mac: p.mac.toUpperCase() }), /has no hex HMAC-SHA256 mac/],
    ['a tag under a CBC cipher', encodePayload({ ...p, tag: 'AAAA' }), /carries an AEAD tag/],
    ['a short IV', encodePayload({ ...p, iv: 'AAAA' }), /has no 16-byte IV for aes-256-cbc/],
    ['no mac field', encodePayload({ iv: p.iv, value: p.value }), /is not a Laravel encrypted payload/],
    ['a numeric iv', encodePayload({ ...p, iv: 1 }), /is not a Laravel encrypted payload/],
    ['not base64', `${good}!`, /is not a Laravel encrypted payload/],
    [
      'base64 of something else',
      Buffer.from('hello').toString('base64'),
      /is not a Laravel encrypted payload/,
    ],
    ['a number', 42, /recoveryCodes is not text/],
    ['N one too many', serializedWith(`s:50:"${phpJsonEncode(c)}";`), /PHP-serialized string/],
    [
      'N one too few',
      serializedWith(`s:${phpJsonEncode(c).length - 1}:"${phpJsonEncode(c)}";`),
      /PHP-serialized string/,
    ],
    [
      'a leading zero in N',
      serializedWith(`s:0${phpJsonEncode(c).length}:"${phpJsonEncode(c)}";`),
      /PHP-serialized/,
    ],
    [
      'data after the string',
      serializedWith(`${phpSerializeString(phpJsonEncode(c))}i:1;`),
      /PHP-serialized/,
    ],
    [
      'no closing semicolon',
      serializedWith(phpSerializeString(phpJsonEncode(c)).slice(0, -1)),
      /PHP-serialized/,
    ],
    ['a serialized array', serializedWith(`a:1:{i:0;${phpSerializeString(c[0]!)}}`), /PHP-serialized/],
    ['an object', serializedWith('O:8:"stdClass":0:{}'), /PHP-serialized/],
    ['encryptString (not serialized)', serializedWith(phpJsonEncode(c)), /PHP-serialized/],
    [
      'JSON that is not a list',
      serializedWith(phpSerializeString('{"a":"b"}')),
      /other than a JSON array of codes/,
    ],
    ['a list with a number', serializedWith(phpSerializeString('["x",1]')), /code 2 is not a string/],
    ['not JSON', serializedWith(phpSerializeString(c.join(','))), /other than a JSON array of codes/],
    [
      'invalid UTF-8',
      laravelEncrypt(Buffer.from([0x73, 0x3a, 0x31, 0x3a, 0x22, 0xff, 0x22, 0x3b]), KEY),
      /other than a JSON array/,
    ],
  ]
  it.each(cases)('%s', async (_, value, what) => {
    const e = await readError(
      source([
        { userId: 5, recoveryCodes: fortifyEncrypt(codes(), KEY) },
        { userId: 42, recoveryCodes: value },
      ]),
    )
    expectImportInvalid(e, 'users user 42', what, secrets(good, String(value), ...c, p.value, p.mac))
  })

  it('a ciphertext that does not decrypt although its MAC verifies (bad padding)', async () => {
    // Random blocks whose last block does not unpad under KEY (about 255 in 256 do).
    let iv: Buffer
    let data: Buffer
    do {
      iv = randomBytes(16)
      data = randomBytes(32)
    } while (unpads(iv, data))
    const ivB64 = iv.toString('base64')
    const value = data.toString('base64')
    const mac = createHmac('sha256', KEY)
      .update(ivB64 + value)
      .digest('hex')
    const e = await readError(
      source([{ userId: 42, recoveryCodes: encodePayload({ iv: ivB64, value, mac, tag: '' }) }]),
    )
    expectImportInvalid(
      e,
      'users user 42',
      /does not decrypt \(bad padding\) although its MAC verifies/,
      secrets(value),
    )
  })

  it('a tampered GCM tag', async () => {
    const key = randomBytes(32)
    const q = payloadOf(fortifyEncrypt(c, key, { cipher: 'aes-256-gcm' }))
    const e = await readError(
      fortifySource({
        rows: [
          { userId: 8, recoveryCodes: encodePayload({ ...q, tag: Buffer.alloc(16).toString('base64') }) },
        ],
        appKey: `base64:${key.toString('base64')}`,
        cipher: 'aes-256-gcm',
        now: NOW,
      }),
    )
    expectImportInvalid(e, 'users user 8', /does not decrypt with the given APP_KEY/, [
      key.toString('base64'),
      ...c,
    ])
  })

  it('a user listed twice, a row without a user id, a row that is not an object', async () => {
    const twice = await readError(
      source([
        { userId: 4, recoveryCodes: good },
        { userId: 5, recoveryCodes: good },
        { userId: '4', recoveryCodes: good },
      ]),
    )
    expectImportInvalid(twice, 'users user 4', /appears twice \(rows 1 and 3\)/, secrets(good, ...c))
    const noUser = await readError(source([{ recoveryCodes: good }]))
    expectImportInvalid(noUser, 'users row 1', /has no userId/, secrets(good))
    const empty = await readError(source([{ userId: '', recoveryCodes: good }]))
    expectImportInvalid(empty, 'users row 1', /has no userId/)
    const notObject = await readError(source([{ userId: 1, recoveryCodes: good }, 'x']))
    expectImportInvalid(notObject, 'users row 2', /is not an object/)
    const evil = await readError(source([{ userId: 'a\nforged: line', recoveryCodes: 1 }]))
    expect(evil.message.startsWith('users user a?forged: line: ')).toBe(true)
  })

  it('batches read before a bad row stay valid (a re-run resumes)', async () => {
    const yielded: string[] = []
    const s = source([
      { userId: 1, recoveryCodes: good },
      { userId: 2, recoveryCodes: 'garbage' },
    ])
    await expect(
      (async () => {
        for await (const b of s.batches(() => {})) yielded.push(b.userId)
      })(),
    ).rejects.toMatchObject({ code: 'IMPORT_INVALID' })
    expect(yielded).toEqual(['1'])
  })
})

describe('options', () => {
  it('rejects unusable options at once, never quoting a key', () => {
    const make = (o: object) => () => fortifySource({ rows: [], appKey: APP_KEY, now: NOW, ...o } as never)
    expect(make({ appKey: 'base64:AAAA' })).toThrow(/appKey must be 32 bytes for aes-256-cbc/)
    expect(make({ appKey: 'short' })).toThrow(/appKey must be 32 bytes/)
    expect(make({ appKey: 'base64:not base64!' })).toThrow(/appKey is not valid base64/)
    expect(make({ appKey: '' })).toThrow(/appKey must be the APP_KEY text/)
    expect(make({ cipher: 'aes-256-ecb' })).toThrow(/cipher must be one of/)
    expect(make({ cipher: 'aes-128-cbc' })).toThrow(/appKey must be 16 bytes for aes-128-cbc/)
    expect(make({ previousKeys: ['base64:AAAA'] })).toThrow(/previousKeys.0 must be 32 bytes/)
    expect(make({ now: Number.NaN })).toThrow(/now must be/)
    expect(make({ rows: 5 })).toThrow(/rows must be an array, an iterable or an async iterable/)
    try {
      make({ appKey: 'base64:c2VjcmV0LWtleS1vZi10aGUtd3Jvbmctc2l6ZQ==' })()
    } catch (e) {
      expect((e as { code: string }).code).toBe('INVALID_INPUT')
      expect((e as Error).message).not.toContain('c2VjcmV0')
    }
  })
})

describe('from a Laravel database and from an export file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rc-fortify-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('fortifyRowsFromDb: users with codes, in id order, a page at a time, re-iterable', async () => {
    const sqlite = new Database(':memory:')
    sqlite.exec(
      'CREATE TABLE "users" ("id" integer primary key autoincrement not null, "name" varchar not null, "two_factor_secret" text, "two_factor_recovery_codes" text, "two_factor_confirmed_at" datetime)',
    )
    const insert = sqlite.prepare('INSERT INTO users (id, name, two_factor_recovery_codes) VALUES (?, ?, ?)')
    const expected: string[][] = []
    for (let id = 1; id <= 7; id++) {
      const cs = codes()
      if (id !== 4) expected.push(cs)
      insert.run(id * 10, `user ${id}`, id === 4 ? null : fortifyEncrypt(cs, KEY))
    }
    const db = new Kysely({ dialect: new SqliteDialect({ database: sqlite }) })
    const s = fortifySource({ rows: fortifyRowsFromDb(db, { pageSize: 2 }), appKey: APP_KEY, now: NOW })
    for (let run = 0; run < 2; run++) {
      const { batches, skipped } = await readAll(s)
      expect(batches.map((b) => b.userId)).toEqual(['10', '20', '30', '50', '60', '70'])
      expect(batches.map((b) => b.codes.map((x) => x.plaintext))).toEqual(expected)
      expect(skipped).toEqual([])
    }
    expect(() => fortifyRowsFromDb(db, { table: 'users; drop table users' })).toThrow(
      /table must be a plain SQL identifier/,
    )
    expect(() => fortifyRowsFromDb(db, { recoveryCodesColumn: 'a as b' })).toThrow(
      /recoveryCodesColumn must be a plain/,
    )
    await db.destroy()
  })

  it('readRowsFile: a CSV dump of the users table, its columns renamed', async () => {
    const a = codes()
    const b = codes()
    const file = join(dir, 'users.csv')
    writeFileSync(
      file,
      `id,two_factor_recovery_codes,name\n1,${fortifyEncrypt(a, KEY)},"Ann, A."\n2,,Bob\n3,${fortifyEncrypt(b, KEY)},Cy\n`,
    )
    const rows = await readRowsFile(file, {
      columns: { id: 'userId', two_factor_recovery_codes: 'recoveryCodes' },
    })
    const { batches, skipped } = await readAll(fortifySource({ rows, appKey: APP_KEY, now: NOW }))
    expect(batches.map((x) => [x.userId, x.codes.map((y) => y.plaintext)])).toEqual([
      ['1', a],
      ['3', b],
    ])
    expect(skipped).toEqual([
      { row: 'users user 2', reason: 'has no recovery codes (recoveryCodes is empty)' },
    ])
  })
})

function unpads(iv: Buffer, data: Buffer): boolean {
  try {
    const d = createDecipheriv('aes-256-cbc', KEY, iv)
    d.update(data)
    d.final()
    return true
  } catch {
    return false
  }
}
