import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { cleanEnv, runCli, seedSqlite, tempDir } from './helpers.ts'

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
