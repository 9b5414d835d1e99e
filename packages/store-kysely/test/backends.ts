import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { probePostgres } from '@recovery-codes/testing'
import Database from 'better-sqlite3'
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, sql } from 'kysely'
import { PGliteDialect } from 'kysely-pglite-dialect'
import { createConnection, createPool } from 'mysql2'
import pg from 'pg'
import { afterAll, beforeAll, beforeEach } from 'vitest'
import { migrateRecoveryCodes } from '../src/migrations.ts'
import { MYSQL_TEXT_COLUMNS } from '../src/store/mysql.ts'

export { probePostgres }

/** One migrated database for a test file; `reset()` empties the `rc_` tables between tests. */
export interface Backend {
  name: 'sqlite' | 'pglite' | 'postgres' | 'mysql'
  db: Kysely<any>
  /** SQLite file path, or PostgreSQL / MySQL connection settings, for child processes. */
  where: { file?: string; url?: string; schema?: string; database?: string }
  /** SQLite: the better-sqlite3 handle under `db` (for the store's `sqliteDatabase`). */
  sqlite?: Database.Database
  reset(): Promise<void>
  close(): Promise<void>
}

const TABLES = ['rc_codes', 'rc_batches', 'rc_attempts', 'rc_audit_log', 'rc_email_log'] as const

export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** SQLite in a temporary file with WAL, never `:memory:`, so child processes can share it. */
export function openSqliteFile(file: string): Kysely<any> {
  return openSqliteHandle(file).db
}

/** {@link openSqliteFile} with its better-sqlite3 handle. */
export function openSqliteHandle(file: string): { db: Kysely<any>; database: Database.Database } {
  const database = new Database(file, { timeout: 10_000 })
  database.pragma('journal_mode = WAL')
  database.pragma('synchronous = NORMAL')
  return { db: new Kysely({ dialect: new SqliteDialect({ database }) }), database }
}

