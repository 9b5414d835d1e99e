/**
 * The two errors of the readers: a source row that cannot be read (`IMPORT_INVALID`, naming the
 * row) and options that cannot work (`INVALID_INPUT`). Messages name rows and columns, never a
 * value read from them: no code, digest, ciphertext or key ever reaches a message.
 */
import { RecoveryCodesError } from '@recovery-codes/core'

/** `IMPORT_INVALID`: `<row>: <what>`; ids in `row` go through {@link printableId}. */
export function importInvalid(row: string, what: string): RecoveryCodesError {
  return new RecoveryCodesError('IMPORT_INVALID', `${row}: ${what}`)
}

/** `INVALID_INPUT` for an option of a reader. */
export function invalidOption(path: string, what: string): RecoveryCodesError {
  return new RecoveryCodesError('INVALID_INPUT', `${path} ${what}`, { issues: [{ path, message: what }] })
}

/**
 * An id as it may appear in a row label: at most 80 characters, control characters replaced, so
 * a hostile id cannot forge lines in a log.
 */
export function printableId(id: unknown): string {
  const s = typeof id === 'string' ? id : typeof id === 'number' || typeof id === 'bigint' ? String(id) : '?'
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing control characters is the point
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?')
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean
}

/** Identifiers the readers accept for table and column names (no quoting tricks, no aliases). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/**
 * Checks a table (optionally `schema.table`) or column name given in the options.
 *
 * @throws RecoveryCodesError `INVALID_INPUT`
 */
export function checkIdentifier(path: string, name: unknown, qualified = false): string {
  const parts = typeof name === 'string' ? name.split('.') : []
  const ok =
    parts.length >= 1 && parts.length <= (qualified ? 2 : 1) && parts.every((p) => IDENTIFIER.test(p))
  if (!ok) {
    throw invalidOption(path, `must be a plain SQL identifier${qualified ? ' (or schema.table)' : ''}`)
  }
  return name as string
}

/**
 * Checks a page size option.
 *
 * @throws RecoveryCodesError `INVALID_INPUT`
 */
export function checkPageSize(path: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > max) {
    throw invalidOption(path, `must be an integer from 1 to ${max}`)
  }
  return value as number
}
