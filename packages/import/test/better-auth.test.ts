/**
 * The better-auth reader, over ciphertexts made by better-auth's own `symmetricEncrypt` (1.7.29,
 * a dev dependency) and backup codes shaped as its generator makes them, so the test proves
 * compatibility with the real thing; plus every way a row can be wrong and the row helpers.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateRandomString, symmetricEncrypt } from 'better-auth/crypto'
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { type BetterAuthRow, betterAuthRowsFromDb, betterAuthSource, readRowsFile } from '../src/index.ts'
import { dryRun, expectImportInvalid, readAll, readError } from './fixtures/read.ts'
import { IS_CI, PG_URL, probePostgres } from './fixtures/seed-db.ts'

const NOW = Date.UTC(2025, 9, 6)
// biome-ignore lint/suspicious/noExplicitAny: better-auth's tables, untyped as the reader sees them
type AnyDb = Kysely<any>
const SECRET = 'test-only better-auth secret, 32+ characters long!'

/** better-auth's `generateBackupCodesFn`: 10 of a-z 0-9 A-Z, as `xxxxx-xxxxx`. */
const backupCodes = (n = 10) =>
  Array.from({ length: n }, () => generateRandomString(10, 'a-z', '0-9', 'A-Z')).map(
    (c) => `${c.slice(0, 5)}-${c.slice(5)}`,
  )
/** What the plugin stores with `storeBackupCodes: 'encrypted'` (its default). */
const encrypt = (codes: unknown, key: Parameters<typeof symmetricEncrypt>[0]['key'] = SECRET) =>
  symmetricEncrypt({ key, data: typeof codes === 'string' ? codes : JSON.stringify(codes) })
const source = (rows: unknown[], o: object = {}) =>
  betterAuthSource({ rows: rows as BetterAuthRow[], secret: SECRET, now: NOW, ...o })

describe('rows encrypted by better-auth', () => {
  it('each row one active batch of its unused codes; empty rows skipped', async () => {
    const a = backupCodes()
    const b = backupCodes(3)
    const { batches, skipped } = await readAll(
      source([
        { userId: 'usr_a', backupCodes: await encrypt(a) },
        { userId: 'usr_b', backupCodes: await encrypt(b) },
        { userId: 'usr_c', backupCodes: null },
        { userId: 'usr_d', backupCodes: await encrypt([]) },
        { userId: 17, backupCodes: await encrypt(a.slice(0, 1)) },
      ]),
    )
    expect(batches[0]).toEqual({
      sourceId: 'usr_a',
      row: 'twoFactor user usr_a',
      userId: 'usr_a',
      createdAt: NOW,
      expiresAt: null,
      status: 'active',
      endedAt: null,
      codes: a.map((plaintext, i) => ({ sourceId: String(i), state: 'active', usedAt: null, plaintext })),
    })
    expect(batches.map((x) => [x.userId, x.codes.length])).toEqual([
      ['usr_a', 10],
      ['usr_b', 3],
      ['17', 1],
    ])
    expect(batches[1]!.codes.map((c) => c.plaintext)).toEqual(b)
    expect(skipped).toEqual([
      { row: 'twoFactor user usr_c', reason: 'has no recovery codes (backupCodes is empty)' },
      { row: 'twoFactor user usr_d', reason: 'has no unused codes left' },
    ])
  })

  it('versioned secrets ($ba$<version>$ envelopes) and bare values under the legacy secret', async () => {
    const config = (current: number) => ({
      keys: new Map([
        [2, 'second secret, version two'],
        [1, 'first secret, version one'],
      ]),
      currentVersion: current,
    })
    const v2 = backupCodes(2)
    const v1 = backupCodes(2)
    const bare = backupCodes(2)
    const rows = [
      { userId: 'u2', backupCodes: await encrypt(v2, config(2)) },
      { userId: 'u1', backupCodes: await encrypt(v1, config(1)) },
      { userId: 'u0', backupCodes: await encrypt(bare, 'the old BETTER_AUTH_SECRET') },
    ]
    expect(rows[0]!.backupCodes.startsWith('$ba$2$')).toBe(true)
    const secret = {
      secrets: [
        { version: 2, value: 'second secret, version two' },
        { version: 1, value: 'first secret, version one' },
      ],
      legacySecret: 'the old BETTER_AUTH_SECRET',
    }
    const { batches } = await readAll(betterAuthSource({ rows, secret, now: NOW }))
    expect(batches.map((b) => b.codes.map((c) => c.plaintext))).toEqual([v2, v1, bare])
    const noLegacy = await readError(
      betterAuthSource({ rows, secret: { secrets: secret.secrets }, now: NOW }),
    )
    expectImportInvalid(noLegacy, 'twoFactor user u0', /unversioned ciphertext and no legacySecret/, [
      ...bare,
      rows[2]!.backupCodes,
    ])
    const missing = await readError(
      betterAuthSource({ rows, secret: { secrets: [secret.secrets[0]!] }, now: NOW }),
    )
    expectImportInvalid(missing, 'twoFactor user u1', /secret version 1, which is not in secrets/)
    const plainSecret = await readError(source(rows))
    expectImportInvalid(
      plainSecret,
      'twoFactor user u2',
      /encrypted under secret version 2: pass the versioned secrets/,
    )
  })

  it("storeBackupCodes: 'plain'", async () => {
    const a = backupCodes(4)
    const { batches } = await readAll(
      source([{ userId: 'p', backupCodes: JSON.stringify(a) }], { storeBackupCodes: 'plain' }),
    )
    expect(batches[0]!.codes.map((c) => c.plaintext)).toEqual(a)
    const e = await readError(
      source([{ userId: 'p', backupCodes: await encrypt(a) }], { storeBackupCodes: 'plain' }),
    )
    expectImportInvalid(e, 'twoFactor user p', /is not a JSON array \(storeBackupCodes: 'encrypted'\?\)/, a)
  })

  it('passes the checks of rc.importCodes (dry run) as native codes of the better-auth format', async () => {
    const rows = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => ({
        userId: `u${i}`,
        backupCodes: await encrypt(backupCodes()),
      })),
    )
    const report = await dryRun(source(rows), { formats: ['better-auth'] })
    expect(report.batches.read).toBe(4)
    expect(report.codes).toMatchObject({ read: 40, native: 40, legacy: 0 })
  })
})

