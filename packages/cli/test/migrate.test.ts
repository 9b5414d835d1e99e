import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { cleanEnv, isCI, PG_URL, pgQuery, probePostgres, randomSchema, runCli, tempDir } from './helpers.ts'

const pgUnavailable = await probePostgres()
if (pgUnavailable !== null && !isCI) {
  console.warn(`[cli] PostgreSQL at ${PG_URL} unreachable (${pgUnavailable}): PostgreSQL tests SKIPPED`)
}
/** Under CI=true an unreachable server fails the PostgreSQL tests instead of skipping them. */
const pgIt = pgUnavailable === null || isCI ? it : it.skip

describe('migrate', () => {
  it('creates the rc_ tables in a new SQLite file (sqlite: URL and plain path), then is up to date', async () => {
    const file = join(tempDir('rc-migrate-'), 'app.db')
    const first = await runCli(['migrate', '--database', `sqlite:${file}`], { env: cleanEnv() })
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toContain(`SQLite ${file}: 0001_init applied\n`)
    const db = new Database(file, { readonly: true })
    const tables = (
      db
        .prepare("select name from sqlite_master where type = 'table' and name like 'rc_%' order by name")
        .all() as { name: string }[]
    ).map((r) => r.name)
    db.close()
    expect(tables).toEqual(
      expect.arrayContaining(['rc_attempts', 'rc_audit_log', 'rc_batches', 'rc_codes', 'rc_email_log']),
    )
    const again = await runCli(['migrate'], { env: cleanEnv({ DATABASE_URL: file }) })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain('already up to date')
  })

  it('needs a database', async () => {
    const r = await runCli(['migrate'], { env: cleanEnv() })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('no database: pass --database <url> or set DATABASE_URL')
  })

  describe('PostgreSQL (own schema)', () => {
    const schema = randomSchema('rc_cli')
    afterAll(async () => {
      if (pgUnavailable === null) await pgQuery(`drop schema if exists ${schema} cascade`)
    })

    pgIt('creates the schema and tables, records its own history, then is up to date', async () => {
      expect(pgUnavailable, `PostgreSQL must be reachable under CI: ${pgUnavailable}`).toBeNull()
      const r = await runCli(['migrate', '--database', PG_URL, '--schema', schema], { env: cleanEnv() })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(new RegExp(`schema ${schema}: 0001_init applied`))
      const tables = await pgQuery<{ table_name: string }>(
        'select table_name from information_schema.tables where table_schema = $1 order by table_name',
        [schema],
      )
      expect(tables.map((t) => t.table_name)).toEqual(
        expect.arrayContaining([
          'rc_attempts',
          'rc_audit_log',
          'rc_batches',
          'rc_codes',
          'rc_email_log',
          'rc_migrations',
        ]),
      )
      const again = await runCli(['migrate', '--schema', schema], { env: cleanEnv({ DATABASE_URL: PG_URL }) })
      expect(again.code, again.stderr).toBe(0)
      expect(again.stdout).toContain('already up to date')
      // stats works on the fresh schema (queue skipped).
      const stats = await runCli(
        ['stats', '--database', PG_URL, '--schema', schema, '--no-queue', '--json'],
        { env: cleanEnv() },
      )
      expect(stats.code, stats.stderr).toBe(0)
      expect(JSON.parse(stats.stdout)).toEqual({
        batches: {},
        codes: {},
        expiredCodes: 0,
        lockedAccounts: 0,
        auditRecords: 0,
      })
    })

    pgIt('a wrong password or host fails with exit 1 and never prints the URL password', async () => {
      const url = 'postgres://postgres:s3cretpw@127.0.0.1:1/test'
      const r = await runCli(['migrate', '--database', url], { env: cleanEnv() })
      expect(r.code).toBe(1)
      expect(r.stderr).not.toContain('s3cretpw')
    })
  })
})
