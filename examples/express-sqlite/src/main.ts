/**
 * `pnpm demo`: starts the demo on SQLite and prints the URL and the demo credentials.
 *
 * Environment: PORT (default 3000), HOST (default 127.0.0.1), DEMO_DATA_DIR (default
 * examples/express-sqlite/.data), DEMO_EMAIL / DEMO_PASSWORD, DEMO_LOGIN_MODE=identifier-and-code,
 * RECOVERY_CODES_PEPPER and any other RECOVERY_CODES_* setting.
 */
import { fileURLToPath } from 'node:url'
import { startDemo } from './app.ts'

const port = process.env.PORT === undefined ? 3000 : Number(process.env.PORT)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('PORT must be an integer from 0 to 65535')
  process.exit(1)
}
const dataDir = process.env.DEMO_DATA_DIR ?? fileURLToPath(new URL('../.data', import.meta.url))

const demo = await startDemo({ dataDir, port, host: process.env.HOST ?? '127.0.0.1' })
const modeLine =
  demo.loginMode === 'identifier-and-code'
    ? 'login mode: identifier-and-code (email + recovery code, single-factor; password login also available)'
    : 'login mode: second-factor (password, then a recovery code once you have generated codes);\n  set DEMO_LOGIN_MODE=identifier-and-code for the email + code login'
console.log(
  [
    '',
    `recovery-codes demo (Express + SQLite) running at ${demo.url}`,
    '',
    `  sign in with:  ${demo.email}  /  ${demo.password}`,
    `  ${modeLine}`,
    `  database:      ${demo.dbFile} (migrations applied)`,
    `  pepper:        ${process.env.RECOVERY_CODES_PEPPER || process.env.RECOVERY_CODES_PEPPERS ? 'from RECOVERY_CODES_PEPPER(S)' : `${demo.pepperCreated ? 'generated, ' : ''}kept in ${dataDir}/pepper (mode 0600)`}`,
    `  dev mail:      .eml files in ${demo.mailDir}`,
    '',
    'Press Ctrl+C to stop.',
    '',
  ].join('\n'),
)

let closing = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) return
    closing = true
    demo.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  })
}
