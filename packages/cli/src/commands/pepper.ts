/** `recovery-codes generate-pepper`: a fresh random pepper, checked by the same rules as `check`. */
import { randomBytes } from 'node:crypto'
import { checkConfig, ENV_PEPPER, MIN_PEPPER_BYTES } from '@recovery-codes/core'
import { validationOnlyStore } from '../stub-store.ts'

/**
 * Returns `bytes` random bytes as base64 (default 32), re-drawn in the astronomically unlikely case
 * the config rules refuse them (for example fewer than 10 distinct byte values).
 */
export function generatePepper(bytes = MIN_PEPPER_BYTES, read: (n: number) => Buffer = randomBytes): string {
  for (let attempt = 0; attempt < 100; attempt++) {
    const secret = read(bytes).toString('base64')
    const check = checkConfig({ peppers: [{ id: 'k1', secret }], store: validationOnlyStore() })
    if (check.ok) return secret
  }
  throw new Error('could not draw an acceptable pepper: is the random source broken?')
}

/** The environment line for a pepper: `RECOVERY_CODES_PEPPER=<base64>`. */
export function pepperEnvLine(secret: string): string {
  return `${ENV_PEPPER}=${secret}`
}
