/**
 * The store port: domain-level atomic operations, not CRUD, in six aggregates, each in its own
 * file with its concurrency contract: {@link BatchStore} (`store-batches.ts`), {@link AttemptStore}
 * (`store-attempts.ts`), {@link RetentionStore} (`store-retention.ts`), {@link AuditStore}
 * (`store-audit.ts`), the optional {@link RedeemStore} (`store-redeem.ts`) and the optional
 * {@link ImportStore} (`store-import.ts`) and the optional {@link ReplaceStore} (`store-replace.ts`).
 * {@link RecoveryCodeStore} is their composition.
 *
 * Every implementation runs `runStoreConformance()` from `@recovery-codes/testing`, which
 * checks each contract, including the concurrency races; `@recovery-codes/testing/store-conformance`
 * also has one runner per aggregate.
 *
 * Conventions for every method:
 * - Time is UTC epoch milliseconds supplied by the caller (`now`); a store never reads its own clock.
 * - Every read or write is scoped by `userId`; an id that belongs to another user is "not found".
 * - Digests are raw 32-byte HMAC outputs; stores compare them by value and never log them.
 */
import type { AttemptStore } from './store-attempts.ts'
import type { AuditStore } from './store-audit.ts'
import type { BatchStore } from './store-batches.ts'
import type { ImportStore } from './store-import.ts'
import type { RedeemStore } from './store-redeem.ts'
import type { ReplaceStore } from './store-replace.ts'
import type { RetentionStore } from './store-retention.ts'

export * from './store-attempts.ts'
export * from './store-audit.ts'
export * from './store-batches.ts'
export * from './store-import.ts'
export * from './store-redeem.ts'
export * from './store-replace.ts'
export * from './store-retention.ts'

/**
 * Where a store keeps its state. A store whose state lives in one process only (`memoryStore()`)
 * sets this symbol to `'process'` on itself; `deployment: 'multi'` then refuses it, because
 * several processes would each keep their own codes and limiter counters, and single use and
 * lockout would no longer hold. Stores shared through a database set nothing.
 */
export const STORE_SCOPE: unique symbol = Symbol.for('recovery-codes.store-scope')

/**
 * Where recovery codes live: every aggregate of the port in one object. Implementations:
 * `memoryStore()`, `kyselyStore(db)`. The service needs all of it; `redeemCode` is optional (the
 * service composes it with `composeRedeemCode` when it is missing).
 */
export interface RecoveryCodeStore
  extends BatchStore,
    AttemptStore,
    RetentionStore,
    AuditStore,
    RedeemStore,
    Partial<ImportStore>,
    Partial<ReplaceStore> {}
