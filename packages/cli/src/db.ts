/**
 * Opening the database named by `--database` (or `DATABASE_URL`): PostgreSQL through a `pg` pool,
 * MySQL / MariaDB through a mysql2 pool, SQLite through better-sqlite3. The drivers are optional
 * peers, loaded only when a command opens that kind of database. The URL is never printed (it may
 * hold a password).
 */
import { existsSync } from 'node:fs'
import { createPgPool, MYSQL_TEXT_COLUMNS, type RecoveryCodesDialect } from '@recovery-codes/store-kysely'
import type Database from 'better-sqlite3'
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, sql } from 'kysely'
import { CliError, usageError } from './io.ts'
import { loadOptional } from './optional.ts'

/**
 * The database-enforced deadline of every statement the CLI runs on PostgreSQL, in milliseconds;
 * on MySQL / MariaDB, of every lock wait (row and metadata locks).
 */
const CLI_DEADLINE_MS = 120_000

/** Where the database is, parsed from `--database`. */
export type DatabaseTarget =
  | { dialect: 'postgres'; url: string; schema?: string }
  | { dialect: 'mysql'; url: string }
  | { dialect: 'sqlite'; file: string }

/** An open database; `close()` ends the pool or closes the file. */
export interface OpenDatabase {
  db: Kysely<any>
  dialect: RecoveryCodesDialect
  target: DatabaseTarget
  close(): Promise<void>
}

/** Options of {@link resolveDatabase}. */
export interface ResolveDatabaseOptions {
  /** `--database`. */
  database?: string | undefined
  /** `--schema` (PostgreSQL only): the `search_path` of every connection. */
  schema?: string | undefined
  /** The environment, for `DATABASE_URL`. */
  env: Record<string, string | undefined>
}

/**
 * Parses `--database` (default `DATABASE_URL`): `postgres://…` or `postgresql://…`;
 * `mysql://…` or `mariadb://…` (the same driver, mysql2), naming a database; `sqlite:<path>` or a
 * plain file path for SQLite.
 *
 * @throws CliError (exit 2) when none is given, the scheme is unsupported, a MySQL URL is malformed
 * or names no database, or `--schema` is used with MySQL or SQLite.
 */
export function resolveDatabase(options: ResolveDatabaseOptions): DatabaseTarget {
  const raw = options.database ?? options.env.DATABASE_URL
  if (raw === undefined || raw.trim() === '') {
    throw usageError('no database: pass --database <url> or set DATABASE_URL')
  }
  const value = raw.trim()
  if (/^postgres(ql)?:\/\//i.test(value)) {
    return options.schema === undefined
      ? { dialect: 'postgres', url: value }
      : { dialect: 'postgres', url: value, schema: options.schema }
  }
  if (/^(mysql|mariadb):\/\//i.test(value)) {
    if (options.schema !== undefined) {
      throw usageError(
        '--schema applies to PostgreSQL only: on MySQL / MariaDB, name the database in the URL',
      )
    }
    // Checked here rather than by mysql2 on connect: without a database every statement fails
    // with "No database selected". The messages never quote the URL (it may hold a password).
    const database = mysqlDatabase(value)
    if (database === undefined) throw usageError('invalid MySQL / MariaDB URL')
    if (database === '') {
      throw usageError('a MySQL / MariaDB URL must name the database: mysql://user@host:3306/<database>')
    }
    return { dialect: 'mysql', url: value }
  }
  let file: string | undefined
  if (/^sqlite:/i.test(value)) file = value.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')
  else if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value)) file = value
  if (file === undefined || file === '') {
    throw usageError(
      'unsupported database URL: use postgres://…, mysql://…, mariadb://…, sqlite:<path> or a SQLite file path',
    )
  }
  if (options.schema !== undefined) throw usageError('--schema applies to PostgreSQL only')
  return { dialect: 'sqlite', file }
}

/** The database a MySQL URL names (`''` for none), as mysql2 reads it; `undefined` when it does not parse. */
function mysqlDatabase(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).pathname.slice(1))
  } catch {
    return undefined
  }
}

