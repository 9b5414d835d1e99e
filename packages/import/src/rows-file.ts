/**
 * Rows exported to a file, for sources read without a database connection: a JSON array of
 * objects, or CSV with a header row (RFC 4180, via csv-parse). Column names are kept as written, or
 * renamed with `columns`; each record is a plain object of text (CSV) or JSON scalars.
 */
import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import { parse } from 'csv-parse/sync'
import { importInvalid, invalidOption, printableId } from './errors.ts'

/** One row of an export file: column name → value. */
export type RowsFileRecord = Readonly<Record<string, string | number | boolean | null>>

/** Options of {@link readRowsFile}. */
export interface ReadRowsFileOptions {
  /** @default by extension (`.json`, `.csv`), else JSON when the file starts with `[` */
  format?: 'json' | 'csv'
  /**
   * Renames columns: `{ fileColumn: rowField }`, e.g. `{ id: 'userId', two_factor_recovery_codes:
   * 'recoveryCodes' }` for a dump of Laravel's `users` table. Other columns keep their names.
   */
  columns?: Readonly<Record<string, string>>
}

/**
 * Reads an export of source rows: for better-auth `userId` and `backupCodes`, for Fortify `userId`
 * and `recoveryCodes` (or rename the file's columns with `columns`).
 *
 * @example
 * ```ts
 * const rows = await readRowsFile('two-factor.csv') // header: userId,backupCodes
 * const source = betterAuthSource({ rows, secret, now: Date.now() })
 * ```
 * @throws RecoveryCodesError `IMPORT_INVALID` naming the file and the row or line when it cannot
 *   be read (never quoting its content); `INVALID_INPUT` for unusable options.
 */
export async function readRowsFile(
  path: string,
  options: ReadRowsFileOptions = {},
): Promise<RowsFileRecord[]> {
  if (typeof path !== 'string' || path.length === 0) throw invalidOption('path', 'must be a file path')
  const rename = options.columns ?? {}
  if (
    typeof rename !== 'object' ||
    rename === null ||
    Object.values(rename).some((v) => typeof v !== 'string')
  ) {
    throw invalidOption('columns', 'must map file columns to row fields')
  }
  const label = printableId(path)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    throw importInvalid(label, `cannot be read (${(e as { code?: string }).code ?? 'error'})`)
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  const ext = extname(path).toLowerCase()
  const format =
    options.format ??
    (ext === '.json' ? 'json' : ext === '.csv' ? 'csv' : text.trimStart().startsWith('[') ? 'json' : 'csv')
  if (format !== 'json' && format !== 'csv') throw invalidOption('format', "must be 'json' or 'csv'")
  const records = format === 'json' ? jsonRecords(text, label) : csvRecords(text, label)
  return records.map((r) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [Object.hasOwn(rename, k) ? rename[k]! : k, v])),
  )
}

function jsonRecords(text: string, label: string): RowsFileRecord[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    // Never the parser's message: it quotes the text it failed on.
    throw importInvalid(label, 'is not valid JSON')
  }
  if (!Array.isArray(parsed)) throw importInvalid(label, 'is not a JSON array of rows')
  parsed.forEach((r: unknown, i) => {
    const ok =
      typeof r === 'object' &&
      r !== null &&
      !Array.isArray(r) &&
      Object.values(r).every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v))
    if (!ok)
      throw importInvalid(`${label} row ${i + 1}`, 'is not an object of text, numbers, booleans or nulls')
  })
  return parsed as RowsFileRecord[]
}

function csvRecords(text: string, label: string): RowsFileRecord[] {
  let table: string[][]
  try {
    table = parse(text, { skip_empty_lines: true }) as string[][]
  } catch (e) {
    // csv-parse's messages can quote the offending field: keep only its code and line.
    const err = e as { code?: unknown; lines?: unknown }
    const code = typeof err.code === 'string' && /^[A-Z_]+$/.test(err.code) ? err.code : 'CSV_INVALID'
    const line = Number.isSafeInteger(err.lines) ? ` at line ${err.lines}` : ''
    throw importInvalid(label, `is not CSV (${code}${line})`)
  }
  const [header = [], ...records] = table
  if (header.length === 0 || header.some((h) => h.length === 0) || new Set(header).size !== header.length) {
    throw importInvalid(label, 'has no header row of distinct, non-empty column names')
  }
  // Own properties only (Object.fromEntries), so a column named `__proto__` stays plain data.
  return records.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])))
}
