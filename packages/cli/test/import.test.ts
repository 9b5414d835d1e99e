/**
 * `recovery-codes import` as an operator runs it: a seed-shaped django-auth-recovery-codes SQLite
 * database (built from its migration, codes hashed as its `hash.py` does) into a migrated SQLite
 * store: a dry run counts and writes nothing, the import writes every batch, the codes redeem
 * through a service configured as docs/import.md says, a re-run changes nothing, and bad input
 * (no key, an unknown source, a missing source) is refused with nothing written.
 */
import { join } from 'node:path'
import { createRecoveryCodes, type ImportReport } from '@recovery-codes/core'
import { kyselyStore } from '@recovery-codes/store-kysely'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildDjangoSeed, type DjangoSeed } from '../../import/test/fixtures/django-seed.ts'
import { openSeedDb } from '../../import/test/fixtures/seed-db.ts'
import { cleanEnv, KEY_B64, runCli, sqliteCount, tempDir } from './helpers.ts'

const DJANGO_KEY = 'cli-test django recovery key, not a real one'
const env = (extra: Record<string, string> = {}) =>
  cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64, DJANGO_AUTH_RECOVERY_KEY: DJANGO_KEY, ...extra })

describe('recovery-codes import --from django-auth-recovery-codes (SQLite to SQLite)', () => {
  let seed: DjangoSeed
  let sourceFile: string
  let target: string
  beforeAll(async () => {
    const dir = tempDir('rc-cli-import-')
    sourceFile = join(dir, 'django.sqlite3')
    target = join(dir, 'rc.db')
    const seedDb = await openSeedDb('sqlite')
    seed = await buildDjangoSeed(seedDb, {
      users: 200,
      batchesPerUser: 2,
      used: 0.2,
      deactivated: 0.1,
      markedForDeletion: 0.1,
      key: DJANGO_KEY,
      now: Date.now(),
    })
    await seedDb.exec(`VACUUM INTO '${sourceFile}'`)
    await seedDb.close()
    const m = await runCli(['migrate', '--database', `sqlite:${target}`], { env: env() })
    expect(m.code, m.stderr).toBe(0)
  }, 120_000)
  afterAll(() => {})

  const argsFor = (file: string, ...extra: string[]) => [
    'import',
    '--from',
    'django-auth-recovery-codes',
    '--source',
    `sqlite:${sourceFile}`,
    '--database',
    `sqlite:${file}`,
    '--no-progress',
    ...extra,
  ]
  const args = (...extra: string[]) => argsFor(target, ...extra)

  it('--dry-run counts every status and state and writes nothing', async () => {
    const r = await runCli(args('--dry-run', '--json'), { env: env() })
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as ImportReport
    expect(report.dryRun).toBe(true)
    expect(report.users).toBe(200)
    expect(report.batches.read).toBe(seed.batches)
    expect(report.batches.byStatus).toEqual(seed.byStatus)
    expect(report.codes.byState).toEqual({
      active: seed.byState.active.length,
      used: seed.byState.used.length,
      invalidated: seed.byState.invalidated.length,
      deleted: seed.byState.deleted.length,
    })
    expect(sqliteCount(target, '1 = 1', 'rc_batches')).toBe(0)
    // Nothing of the key on the command line or in the output.
    expect(r.stdout + r.stderr).not.toContain(DJANGO_KEY)
  })

  it('imports; the codes then redeem through the configured service; a re-run changes nothing', async () => {
    const r = await runCli(args(), { env: env() })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(
      `imported from django-auth-recovery-codes: ${seed.batches} batches (${seed.codes} codes)`,
    )
    expect(sqliteCount(target, '1 = 1', 'rc_batches')).toBe(seed.batches)
    expect(sqliteCount(target)).toBe(seed.codes)

    const raw = new Database(target)
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: raw }) })
    try {
      const rc = createRecoveryCodes({
        peppers: [{ id: 'k1', secret: KEY_B64 }],
        store: kyselyStore(db),
        import: {
          legacyDigests: [{ id: 'django', scheme: 'django-auth-recovery-codes', secret: DJANGO_KEY }],
        },
      })
      for (const c of seed.byState.active.slice(0, 50)) {
        expect((await rc.redeem({ userId: c.userId, code: c.code })).ok).toBe(true)
        expect((await rc.redeem({ userId: c.userId, code: c.code })).ok).toBe(false)
      }
      for (const c of seed.byState.used.slice(0, 20)) {
        expect((await rc.redeem({ userId: c.userId, code: c.code })).ok).toBe(false)
      }
    } finally {
      await db.destroy()
    }

    const again = await runCli(args('--json'), { env: env() })
    expect(again.code, again.stderr).toBe(0)
    const report = JSON.parse(again.stdout) as ImportReport
    expect(report.batches).toMatchObject({ imported: 0, existing: seed.batches })
    expect(sqliteCount(target)).toBe(seed.codes)
  }, 120_000)

  it('two import processes at once (one source, one store) write every code once', async () => {
    const fresh = join(tempDir('rc-cli-import-race-'), 'rc.db')
    const m = await runCli(['migrate', '--database', `sqlite:${fresh}`], { env: env() })
    expect(m.code, m.stderr).toBe(0)
    const both = (file: string) => runCli(argsFor(file, '--json', '--concurrency', '8'), { env: env() })
    const [a, b] = await Promise.all([both(fresh), both(fresh)])
    expect(a.code, a.stderr).toBe(0)
    expect(b.code, b.stderr).toBe(0)
    const ra = JSON.parse(a.stdout) as ImportReport
    const rb = JSON.parse(b.stdout) as ImportReport
    expect(ra.batches.imported + rb.batches.imported).toBe(seed.batches)
    expect(ra.batches.existing + rb.batches.existing).toBe(seed.batches)
    expect(sqliteCount(fresh, '1 = 1', 'rc_batches')).toBe(seed.batches)
    expect(sqliteCount(fresh)).toBe(seed.codes)
    expect(sqliteCount(fresh, "event = 'batch.imported'", 'rc_audit_log')).toBe(seed.batches)
  }, 120_000)

  it('refuses to run without the source key, naming the variable, and writes nothing', async () => {
    const before = sqliteCount(target)
    const r = await runCli(args(), { env: cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64 }) })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('DJANGO_AUTH_RECOVERY_KEY')
    const other = await runCli(args('--source-key-env', 'MY_KEY'), { env: env() })
    expect(other.code).toBe(2)
    expect(other.stderr).toContain('MY_KEY')
    expect(sqliteCount(target)).toBe(before)
  })

  it('refuses an unknown source system and a missing source database', async () => {
    const unknown = await runCli(
      ['import', '--from', 'allauth', '--source', `sqlite:${sourceFile}`, '--database', `sqlite:${target}`],
      { env: env() },
    )
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/allauth/)
    const missing = await runCli(
      [
        'import',
        '--from',
        'django-auth-recovery-codes',
        '--source',
        'sqlite:/nonexistent/x.db',
        '--database',
        `sqlite:${target}`,
      ],
      { env: env() },
    )
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('/nonexistent/x.db')
  })
})
