/**
 * `startSqliteCheckpointer`: the host connection's autocheckpoint is off, a worker thread copies
 * the WAL into the database file on its own connection, and `stop()` gives the autocheckpoint back.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isRecoveryCodesError } from '@recovery-codes/core'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { startSqliteCheckpointer } from '../src/sqlite-checkpoint.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function open(wal = true) {
  const dir = mkdtempSync(join(tmpdir(), 'rc-ckpt-'))
  dirs.push(dir)
  const file = join(dir, 'x.db')
  const db = new Database(file)
  if (wal) db.pragma('journal_mode = WAL')
  db.exec('create table t (id integer primary key, v blob)')
  return { db, file }
}

/** About 2,000 new pages, written through the host connection in WAL. */
function write(db: Database.Database) {
  const insert = db.prepare('insert into t (v) values (randomblob(4000))')
  db.transaction(() => {
    for (let i = 0; i < 2_000; i++) insert.run()
  })()
}

const until = async (check: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  return check()
}

describe('startSqliteCheckpointer', () => {
  it('turns the autocheckpoint off and checkpoints from a worker; stop() restores it', async () => {
    const { db, file } = open()
    const size = () => statSync(file).size
    const checkpointer = startSqliteCheckpointer(db, { intervalMs: 20 })
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0)
    const before = size()
    write(db)
    // The commit copies nothing into the file (the next test shows it); the worker does, soon after.
    // (Asserting "nothing yet" here would race the worker's first tick on a loaded machine.)
    expect(await until(() => size() > before + 2_000 * 4_000, 5_000)).toBe(true)
    await checkpointer.stop()
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000)
    await checkpointer.stop() // idempotent
    db.close()
  })

  it('without it, the same writes with the autocheckpoint off leave the file as it was', async () => {
    const { db, file } = open()
    db.pragma('wal_autocheckpoint = 0')
    const before = statSync(file).size
    write(db)
    await new Promise((r) => setTimeout(r, 200))
    expect(statSync(file).size).toBe(before)
    db.close()
  })

  it('refuses :memory:, a database not in WAL mode and a bad interval with CONFIG_INVALID', () => {
    const memory = new Database(':memory:')
    const { db: rollback } = open(false)
    const { db } = open()
    const refused = (f: () => unknown) => {
      let error: unknown
      try {
        f()
      } catch (e) {
        error = e
      }
      expect(isRecoveryCodesError(error, 'CONFIG_INVALID'), String(error)).toBe(true)
    }
    refused(() => startSqliteCheckpointer(memory))
    refused(() => startSqliteCheckpointer(rollback))
    for (const intervalMs of [0, 9, 1.5, 60_001, Number.NaN])
      refused(() => startSqliteCheckpointer(db, { intervalMs }))
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000)
    for (const d of [memory, rollback, db]) d.close()
  })
})
