/**
 * Opening the database named by `--database` (or `DATABASE_URL`): PostgreSQL through a `pg` pool,
 * SQLite through better-sqlite3. Both drivers are optional peers, loaded only when a command opens
 * that kind of database. The URL is never printed (it may hold a password).
 */
import { existsSync } from 'node:fs'
import { createPgPool, type RecoveryCodesDialect } from '@recovery-codes/store-kysely'
import type Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import { CliError, usageError } from './io.ts'
import { loadOptional } from './optional.ts'

/** The database-enforced deadline of every statement the CLI runs on PostgreSQL, in milliseconds. */
const CLI_DEADLINE_MS = 120_000

/** Where the database is, parsed from `--database`. */
export type DatabaseTarget =
  | { dialect: 'postgres'; url: string; schema?: string }
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
 * Parses `--database` (default `DATABASE_URL`): `postgres://…` or `postgresql://…`; `sqlite:<path>`
 * or a plain file path for SQLite.
 *
 * @throws CliError (exit 2) when none is given, the scheme is unsupported, or `--schema` is used with SQLite.
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
  let file: string | undefined
  if (/^sqlite:/i.test(value)) file = value.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')
  else if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value)) file = value
  if (file === undefined || file === '') {
    throw usageError('unsupported database URL: use postgres://…, sqlite:<path> or a SQLite file path')
  }
  if (options.schema !== undefined) throw usageError('--schema applies to PostgreSQL only')
  return { dialect: 'sqlite', file }
}

/** A redacted description of the target for messages: never the password. */
export function describeTarget(target: DatabaseTarget): string {
  if (target.dialect === 'sqlite') return `SQLite ${target.file}`
  try {
    const u = new URL(target.url)
    const db = u.pathname.replace(/^\//, '') || '(default)'
    return `PostgreSQL ${u.hostname}${u.port ? `:${u.port}` : ''}/${db}${target.schema ? ` schema ${target.schema}` : ''}`
  } catch {
    return 'PostgreSQL'
  }
}

/**
 * Opens the target, loading its driver (`pg` or `better-sqlite3`) first. SQLite: WAL and a 10 s
 * busy timeout; with `create: false` a missing file is an error instead of a new empty database.
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

/** Epoch ms as a timestamp column wants it (the store's convention): a number on SQLite, a `Date` on PostgreSQL. */
export function toDbTime(dialect: RecoveryCodesDialect, ms: number): number | Date {
  return dialect === 'postgres' ? new Date(Math.max(MIN_DATE_MS, Math.min(MAX_DATE_MS, ms))) : ms
}
