/**
 * What better-auth and Laravel Fortify have in common: one row per user holding that user's unused
 * codes as one encrypted JSON array. Each row becomes one `active` batch of plaintext codes (which
 * the import digests as native codes). The decrypted bytes are wiped as soon as they are parsed;
 * the strings parsed from them cannot be (JavaScript strings are immutable) and are dropped with
 * the batch.
 */
import type { ImportSource, SourceBatch, SourceSkip } from '@recovery-codes/core'
import { importInvalid, invalidOption, printableId } from './errors.ts'

/** Rows as an array, any iterable, or an async iterable (a database cursor, a file stream). */
export type RowsInput<T> = Iterable<T> | AsyncIterable<T>

/** Throws the reader's error for the row being read; `what` never contains a value of the row. */
export type RowFail = (what: string) => never

/**
 * Opens one read of the source: the keys are derived once, used for every row, and wiped by
 * `close` when the read ends.
 */
export interface Decrypter {
  /** The plaintext of one stored value (the caller wipes it); throws through `fail`. */
  decrypt(value: string, fail: RowFail): Uint8Array
  close(): void
}

/** What one of these sources is made of. */
export interface EncryptedRowsSpec {
  /** The source's name (part of every imported id). */
  name: string
  /** The table the rows come from, for labels: `<table> user <id>`. */
  table: string
  /** The field of a row that holds the encrypted value. */
  valueField: string
  rows: RowsInput<unknown>
  now: number
  open(): Decrypter
}

/** Largest number of codes one row may hold (the import takes at most 1,000 per batch). */
const MAX_CODES = 1000
const MAX_CODE_LENGTH = 256

/** Checks the `now` option: the creation time of the batches, as these sources keep none. */
export function checkNow(now: unknown): number {
  if (!Number.isSafeInteger(now) || (now as number) < 0) {
    throw invalidOption('now', 'must be the current time in epoch milliseconds (a safe integer)')
  }
  return now as number
}

/** Checks that `rows` can be iterated. */
export function checkRows(rows: unknown): RowsInput<unknown> {
  const r = rows as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown } | null
  if (
    typeof r !== 'object' ||
    r === null ||
    (typeof r[Symbol.iterator] !== 'function' && typeof r[Symbol.asyncIterator] !== 'function')
  ) {
    throw invalidOption('rows', 'must be an array, an iterable or an async iterable of rows')
  }
  return rows as RowsInput<unknown>
}

/**
 * The {@link ImportSource} over rows of one encrypted JSON array of codes per user. `rows` is read
 * once per `batches()` call, in its order.
 */
export function encryptedRowsSource(spec: EncryptedRowsSpec): ImportSource {
  const { name, table, valueField, rows, now } = spec
  const decoder = new TextDecoder('utf-8', { fatal: true })

  async function* batches(skip: (s: SourceSkip) => void): AsyncGenerator<SourceBatch> {
    const decrypter = spec.open()
    const seen = new Map<string, number>()
    let n = 0
    try {
      for await (const raw of rows as AsyncIterable<unknown>) {
        n++
        const position = `${table} row ${n}`
        if (typeof raw !== 'object' || raw === null) throw importInvalid(position, 'is not an object')
        const record = raw as Record<string, unknown>
        const id = record.userId
        if (
          !(
            typeof id === 'string' ||
            typeof id === 'bigint' ||
            (typeof id === 'number' && Number.isSafeInteger(id))
          ) ||
          String(id).length === 0
        ) {
          throw importInvalid(position, 'has no userId')
        }
        const userId = String(id)
        const row = `${table} user ${printableId(userId)}`
        const earlier = seen.get(userId)
        if (earlier !== undefined) throw importInvalid(row, `appears twice (rows ${earlier} and ${n})`)
        seen.set(userId, n)
        const value = record[valueField]
        if (value === null || value === undefined || value === '') {
          skip({ row, reason: `has no recovery codes (${valueField} is empty)` })
          continue
        }
        const fail: RowFail = (what) => {
          throw importInvalid(row, what)
        }
        if (typeof value !== 'string') fail(`${valueField} is not text`)
        const codes = parseCodes(decrypter.decrypt(value as string, fail), decoder, valueField, fail)
        if (codes.length === 0) {
          skip({ row, reason: 'has no unused codes left' })
          continue
        }
        yield {
          sourceId: userId,
          row,
          userId,
          createdAt: now,
          expiresAt: null,
          status: 'active',
          endedAt: null,
          codes: codes.map((plaintext, i) => ({
            sourceId: String(i),
            state: 'active',
            usedAt: null,
            plaintext,
          })),
        }
      }
    } finally {
      decrypter.close()
    }
  }

  return { name, batches } satisfies ImportSource
}

/** The JSON array of codes in `plaintext`, which is wiped before this returns or throws. */
function parseCodes(
  plaintext: Uint8Array,
  decoder: InstanceType<typeof TextDecoder>,
  field: string,
  fail: RowFail,
): string[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(plaintext))
  } catch {
    // Never the parser's message: it quotes the text it failed on.
    parsed = undefined
  } finally {
    plaintext.fill(0)
  }
  if (!Array.isArray(parsed)) return fail(`${field} decrypts to something other than a JSON array of codes`)
  if (parsed.length > MAX_CODES) return fail(`${field} holds more than ${MAX_CODES} codes`)
  for (const [i, c] of parsed.entries()) {
    if (typeof c !== 'string' || c.length === 0 || c.length > MAX_CODE_LENGTH) {
      fail(`${field} code ${i + 1} is not a string of 1 to ${MAX_CODE_LENGTH} characters`)
    }
  }
  return parsed as string[]
}
