/**
 * `importCodes()`: carries another system's recovery codes over, so that nobody has to regenerate.
 * Codes whose plaintext the source gives back become native codes (digested with the current
 * pepper, like generated ones); codes that exist only as the source's digest keep that digest
 * under a legacy scheme key (`import.legacyDigests`). Each batch is written all or nothing with
 * its `batch.imported` audit row, under an id derived from the source, so a re-run (after a crash,
 * or beside another run) writes nothing twice.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { type CodeFormat, normalize } from '../domain/code-format.ts'
import { computeDigest } from '../domain/hash.ts'
import { LEGACY_DIGEST_BYTES } from '../domain/legacy-digest.ts'
import { RecoveryCodesError } from '../errors.ts'
import type { ImportSource, SourceBatch, SourceSkip } from '../ports/import-source.ts'
import type { BatchStatus, CodeState, ImportedBatch, ImportedCode } from '../ports/store.ts'
import { systemHmacSha256 } from '../runtime.ts'
import type { CacheLayer } from './cache-layer.ts'
import type { ServiceContext } from './context.ts'

/** Options of `rc.importCodes`. */
export interface ImportRunOptions {
  /** Read and check everything, write nothing; the report says what a real run would import. */
  dryRun?: boolean
  /** Batches written at once (each its own transaction), from 1 to 32. @default 4 */
  concurrency?: number
  /** Called after each batch with the running totals. */
  onProgress?: (progress: ImportProgress) => void
}

/** Running totals of an import. */
export interface ImportProgress {
  batches: number
  codes: number
}

/** Counts by a key, every key present. */
export type Counts<K extends string> = Record<K, number>

/** What an import read, wrote and left out. Never a code, digest or secret. */
export interface ImportReport {
  source: string
  dryRun: boolean
  /** Users with at least one batch read. */
  users: number
  batches: {
    read: number
    /** Written by this run (a dry run: would be, unless a batch exists already). */
    imported: number
    /** Written by an earlier or a concurrent run: nothing written. */
    existing: number
    /** An active batch for a user who has one here already: left out (see `skipped`). */
    conflicts: number
    /** Read, by the status they keep. */
    byStatus: Counts<BatchStatus>
  }
  codes: {
    read: number
    imported: number
    /** Read, by the state they keep. */
    byState: Counts<CodeState>
    /** Read as plaintext (now native codes) and as a legacy digest. */
    native: number
    legacy: number
  }
  /** Rows left out, with why: from the source, and conflicts. */
  skipped: SourceSkip[]
  durationMs: number
}

/** Most codes in one imported batch. */
const MAX_IMPORTED_CODES = 1000
const STATUSES: readonly BatchStatus[] = ['active', 'superseded', 'disabled', 'deleted']
const STATES: readonly CodeState[] = ['active', 'used', 'invalidated', 'deleted']

