import { describe, expect, it } from 'vitest'
import { integerIn, parseInstant, parseMaxDeletions } from '../src/args.ts'
import { describeTarget, resolveDatabase } from '../src/db.ts'
import { run } from '../src/main.ts'
import { cleanEnv, fakeIO, runCli } from './helpers.ts'

describe('flag validation (exit 2 with a clear error)', () => {
  const cases: Array<[string[], RegExp]> = [
    [['check', '--bogus'], /unknown option '--bogus'/],
    [['nope'], /unknown command 'nope'/],
    [
      ['purge', '--chunk-size', 'abc'],
      /'--chunk-size <n>' argument 'abc' is invalid\. Expected an integer from 1 to 100000/,
    ],
    [['purge', '--chunk-size', '0'], /Expected an integer from 1 to 100000/],
    [['purge', '--chunk-size', '1e3'], /Expected an integer/],
    [['purge', '--retention-days', '-1'], /Expected an integer from 0 to 3650/],
    [['purge-audit', '--retention-days', '0'], /Expected an integer from 1 to 3650/],
    [['purge', '--max-deletions', 'lots'], /Expected an integer from 1 to 10000000, or 'unlimited'/],
    [['purge-audit', '--delete-empty-batches'], /unknown option '--delete-empty-batches'/],
    [['generate-pepper', '--bytes', '16'], /Expected an integer from 32 to 1024/],
    [['migrate', '--schema', 'x;drop'], /Expected a schema name/],
    [
      ['migrate', '--database', 'mongodb://h/db'],
      /unsupported database URL: use postgres:\/\/…, mysql:\/\/…/,
    ],
    [['migrate', '--database', 'x.db', '--schema', 'a'], /--schema applies to PostgreSQL only/],
    [
      ['migrate', '--database', 'mysql://h/db', '--schema', 'a'],
      /--schema applies to PostgreSQL only: on MySQL/,
    ],
    [
      ['stats', '--database', 'mariadb://h/db', '--schema', 'a'],
      /--schema applies to PostgreSQL only: on MySQL/,
    ],
    [['migrate', '--database', 'mysql://h:3306'], /a MySQL \/ MariaDB URL must name the database/],
    [['migrate', '--database', 'mysql://u:p@h:99999/db'], /invalid MySQL \/ MariaDB URL$/m],
    [['schedule', 'add', 'nightly', '--job', 'purge'], /required option '--every <frequency>' not specified/],
    [
      ['schedule', 'add', 'nightly', '--job', 'purge', '--every', 'fortnightly'],
      /Allowed choices are once, hourly, daily/,
    ],
    [
      ['schedule', 'add', 'nightly', '--job', 'vacuum', '--every', 'daily'],
      /Allowed choices are purge, purge-audit/,
    ],
    [['schedule', 'add', 'nightly', '--job', 'purge', '--every', 'once'], /--every once needs --at/],
    [['schedule', 'add', 'nightly', '--job', 'purge', '--every', 'daily', '--at', 'tomorrow'], /ISO 8601/],
    [['schedule', 'add', 'bad name!', '--job', 'purge', '--every', 'daily'], /Expected 1-64 characters/],
    [
      ['schedule', 'add', 'n', '--job', 'purge-audit', '--every', 'daily', '--report-to-admin'],
      /apply to --job purge only/,
    ],
    [['schedule', 'remove'], /missing required argument 'name'/],
    [['flush'], /choose exactly one of --failed, --scheduled, --all/],
    [['flush', '--failed', '--all'], /choose exactly one/],
    [['flush', '--failed', '--database', 'sqlite:x.db'], /the queue needs PostgreSQL/],
    [['schedule', 'list', '--database', 'x.db'], /the queue needs PostgreSQL/],
    [['schedule', 'list', '--database', 'mysql://h/db'], /the queue needs PostgreSQL/],
    [['flush', '--failed', '--database', 'mariadb://h/db'], /the queue needs PostgreSQL/],
    [['check', 'extra'], /too many arguments/],
  ]
  for (const [args, message] of cases) {
    it(`${args.join(' ')}`, async () => {
      const { io, out } = fakeIO({ DATABASE_URL: 'postgres://127.0.0.1:1/none' })
      const code = await run(args, { io, queueFactory: () => Promise.reject(new Error('not reached')) })
      expect(out.stderr).toMatch(message)
      expect(code).toBe(2)
    })
  }

  it('the real CLI exits 2 on an unknown flag and 0 on --help / --version', async () => {
    const bad = await runCli(['purge', '--dryrun'], { env: cleanEnv() })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/unknown option '--dryrun'\n\(Did you mean --dry-run\?\)/)
    const help = await runCli(['--help'], { env: cleanEnv() })
    expect(help.code).toBe(0)
    for (const c of [
      'check',
      'generate-pepper',
      'migrate',
      'purge',
      'purge-audit',
      'schedule',
      'flush',
      'stats',
    ]) {
      expect(help.stdout).toContain(`  ${c}`)
    }
    const version = await runCli(['--version'], { env: cleanEnv() })
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })
})