export async function sqliteBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'rc-sqlite-'))
  const file = join(dir, 'rc.db')
  const { db, database } = openSqliteHandle(file)
  await migrateRecoveryCodes(db)
  return {
    name: 'sqlite',
    db,
    where: { file },
    sqlite: database,
    async reset() {
      for (const t of TABLES) await db.deleteFrom(t).execute()
    },
    async close() {
      await db.destroy()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * A {@link sqliteBackend} for the test file: opened before its tests, emptied before each, closed
 * after them. Returns its getter.
 */
export function useSqliteBackend(): () => Backend {
  let backend: Backend | undefined
  beforeAll(async () => {
    backend = await sqliteBackend()
  })
  afterAll(async () => {
    await backend?.close()
  })
  beforeEach(async () => {
    await backend!.reset()
  })
  return () => backend!
}

export async function pgliteBackend(): Promise<Backend> {
  const db = new Kysely<any>({ dialect: new PGliteDialect(new PGlite()) })
  await migrateRecoveryCodes(db)
  return {
    name: 'pglite',
    db,
    where: {},
    async reset() {
      await sql`truncate rc_codes, rc_batches, rc_attempts, rc_audit_log, rc_email_log`.execute(db)
    },
    async close() {
      await db.destroy()
    },
  }
}

/** A pg Pool whose connections see only `schema` (plus `public` for nothing of ours). */
export function openPg(schema: string, max = 10): Kysely<any> {
  return new Kysely({
    dialect: new PostgresDialect({
      pool: new pg.Pool({ connectionString: PG_URL, max, options: `-c search_path=${schema}` }),
    }),
  })
}

/** A fresh schema `rc_test_<random>` on the real server, migrated; dropped on `close()`. */
export async function postgresBackend(max = 10): Promise<Backend> {
  const schema = `rc_test_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  // The schema name is generated here from hex digits, never from input.
  await admin.query(`create schema ${schema}`)
  await admin.end()
  const db = openPg(schema, max)
  await migrateRecoveryCodes(db)
  return {
    name: 'postgres',
    db,
    where: { url: PG_URL, schema },
    async reset() {
      await sql`truncate rc_codes, rc_batches, rc_attempts, rc_audit_log, rc_email_log`.execute(db)
    },
    async close() {
      await db.destroy()
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      await c.query(`drop schema if exists ${schema} cascade`)
      await c.end()
    },
  }
}

/**
 * Whether the real PostgreSQL tests run. Unreachable: skip with a message, except under `CI=true`
 * where the caller must fail (see `requirePostgres` in each file).
 */
export const pgUnavailable = await probePostgres()
export const isCI = process.env.CI === 'true'
if (pgUnavailable !== null && !isCI) {
  console.warn(
    `[store-kysely] PostgreSQL at ${PG_URL} unreachable (${pgUnavailable}): real-PostgreSQL tests SKIPPED`,
  )
}

/** Every row of every `rc_` table, for the no-plaintext scans of the service suite. */
export async function dumpTables(db: Kysely<any>): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {}
  for (const t of TABLES) out[t] = await db.selectFrom(t).selectAll().execute()
  return out
}

export const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'

/** `null` when the MySQL / MariaDB server at `url` answers `select 1` within 3 s; the reason otherwise. */
export async function probeMysql(url: string = MYSQL_URL): Promise<string | null> {
  const connection = createConnection({ uri: url, connectTimeout: 3000 }).promise()
  try {
    await connection.query('select 1')
    return null
  } catch (e) {
    return e instanceof Error ? e.message || (e as { code?: string }).code || e.name : String(e)
  } finally {
    await connection.end().catch(() => {})
  }
}

/**
 * A mysql2 pool on `database` of the server at {@link MYSQL_URL}. Its ids read back as strings
 * (`MYSQL_TEXT_COLUMNS`, as the store reads them), so tests compare raw rows like on the other
 * dialects.
 */
export function openMysql(database: string, max = 10): Kysely<any> {
  return new Kysely({
    dialect: new MysqlDialect({ pool: createPool({ uri: MYSQL_URL, database, connectionLimit: max }) }),
    plugins: [MYSQL_TEXT_COLUMNS],
  })
}

/** Runs one statement on a short-lived connection to the server's default database. */
async function mysqlAdmin(statement: string): Promise<void> {
  const connection = createConnection({ uri: MYSQL_URL }).promise()
  try {
    await connection.query(statement)
  } finally {
    await connection.end().catch(() => {})
  }
}

/** A fresh database `rc_t_<random>` on the real MySQL / MariaDB server, migrated; dropped on `close()`. */
export async function mysqlBackend(max = 10): Promise<Backend> {
  const database = `rc_t_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`
  // The database name is generated here from hex digits, never from input.
  await mysqlAdmin(`create database ${database}`)
  const db = openMysql(database, max)
  try {
    await migrateRecoveryCodes(db)
  } catch (e) {
    await db.destroy()
    await mysqlAdmin(`drop database if exists ${database}`)
    throw e
  }
  return {
    name: 'mysql',
    db,
    where: { url: MYSQL_URL, database },
    async reset() {
      // In TABLES order: codes before the batches they reference (InnoDB refuses TRUNCATE of a
      // referenced table).
      for (const t of TABLES) await db.deleteFrom(t).execute()
    },
    async close() {
      await db.destroy()
      await mysqlAdmin(`drop database if exists ${database}`)
    },
  }
}

/**
 * Whether the real MySQL / MariaDB tests run. Unreachable: skip with a message, except under
 * `CI=true` where the caller must fail (see `store.mysql.test.ts`).
 */
export const mysqlUnavailable = await probeMysql()
if (mysqlUnavailable !== null && !isCI) {
  console.warn(
    `[store-kysely] MySQL at ${MYSQL_URL} unreachable (${mysqlUnavailable}): real-MySQL tests SKIPPED`,
  )
}
