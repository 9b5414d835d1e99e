import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { probePostgres } from '@recovery-codes/testing'
import Database from 'better-sqlite3'
import { createPool } from 'mysql2'
import pg from 'pg'
import type { CliIO } from '../src/io.ts'

export { probePostgres }

/** The bin's source; the built `dist/cli.js` is tested in package.test.ts. */
export const SRC_CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url))
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
/**
 * Node's arguments that run the CLI from source in the workspace: tsx loads the TypeScript of this
 * package and of its workspace dependencies. The `--` ends Node's options, so Node does not read a
 * later `--env-file` itself (it scans the whole command line for it otherwise).
 */
export const CLI_NODE_ARGS: readonly string[] = ['--import', TSX_LOADER, '--', SRC_CLI]
/** The same as one shell command (for `script -c`). */
export const CLI_SHELL = [process.execPath, ...CLI_NODE_ARGS]
  .map((a) => `'${a.replaceAll("'", "'\\''")}'`)
  .join(' ')
export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
export const isCI = process.env.CI === 'true'

/** A fixed, valid 32-byte pepper (random bytes, base64). */
export const KEY_B64 = 'q3Vx8b0m5bJ9rYt1k2ZlS0cT7hX4wA6eN1uD8pF3jLo='

/** An environment without any RECOVERY_CODES_*, DJANGO_* or DATABASE_URL from the test runner. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SystemRoot']) {
    const v = process.env[k]
    if (v !== undefined) env[k] = v
  }
  return { ...env, NO_COLOR: '1', ...extra }
}

export interface CliRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  ms: number
}

/** A running CLI child process with its output collected. */
export interface CliChild {
  child: ChildProcess
  output: { stdout: string; stderr: string }
  /** Resolves when stderr or stdout matches. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>
  done: Promise<CliRun>
}

export function startCli(
  args: string[],
  opts: { env?: Record<string, string>; input?: string } = {},
): CliChild {
  const started = Date.now()
  const child = spawn(process.execPath, [...CLI_NODE_ARGS, ...args], {
    env: opts.env ?? cleanEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const output = { stdout: '', stderr: '' }
  const waiters: Array<() => void> = []
  const poke = () => {
    for (const w of waiters.splice(0)) w()
  }
  child.stdout!.on('data', (d: Buffer) => {
    output.stdout += d.toString()
    poke()
  })
  child.stderr!.on('data', (d: Buffer) => {
    output.stderr += d.toString()
    poke()
  })
  if (opts.input !== undefined) child.stdin!.end(opts.input)
  else child.stdin!.end()
  const done = new Promise<CliRun>((resolve) => {
    child.on('close', (code, signal) => {
      poke()
      resolve({ code, signal, ...output, ms: Date.now() - started })
    })
  })
  const waitFor = (re: RegExp, timeoutMs = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${re}; stderr: ${output.stderr.slice(-500)}`)),
        timeoutMs,
      )
      const check = () => {
        if (re.test(output.stderr) || re.test(output.stdout)) {
          clearTimeout(timer)
          resolve()
        } else if (child.exitCode !== null || child.signalCode !== null) {
          clearTimeout(timer)
          reject(new Error(`exited before ${re}; stderr: ${output.stderr.slice(-500)}`))
        } else waiters.push(check)
      }
      check()
    })
  return { child, output, waitFor, done }
}

/** Runs the real CLI (from source, see {@link CLI_NODE_ARGS}) to completion. */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; input?: string } = {},
): Promise<CliRun> {
  return startCli(args, opts).done
}

