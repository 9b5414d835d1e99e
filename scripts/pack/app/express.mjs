// A host app as a user would write it, against the installed tarballs only: Express 5,
// express-session, the pages at /account and the JSON API at /account/recovery, on PostgreSQL
// through Kysely and pure-JS pg. Environment: PG_URL, RC_SCHEMA, RC_PEPPER, SESSION_SECRET.
// Prints `listening <url>` once it accepts connections.
import { timingSafeEqual } from 'node:crypto'
import { createRecoveryCodes } from '@recovery-codes/core'
import { recoveryCodesRouter } from '@recovery-codes/express'
import { createPgPool, kyselyStore, migrateRecoveryCodes } from '@recovery-codes/store-kysely'
import { recoveryCodesPages } from '@recovery-codes/ui/express'
import express from 'express'
import session from 'express-session'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'

const { PG_URL, RC_SCHEMA, RC_PEPPER, SESSION_SECRET } = process.env
if (!PG_URL || !RC_SCHEMA || !RC_PEPPER || !SESSION_SECRET) {
  console.error('express.mjs: PG_URL, RC_SCHEMA, RC_PEPPER and SESSION_SECRET are required')
  process.exit(2)
}

const pool = createPgPool(pg.Pool, {
  connectionString: PG_URL,
  options: `-c search_path=${RC_SCHEMA}`,
  max: 5,
})
const db = new Kysely({ dialect: new PostgresDialect({ pool }) })
await migrateRecoveryCodes(db)

const rc = createRecoveryCodes({
  peppers: [{ id: 'k1', secret: RC_PEPPER }],
  store: kyselyStore(db),
})

// One demo user. Both checks compare in constant time and do the same work for unknown emails.
const DEMO = { id: 'u1', email: 'demo@example.com', password: 'correct horse battery staple' }
const same = (a, b) => {
  const x = Buffer.from(String(a))
  const y = Buffer.from(String(b))
  return x.length === y.length && timingSafeEqual(x, y)
}
const signInWithPassword = async (email, password) => {
  const emailOk = same(email, DEMO.email)
  const passwordOk = same(password, DEMO.password)
  return emailOk && passwordOk ? DEMO.id : null
}
const verifyPassword = async (userId, password) => userId === DEMO.id && same(password, DEMO.password)

const app = express()
app.use(
  session({
    secret: SESSION_SECRET,
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax' },
  }),
)
app.use(express.json())
app.use(express.urlencoded({ extended: false }))
app.use('/account', recoveryCodesPages(rc, { signInWithPassword, verifyPassword }))
app.use('/account/recovery', recoveryCodesRouter(rc))

const server = app.listen(0, '127.0.0.1', (error) => {
  if (error) throw error
  const { port } = server.address()
  console.log(`listening http://127.0.0.1:${port}`)
})

const stop = () => {
  server.close()
  server.closeAllConnections()
  db.destroy().finally(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