/** Builds `importCodes` for one service. */
export function createImportCodes(
  sc: ServiceContext,
  cacheLayer: CacheLayer,
): (source: ImportSource, options?: ImportRunOptions) => Promise<ImportReport> {
  const { config, store, clock, auditRecord, storeFailure } = sc
  const pepper = config.currentPepper
  const formats: readonly Readonly<CodeFormat>[] = [config.format, ...config.import.formats]
  const legacyIds = new Set(config.import.legacyDigests.map((k) => k.id))

  /** The native canonical form of a plaintext code: the configured format, then the imported ones. */
  function canonicalOf(plaintext: string): string | null {
    for (const f of formats) {
      const c = normalize(plaintext, f)
      if (c !== null) return c
    }
    return null
  }

  /** The batch as the store writes it; throws `IMPORT_INVALID` naming the row. */
  function toImported(sourceName: string, b: SourceBatch): ImportedBatch {
    const row = typeof b?.row === 'string' && b.row.length > 0 ? b.row : 'a source row'
    const bad = (what: string) => new RecoveryCodesError('IMPORT_INVALID', `${row}: ${what}`)
    if (typeof b.sourceId !== 'string' || b.sourceId.length === 0) throw bad('has no source id')
    if (
      typeof b.userId !== 'string' ||
      b.userId.length === 0 ||
      b.userId.length > 255 ||
      b.userId.includes('\0')
    ) {
      throw bad('has no usable user id (1 to 255 characters, no NUL)')
    }
    if (!STATUSES.includes(b.status)) throw bad(`has an unknown batch status`)
    if (!Number.isSafeInteger(b.createdAt)) throw bad('has no valid creation time')
    if (b.expiresAt !== null && !Number.isSafeInteger(b.expiresAt)) throw bad('has an invalid expiry')
    const endedAt = b.status === 'active' ? null : (b.endedAt ?? b.createdAt)
    if (endedAt !== null && !Number.isSafeInteger(endedAt)) throw bad('has an invalid end time')
    if (!Array.isArray(b.codes) || b.codes.length === 0 || b.codes.length > MAX_IMPORTED_CODES) {
      throw bad(`must have 1 to ${MAX_IMPORTED_CODES} codes`)
    }
    const legacy = b.legacyKeyId !== undefined
    if (legacy && !legacyIds.has(b.legacyKeyId!)) {
      throw bad(`its legacy key id '${String(b.legacyKeyId)}' is not in import.legacyDigests`)
    }
    const batchId = importedId(sourceName, b.sourceId)
    const seen = new Set<string>()
    const digests = new Set<string>()
    const codes: ImportedCode[] = b.codes.map((c, i) => {
      const where = `code ${i + 1}`
      if (typeof c?.sourceId !== 'string' || c.sourceId.length === 0) throw bad(`${where} has no source id`)
      if (seen.has(c.sourceId)) throw bad(`${where} repeats a code id of its batch`)
      seen.add(c.sourceId)
      if (!STATES.includes(c.state)) throw bad(`${where} has an unknown state`)
      const usedAt = c.state === 'used' ? (c.usedAt ?? endedAt ?? b.createdAt) : null
      if (usedAt !== null && !Number.isSafeInteger(usedAt)) throw bad(`${where} has an invalid use time`)
      let digest: Uint8Array
      if (legacy) {
        if (!(c.legacyDigest instanceof Uint8Array) || c.legacyDigest.length !== LEGACY_DIGEST_BYTES) {
          throw bad(`${where} has no ${LEGACY_DIGEST_BYTES}-byte legacy digest`)
        }
        if (c.plaintext !== undefined) throw bad(`${where} has both a plaintext and a legacy digest`)
        digest = c.legacyDigest
      } else {
        if (typeof c.plaintext !== 'string')
          throw bad(`${where} has no plaintext (and the batch no legacy key id)`)
        const canonical = canonicalOf(c.plaintext)
        if (canonical === null) {
          throw bad(`${where} fits neither the configured format nor import.formats`)
        }
        digest = computeDigest(pepper.secret, b.userId, canonical, systemHmacSha256)
      }
      // Two codes of a batch with one digest: the same code twice (the store would refuse it).
      const hex = bytesToHex(digest)
      if (digests.has(hex)) throw bad(`${where} repeats another code of its batch`)
      digests.add(hex)
      return { id: importedId(batchId, c.sourceId), digest, state: c.state, usedAt }
    })
    return {
      id: batchId,
      userId: b.userId,
      keyId: legacy ? b.legacyKeyId! : pepper.id,
      createdAt: b.createdAt,
      expiresAt: b.expiresAt,
      status: b.status,
      endedAt,
      codes,
    }
  }

  return async function importCodes(source, options = {}) {
    if (typeof store.importBatch !== 'function') {
      throw new RecoveryCodesError('FEATURE_DISABLED', 'This store cannot import batches (no importBatch).')
    }
    if (typeof source?.batches !== 'function' || typeof source.name !== 'string' || source.name === '') {
      throw new RecoveryCodesError('INVALID_INPUT', 'source must be an ImportSource { name, batches() }')
    }
    const dryRun = options.dryRun === true
    const concurrency = options.concurrency ?? 4
    if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 32) {
      throw new RecoveryCodesError('INVALID_INPUT', 'concurrency must be an integer from 1 to 32')
    }
    const started = clock.now()
    const report: ImportReport = emptyReport(source.name, dryRun)
    const users = new Set<string>()
    const batchIds = new Set<string>()
    const progress = { batches: 0, codes: 0 }
    const importBatch = store.importBatch.bind(store)

    async function write(batch: ImportedBatch, row: string): Promise<void> {
      const audit = auditRecord({
        at: clock.now(),
        event: 'batch.imported',
        userId: batch.userId,
        batchId: batch.id,
        outcome: 'success',
        data: {
          source: source.name,
          status: batch.status,
          codes: batch.codes.length,
          active: batch.codes.filter((c) => c.state === 'active').length,
          used: batch.codes.filter((c) => c.state === 'used').length,
          legacy: batch.keyId !== pepper.id,
        },
      })
      let outcome: Awaited<ReturnType<typeof importBatch>>
      try {
        outcome = await importBatch(batch, audit)
      } catch (error) {
        // As every store failure (a driver error becomes STORE_UNAVAILABLE), naming the row.
        const e = storeFailure(error)
        throw new RecoveryCodesError(e.code, `${row}: ${e.message}`, { cause: error })
      }
      if (outcome === 'imported') {
        report.batches.imported++
        report.codes.imported += batch.codes.length
        await cacheLayer.bumpVersion(batch.userId)
      } else if (outcome === 'exists') report.batches.existing++
      else {
        report.batches.conflicts++
        report.skipped.push({ row, reason: 'the user already has an active batch here' })
      }
    }

    const skip = (s: SourceSkip) => {
      report.skipped.push({ row: String(s?.row ?? ''), reason: String(s?.reason ?? '') })
    }
    const iterator = source.batches(skip)[Symbol.asyncIterator]()
    let failure: unknown
    let done = false
    /** Reads the next batch; one reader at a time (sources are not concurrent iterators). */
    let reading: Promise<unknown> = Promise.resolve()
    const next = (): Promise<IteratorResult<SourceBatch> | undefined> => {
      const p = reading.then(() => (done || failure !== undefined ? undefined : iterator.next()))
      reading = p.catch(() => {})
      return p
    }
    async function worker(): Promise<void> {
      while (failure === undefined) {
        let item: IteratorResult<SourceBatch> | undefined
        try {
          item = await next()
        } catch (error) {
          failure ??= error
          return
        }
        if (item === undefined || item.done) {
          done = true
          return
        }
        try {
          const b = item.value
          const batch = toImported(source.name, b)
          const row = b.row
          if (batchIds.has(batch.id))
            throw new RecoveryCodesError('IMPORT_INVALID', `${row}: repeats a batch id of this source`)
          batchIds.add(batch.id)
          users.add(batch.userId)
          report.batches.read++
          report.batches.byStatus[batch.status]++
          report.codes.read += batch.codes.length
          for (const c of batch.codes) report.codes.byState[c.state]++
          if (batch.keyId === pepper.id) report.codes.native += batch.codes.length
          else report.codes.legacy += batch.codes.length
          if (dryRun) report.batches.imported++
          else await write(batch, row)
          progress.batches++
          progress.codes += batch.codes.length
          options.onProgress?.({ ...progress })
        } catch (error) {
          failure ??= error
          return
        }
      }
    }
    try {
      await Promise.all(Array.from({ length: dryRun ? 1 : concurrency }, worker))
    } finally {
      await iterator.return?.().catch(() => {})
    }
    if (failure !== undefined) throw failure
    if (dryRun) report.codes.imported = report.codes.read
    report.users = users.size
    report.durationMs = clock.now() - started
    return report
  }
}

/** The id of an imported batch or code: the first 128 bits of SHA-256 over its parent and source id. */
export function importedId(parent: string, sourceId: string): string {
  const bytes = new TextEncoder().encode(`rc-import\0${parent}\0${sourceId}`)
  return bytesToHex(sha256(bytes).subarray(0, 16))
}

function emptyReport(source: string, dryRun: boolean): ImportReport {
  return {
    source,
    dryRun,
    users: 0,
    batches: {
      read: 0,
      imported: 0,
      existing: 0,
      conflicts: 0,
      byStatus: { active: 0, superseded: 0, disabled: 0, deleted: 0 },
    },
    codes: {
      read: 0,
      imported: 0,
      byState: { active: 0, used: 0, invalidated: 0, deleted: 0 },
      native: 0,
      legacy: 0,
    },
    skipped: [],
    durationMs: 0,
  }
}
