/**
 * A store that satisfies the `RecoveryCodeStore` port's shape for validation only: `check` needs no
 * database, and the store is a port. Every method rejects if it is ever called. It has the optional
 * methods too (`addCodes`, …), as the CLI's own store (`kyselyStore`) does, so options that need
 * them (`replaceOnUse`, the `nist-800-63b-4` preset) validate.
 */
import {
  OPTIONAL_STORE_METHODS,
  type RecoveryCodeStore,
  RecoveryCodesError,
  STORE_METHODS,
} from '@recovery-codes/core'

/** A store for `checkConfig()` whose every method rejects. */
export function validationOnlyStore(): RecoveryCodeStore {
  const store: Record<string, () => Promise<never>> = {}
  for (const name of [...STORE_METHODS, ...OPTIONAL_STORE_METHODS]) {
    store[name] = () =>
      Promise.reject(new RecoveryCodesError('STORE_UNAVAILABLE', 'the CLI check store holds no data'))
  }
  return store as unknown as RecoveryCodeStore
}
