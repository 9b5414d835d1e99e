/**
 * Opt-in, SQLite: WAL checkpoints in a worker thread, so no request pays for one. By default
 * SQLite checkpoints inside the commit that grows the WAL past 1,000 pages: every few hundred
 * redeems one of them copies those pages into the database file and waits for its fsync, which
 * sets the redeem's p99. {@link startSqliteCheckpointer} turns that off on the host's connection
 * and runs `PRAGMA wal_checkpoint(PASSIVE)` on a connection of its own, in a worker thread, every
 * `intervalMs`: a passive checkpoint never blocks a writer or a reader, so the event loop and the
 * write lock never wait for one.
 */
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import { RecoveryCodesError } from '@recovery-codes/core'

/** The part of a better-sqlite3 `Database` the checkpointer uses. */
export interface CheckpointedSqliteDatabase {
  /** The file path (better-sqlite3's `name`). */
  readonly name: string
  readonly memory: boolean
  pragma(source: string, options?: { simple?: boolean }): unknown
}

/** Options for {@link startSqliteCheckpointer}. */
export interface SqliteCheckpointerOptions {
  /**
   * Milliseconds between two passive checkpoints, from 10 to 60,000.
   * @default 250
   */
  intervalMs?: number
}

/** A running checkpointer: `stop()` ends the worker and gives the connection its autocheckpoint back. */
export interface SqliteCheckpointer {
  stop(): Promise<void>
}

/** SQLite's default `wal_autocheckpoint`, restored by `stop()`. */
const DEFAULT_AUTOCHECKPOINT = 1000

/**
 * The worker: its own connection to the file (busy timeout 0: a passive checkpoint takes what it
 * can and returns), one passive checkpoint per interval, until the parent terminates it.
 */
const WORKER = `
const { workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.file, { fileMustExist: true, timeout: 0 })
const sleeper = new Int32Array(new SharedArrayBuffer(4))
for (;;) {
  try { db.pragma('wal_checkpoint(PASSIVE)') } catch {}
  Atomics.wait(sleeper, 0, 0, workerData.intervalMs)
}
`

/**
 * Starts checkpointing `database` (a better-sqlite3 `Database` on a file in WAL mode) from a worker
 * thread, and sets its `wal_autocheckpoint` to 0. The worker is `unref`'d (it never keeps the
 * process alive); if it dies, the connection's autocheckpoint is restored. Call it once per
 * process and database file.
 *
 * @throws RecoveryCodesError `CONFIG_INVALID` for an in-memory database, a database not in WAL
 *   mode, or a bad `intervalMs`.
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { startSqliteCheckpointer } from '@recovery-codes/store-kysely'
 *
 * const database = new Database('app.db')
 * database.pragma('journal_mode = WAL')
 * const checkpointer = startSqliteCheckpointer(database)
 * // on shutdown: await checkpointer.stop()
 * ```
 */
export function startSqliteCheckpointer(
  database: CheckpointedSqliteDatabase,
  options: SqliteCheckpointerOptions = {},
): SqliteCheckpointer {
  const intervalMs = options.intervalMs ?? 250
  if (!Number.isSafeInteger(intervalMs) || intervalMs < 10 || intervalMs > 60_000) {
    throw new RecoveryCodesError('CONFIG_INVALID', 'intervalMs must be an integer from 10 to 60000')
  }
  if (database.memory || database.name === '' || database.name === ':memory:') {
    throw new RecoveryCodesError('CONFIG_INVALID', 'the checkpointer needs a database file, not :memory:')
  }
  if (String(database.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') {
    throw new RecoveryCodesError('CONFIG_INVALID', "the checkpointer needs journal_mode = 'wal'")
  }
  const driver = createRequire(import.meta.url).resolve('better-sqlite3')
  const worker = new Worker(WORKER, { eval: true, workerData: { driver, file: database.name, intervalMs } })
  worker.unref()
  const restore = () => {
    try {
      database.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT}`)
    } catch {
      // The host closed its connection first: nothing to restore.
    }
  }
  let stopped = false
  worker.once('error', () => {})
  worker.once('exit', () => {
    if (!stopped) restore()
  })
  database.pragma('wal_autocheckpoint = 0')
  return {
    async stop() {
      if (stopped) return
      stopped = true
      await worker.terminate()
      restore()
    },
  }
}