describe('bad rows: IMPORT_INVALID naming the user, never a code, ciphertext or secret', () => {
  it.each([
    [
      'a wrong secret',
      async () => encrypt(backupCodes(), 'another secret entirely, 32+ chars'),
      /does not decrypt with the given secret/,
    ],
    [
      'a tampered ciphertext',
      async () => flip(await encrypt(backupCodes()), 60),
      /does not decrypt with the given secret/,
    ],
    [
      'a tampered nonce',
      async () => flip(await encrypt(backupCodes()), 2),
      /does not decrypt with the given secret/,
    ],
    [
      'a truncated ciphertext',
      async () => (await encrypt(backupCodes())).slice(0, 70),
      /does not decrypt|is not a better-auth ciphertext/,
    ],
    [
      'an odd number of hex digits',
      async () => (await encrypt(backupCodes())).slice(0, -1),
      /is not a better-auth ciphertext/,
    ],
    [
      'not hex',
      async () => `zz${(await encrypt(backupCodes())).slice(2)}`,
      /is not a better-auth ciphertext/,
    ],
    ['too short to hold a nonce and a tag', async () => 'abcdef', /is not a better-auth ciphertext/],
    [
      'plain JSON where encryption is expected',
      async () => JSON.stringify(backupCodes()),
      /is not encrypted \(storeBackupCodes: 'plain'\?\)/,
    ],
    [
      'a ciphertext of text that is not JSON',
      async () => encrypt('not json at all'),
      /decrypts to something other than a JSON array/,
    ],
    [
      'a ciphertext of a JSON object',
      async () => encrypt('{"codes":["a"]}'),
      /other than a JSON array of codes/,
    ],
    ['a list with a non-string', async () => encrypt('["abcde-fghij",null]'), /code 2 is not a string/],
    ['a list with an empty code', async () => encrypt('[""]'), /code 1 is not a string/],
    ['a number', async () => 12, /backupCodes is not text/],
  ])('%s', async (_, make, what) => {
    const value = await make()
    const e = await readError(
      source([
        { userId: 'ok', backupCodes: await encrypt(backupCodes()) },
        { userId: 'usr_x', backupCodes: value },
      ]),
    )
    expectImportInvalid(e, 'twoFactor user usr_x', what, [SECRET, String(value)])
  })

  it('a user listed twice, or without an id', async () => {
    const v = await encrypt(backupCodes())
    const twice = await readError(
      source([
        { userId: 'a', backupCodes: v },
        { userId: 'a', backupCodes: v },
      ]),
    )
    expectImportInvalid(twice, 'twoFactor user a', /appears twice \(rows 1 and 2\)/, [SECRET, v])
    const none = await readError(source([{ userId: null, backupCodes: v }]))
    expectImportInvalid(none, 'twoFactor row 1', /has no userId/)
    const float = await readError(source([{ userId: 1.5, backupCodes: v }]))
    expectImportInvalid(float, 'twoFactor row 1', /has no userId/)
  })

  it('rejects unusable options at once', () => {
    const make = (o: object) => () => betterAuthSource({ rows: [], secret: SECRET, now: NOW, ...o } as never)
    expect(make({ secret: '' })).toThrow(/secret must not be empty/)
    expect(make({ secret: { secrets: [] } })).toThrow(/secret must be BETTER_AUTH_SECRET/)
    expect(make({ secret: { secrets: [{ version: -1, value: 'x' }] } })).toThrow(/secret.secrets.0.version/)
    expect(
      make({
        secret: {
          secrets: [
            { version: 1, value: 'x' },
            { version: 1, value: 'y' },
          ],
        },
      }),
    ).toThrow(/secrets.1.version/)
    expect(make({ secret: { secrets: [{ version: 1, value: '' }] } })).toThrow(/secrets.0.value/)
    expect(make({ storeBackupCodes: 'custom' })).toThrow(/storeBackupCodes must be/)
    expect(make({ now: '2025' })).toThrow(/now must be/)
    expect(make({ rows: undefined })).toThrow(/rows must be/)
  })
})

