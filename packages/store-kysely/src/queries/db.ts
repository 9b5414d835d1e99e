import type { Kysely, Transaction } from 'kysely'
import type { RecoveryCodesDatabase } from '../schema.ts'

/** What a statement runs on: the store's Kysely instance or one of its transactions. */
export type Db = Kysely<RecoveryCodesDatabase> | Transaction<RecoveryCodesDatabase>
