import { runServiceConformance, runStoreConformance } from '@recovery-codes/testing'
import { afterAll, beforeAll } from 'vitest'
import { type KyselyStoreOptions, kyselyStore } from '../src/store.ts'
import { type Backend, dumpTables, sqliteBackend } from './backends.ts'
import { storeContract } from './contract.ts'

let backend: Backend
beforeAll(async () => {
  backend = await sqliteBackend()
})
afterAll(async () => {
  await backend?.close()
})

// Every suite twice: statements through Kysely, and the redeem as one synchronous transaction on
// the better-sqlite3 handle (`sqliteDatabase`).
const variants: [string, () => KyselyStoreOptions][] = [
  ['', () => ({})],
  [', sqliteDatabase', () => ({ sqliteDatabase: backend.sqlite! })],
]

for (const [suffix, options] of variants) {
  storeContract(`SQLite (temp file, WAL${suffix})`, async () => {
    await backend.reset()
    return { store: kyselyStore(backend.db, options()), db: backend.db }
  })

  runStoreConformance({
    name: `kysely (SQLite file, WAL${suffix})`,
    setup: async () => {
      await backend.reset()
      return kyselyStore(backend.db, options())
    },
  })

  runServiceConformance({
    name: `kysely (SQLite file, WAL${suffix})`,
    setup: async () => {
      await backend.reset()
      return kyselyStore(backend.db, options())
    },
    dump: () => dumpTables(backend.db),
  })
}
