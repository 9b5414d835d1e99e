/**
 * The demo app: Express 5 + SQLite (better-sqlite3 through Kysely), a password first factor,
 * recovery codes as the second factor (or, opt-in, the reference app's email + code login), the
 * server-rendered pages of `@recovery-codes/ui` and the JSON API of `@recovery-codes/express`.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import {
  configFromEnv,
  createRecoveryCodes,
  type Logger,
  type LoginMode,
  type RecoveryCodesConfig,
} from '@recovery-codes/core'
import { demoUsers, type UsersDatabase } from '@recovery-codes/example-demo-users'
import { recoveryCodesRouter } from '@recovery-codes/express'
import { emlFileMailer } from '@recovery-codes/mailer'
import { pdfExport } from '@recovery-codes/pdf'
import { kyselyStore, migrateRecoveryCodes, sqliteStatementCache } from '@recovery-codes/store-kysely'
import { recoveryCodesPages } from '@recovery-codes/ui/express'
import Database from 'better-sqlite3'
import express from 'express'
import session from 'express-session'
import { Kysely, SqliteDialect } from 'kysely'
import { loadOrCreatePepper } from './pepper.ts'

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /** Where the SQLite file, the pepper and the mail folder live. */
  dataDir: string
  /** @default 3000; 0 picks a free port */
  port?: number
  /** @default '127.0.0.1' */
  host?: string
  /** Environment to read `RECOVERY_CODES_*`, `DEMO_*` from. @default process.env */
  env?: Record<string, string | undefined>
  /** Where log lines go (JSON, one per line). @default console.log */
  log?: (line: string) => void
}

/** What the security notifications tell the user to do (shown in the emails and the "This wasn't me" page). */
export const DEMO_CONTACT =
  'If you did not do this, contact the demo support desk at support@example.com or call +1 555 0100.'

/** A running demo. */
export interface RunningDemo {
  url: string
  port: number
  email: string
  password: string
  loginMode: LoginMode
  dataDir: string
  dbFile: string
  mailDir: string
  pepperCreated: boolean
  close(): Promise<void>
}

/** How long a password login counts as a fresh re-authentication. */
export const FRESHNESS_MS = 10 * 60_000
/** How long a password sign-in may wait for its recovery code. */
export const PENDING_TTL_MS = 10 * 60_000

function jsonLogger(log: (line: string) => void): Logger {
  const write = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    log(JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields }))
  return { debug: () => {}, info: write('info'), warn: write('warn'), error: write('error') }
}