/** A redacted description of the target for messages: never the user or password. */
export function describeTarget(target: DatabaseTarget): string {
  if (target.dialect === 'sqlite') return `SQLite ${target.file}`
  if (target.dialect === 'mysql') {
    const label = /^mariadb:/i.test(target.url) ? 'MariaDB' : 'MySQL'
    try {
      const u = new URL(target.url)
      return `${label} ${u.hostname}${u.port ? `:${u.port}` : ''}/${mysqlDatabase(target.url) ?? ''}`
    } catch {
      return label
    }
  }
  try {
    const u = new URL(target.url)
    const db = u.pathname.replace(/^\//, '') || '(default)'
    return `PostgreSQL ${u.hostname}${u.port ? `:${u.port}` : ''}/${db}${target.schema ? ` schema ${target.schema}` : ''}`
  } catch {
    return 'PostgreSQL'
  }
}

/**
 * Opens the target, loading its driver (`pg`, `mysql2` or `better-sqlite3`) first. MySQL: a pool of
 * two connections whose `varbinary` ids and keys read back as strings (`MYSQL_TEXT_COLUMNS`), so
 * the commands' own queries see what the other dialects return. SQLite: WAL and a 10 s busy
 * timeout; with `create: false` a missing file is an error instead of a new empty database.
 *
 * @throws CliError (exit 2) when the driver is not installed.
 * @throws CliError (exit 1) when the SQLite file is missing or cannot be opened.
 */
export async function openDatabase(
  target: DatabaseTarget,
  options: { create?: boolean } = {},
): Promise<OpenDatabase> {
  if (target.dialect === 'postgres') {
    const { default: pg } = await loadOptional('pg', 'PostgreSQL', () => import('pg'))
    // Error listeners on the pool and on every client: a server restart or a killed backend must
    // not crash the CLI with an unhandled 'error' event. The deadline is enforced by PostgreSQL
    // (statement, lock and idle-in-transaction timeouts): an operator's command, so it allows a
    // migration's index build or a stats scan on a large table, yet never hangs on a lock forever.
    const pool = createPgPool(pg.Pool, {
      connectionString: target.url,
      max: 2,
      connectionTimeoutMillis: 10_000,
      deadlineMs: CLI_DEADLINE_MS,
      ...(target.schema === undefined ? {} : { options: `-c search_path=${target.schema}` }),
    })
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
    return { db, dialect: 'postgres', target, close: () => db.destroy() }
  }
  if (target.dialect === 'mysql') {
    const { createPool } = await loadOptional('mysql2', 'MySQL / MariaDB', () => import('mysql2'))
    // mysql2 reads host, port, user, password and database from the URL and ignores its scheme
    // (so `mariadb://` works); query parameters become connection options.
    const pool = createPool({ uri: target.url, connectionLimit: 2, connectTimeout: 10_000 })
    // A pool connection removes itself from the pool on its first 'error' event only; a listener
    // of our own keeps a later one (a server restart while idle) from crashing the CLI.
    pool.on('connection', (connection) => connection.on('error', () => {}))
    // Lock waits end at the deadline: `lock_wait_timeout`, for the metadata locks a migration or a
    // purge may wait on, defaults to a year on MySQL and a day on MariaDB. Statement time has no
    // setting common to MySQL 8 (`max_execution_time`, SELECT only) and MariaDB
    // (`max_statement_time`), so it is left to the server.
    const seconds = CLI_DEADLINE_MS / 1000
    const db = new Kysely<any>({
      dialect: new MysqlDialect({
        pool,
        onCreateConnection: async (connection) => {
          await connection.executeQuery(
            sql`set session lock_wait_timeout = ${seconds}, innodb_lock_wait_timeout = ${seconds}`.compile(
              db,
            ),
          )
        },
      }),
      plugins: [MYSQL_TEXT_COLUMNS],
    })
    return { db, dialect: 'mysql', target, close: () => db.destroy() }
  }
  const { default: Sqlite } = await loadOptional('better-sqlite3', 'SQLite', () => import('better-sqlite3'))
  if (!options.create && !existsSync(target.file)) {
    throw new CliError(`SQLite file not found: ${target.file} (run \`recovery-codes migrate\` first)`)
  }
  let sqlite: Database.Database
  try {
    sqlite = new Sqlite(target.file, { timeout: 10_000 })
    sqlite.pragma('journal_mode = WAL')
  } catch (e) {
    throw new CliError(
      `cannot open SQLite file ${target.file}: ${e instanceof Error ? e.message : String(e)}`,
    )
  }
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: sqlite }) })
  return { db, dialect: 'sqlite', target, close: () => db.destroy() }
}

const MIN_DATE_MS = -62_135_596_800_000 // 0001-01-01T00:00:00Z
const MAX_DATE_MS = 253_402_300_799_999 // 9999-12-31T23:59:59.999Z

/**
 * Epoch ms as a timestamp column wants it (the store's convention): a `Date` on PostgreSQL
 * (`timestamptz`, clamped to years 0001–9999 as the store clamps); the number itself on SQLite
 * (`integer`) and MySQL / MariaDB (`bigint`).
 */
export function toDbTime(dialect: RecoveryCodesDialect, ms: number): number | Date {
  if (dialect === 'postgres') return new Date(Math.max(MIN_DATE_MS, Math.min(MAX_DATE_MS, ms)))
  return ms
}
