import type { Storage } from 'unstorage'

/**
 * The cache port: an unstorage `Storage` (memory driver by default, Redis for several instances).
 *
 * The cache is never authoritative for consume, the limiter, once-only flags or batch validity;
 * it holds history pages, status and the encrypted reveal slots. Keys are built from immutable ids
 * (hashed user id, batch id, random slot id), never from raw user strings.
 */
export type Cache = Storage
