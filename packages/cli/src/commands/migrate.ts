/** `recovery-codes migrate`: applies the store's migrations with `migrateRecoveryCodes`. */
import { migrateRecoveryCodes } from '@recovery-codes/store-kysely'
import type { Kysely } from 'kysely'

/** One migration and what happened to it. */
export interface MigrationOutcome {
  /** Migration name. */
  name: string
  /** `Success`, `Error` or `NotExecuted` (Kysely's status). */
  status: string
}

/**
 * Migrates the database to the latest schema; returns the migrations run now (empty when it was
 * already up to date).
 *
 * @throws RecoveryCodesError `STORE_UNAVAILABLE` when a migration fails.
 */
export async function runMigrate(db: Kysely<any>): Promise<MigrationOutcome[]> {
  const { results } = await migrateRecoveryCodes(db)
  return (results ?? []).map((r) => ({ name: r.migrationName, status: r.status }))
}
