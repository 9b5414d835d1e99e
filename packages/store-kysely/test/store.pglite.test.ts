import { runServiceConformance, runStoreConformance } from '@recovery-codes/testing'
import { afterAll, beforeAll } from 'vitest'
import { kyselyStore } from '../src/store.ts'
import { type Backend, dumpTables, pgliteBackend } from './backends.ts'
import { storeContract } from './contract.ts'

let backend: Backend
beforeAll(async () => {
  backend = await pgliteBackend()
})
afterAll(async () => {
  await backend?.close()
})

storeContract('PGlite (in-process PostgreSQL)', async () => {
  await backend.reset()
  return { store: kyselyStore(backend.db), db: backend.db }
})

runStoreConformance({
  name: 'kysely (PGlite)',
  setup: async () => {
    await backend.reset()
    return kyselyStore(backend.db)
  },
})

runServiceConformance({
  name: 'kysely (PGlite)',
  setup: async () => {
    await backend.reset()
    return kyselyStore(backend.db)
  },
  dump: () => dumpTables(backend.db),
  purgeScale: { eligible: 2_000, active: 100 },
})