/** Flips one hex digit of `hex` at `i`. */
function flip(hex: string, i: number): string {
  return hex.slice(0, i) + (hex[i] === '0' ? '1' : '0') + hex.slice(i + 1)
}

describe('rows from a database and from export files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rc-better-auth-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  /** better-auth's `twoFactor` table (Kysely adapter, default field names). */
  async function fill(db: AnyDb, n: number) {
    await db.schema
      .createTable('twoFactor')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('secret', 'text', (c) => c.notNull())
      .addColumn('backupCodes', 'text')
      .addColumn('userId', 'text', (c) => c.notNull())
      .execute()
    const expected: [string, string[]][] = []
    for (let i = 0; i < n; i++) {
      const codes = backupCodes()
      const userId = `user-${String(n - i).padStart(3, '0')}`
      const nulled = i === 3
      if (!nulled) expected.push([userId, codes])
      await db
        .insertInto('twoFactor')
        .values({
          id: `tf-${String(i).padStart(3, '0')}`,
          secret: 'totp',
          backupCodes: nulled ? null : await encrypt(codes),
          userId,
        })
        .execute()
    }
    return expected
  }

  async function check(db: AnyDb) {
    const expected = await fill(db, 9)
    const s = betterAuthSource({ rows: betterAuthRowsFromDb(db, { pageSize: 2 }), secret: SECRET, now: NOW })
    for (let run = 0; run < 2; run++) {
      const { batches, skipped } = await readAll(s)
      // In primary-key (id) order, the NULL row left out by the query.
      expect(batches.map((b) => [b.userId, b.codes.map((c) => c.plaintext)])).toEqual(expected)
      expect(skipped).toEqual([])
    }
  }

  it('betterAuthRowsFromDb on SQLite, a page at a time, re-iterable', async () => {
    const db = new Kysely({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
    await check(db)
    expect(() => betterAuthRowsFromDb(db, { userIdColumn: 'user id' })).toThrow(
      /userIdColumn must be a plain SQL identifier/,
    )
    expect(() => betterAuthRowsFromDb(db, { table: 'a.b.c' })).toThrow(/table must be a plain SQL identifier/)
    expect(() => betterAuthRowsFromDb(db, { pageSize: 0 })).toThrow(/pageSize must be an integer/)
    await db.destroy()
  })

  it('betterAuthRowsFromDb on PostgreSQL (private schema)', async () => {
    const unavailable = await probePostgres()
    if (unavailable !== null) {
      if (IS_CI) throw new Error(`PostgreSQL at ${PG_URL} unreachable under CI=true: ${unavailable}`)
      console.warn(`SKIPPED: PostgreSQL at ${PG_URL} unreachable (${unavailable})`)
      return
    }
    const schema = `rc_import_ba_${process.pid}`
    const admin = new pg.Client({ connectionString: PG_URL })
    await admin.connect()
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await admin.query(`CREATE SCHEMA "${schema}"`)
    const db = new Kysely({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: PG_URL, max: 1, options: `-c search_path=${schema}` }),
      }),
    })
    try {
      await check(db)
    } finally {
      await db.destroy()
      await admin.query(`DROP SCHEMA "${schema}" CASCADE`)
      await admin.end()
    }
  })

  it('readRowsFile: JSON and CSV exports of the twoFactor table', async () => {
    const a = backupCodes()
    const b = backupCodes()
    const rows = [
      { id: 't1', userId: 'u1', backupCodes: await encrypt(a) },
      { id: 't2', userId: 'u2', backupCodes: await encrypt(b) },
    ]
    writeFileSync(join(dir, 'rows.json'), JSON.stringify(rows))
    writeFileSync(
      join(dir, 'rows.csv'),
      `id,userId,backupCodes\r\n${rows.map((r) => `${r.id},${r.userId},${r.backupCodes}`).join('\r\n')}\r\n`,
    )
    writeFileSync(join(dir, 'rows.export'), `\uFEFF${JSON.stringify(rows)}`)
    for (const name of ['rows.json', 'rows.csv', 'rows.export']) {
      const { batches } = await readAll(
        betterAuthSource({ rows: await readRowsFile(join(dir, name)), secret: SECRET, now: NOW }),
      )
      expect(
        batches.map((x) => [x.userId, x.codes.map((c) => c.plaintext)]),
        name,
      ).toEqual([
        ['u1', a],
        ['u2', b],
      ])
    }
  })
})
