import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  CLI_SHELL,
  cleanEnv,
  createMysqlDatabase,
  isCI,
  KEY_B64,
  MYSQL_URL,
  type MysqlDatabase,
  mysqlQuery,
  probeMysql,
  runCli,
  seedMysql,
  seedSqlite,
  sqliteCount,
  startCli,
  tempDir,
} from './helpers.ts'

const ROWS = 500_000
const KEEP = 1_000
const RECENT = 100
// A chunk budget no chunk reaches: every chunk asks for `--chunk-size` rows, so rounds are exact.
// (Chunks sized by the default budget: core's purge tests and the bench.)
const env = () => cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64, RECOVERY_CODES_PURGE_CHUNK_BUDGET_MS: '60000' })

async function migrated(): Promise<string> {
  const file = join(tempDir('rc-purge-'), 'rc.db')
  const m = await runCli(['migrate', '--database', `sqlite:${file}`], { env: env() })
  expect(m.code, m.stderr).toBe(0)
  return file
}

const eligibleWhere = 'changed_at < 1000000000000 or expires_at < 1000000000000'

const mysqlUnavailable = await probeMysql()
if (mysqlUnavailable !== null && !isCI) {
  console.warn(`[cli] MySQL at ${MYSQL_URL} unreachable (${mysqlUnavailable}): MySQL tests SKIPPED`)
}
/** Under CI=true an unreachable server fails the MySQL tests instead of skipping them. */
const mysqlIt = mysqlUnavailable === null || isCI ? it : it.skip

describe('purge on 500,000 eligible rows (SQLite, real CLI)', () => {
  let file: string
  beforeAll(async () => {
    file = await migrated()
    const t = Date.now()
    seedSqlite(file, { eligible: ROWS, keep: KEEP, recent: RECENT })
    console.log(`seeded ${ROWS + KEEP + RECENT} rows in ${Date.now() - t} ms`)
  }, 120_000)

  it('--dry-run counts and deletes nothing', async () => {
    const r = await runCli(['purge', '--database', file, '--dry-run', '--retention-days', '30'], {
      env: env(),
    })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`${ROWS} code rows older than 30 days would be deleted; nothing was deleted`)
    expect(sqliteCount(file)).toBe(ROWS + KEEP + RECENT)
    const json = await runCli(['purge', '--database', file, '--dry-run', '--json'], { env: env() })
    expect(JSON.parse(json.stdout)).toMatchObject({
      dryRun: true,
      eligible: ROWS,
      deleted: 0,
      remaining: ROWS,
    })
  })

  it('shows progress lines and finishes with a report that matches the database', async () => {
    const before = sqliteCount(file)
    const r = await runCli(
      ['purge', '--database', file, '--chunk-size', '2000', '--max-deletions', 'unlimited', '--json'],
      { env: env() },
    )
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stderr
      .split('\n')
      .filter((l) => /^purge: \d+\/500000 rows \(\d+%\), \d+ rows\/s, ETA /.test(l))
    expect(lines.length).toBeGreaterThanOrEqual(10)
    expect(r.stderr).toMatch(/^purge: 500000 rows to delete$/m)
    expect(lines.at(-1)).toMatch(/^purge: 500000\/500000 rows \(100%\)/)
    const report = JSON.parse(r.stdout)
    const after = sqliteCount(file)
    expect(report).toMatchObject({
      eligible: ROWS,
      deleted: ROWS,
      remaining: 0,
      done: true,
      interrupted: false,
    })
    expect(report.rounds).toBe(ROWS / 2000 + 1)
    expect(before - after).toBe(report.deleted)
    expect(after).toBe(KEEP + RECENT)
    expect(sqliteCount(file, "id like 'keep-%' or id like 'recent-%'")).toBe(KEEP + RECENT)
    // One purge.run audit record, written by the service.
    expect(sqliteCount(file, "event = 'purge.run'", 'rc_audit_log')).toBe(1)
    console.log(`purged ${ROWS} rows in ${r.ms} ms (${lines.length} progress lines)`)
  }, 120_000)
})

