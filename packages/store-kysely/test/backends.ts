import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { probePostgres } from '@recovery-codes/testing'
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import { PGliteDialect } from 'kysely-pglite-dialect'
import pg from 'pg'
import { migrateRecoveryCodes } from '../src/migrations.ts'

export { probePostgres }

/** One migrated database for a test file; `reset()` empties the `rc_` tables between tests. */
export interface Backend {
  name: 'sqlite' | 'pglite' | 'postgres'
  db: Kysely<any>
  /** SQLite file path or PostgreSQL connection settings, for child processes. */
  where: { file?: string; url?: string; schema?: string }
  reset(): Promise<void>
  close(): Promise<void>
}

const TABLES = ['rc_codes', 'rc_batches', 'rc_attempts', 'rc_audit', 'rc_email_log'] as const

export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** SQLite in a temporary file with WAL, never `:memory:`, so child processes can share it. */
export function openSqliteFile(file: string): Kysely<any> {
  const database = new Database(file, { timeout: 10_000 })
  database.pragma('journal_mode = WAL')
  database.pragma('synchronous = NORMAL')
  return new Kysely({ dialect: new SqliteDialect({ database }) })
}

export async function sqliteBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'rc-sqlite-'))
  const file = join(dir, 'rc.db')
  const db = openSqliteFile(file)
  await migrateRecoveryCodes(db)
  return {
    name: 'sqlite',
    db,
    where: { file },
    async reset() {
      for (const t of TABLES) await db.deleteFrom(t).execute()
    },
    async close() {
      await db.destroy()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export async function pgliteBackend(): Promise<Backend> {
  const db = new Kysely<any>({ dialect: new PGliteDialect(new PGlite()) })
  await migrateRecoveryCodes(db)
  return {
    name: 'pglite',
    db,
    where: {},
    async reset() {
      await sql`truncate rc_codes, rc_batches, rc_attempts, rc_audit, rc_email_log`.execute(db)
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
      await sql`truncate rc_codes, rc_batches, rc_attempts, rc_audit, rc_email_log`.execute(db)
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
