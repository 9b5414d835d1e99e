// A TypeScript host on the installed tarballs: every import below goes through the packages'
// `exports` and their published .d.ts files (compiled with --skipLibCheck false, so the
// declarations themselves must be valid). Copied into the temporary app as consumer.ts; it is
// stored as .mts so the workspace's own `tsc -p tsconfig.json` (which includes scripts/**/*.ts
// and cannot resolve these packages from here) leaves it alone. Type-checked only, never run.
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import {
  type ConfirmResult,
  checkConfig,
  configFromEnv,
  createFetchHandler,
  createRecoveryCodes,
  ERROR_HTTP_STATUS,
  type FetchRecoveryContext,
  type GenerateResult,
  type HttpHooks,
  isRecoveryCodesError,
  markFirstFactor,
  type RecoveryCodeStore,
  type RecoveryCodes,
  RecoveryCodesError,
  type RecoveryCodesErrorCode,
  type RedeemResult,
  SESSION_KEYS,
  type StatusResult,
} from '@recovery-codes/core'
import { expressSession, recoveryCodesRouter } from '@recovery-codes/express'
import { fastifyHostSession, recoveryCodesFastify } from '@recovery-codes/fastify'
import { codesEmail, emlFileMailer } from '@recovery-codes/mailer'
import { pdfExport } from '@recovery-codes/pdf' // @pdf
import {
  kyselyStore,
  migrateRecoveryCodes,
  PURGE_REST_RATIO,
  type RecoveryCodesDatabase,
  recoveryCodesMigrations,
  type SyncSqliteDatabase,
} from '@recovery-codes/store-kysely'
import { memoryStore } from '@recovery-codes/store-memory'
import { type ExpressPagesHooks, recoveryCodesPages } from '@recovery-codes/ui/express'
import express, { type Request } from 'express'
import session from 'express-session'
import Fastify from 'fastify'
import {
  DummyDriver,
  Kysely,
  Migrator,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from 'kysely'

const pepper = { id: 'k1', secret: `hex:${'00'.repeat(32)}` }

// ---- core + stores ----
const memory: RecoveryCodeStore = memoryStore()
const db = new Kysely<RecoveryCodesDatabase>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new PostgresIntrospector(k),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
})
const sqlStore: RecoveryCodeStore = kyselyStore(db, { purgeRestRatio: PURGE_REST_RATIO.postgres })
// The better-sqlite3 handle's shape, as a host passes it with `sqliteDatabase`.
export type SqliteHandle = SyncSqliteDatabase
export const migrations: Promise<unknown> = migrateRecoveryCodes(db)
export const migrator = new Migrator({
  db,
  provider: { getMigrations: async () => recoveryCodesMigrations },
  migrationTableName: 'rc_migrations',
  migrationLockTableName: 'rc_migrations_lock',
})

const rc: RecoveryCodes = createRecoveryCodes({
  peppers: [pepper],
  store: memory,
  mailer: emlFileMailer({ dir: './.mail' }),
  export: { pdf: pdfExport() }, // @pdf
})
// The documented idiom (configFromEnv's @example): peppers must come from somewhere.
const fromEnv = configFromEnv(process.env)
if (!fromEnv.peppers) throw new Error('Set RECOVERY_CODES_PEPPER')
export const rcSql: RecoveryCodes = createRecoveryCodes({
  ...fromEnv,
  peppers: fromEnv.peppers,
  store: sqlStore,
})
export const problems = checkConfig({ peppers: [pepper], store: memory })

export async function flow(userId: string): Promise<number> {
  const generated: GenerateResult = await rc.generate({ userId })
  if (!generated.ok) return generated.retryAfterMs
  const confirmed: ConfirmResult = await rc.confirm({ userId, reveal: generated.reveal })
  const first: string = generated.codes[0] ?? confirmed.batchId
  const redeemed: RedeemResult = await rc.redeem({ userId, code: first })
  const status: StatusResult = await rc.status({ userId })
  const mail = codesEmail({ siteName: rc.config.siteName, codes: generated.codes })
  return (redeemed.ok ? redeemed.remaining : redeemed.retryAfterMs) + status.remaining + mail.subject.length
}

export function describeError(e: unknown): string {
  if (isRecoveryCodesError(e)) {
    const code: RecoveryCodesErrorCode = e.code
    return `${code} → HTTP ${ERROR_HTTP_STATUS[code]}`
  }
  return new RecoveryCodesError('INTERNAL', 'unexpected').message
}

// ---- fetch handler ----
const fetchHooks: HttpHooks<FetchRecoveryContext> = {
  getUserId: ({ request }) => request.headers.get('x-user') ?? null,
  getPendingUserId: () => null,
  getRevealToken: () => null,
  setRevealToken: () => {},
  regenerateSession: ({ appendResponseHeader }) => appendResponseHeader('Set-Cookie', 'sid=new'),
  logIn: () => {},
  isFreshlyAuthenticated: () => false,
  getClientKey: () => '192.0.2.1',
}
export const handler = createFetchHandler(rc, fetchHooks, { basePath: '/api/recovery' })
export const { GET, POST } = handler
export const answer: Promise<Response> = handler(new Request('https://app.example/api/recovery/status'))

// ---- Express: pages + JSON API ----
const pagesHooks: ExpressPagesHooks = {
  signInWithPassword: async (email: string, password: string) => (email && password ? 'u1' : null),
  verifyPassword: async (userId: string, password: string) => userId === 'u1' && password !== '',
}
const app = express()
app.use(session({ secret: 'a'.repeat(32), resave: false, saveUninitialized: false }))
app.use(express.json())
app.use(express.urlencoded({ extended: false }))
app.use('/account', recoveryCodesPages(rc, pagesHooks))
app.use('/account/recovery', recoveryCodesRouter(rc))
app.post('/login', (req: Request, res) => {
  markFirstFactor(expressSession(req), 'u1', Date.now())
  res.json({ next: SESSION_KEYS.pending })
})

// ---- Fastify ----
export async function fastifyApp() {
  const f = Fastify()
  await f.register(fastifyCookie)
  await f.register(fastifySession, { secret: 'b'.repeat(32), cookie: { secure: false } })
  await f.register(recoveryCodesFastify(rc), { prefix: '/api/recovery' })
  f.post('/login', async (request) => {
    markFirstFactor(fastifyHostSession(request), 'u1', Date.now())
    return { ok: true }
  })
  return f
}
