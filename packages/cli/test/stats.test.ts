import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  cleanEnv,
  createMysqlDatabase,
  isCI,
  MYSQL_URL,
  type MysqlDatabase,
  mysqlQuery,
  probeMysql,
  runCli,
  seedMysql,
  seedSqlite,
  tempDir,
} from './helpers.ts'

const mysqlUnavailable = await probeMysql()
if (mysqlUnavailable !== null && !isCI) {
  console.warn(`[cli] MySQL at ${MYSQL_URL} unreachable (${mysqlUnavailable}): MySQL tests SKIPPED`)
}
/** Under CI=true an unreachable server fails the MySQL tests instead of skipping them. */
const mysqlIt = mysqlUnavailable === null || isCI ? it : it.skip

describe('stats (SQLite, real CLI)', () => {
  it('batches by status, codes by state, expired codes and locked accounts', async () => {
    const file = join(tempDir('rc-stats-'), 'rc.db')
    expect((await runCli(['migrate', '--database', file], { env: cleanEnv() })).code).toBe(0)
    seedSqlite(file, { eligible: 40, keep: 8, recent: 2 })
    const db = new Database(file)
    const now = Date.now()
    db.prepare(`update rc_codes set expires_at = ? where id in ('keep-0', 'keep-1')`).run(now - 1000)
    const attempt = db.prepare(
      `insert into rc_attempts (key, failures, consecutive, lockouts, locked_until) values (?, 5, 5, 1, ?)`,
    )
    attempt.run('locked-1', now + 600_000)
    attempt.run('locked-2', now + 60_000)
    attempt.run('expired-lock', now - 1)
    db.close()
    const r = await runCli(['stats', '--database', file, '--json'], { env: cleanEnv() })
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      batches: { active: 1, superseded: 1 },
      codes: { active: 8, used: 42 },
      expiredCodes: 2,
      lockedAccounts: 2,
      auditRecords: 0,
    })
    const text = await runCli(['stats', '--database', file], { env: cleanEnv() })
    expect(text.stdout).toContain('batches:         2 (active 1, superseded 1)')
    expect(text.stdout).toContain('locked accounts: 2')
  })

  it('a missing SQLite file is an error, not a new empty database', async () => {
    const file = join(tempDir('rc-stats-'), 'none.db')
    const r = await runCli(['stats', '--database', file], { env: cleanEnv() })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('SQLite file not found')
  })
})

describe('stats (MySQL / MariaDB, own database, real CLI)', () => {
  let database: MysqlDatabase | undefined
  beforeAll(async () => {
    if (mysqlUnavailable === null) database = await createMysqlDatabase()
  })
  afterAll(async () => {
    await database?.drop()
  })

  mysqlIt('batches by status, codes by state, expired codes, locked accounts and audit records', async () => {
    expect(mysqlUnavailable, `MySQL must be reachable under CI: ${mysqlUnavailable}`).toBeNull()
    const { name, url } = database!
    const m = await runCli(['migrate', '--database', url], { env: cleanEnv() })
    expect(m.code, m.stderr).toBe(0)
    await seedMysql(name, { eligible: 40, keep: 8, recent: 2 })
    const now = Date.now()
    await mysqlQuery(
      `update rc_codes set expires_at = ? where id in ('keep-0', 'keep-1')`,
      [now - 1000],
      name,
    )
    await mysqlQuery(
      'insert into rc_attempts (`key`, failures, consecutive, lockouts, locked_until) values ?',
      [
        [
          ['locked-1', 5, 5, 1, now + 600_000],
          ['locked-2', 5, 5, 1, now + 60_000],
          ['expired-lock', 5, 5, 1, now - 1],
        ],
      ],
      name,
    )
    await mysqlQuery(
      `insert into rc_audit_log (id, at, event, outcome) values ('a-1', ?, 'redeem', 'success'), ('a-2', ?, 'redeem', 'failure')`,
      [now, now],
      name,
    )
    const r = await runCli(['stats', '--database', url, '--json'], { env: cleanEnv() })
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      batches: { active: 1, superseded: 1 },
      codes: { active: 8, used: 42 },
      expiredCodes: 2,
      lockedAccounts: 2,
      auditRecords: 2,
    })
    // No queue on MySQL: the line is left out, not reported unavailable.
    const text = await runCli(['stats', '--database', url], { env: cleanEnv() })
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toContain('batches:         2 (active 1, superseded 1)')
    expect(text.stdout).toContain('locked accounts: 2')
    expect(text.stdout).not.toContain('queue:')
  })
})