describe('parsers', () => {
  it('integers are digits only, within range', () => {
    expect(integerIn(1, 10)('7')).toBe(7)
    for (const v of ['', ' 7', '7 ', '+7', '-1', '0x10', '1.0', '11', '9'.repeat(20)]) {
      expect(() => integerIn(1, 10)(v), v).toThrow()
    }
    expect(parseMaxDeletions('unlimited')).toBe('unlimited')
    expect(parseMaxDeletions('5000')).toBe(5000)
  })

  it('instants need a date, a time and a zone', () => {
    expect(parseInstant('2030-01-01T03:00:00Z')).toBe(Date.UTC(2030, 0, 1, 3))
    expect(parseInstant('2030-01-01T03:00+02:00')).toBe(Date.UTC(2030, 0, 1, 1))
    for (const v of ['2030-01-01', '2030-01-01T03:00:00', '2030-13-01T00:00Z', 'now']) {
      expect(() => parseInstant(v), v).toThrow()
    }
  })

  it('database targets', () => {
    expect(resolveDatabase({ env: { DATABASE_URL: 'postgresql://u@h/db' } })).toEqual({
      dialect: 'postgres',
      url: 'postgresql://u@h/db',
    })
    expect(resolveDatabase({ database: 'sqlite:/tmp/a.db', env: {} })).toEqual({
      dialect: 'sqlite',
      file: '/tmp/a.db',
    })
    expect(resolveDatabase({ database: 'sqlite:///tmp/a.db', env: {} })).toEqual({
      dialect: 'sqlite',
      file: '/tmp/a.db',
    })
    expect(resolveDatabase({ database: './rel.db', env: { DATABASE_URL: 'postgres://x/y' } })).toEqual({
      dialect: 'sqlite',
      file: './rel.db',
    })
    expect(() => resolveDatabase({ env: {} })).toThrow(/no database/)
    expect(resolveDatabase({ env: { DATABASE_URL: ' mysql://u:pw@h:3307/app ' } })).toEqual({
      dialect: 'mysql',
      url: 'mysql://u:pw@h:3307/app',
    })
    expect(resolveDatabase({ database: 'MariaDB://u@h/app', env: {} })).toEqual({
      dialect: 'mysql',
      url: 'MariaDB://u@h/app',
    })
  })

  it('target descriptions never show the user or the password', () => {
    const mysql = resolveDatabase({ database: 'mysql://admin:s3cretpw@db.internal:3307/app', env: {} })
    expect(describeTarget(mysql)).toBe('MySQL db.internal:3307/app')
    const mariadb = resolveDatabase({ database: 'mariadb://admin:s3cretpw@db.internal/my%20app', env: {} })
    expect(describeTarget(mariadb)).toBe('MariaDB db.internal/my app')
    const pg = resolveDatabase({ database: 'postgres://admin:s3cretpw@db.internal:5433/app', env: {} })
    expect(describeTarget(pg)).toBe('PostgreSQL db.internal:5433/app')
  })
})
