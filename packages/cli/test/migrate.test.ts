import { join } from 'node:path'
import Database from 'better-sqlite3'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDatabase, resolveDatabase } from '../src/db.ts'
import {
  cleanEnv,
  createMysqlDatabase,
  isCI,
  MYSQL_URL,
  type MysqlDatabase,
  mysqlQuery,
  mysqlUrl,
  PG_URL,
  pgQuery,
  probeMysql,
  probePostgres,
  randomSchema,
  runCli,
  tempDir,
} from './helpers.ts'

const pgUnavailable = await probePostgres()
if (pgUnavailable !== null && !isCI) {
  console.warn(`[cli] PostgreSQL at ${PG_URL} unreachable (${pgUnavailable}): PostgreSQL tests SKIPPED`)
}
/** Under CI=true an unreachable server fails the PostgreSQL tests instead of skipping them. */
const pgIt = pgUnavailable === null || isCI ? it : it.skip

const mysqlUnavailable = await probeMysql()
if (mysqlUnavailable !== null && !isCI) {
  console.warn(`[cli] MySQL at ${MYSQL_URL} unreachable (${mysqlUnavailable}): MySQL tests SKIPPED`)
}
/** Under CI=true an unreachable server fails the MySQL tests instead of skipping them. */
const mysqlIt = mysqlUnavailable === null || isCI ? it : it.skip

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

  describe('MySQL / MariaDB (own database)', () => {
    let database: MysqlDatabase | undefined
    beforeAll(async () => {
      if (mysqlUnavailable === null) database = await createMysqlDatabase()
    })
    afterAll(async () => {
      await database?.drop()
    })

    mysqlIt(
      'creates the tables, records its own history, then is up to date (mysql:// and mariadb://)',
      async () => {
        expect(mysqlUnavailable, `MySQL must be reachable under CI: ${mysqlUnavailable}`).toBeNull()
        const { name, url } = database!
        const r = await runCli(['migrate', '--database', url], { env: cleanEnv() })
        expect(r.code, r.stderr).toBe(0)
        expect(r.stdout).toMatch(new RegExp(`^MySQL [^ @]+/${name}: 0001_init applied$`, 'm'))
        const tables = await mysqlQuery<{ name: string }>(
          'select table_name as name from information_schema.tables where table_schema = ? order by table_name',
          [name],
        )
        expect(tables.map((t) => t.name)).toEqual(
          expect.arrayContaining([
            'rc_attempts',
            'rc_audit_log',
            'rc_batches',
            'rc_codes',
            'rc_email_log',
            'rc_migrations',
          ]),
        )
        const mariadb = url.replace(/^mysql:/, 'mariadb:')
        const again = await runCli(['migrate'], { env: cleanEnv({ DATABASE_URL: mariadb }) })
        expect(again.code, again.stderr).toBe(0)
        expect(again.stdout).toMatch(new RegExp(`^MariaDB [^ @]+/${name}: already up to date$`, 'm'))
        const stats = await runCli(['stats', '--database', url, '--json'], { env: cleanEnv() })
        expect(stats.code, stats.stderr).toBe(0)
        expect(JSON.parse(stats.stdout)).toEqual({
          batches: {},
          codes: {},
          expiredCodes: 0,
          lockedAccounts: 0,
          auditRecords: 0,
        })
      },
    )

    // Regression: mysql2 returns every varbinary column (ids, user ids, keys, events) as a Buffer;
    // the CLI's instance carries MYSQL_TEXT_COLUMNS so its own queries read strings.
    mysqlIt("the CLI's Kysely instance reads varbinary ids and keys as strings", async () => {
      expect(mysqlUnavailable, `MySQL must be reachable under CI: ${mysqlUnavailable}`).toBeNull()
      const { name, url } = database!
      expect((await runCli(['migrate', '--database', url], { env: cleanEnv() })).code).toBe(0)
      await mysqlQuery(
        `insert into rc_attempts (\`key\`, failures, consecutive, lockouts, locked_until) values ('k-ü', 1, 1, 0, 0)`,
        [],
        name,
      )
      const open = await openDatabase(resolveDatabase({ database: url, env: {} }))
      try {
        expect(open.dialect).toBe('mysql')
        const rows = await open.db.selectFrom('rc_attempts').select(['key', 'failures']).execute()
        expect(rows).toEqual([{ key: 'k-ü', failures: 1 }])
      } finally {
        await open.close()
        await mysqlQuery('delete from rc_attempts', [], name)
      }
    })

    mysqlIt("the CLI's connections end lock waits after 120 s", async () => {
      expect(mysqlUnavailable, `MySQL must be reachable under CI: ${mysqlUnavailable}`).toBeNull()
      const open = await openDatabase(resolveDatabase({ database: database!.url, env: {} }))
      try {
        const { rows } = await sql<{ l: unknown; i: unknown }>`
          select @@session.lock_wait_timeout as l, @@session.innodb_lock_wait_timeout as i`.execute(open.db)
        expect(rows.map((r) => [Number(r.l), Number(r.i)])).toEqual([[120, 120]])
      } finally {
        await open.close()
      }
    })

    mysqlIt(
      'a wrong password, a closed port or an unknown database fails with exit 1, never printing the password',
      async () => {
        expect(mysqlUnavailable, `MySQL must be reachable under CI: ${mysqlUnavailable}`).toBeNull()
        const denied = await runCli(
          ['migrate', '--database', mysqlUrl(database!.name, { password: 's3cretpw' })],
          { env: cleanEnv() },
        )
        expect(denied.code).toBe(1)
        expect(denied.stderr).toContain('Access denied')
        const closed = await runCli(
          ['stats', '--database', mysqlUrl('test', { password: 's3cretpw', port: '1' })],
          { env: cleanEnv() },
        )
        expect(closed.code).toBe(1)
        const unknown = await runCli(['stats', '--database', mysqlUrl(`${database!.name}_none`)], {
          env: cleanEnv(),
        })
        expect(unknown.code).toBe(1)
        expect(unknown.stderr).toContain(`Unknown database '${database!.name}_none'`)
        for (const r of [denied, closed, unknown]) expect(`${r.stdout}${r.stderr}`).not.toContain('s3cretpw')
      },
    )
  })
})
