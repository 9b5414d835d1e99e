/**
 * The django-auth-recovery-codes reader on PostgreSQL (timestamptz, boolean, uuid), in a private
 * schema of the test database that is dropped afterwards.
 */
import { describe, it } from 'vitest'
import { djangoReaderSuite } from './django-suite.ts'
import { IS_CI, PG_URL, probePostgres } from './fixtures/seed-db.ts'

const unavailable = await probePostgres()

if (unavailable !== null) {
  describe('django-auth-recovery-codes reader (PostgreSQL)', () => {
    // Under CI the real server is mandatory: unreachability fails the run.
    it.runIf(IS_CI)(`requires PostgreSQL at ${PG_URL} under CI=true`, () => {
      throw new Error(`PostgreSQL unreachable under CI=true: ${unavailable}`)
    })
    it.skipIf(IS_CI)(`SKIPPED: PostgreSQL at ${PG_URL} unreachable (${unavailable})`, () => {})
  })
} else {
  djangoReaderSuite('postgres')
}