export function tempDir(prefix = 'rc-cli-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** Counts rows with a fresh connection (the CLI may have just written the file). */
export function sqliteCount(file: string, where = '1 = 1', table = 'rc_codes'): number {
  const db = new Database(file, { readonly: true })
  try {
    return (db.prepare(`select count(*) as n from ${table} where ${where}`).get() as { n: number }).n
  } finally {
    db.close()
  }
}

/**
 * Set-based seed straight into `rc_batches`/`rc_codes` (one recursive-CTE INSERT): `eligible` used
 * codes that died at epoch ms 1000+i (long past any retention), plus `keep` active codes and
 * `recent` codes used now, which no purge may touch.
 */
export function seedSqlite(file: string, o: { eligible: number; keep?: number; recent?: number }): void {
  const db = new Database(file, { timeout: 10_000 })
  const now = Date.now()
  try {
    db.exec('begin')
    db.prepare(
      `insert into rc_batches (id, user_id, key_id, status, created_at, ended_at, issued, purged_used)
       values ('b-old', 'u-old', 'k1', 'superseded', 1, 1000, ?, 0),
              ('b-live', 'u-live', 'k1', 'active', ?, null, ?, 0)`,
    ).run(o.eligible, now, (o.keep ?? 0) + (o.recent ?? 0))
    db.prepare(
      `with recursive seq(i) as (select 0 union all select i + 1 from seq where i < ? - 1)
       insert into rc_codes (id, user_id, batch_id, key_id, digest, state, created_at, expires_at, used_at, changed_at)
       select 'old-' || i, 'u-old', 'b-old', 'k1', randomblob(32), 'used', 1, null, 1000 + i, 1000 + i from seq`,
    ).run(o.eligible)
    if (o.keep) {
      db.prepare(
        `with recursive seq(i) as (select 0 union all select i + 1 from seq where i < ? - 1)
         insert into rc_codes (id, user_id, batch_id, key_id, digest, state, created_at, expires_at, used_at, changed_at)
         select 'keep-' || i, 'u-live', 'b-live', 'k1', randomblob(32), 'active', ?, null, null, null from seq`,
      ).run(o.keep, now)
    }
    if (o.recent) {
      db.prepare(
        `with recursive seq(i) as (select 0 union all select i + 1 from seq where i < ? - 1)
         insert into rc_codes (id, user_id, batch_id, key_id, digest, state, created_at, expires_at, used_at, changed_at)
         select 'recent-' || i, 'u-live', 'b-live', 'k1', randomblob(32), 'used', ?, null, ?, ? from seq`,
      ).run(o.recent, now, now, now)
    }
    db.exec('commit')
  } finally {
    db.close()
  }
}

/** Runs one statement on the real server (test code: schema names are generated hex). */
export async function pgQuery<T = Record<string, unknown>>(
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  try {
    return (await client.query(text, params)).rows as T[]
  } finally {
    await client.end()
  }
}

export const randomSchema = (prefix: string) =>
  `${prefix}_${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`

/** {@link MYSQL_URL} on another database (and, given, another password or port). */
export function mysqlUrl(database: string, change: { password?: string; port?: string } = {}): string {
  const u = new URL(MYSQL_URL)
  u.pathname = `/${database}`
  if (change.password !== undefined) u.password = change.password
  if (change.port !== undefined) u.port = change.port
  return u.href
}

/**
 * Runs one statement on the MySQL / MariaDB server at {@link MYSQL_URL} (on `database`, else the
 * URL's). A pool, not a bare connection: a connection's `end()` never settles after a fatal error.
 * `?` placeholders; a nested array after `values ?` is a multi-row insert.
 */
export async function mysqlQuery<T = Record<string, unknown>>(
  text: string,
  params: unknown[] = [],
  database?: string,
): Promise<T[]> {
  const pool = createPool({
    uri: database === undefined ? MYSQL_URL : mysqlUrl(database),
    connectionLimit: 1,
    connectTimeout: 3000,
  }).promise()
  try {
    const [rows] = await pool.query(text, params)
    return (Array.isArray(rows) ? rows : []) as T[]
  } finally {
    await pool.end()
  }
}

/** `null` when the MySQL / MariaDB server at {@link MYSQL_URL} answers `select 1`; the reason otherwise. */
export async function probeMysql(): Promise<string | null> {
  try {
    await mysqlQuery('select 1')
    return null
  } catch (e) {
    return e instanceof Error ? e.message || (e as { code?: string }).code || e.name : String(e)
  }
}

/** A database of its own for one test file on the server at {@link MYSQL_URL}. */
export interface MysqlDatabase {
  /** `rc_cli_<random hex>`. */
  name: string
  /** {@link MYSQL_URL} on it. */
  url: string
  /** `count(*)` of `table` where `where` (test code, no input). */
  count(where?: string, table?: string): Promise<number>
  /** Drops the database. */
  drop(): Promise<void>
}

/** Creates a fresh, empty `rc_cli_<random hex>` database (the CLI's `migrate` fills it). */
export async function createMysqlDatabase(): Promise<MysqlDatabase> {
  const name = randomSchema('rc_cli')
  // The name is generated hex, never input.
  await mysqlQuery(`create database ${name}`)
  return {
    name,
    url: mysqlUrl(name),
    count: async (where = '1 = 1', table = 'rc_codes') =>
      Number(
        (await mysqlQuery<{ n: number }>(`select count(*) as n from ${table} where ${where}`, [], name))[0]
          ?.n,
      ),
    drop: async () => {
      await mysqlQuery(`drop database if exists ${name}`)
    },
  }
}

/** {@link seedSqlite} on MySQL / MariaDB: the same rows, inserted 1,000 per statement. */
export async function seedMysql(
  database: string,
  o: { eligible: number; keep?: number; recent?: number },
): Promise<void> {
  const now = Date.now()
  const keep = o.keep ?? 0
  const recent = o.recent ?? 0
  await mysqlQuery(
    `insert into rc_batches (id, user_id, key_id, status, created_at, ended_at, issued, purged_used)
     values ('b-old', 'u-old', 'k1', 'superseded', 1, 1000, ?, 0),
            ('b-live', 'u-live', 'k1', 'active', ?, null, ?, 0)`,
    [o.eligible, now, keep + recent],
    database,
  )
  const rows: unknown[][] = []
  for (let i = 0; i < o.eligible; i++)
    rows.push([`old-${i}`, 'u-old', 'b-old', 'k1', randomBytes(32), 'used', 1, null, 1000 + i, 1000 + i])
  for (let i = 0; i < keep; i++)
    rows.push([`keep-${i}`, 'u-live', 'b-live', 'k1', randomBytes(32), 'active', now, null, null, null])
  for (let i = 0; i < recent; i++)
    rows.push([`recent-${i}`, 'u-live', 'b-live', 'k1', randomBytes(32), 'used', now, null, now, now])
  for (let i = 0; i < rows.length; i += 1000) {
    await mysqlQuery(
      `insert into rc_codes (id, user_id, batch_id, key_id, digest, state, created_at, expires_at, used_at, changed_at)
       values ?`,
      [rows.slice(i, i + 1000)],
      database,
    )
  }
}

/** In-process streams for `run()`: what the commands wrote, and an environment of your choice. */
export function fakeIO(env: Record<string, string> = {}, stdin: CliIO['stdin'] = new PassThrough()) {
  const out = { stdout: '', stderr: '' }
  const io: CliIO = {
    stdout: {
      write: (s: string) => {
        out.stdout += s
        return true
      },
    },
    stderr: {
      write: (s: string) => {
        out.stderr += s
        return true
      },
    },
    stdin,
    env,
  }
  return { io, out }
}
