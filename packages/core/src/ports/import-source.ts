/**
 * The import source port: what `rc.importCodes` reads from another system. A source turns that
 * system's rows into {@link SourceBatch}es; `@recovery-codes/import` has one per supported system
 * (django-auth-recovery-codes, better-auth, Laravel Fortify).
 */
import type { BatchStatus, CodeState } from './store-batches.ts'

/**
 * One code as the source holds it. Exactly one of `plaintext` and `legacyDigest` is set.
 * Neither is ever logged, reported or written as it is.
 */
export interface SourceCode {
  /** The source's id for the code (unique within its batch): part of the imported code's id. */
  sourceId: string
  state: CodeState
  /** When it was used, for a `used` code. */
  usedAt: number | null
  /** The code as printed, where the source can give it back (it was encrypted): it becomes a native code. */
  plaintext?: string
  /**
   * The source's own lookup digest, where that is all there is, as the legacy scheme of the batch
   * computes it (32 bytes). Verified on redeem by the `legacyDigests` entry named `legacyKeyId`.
   */
  legacyDigest?: Uint8Array
}

/** One batch as the source holds it, with the lifecycle it had there. */
export interface SourceBatch {
  /** The source's id for the batch (unique within the source): with the source's name, the imported batch id. */
  sourceId: string
  /** Where it came from, for errors and the report, e.g. `recoverycodesbatch 7f…` (never a secret). */
  row: string
  /** The user id in this library's terms (the host's user id). */
  userId: string
  createdAt: number
  /** `null` = never expires. */
  expiresAt: number | null
  status: BatchStatus
  /** When it left `active`; `null` when `active`. */
  endedAt: number | null
  /** For batches of `legacyDigest` codes: the `legacyDigests[].id` that verifies them. */
  legacyKeyId?: string
  codes: SourceCode[]
}

/** Something the source could not turn into a batch, kept in the report with why. */
export interface SourceSkip {
  row: string
  reason: string
}

/**
 * Another system's recovery codes, read in a stable order. A row the source cannot read (corrupt,
 * a wrong source key, a duplicate user) makes `batches()` throw a `RecoveryCodesError`
 * `IMPORT_INVALID` that names the row; batches yielded before it stay valid, so a re-run resumes.
 */
export interface ImportSource {
  /** Stable name of the source system, e.g. `django-auth-recovery-codes`: part of every imported id. */
  readonly name: string
  /** The batches, in a stable order; rows that cannot become one are reported through `skip`. */
  batches(skip: (s: SourceSkip) => void): AsyncIterable<SourceBatch>
  /** Releases what the source holds (connections). */
  close?(): Promise<void>
}