describe('purge interrupted with Ctrl-C (SIGINT)', () => {
  let file: string
  beforeAll(async () => {
    file = await migrated()
    seedSqlite(file, { eligible: ROWS, keep: KEEP })
  }, 120_000)

  it('stops after the current chunk with a partial report matching the database; a re-run completes', async () => {
    const args = [
      'purge',
      '--database',
      file,
      '--chunk-size',
      '500',
      '--max-deletions',
      'unlimited',
      '--json',
    ]
    const run = startCli(args, { env: env() })
    // Wait until it is well under way, then interrupt.
    await run.waitFor(/^purge: \d+\/500000 rows \(\d+%\)/m, 60_000)
    run.child.kill('SIGINT')
    const r = await run.done
    expect(r.code, r.stderr).toBe(130)
    expect(r.stderr).toContain('interrupt: stopping after the current chunk')
    const report = JSON.parse(r.stdout)
    expect(report.interrupted).toBe(true)
    expect(report.done).toBe(false)
    expect(report.deleted).toBeGreaterThan(0)
    expect(report.deleted).toBeLessThan(ROWS)
    // Stopped on a chunk boundary: every round but none partial.
    expect(report.deleted).toBe(report.rounds * 500)
    expect(sqliteCount(file)).toBe(ROWS + KEEP - report.deleted)
    expect(report.remaining).toBe(ROWS - report.deleted)

    const again = await runCli(
      ['purge', '--database', file, '--chunk-size', '5000', '--max-deletions', 'unlimited', '--json'],
      {
        env: env(),
      },
    )
    expect(again.code, again.stderr).toBe(0)
    const second = JSON.parse(again.stdout)
    expect(second).toMatchObject({
      eligible: ROWS - report.deleted,
      deleted: ROWS - report.deleted,
      remaining: 0,
      done: true,
    })
    expect(sqliteCount(file)).toBe(KEEP)
    expect(sqliteCount(file, eligibleWhere)).toBe(0)
  }, 120_000)
})

describe('purge options and purge-audit', () => {
  it('honours the per-run cap and says to run again', async () => {
    const file = await migrated()
    seedSqlite(file, { eligible: 1_234 })
    const r = await runCli(['purge', '--database', file, '--chunk-size', '100', '--max-deletions', '1000'], {
      env: env(),
    })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('deleted 1000 code rows')
    expect(r.stdout).toContain('per-run cap reached')
    expect(sqliteCount(file)).toBe(234)
    // The environment's defaults apply when no flag is given: the rest, then done.
    const again = await runCli(['purge', '--database', file], {
      env: cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64, RECOVERY_CODES_PURGE_BATCH_SIZE: '100' }),
    })
    expect(again.stdout).toContain('deleted 234 code rows')
    expect(again.stdout).toContain('status: complete')
    expect(sqliteCount(file)).toBe(0)
  })

  it('--delete-empty-batches removes the emptied ended batch; works without a pepper in the env', async () => {
    const file = await migrated()
    seedSqlite(file, { eligible: 300, keep: 5 })
    const r = await runCli(['purge', '--database', file, '--delete-empty-batches', '--json'], {
      env: cleanEnv(),
    })
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ deleted: 300, batchesDeleted: 1, done: true })
    expect(sqliteCount(file, '1 = 1', 'rc_batches')).toBe(1)
  })

  it('purge-audit deletes audit records past retention with progress and a matching report', async () => {
    const file = await migrated()
    const Database = (await import('better-sqlite3')).default
    const db = new Database(file)
    db.prepare(
      `with recursive seq(i) as (select 0 union all select i + 1 from seq where i < 4999)
       insert into rc_audit_log (id, at, event, user_id, batch_id, identifier_hash, client_hash, outcome, reason, data)
       select 'a-' || i, case when i < 4000 then 1000 + i else ? end, 'redeem', null, null, null, null, 'success', null, null from seq`,
    ).run(Date.now())
    db.close()
    const r = await runCli(['purge-audit', '--database', file, '--chunk-size', '250', '--json'], {
      env: env(),
    })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/^purge-audit: 1000\/1000 rows \(100%\)/m) // default cap: 1000 per run
    expect(JSON.parse(r.stdout)).toMatchObject({
      kind: 'audit',
      eligible: 4000,
      deleted: 1000,
      remaining: 3000,
      done: false,
    })
    // 1000 old ones deleted, one audit.purged record added.
    expect(sqliteCount(file, '1 = 1', 'rc_audit_log')).toBe(5000 - 1000 + 1)
    const all = await runCli(['purge-audit', '--database', file, '--max-deletions', 'unlimited', '--json'], {
      env: env(),
    })
    expect(JSON.parse(all.stdout)).toMatchObject({ deleted: 3000, remaining: 0, done: true })
  })

  it('shows a live progress bar with rows/s and ETA on a terminal', async () => {
    const file = await migrated()
    seedSqlite(file, { eligible: 20_000 })
    const cmd = `${CLI_SHELL} purge --database ${file} --chunk-size 500 --max-deletions unlimited`
    let out: string
    try {
      out = execFileSync('script', ['-qec', cmd, '/dev/null'], {
        env: env(),
        encoding: 'utf8',
        timeout: 60_000,
      })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return // no `script` (util-linux) on this machine
      throw e
    }
    expect(out).toMatch(/purge \|[█░]+\| 20000\/20000 rows \| \d+ rows\/s \| ETA \d+s/)
    expect(out).toContain('status: complete')
    expect(sqliteCount(file)).toBe(0)
  })
})

