/**
 * `recovery-codes import`: another system's recovery codes into this store, through the service's
 * `importCodes` (each batch all or nothing with its audit row, re-runs write nothing twice), with
 * a dry run that only reads and counts, and live progress. The source's key is read from an
 * environment variable, never from the command line.
 */
import {
  createRecoveryCodes,
  type ImportReport,
  type ImportSource,
  type RecoveryCodesConfig,
} from '@recovery-codes/core'
import { kyselyStore } from '@recovery-codes/store-kysely'
import type { Kysely } from 'kysely'
import { CliError } from '../io.ts'
import { loadOptional } from '../optional.ts'
import type { ProgressSink } from '../progress.ts'

/** The source systems `import --from` reads. */
export const IMPORT_SOURCES = ['django-auth-recovery-codes', 'better-auth', 'fortify'] as const
export type ImportFrom = (typeof IMPORT_SOURCES)[number]

/** Where each source's key is read from by default (`--source-key-env` names another variable). */
export const SOURCE_KEY_ENV: Record<ImportFrom, string> = {
  'django-auth-recovery-codes': 'DJANGO_AUTH_RECOVERY_KEY',
  'better-auth': 'BETTER_AUTH_SECRET',
  fortify: 'APP_KEY',
}

/** Options of {@link runImportCommand}. */
export interface ImportCommandOptions {
  from: ImportFrom
  /** The source: its database, or an export file of rows (better-auth, Fortify). */
  source: { db: Kysely<any> } | { file: string }
  /** This library's database. */
  db: Kysely<any>
  /** Options from the environment and config file (no ports). */
  config: Partial<RecoveryCodesConfig>
  /** The source's key (from the environment). */
  sourceKey: string
  /** `import.legacyDigests[].id` of django-auth-recovery-codes codes. */
  legacyKeyId: string
  dryRun?: boolean
  concurrency?: number
  progress?: ProgressSink | null
  /** The creation time of batches whose source keeps none. */
  now: number
}

/**
 * The configuration the import runs with: the host's, plus what the source needs to be verified
 * (the legacy scheme, or the imported format). The host's app must configure the same `import`.
 */
export function importConfigFor(
  from: ImportFrom,
  config: Partial<RecoveryCodesConfig>,
  sourceKey: string,
  legacyKeyId: string,
): Partial<RecoveryCodesConfig> {
  const current = config.import ?? {}
  if (from === 'django-auth-recovery-codes') {
    const others = (current.legacyDigests ?? []).filter((k) => k.id !== legacyKeyId)
    return {
      ...config,
      import: {
        ...current,
        legacyDigests: [
          ...others,
          { id: legacyKeyId, scheme: 'django-auth-recovery-codes', secret: sourceKey },
        ],
      },
    }
  }
  const formats = current.formats ?? []
  return { ...config, import: { ...current, formats: formats.includes(from) ? formats : [...formats, from] } }
}

/** Builds the source for `from`. */
export async function openSource(o: ImportCommandOptions): Promise<ImportSource> {
  const {
    betterAuthRowsFromDb,
    betterAuthSource,
    djangoRecoveryCodesSource,
    fortifyRowsFromDb,
    fortifySource,
    readRowsFile,
  } = await loadOptional(
    '@recovery-codes/import',
    'the import sources',
    () => import('@recovery-codes/import'),
  )
  if (o.from === 'django-auth-recovery-codes') {
    if (!('db' in o.source))
      throw new CliError('django-auth-recovery-codes is read from its database (--source <url>)')
    return djangoRecoveryCodesSource({ db: o.source.db, legacyKeyId: o.legacyKeyId })
  }
  const rows =
    'file' in o.source
      ? await readRowsFile(o.source.file)
      : o.from === 'better-auth'
        ? betterAuthRowsFromDb(o.source.db)
        : fortifyRowsFromDb(o.source.db)
  return o.from === 'better-auth'
    ? betterAuthSource({ rows: rows as never, secret: o.sourceKey, now: o.now })
    : fortifySource({ rows: rows as never, appKey: o.sourceKey, now: o.now })
}

/** Runs the import; the report counts what was read, written and left out. */
export async function runImportCommand(o: ImportCommandOptions): Promise<ImportReport> {
  const config = importConfigFor(o.from, o.config, o.sourceKey, o.legacyKeyId)
  const rc = createRecoveryCodes({ ...(config as RecoveryCodesConfig), store: kyselyStore(o.db) })
  const source = await openSource(o)
  o.progress?.start(0)
  try {
    return await rc.importCodes(source, {
      dryRun: o.dryRun ?? false,
      concurrency: o.concurrency ?? 4,
      onProgress: (p) => o.progress?.update(p.batches),
    })
  } finally {
    o.progress?.stop()
    await source.close?.()
  }
}

/** The report as text for the operator. */
export function formatImport(r: ImportReport): string {
  const s = r.codes.byState
  const b = r.batches.byStatus
  const lines = [
    `${r.dryRun ? 'dry run: would import' : 'imported'} from ${r.source}: ${r.batches.imported} batches (${r.codes.imported} codes) of ${r.batches.read} read, ${r.users} users`,
    `  batches by status: active ${b.active}, superseded ${b.superseded}, disabled ${b.disabled}, deleted ${b.deleted}`,
    `  codes by state: active ${s.active}, used ${s.used}, invalidated ${s.invalidated}, deleted ${s.deleted} (native ${r.codes.native}, legacy digest ${r.codes.legacy})`,
    `  already imported: ${r.batches.existing}; conflicts (user has an active batch): ${r.batches.conflicts}`,
  ]
  if (r.skipped.length > 0) {
    lines.push(`  left out: ${r.skipped.length}`)
    for (const s of r.skipped.slice(0, 20)) lines.push(`    ${s.row}: ${s.reason}`)
    if (r.skipped.length > 20) lines.push(`    … ${r.skipped.length - 20} more (--json lists all)`)
  }
  lines.push(`  in ${(r.durationMs / 1000).toFixed(1)} s`)
  return `${lines.join('\n')}\n`
}
