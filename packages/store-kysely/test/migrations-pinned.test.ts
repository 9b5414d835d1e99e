/**
 * Shipped migrations never change: the SQL every released migration sends (up, and down in reverse
 * order) on SQLite and on PostgreSQL (PGlite) is pinned in `fixtures/migrations-pinned.json`. A new
 * migration adds its own entry (`RC_PIN_MIGRATIONS=1` rewrites the file; only ever for a migration
 * that has not shipped yet, which the diff review shows).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { PGliteDialect } from 'kysely-pglite-dialect'
import { describe, expect, it } from 'vitest'
import { recoveryCodesMigrations } from '../src/migrations.ts'

const FIXTURE = new URL('./fixtures/migrations-pinned.json', import.meta.url)
type Pinned = Record<string, Record<string, { up: string[]; down: string[] }>>

async function capture(
  open: (log: string[]) => Kysely<any>,
): Promise<Record<string, { up: string[]; down: string[] }>> {
  const log: string[] = []
  const db = open(log)
  const out: Record<string, { up: string[]; down: string[] }> = {}
  const names = Object.keys(recoveryCodesMigrations).sort()
  try {
    for (const name of names) {
      log.length = 0
      await recoveryCodesMigrations[name]!.up(db)
      out[name] = { up: [...log], down: [] }
    }
    for (const name of [...names].reverse()) {
      log.length = 0
      await recoveryCodesMigrations[name]!.down?.(db)
      out[name]!.down = [...log]
    }
  } finally {
    await db.destroy()
  }
  return out
}

const logTo =
  (log: string[]) => (e: { level: string; query: { sql: string; parameters: readonly unknown[] } }) => {
    if (e.level === 'query')
      log.push(
        e.query.parameters.length === 0
          ? e.query.sql
          : `${e.query.sql} -- ${JSON.stringify(e.query.parameters)}`,
      )
  }

describe('shipped migrations are pinned', () => {
  it('sends exactly the pinned SQL on SQLite and PostgreSQL', async () => {
    const actual: Pinned = {
      sqlite: await capture(
        (log) =>
          new Kysely({ dialect: new SqliteDialect({ database: new Database(':memory:') }), log: logTo(log) }),
      ),
      postgres: await capture(
        (log) => new Kysely({ dialect: new PGliteDialect(new PGlite()), log: logTo(log) }),
      ),
    }
    if (process.env.RC_PIN_MIGRATIONS === '1') writeFileSync(FIXTURE, `${JSON.stringify(actual, null, 2)}\n`)
    const pinned = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Pinned
    for (const dialect of ['sqlite', 'postgres'] as const) {
      // Every pinned migration still exists and sends the same statements; new ones may be added.
      for (const [name, sqlOf] of Object.entries(pinned[dialect]!)) {
        expect(actual[dialect]![name], `${dialect} ${name}`).toEqual(sqlOf)
      }
      expect(Object.keys(pinned[dialect]!).length).toBeGreaterThanOrEqual(5)
    }
  }, 60_000)
})
