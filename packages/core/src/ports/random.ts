/**
 * The random port (the same shape as `@oslojs/crypto`'s `RandomReader`): fills `bytes` with
 * cryptographically secure random bytes. Tests may inject `createSeededRandom()` (insecure).
 */
export interface RandomReader {
  read(bytes: Uint8Array): void
}
