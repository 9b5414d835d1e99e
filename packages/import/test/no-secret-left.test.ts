/**
 * Issue 17, acceptance 2: better-auth and Fortify codes imported into the Kysely store on SQLite
 * become native codes (they redeem through `rc.redeem`), and nothing of the source's ciphertext
 * or of the plaintext codes is left in any table, in any log line, or in an audit row: every row
 * of every table is dumped (text as is, blobs as hex and base64) and searched, with the service's
 * logger and the console captured, including a failed run (a wrong key) and a dry run.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRecoveryCodes, type Logger } from '@recovery-codes/core'
import { kyselyStore, migrateRecoveryCodes } from '@recovery-codes/store-kysely'
import { symmetricEncrypt } from 'better-auth/crypto'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { betterAuthSource, fortifySource } from '../src/index.ts'
import { createPrng } from './fixtures/django-seed.ts'
import { fortifyCode, fortifyEncrypt } from './fixtures/laravel.ts'

const NOW = Date.now()
const BA_SECRET = 'test-only better-auth secret, long enough to be one'
const APP_KEY = randomBytes(32)
const USERS = 20

describe('better-auth and Fortify: native codes, no ciphertext or plaintext left anywhere', () => {
  let dir: string
  let raw: Database.Database
  // biome-ignore lint/suspicious/noExplicitAny: the store's tables, read back raw
  let db: Kysely<any>
  const logged: string[] = []
  const logger: Logger = {
    debug: (m, f) => void logged.push(`${m} ${JSON.stringify(f ?? {})}`),
    info: (m, f) => void logged.push(`${m} ${JSON.stringify(f ?? {})}`),
    warn: (m, f) => void logged.push(`${m} ${JSON.stringify(f ?? {})}`),
    error: (m, f) => void logged.push(`${m} ${JSON.stringify(f ?? {})}`),
  }
  const plaintexts: { userId: string; code: string }[] = []
  const ciphertexts: string[] = []
  const baRows: { userId: string; backupCodes: string }[] = []
  const ftRows: { userId: string; recoveryCodes: string }[] = []

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rc-import-secrets-'))
    raw = new Database(join(dir, 'rc.db'))
    db = new Kysely({ dialect: new SqliteDialect({ database: raw }) })
    await migrateRecoveryCodes(db)
    const random = createPrng(11)
    const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
    const baCode = () => {
      let s = ''
      for (let i = 0; i < 10; i++) s += alphabet[random.int(alphabet.length)]
      return `${s.slice(0, 5)}-${s.slice(5)}`
    }
    for (let u = 0; u < USERS; u++) {
      const codes = Array.from({ length: 10 }, baCode)
      const backupCodes = await symmetricEncrypt({ key: BA_SECRET, data: JSON.stringify(codes) })
      baRows.push({ userId: `ba-${u}`, backupCodes })
      ciphertexts.push(backupCodes)
      for (const code of codes) plaintexts.push({ userId: `ba-${u}`, code })
      const ft = Array.from({ length: 8 }, () => fortifyCode(random))
      const recoveryCodes = fortifyEncrypt(ft, APP_KEY)
      ftRows.push({ userId: `ft-${u}`, recoveryCodes })
      ciphertexts.push(recoveryCodes)
      for (const code of ft) plaintexts.push({ userId: `ft-${u}`, code })
    }
  })
  afterAll(async () => {
    await db?.destroy()
    rmSync(dir, { recursive: true, force: true })
  })

  const service = () =>
    createRecoveryCodes({
      peppers: [{ id: 'k1', secret: new Uint8Array(randomBytes(32)) }],
      store: kyselyStore(db),
      logger,
      import: { formats: ['better-auth', 'fortify'] },
    })

  /** Every table's rows as text: strings as they are, bytes as hex and base64, numbers as digits. */
  function dump(): string {
    const tables = raw.prepare("select name from sqlite_master where type = 'table'").all() as {
      name: string
    }[]
    const out: string[] = []
    for (const { name } of tables) {
      for (const row of raw.prepare(`select * from "${name}"`).all() as Record<string, unknown>[]) {
        for (const v of Object.values(row)) {
          if (v instanceof Uint8Array)
            out.push(Buffer.from(v).toString('hex'), Buffer.from(v).toString('base64'))
          else out.push(String(v))
        }
      }
    }
    return out.join('\n')
  }

  /** Pieces of each secret that must not appear: whole, and 16-character slices of ciphertexts. */
  function leaks(text: string): string[] {
    const found: string[] = []
    for (const { code } of plaintexts) {
      for (const form of [code, code.replace('-', '')])
        if (text.includes(form)) found.push(`code ${form.slice(0, 3)}…`)
    }
    for (const c of ciphertexts) {
      for (let i = 0; i + 16 <= c.length; i += 16) {
        if (text.includes(c.slice(i, i + 16))) {
          found.push(`ciphertext slice at ${i}`)
          break
        }
      }
    }
    return found
  }

  it('imports them as native codes that redeem once, leaving no trace of either in the store or logs', async () => {
    const console_ = [vi.spyOn(console, 'log'), vi.spyOn(console, 'warn'), vi.spyOn(console, 'error')]
    try {
      const rc = service()
      // A wrong key first: refused, naming the row, nothing written, nothing leaked.
      const wrong = await rc
        .importCodes(betterAuthSource({ rows: baRows, secret: 'not the secret', now: NOW }))
        .catch((e: unknown) => e as Error)
      expect((wrong as { code?: string }).code).toBe('IMPORT_INVALID')
      expect((wrong as Error).message).toContain('ba-0')
      expect((raw.prepare('select count(*) as n from rc_batches').get() as { n: number }).n).toBe(0)
      await rc.importCodes(betterAuthSource({ rows: baRows, secret: BA_SECRET, now: NOW }), { dryRun: true })
      const ba = await rc.importCodes(betterAuthSource({ rows: baRows, secret: BA_SECRET, now: NOW }))
      const ft = await rc.importCodes(
        fortifySource({ rows: ftRows, appKey: `base64:${APP_KEY.toString('base64')}`, now: NOW }),
      )
      expect(ba.codes).toMatchObject({ imported: USERS * 10, native: USERS * 10, legacy: 0 })
      expect(ft.codes).toMatchObject({ imported: USERS * 8, native: USERS * 8, legacy: 0 })
      const keys = raw.prepare('select distinct key_id from rc_batches').all() as { key_id: string }[]
      expect(keys.map((k) => k.key_id)).toEqual(['k1'])

      const printed = console_.flatMap((spy) => spy.mock.calls.map((c) => c.join(' ')))
      const text = [dump(), ...logged, ...printed, (wrong as Error).message, JSON.stringify([ba, ft])].join(
        '\n',
      )
      expect(leaks(text)).toEqual([])
      // The search can fail: the plaintext it looks for is where it should be, in the test's own list.
      expect(leaks(plaintexts.map((p) => p.code).join('\n')).length).toBeGreaterThan(0)

      for (const { userId, code } of plaintexts) {
        expect((await rc.redeem({ userId, code })).ok, userId).toBe(true)
      }
      for (const { userId, code } of plaintexts.filter((_, i) => i % 7 === 0)) {
        expect((await rc.redeem({ userId, code })).ok).toBe(false)
      }
      expect(leaks([dump(), logged.join('\n')].join('\n'))).toEqual([])
    } finally {
      for (const spy of console_) spy.mockRestore()
    }
  })
})
