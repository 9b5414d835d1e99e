// Mounting without a session middleware must fail at start-up, at `app.use`, naming what is
// missing, not on every request later. `node no-session.mjs pages|router`.
import { createRecoveryCodes } from '@recovery-codes/core'
import { recoveryCodesRouter } from '@recovery-codes/express'
import { memoryStore } from '@recovery-codes/store-memory'
import { recoveryCodesPages } from '@recovery-codes/ui/express'
import express from 'express'

const which = process.argv[2] ?? 'pages'
const rc = createRecoveryCodes({
  peppers: [{ id: 'k1', secret: Buffer.alloc(32, 7).toString('base64') }],
  store: memoryStore(),
})
const app = express()
app.use(express.urlencoded({ extended: false }))
if (which === 'pages') {
  app.use(
    '/account',
    recoveryCodesPages(rc, {
      signInWithPassword: async () => null,
      verifyPassword: async () => false,
    }),
  )
} else {
  app.use('/account/recovery', recoveryCodesRouter(rc))
}
console.log(`mounted ${which} without a session middleware, and nothing threw`)