describe('purge and purge-audit (MySQL / MariaDB, own database, real CLI)', () => {
  const MY_ROWS = 3_000
  const MY_KEEP = 50
  const MY_RECENT = 20
  let database: MysqlDatabase | undefined
  beforeAll(async () => {
    if (mysqlUnavailable !== null) return
    database = await createMysqlDatabase()
    const m = await runCli(['migrate', '--database', database.url], { env: env() })
    expect(m.code, m.stderr).toBe(0)
    await seedMysql(database.name, { eligible: MY_ROWS, keep: MY_KEEP, recent: MY_RECENT })
  }, 120_000)
  afterAll(async () => {
    await database?.drop()
  })

  mysqlIt('--dry-run counts what the database holds and deletes nothing', async () => {
    expect(mysqlUnavailable, `MySQL must be reachable under CI: ${mysqlUnavailable}`).toBeNull()
    const { url, count } = database!
    expect(await count(eligibleWhere)).toBe(MY_ROWS)
    const r = await runCli(['purge', '--database', url, '--dry-run', '--retention-days', '30'], {
      env: env(),
    })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(
      `${MY_ROWS} code rows older than 30 days would be deleted; nothing was deleted`,
    )
    const json = await runCli(['purge', '--database', url, '--dry-run', '--json'], { env: env() })
    expect(json.code, json.stderr).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({
      dryRun: true,
      eligible: MY_ROWS,
      deleted: 0,
      remaining: MY_ROWS,
    })
    expect(await count()).toBe(MY_ROWS + MY_KEEP + MY_RECENT)
  })

  mysqlIt('deletes in chunks with a report that matches the database', async () => {
    expect(mysqlUnavailable, `MySQL must be reachable under CI: ${mysqlUnavailable}`).toBeNull()
    const { name, url, count } = database!
    const before = await count()
    const r = await runCli(
      ['purge', '--database', url, '--chunk-size', '500', '--max-deletions', 'unlimited', '--json'],
      { env: env() },
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(new RegExp(`^purge: ${MY_ROWS}/${MY_ROWS} rows \\(100%\\)`, 'm'))
    const report = JSON.parse(r.stdout)
    expect(report).toMatchObject({
      eligible: MY_ROWS,
      deleted: MY_ROWS,
      remaining: 0,
      done: true,
      interrupted: false,
    })
    expect(report.rounds).toBe(MY_ROWS / 500 + 1)
    const after = await count()
    expect(before - after).toBe(report.deleted)
    expect(after).toBe(MY_KEEP + MY_RECENT)
    expect(await count(eligibleWhere)).toBe(report.remaining)
    expect(await count("id like 'keep-%' or id like 'recent-%'")).toBe(MY_KEEP + MY_RECENT)
    expect(await count("event = 'purge.run'", 'rc_audit_log')).toBe(1)
    // The used codes are folded into their batch before they go.
    const [old] = await mysqlQuery<{ purged_used: number }>(
      `select purged_used from rc_batches where id = 'b-old'`,
      [],
      name,
    )
    expect(old?.purged_used).toBe(MY_ROWS)
    // Then the emptied, ended batch.
    const empty = await runCli(['purge', '--database', url, '--delete-empty-batches', '--json'], {
      env: env(),
    })
    expect(empty.code, empty.stderr).toBe(0)
    expect(JSON.parse(empty.stdout)).toMatchObject({ eligible: 0, deleted: 0, batchesDeleted: 1, done: true })
    expect(await count('1 = 1', 'rc_batches')).toBe(1)
  })

  mysqlIt('purge-audit: the dry run and the run agree with the database', async () => {
    expect(mysqlUnavailable, `MySQL must be reachable under CI: ${mysqlUnavailable}`).toBeNull()
    const { name, url, count } = database!
    const now = Date.now()
    const rows: unknown[][] = []
    for (let i = 0; i < 400; i++) rows.push([`a-${i}`, i < 300 ? 1000 + i : now, 'redeem', 'success'])
    await mysqlQuery('insert into rc_audit_log (id, at, event, outcome) values ?', [rows], name)
    const total = await count('1 = 1', 'rc_audit_log')
    const dry = await runCli(['purge-audit', '--database', url, '--dry-run', '--json'], { env: env() })
    expect(dry.code, dry.stderr).toBe(0)
    expect(JSON.parse(dry.stdout)).toMatchObject({
      kind: 'audit',
      dryRun: true,
      eligible: 300,
      remaining: 300,
    })
    expect(await count('1 = 1', 'rc_audit_log')).toBe(total)
    const r = await runCli(
      ['purge-audit', '--database', url, '--chunk-size', '100', '--max-deletions', 'unlimited', '--json'],
      { env: env() },
    )
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ eligible: 300, deleted: 300, remaining: 0, done: true })
    expect(await count('at < 1000000000000', 'rc_audit_log')).toBe(0)
    // 300 old ones deleted, one audit.purged record added.
    expect(await count('1 = 1', 'rc_audit_log')).toBe(total - 300 + 1)
  })
})

afterAll(() => {})
