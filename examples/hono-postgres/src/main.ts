/**
 * Starts the Hono + PostgreSQL example: `DATABASE_URL=postgres://… pnpm --filter
 * @recovery-codes/example-hono-postgres start`. Set RECOVERY_CODES_PEPPER for codes that survive a
 * restart (without it a throwaway pepper is used and said so).
 */
import { serve } from '@hono/node-server'
import { createHonoDemo } from './app.ts'

const databaseUrl = process.env.DATABASE_URL
if (!databaseUrl) {
  console.error('Set DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/test')
  process.exit(1)
}
const port = process.env.PORT === undefined ? 3000 : Number(process.env.PORT)
const demo = await createHonoDemo({
  databaseUrl,
  ...(process.env.PG_SCHEMA ? { schema: process.env.PG_SCHEMA } : {}),
})
const server = serve({ fetch: demo.app.fetch, port, hostname: process.env.HOST ?? '127.0.0.1' }, (info) => {
  console.log(
    [
      '',
      `recovery-codes example (Hono + PostgreSQL) running at http://localhost:${info.port}`,
      '',
      '  sign in with:  demo@example.com  /  demo-password',
      `  pepper:        ${demo.ephemeralPepper ? 'throwaway (set RECOVERY_CODES_PEPPER to keep codes valid across restarts)' : 'from RECOVERY_CODES_PEPPER(S)'}`,
      '',
    ].join('\n'),
  )
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    server.close()
    demo.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  })
}
