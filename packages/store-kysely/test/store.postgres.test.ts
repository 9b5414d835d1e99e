import { runServiceConformance, runStoreConformance } from '@recovery-codes/testing'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { kyselyStore } from '../src/store.ts'
import { type Backend, dumpTables, isCI, PG_URL, pgUnavailable, postgresBackend } from './backends.ts'
import { storeContract } from './contract.ts'

if (pgUnavailable !== null) {
  describe('PostgreSQL store contract', () => {
    // Under CI the real server is mandatory: unreachability fails the run.
    it.runIf(isCI)(`requires PostgreSQL at ${PG_URL} under CI=true`, () => {
      throw new Error(`PostgreSQL unreachable under CI=true: ${pgUnavailable}`)
    })
    it.skipIf(isCI)(`SKIPPED: PostgreSQL at ${PG_URL} unreachable (${pgUnavailable})`, () => {})
  })
} else {
  let backend: Backend
  beforeAll(async () => {
    backend = await postgresBackend()
  })
  afterAll(async () => {
    await backend?.close()
  })

  storeContract('PostgreSQL (pg, own schema)', async () => {
    await backend.reset()
    return { store: kyselyStore(backend.db), db: backend.db }
  })

  runStoreConformance({
    name: 'kysely (PostgreSQL)',
    setup: async () => {
      await backend.reset()
      return kyselyStore(backend.db)
    },
  })

  runServiceConformance({
    name: 'kysely (PostgreSQL)',
    setup: async () => {
      await backend.reset()
      return kyselyStore(backend.db)
    },
    dump: () => dumpTables(backend.db),
  })
}
