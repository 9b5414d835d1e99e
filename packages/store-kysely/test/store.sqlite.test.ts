import { runServiceConformance, runStoreConformance } from '@recovery-codes/testing'
import { afterAll, beforeAll } from 'vitest'
import { kyselyStore } from '../src/store.ts'
import { type Backend, dumpTables, sqliteBackend } from './backends.ts'
import { storeContract } from './contract.ts'

let backend: Backend
beforeAll(async () => {
  backend = await sqliteBackend()
})
afterAll(async () => {
  await backend?.close()
})

storeContract('SQLite (temp file, WAL)', async () => {
  await backend.reset()
  return { store: kyselyStore(backend.db), db: backend.db }
})

runStoreConformance({
  name: 'kysely (SQLite file, WAL)',
  setup: async () => {
    await backend.reset()
    return kyselyStore(backend.db)
  },
})

runServiceConformance({
  name: 'kysely (SQLite file, WAL)',
  setup: async () => {
    await backend.reset()
    return kyselyStore(backend.db)
  },
  dump: () => dumpTables(backend.db),
})
