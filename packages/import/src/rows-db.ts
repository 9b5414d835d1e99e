/**
 * Rows of one table read with keyset pagination on its primary key, so a table of any size is
 * streamed a page at a time. Names come from options and are checked as plain identifiers; values
 * are always bound parameters.
 */
import type { Kysely } from 'kysely'
import { checkIdentifier, checkPageSize, invalidOption } from './errors.ts'

/** Rows per page of the `*RowsFromDb` readers. */
export const DEFAULT_ROWS_PAGE_SIZE = 1000

/** Largest page of the `*RowsFromDb` readers. */
export const MAX_ROWS_PAGE_SIZE = 10_000

/** What to read: `{ userId, [valueKey]: value }` per row whose value column is not NULL. */
export interface KeysetRowsSpec {
  table: string
  idColumn: string
  userIdColumn: string
  valueColumn: string
  /** The key the value gets in each row. */
  valueKey: string
  pageSize?: number
}

/**
 * The rows of `spec.table` in primary-key order. Each iteration runs the queries anew, so the
 * result can be read twice (a dry run, then the import).
 *
 * @throws RecoveryCodesError `INVALID_INPUT` for unusable options (at once, not on iteration).
 */
export function keysetRows<R>(
  // biome-ignore lint/suspicious/noExplicitAny: another system's database, of a schema we do not type
  db: Kysely<any>,
  spec: KeysetRowsSpec,
  paths: Record<string, string>,
): AsyncIterable<R> {
  if (typeof db?.selectFrom !== 'function') throw invalidOption('db', 'must be a Kysely instance')
  const table = checkIdentifier(paths.table ?? 'table', spec.table, true)
  const id = checkIdentifier(paths.idColumn ?? 'idColumn', spec.idColumn)
  const user = checkIdentifier(paths.userIdColumn ?? 'userIdColumn', spec.userIdColumn)
  const value = checkIdentifier(paths.valueColumn ?? 'valueColumn', spec.valueColumn)
  const pageSize = checkPageSize('pageSize', spec.pageSize, DEFAULT_ROWS_PAGE_SIZE, MAX_ROWS_PAGE_SIZE)
  const { valueKey } = spec
  return {
    async *[Symbol.asyncIterator]() {
      let after: unknown
      for (;;) {
        const page = await db
          .selectFrom(table)
          .select([`${id} as k`, `${user} as u`, `${value} as v`])
          .where(value, 'is not', null)
          .$if(after !== undefined, (qb) => qb.where(id, '>', after))
          .orderBy(id)
          .limit(pageSize)
          .execute()
        for (const r of page) yield { userId: r.u, [valueKey]: r.v } as R
        if (page.length < pageSize) return
        after = page[page.length - 1]!.k
      }
    },
  }
}