export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const env = options.env ?? process.env
  const log = options.log ?? ((line: string) => console.log(line))
  const logger = jsonLogger(log)
  const dataDir = options.dataDir
  const mailDir = join(dataDir, 'mail')
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })

  // ---- database: one SQLite file, migrations on start ----
  const dbFile = join(dataDir, 'demo.sqlite')
  const sqlite = new Database(dbFile, { timeout: 5000 })
  sqlite.pragma('journal_mode = WAL')
  // Each SQL text prepared once (Kysely's SQLite driver would prepare on every query).
  const db = new Kysely<UsersDatabase>({
    dialect: new SqliteDialect({ database: sqliteStatementCache(sqlite) }),
  })
  await migrateRecoveryCodes(db)
  const users = demoUsers(db)
  await users.migrate()
  // The server listens first, so the "This wasn't me" links of the notifications name its real
  // port (0 picks a free one); requests before the app is ready get a 503.
  let app: express.Express | null = null
  const server = createServer((req, res) => {
    if (app) return void app(req, res)
    res.writeHead(503, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' }).end('Starting')
  })
  server.listen(options.port ?? 3000, options.host ?? '127.0.0.1')
  await new Promise<void>((ok, ko) => {
    server.once('listening', ok)
    server.once('error', ko)
  })
  const port = (server.address() as AddressInfo).port
  const url = `http://localhost:${port}`
  const publicUrl = (env.DEMO_PUBLIC_URL ?? url).replace(/\/+$/, '')

  const email = env.DEMO_EMAIL ?? 'demo@example.com'
  const password = env.DEMO_PASSWORD ?? 'demo-password'
  await users.seed(email, password)

  // ---- recovery codes: demo defaults, then RECOVERY_CODES_* from the environment ----
  const fromEnv = configFromEnv(env)
  const pepper = fromEnv.peppers ? null : loadOrCreatePepper(dataDir)
  const loginMode: LoginMode =
    env.DEMO_LOGIN_MODE === 'identifier-and-code'
      ? 'identifier-and-code'
      : (fromEnv.loginMode ?? 'second-factor')
  const config: RecoveryCodesConfig = {
    siteName: 'Recovery Codes Demo',
    logoutRedirect: '/signin',
    batchSize: 10,
    lowCodesThreshold: 3,
    history: { perPage: 5, maxVisible: 50 },
    audit: { storeEmailLog: true },
    ...fromEnv,
    cooldown: { baseSeconds: 30, multiplier: 2, cutoffSeconds: 300, ...fromEnv.cooldown },
    email: {
      enabled: true,
      from: 'no-reply@example.com',
      successMessage: 'Your recovery codes email has been successfully delivered.',
      ...fromEnv.email,
    },
    export: { ...fromEnv.export, pdf: pdfExport() },
    loginMode,
    peppers: fromEnv.peppers ?? [{ id: 'demo1', secret: pepper!.secret }],
    // The redeem as one synchronous transaction on the better-sqlite3 handle under `db`.
    store: kyselyStore(db, { sqliteDatabase: sqlite }),
    mailer: emlFileMailer({ dir: mailDir, from: 'no-reply@example.com' }),
    resolveEmail: (userId) => users.emailOf(userId),
    resolveUserId: (identifier) => users.idOf(identifier),
    // Security notifications with a "This wasn't me" link (NIST SP 800-63B-4 §4.2.3), written to
    // the mail folder like every demo email; the link opens the pages' /wasnt-me.
    notifications: { contact: DEMO_CONTACT, linkBaseUrl: `${publicUrl}/wasnt-me` },
    // "This wasn't me": every session of the user ends (the demo's sessions live in memory).
    onRepudiated: (userId) => endSessionsOf(userId),
    logger,
  }
  const rc = createRecoveryCodes(config)

  // ---- HTTP ----
  const sessions = new session.MemoryStore()
  function endSessionsOf(userId: string): Promise<void> {
    return new Promise((ok) => {
      sessions.all((error, all) => {
        if (error || !all) return ok()
        const entries = Array.isArray(all) ? [] : Object.entries(all)
        const mine = entries.filter(([, s]) => (s as unknown as Record<string, unknown>).rc_uid === userId)
        let left = mine.length
        if (left === 0) return ok()
        for (const [sid] of mine) sessions.destroy(sid, () => void (--left === 0 && ok()))
      })
    })
  }
  const web = express()
  app = web
  web.disable('x-powered-by')
  web.use((req, res, next) => {
    const started = performance.now()
    // The path only: query strings and bodies are never logged.
    res.on('finish', () =>
      logger.info('request', {
        method: req.method,
        path: req.path,
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
      }),
    )
    next()
  })
  web.use(
    session({
      store: sessions,
      name: 'rc_demo_sid',
      // Sessions live in memory and die with the process, so a per-process secret is enough.
      secret: randomBytes(32).toString('base64url'),
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', secure: 'auto', path: '/' },
    }),
  )

  const emailNote = `Demo mailer: messages are written as .eml files to ${mailDir}`
  const pages = recoveryCodesPages(
    rc,
    {
      signInWithPassword: (e, p) => users.signIn(e, p),
      verifyPassword: (id, p) => users.verify(id, p),
      userLabel: async (id) => (await users.emailOf(id)) ?? id,
    },
    { freshnessMs: FRESHNESS_MS, pendingTtlMs: PENDING_TTL_MS, emailNote, logger },
  )
  web.use(pages)

  // The same library as a JSON API, sharing the session (and its keys) with the pages.
  web.use(
    '/api/recovery',
    recoveryCodesRouter(rc, {}, { freshnessMs: FRESHNESS_MS, pendingTtlMs: PENDING_TTL_MS, logger }),
  )

  // Every other address: the pages' 404 page (their layout, title and landmarks); the API's stays text.
  web.use('/api', (_req, res) => {
    res.status(404).type('text/plain').set('Cache-Control', 'no-store').send('Not found')
  })
  web.use(pages.notFoundPage)
  web.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    logger.error('unhandled error', { error: err instanceof Error ? err.name : 'unknown' })
    if (!res.headersSent) res.status(500).type('text/plain').send('Internal error')
  })

  return {
    url,
    port,
    email,
    password,
    loginMode,
    dataDir,
    dbFile,
    mailDir,
    pepperCreated: pepper?.created ?? false,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((ok) => server.close(() => ok()))
      await db.destroy()
    },
  }
}
