/**
 * recovery-codes with Hono and PostgreSQL: the Kysely store over `pg`, migrations on start, the
 * pages of `@recovery-codes/ui/hono` and the JSON API of `@recovery-codes/hono`.
 */
import { randomBytes } from 'node:crypto'
import { getConnInfo } from '@hono/node-server/conninfo'
import { configFromEnv, createRecoveryCodes, type RecoveryCodes } from '@recovery-codes/core'
import { demoUsers, type UsersDatabase } from '@recovery-codes/example-demo-users'
import { recoveryCodes } from '@recovery-codes/hono'
import { pdfExport } from '@recovery-codes/pdf'
import { createPgPool, kyselyStore, migrateRecoveryCodes } from '@recovery-codes/store-kysely'
import { recoveryCodesPages } from '@recovery-codes/ui/hono'
import { Hono } from 'hono'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { memorySessions } from './session.ts'

export const FRESHNESS_MS = 10 * 60_000

export interface HonoDemoOptions {
  databaseUrl: string
  /** PostgreSQL schema to use (created if missing); default: the connection's search_path. */
  schema?: string
  env?: Record<string, string | undefined>
  email?: string
  password?: string
}

export interface HonoDemo {
  app: Hono
  rc: RecoveryCodes
  db: Kysely<UsersDatabase>
  /** True when no RECOVERY_CODES_PEPPER was set and a throwaway pepper is in use. */
  ephemeralPepper: boolean
  close(): Promise<void>
}

export async function createHonoDemo(options: HonoDemoOptions): Promise<HonoDemo> {
  const env = options.env ?? process.env
  if (options.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema)) {
    throw new Error('schema must match /^[a-z_][a-z0-9_]{0,62}$/')
  }
  if (options.schema) {
    const admin = new pg.Client({ connectionString: options.databaseUrl })
    await admin.connect()
    try {
      // The name is checked against a strict pattern above; identifiers cannot be bound.
      await admin.query(`create schema if not exists "${options.schema}"`)
    } finally {
      await admin.end()
    }
  }
  // Error listeners on the pool and every client (a killed backend is logged, not fatal) and a
  // 5 s deadline enforced by PostgreSQL itself (statement, lock and idle-in-transaction timeouts).
  const pool = createPgPool(pg.Pool, {
    connectionString: options.databaseUrl,
    max: 10,
    logger: console,
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  })
  const db = new Kysely<UsersDatabase>({ dialect: new PostgresDialect({ pool }) })
  await migrateRecoveryCodes(db)
  const users = demoUsers(db)
  await users.migrate()
  await users.seed(options.email ?? 'demo@example.com', options.password ?? 'demo-password')

  const fromEnv = configFromEnv(env)
  const ephemeralPepper = !fromEnv.peppers
  const rc = createRecoveryCodes({
    siteName: 'Recovery Codes (Hono + PostgreSQL)',
    logoutRedirect: '/signin',
    ...fromEnv,
    export: { ...fromEnv.export, pdf: pdfExport() },
    peppers: fromEnv.peppers ?? [{ id: 'ephemeral', secret: randomBytes(32) }],
    store: kyselyStore(db),
    resolveEmail: (userId) => users.emailOf(userId),
    resolveUserId: (identifier) => users.idOf(identifier),
  })

  const sessions = memorySessions()
  const clientKey = (c: Parameters<typeof getConnInfo>[0]) => {
    try {
      return getConnInfo(c).remote.address ?? null
    } catch {
      return null
    }
  }
  const app = new Hono()
  app.use('*', sessions.middleware)
  // Both read the session the middleware put in the context and share its keys.
  app.route(
    '/api/recovery',
    recoveryCodes(rc, { getClientKey: ({ c }) => clientKey(c) }, { freshnessMs: FRESHNESS_MS }),
  )
  app.route(
    '/',
    recoveryCodesPages(
      rc,
      {
        getClientKey: ({ c }) => clientKey(c),
        signInWithPassword: (e, p) => users.signIn(e, p),
        verifyPassword: (id, p) => users.verify(id, p),
        userLabel: async (id) => (await users.emailOf(id)) ?? id,
      },
      { freshnessMs: FRESHNESS_MS },
    ),
  )
  app.notFound((c) => c.text('Not found', 404, { 'Cache-Control': 'no-store' }))

  return {
    app,
    rc,
    db,
    ephemeralPepper,
    close: () => db.destroy(),
  }
}
