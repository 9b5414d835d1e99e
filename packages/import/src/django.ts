/**
 * django-auth-recovery-codes (the app this library replaces): its `recoverycodesbatch` and
 * `recoverycode` tables, read user by user with keyset pagination. Each code keeps its
 * `look_up_hash` (HMAC-SHA3-512 under `DJANGO_AUTH_RECOVERY_KEY`) as a legacy digest; the Django
 * `make_password` hash beside it is not imported (it would only slow verification down).
 */
import {
  type BatchStatus,
  type CodeState,
  djangoLookupHashDigest,
  type ImportSource,
  type SourceBatch,
  type SourceCode,
  type SourceSkip,
} from '@recovery-codes/core'
import type { Kysely, SelectQueryBuilder } from 'kysely'
import {
  canonicalUuid,
  DAY_MS,
  type Fail,
  readBool,
  readCount,
  readDate,
  readDatetime,
} from './django-values.ts'
import { checkIdentifier, checkPageSize, importInvalid, invalidOption, printableId } from './errors.ts'

/** The source name, part of every imported id: never change it for a source already imported. */
export const DJANGO_SOURCE_NAME = 'django-auth-recovery-codes'

/** The app label prefix Django gives the seed's tables. */
export const DEFAULT_DJANGO_TABLE_PREFIX = 'django_auth_recovery_codes_'

/** Users read per page (all their batches and codes at once). */
export const DEFAULT_DJANGO_PAGE_SIZE = 500

/** Largest `pageSize`. */
export const MAX_DJANGO_PAGE_SIZE = 10_000

/** A Django user id as the driver returns it (`integer` → number, `bigint` on PostgreSQL → string). */
export type DjangoUserId = string | number | bigint

/** Options of {@link djangoRecoveryCodesSource}. */
export interface DjangoRecoveryCodesSourceOptions {
  /** The Django database (SQLite or PostgreSQL). For another schema, pass `db.withSchema(name)`. */
  // biome-ignore lint/suspicious/noExplicitAny: another system's database, of a schema we do not type
  db: Kysely<any>
  /** The `import.legacyDigests[].id` configured with this app's `DJANGO_AUTH_RECOVERY_KEY`. */
  legacyKeyId: string
  /**
   * The host's user id for a Django `auth_user.id`.
   * @default String
   */
  userId?: (djangoUserId: DjangoUserId) => string
  /** @default 'django_auth_recovery_codes_' */
  tablePrefix?: string
  /** Users per page, from 1 to 10,000. @default 500 */
  pageSize?: number
}

const STATUSES = new Set(['a', 'i', 'p', 'd'])
const LEGACY_KEY_ID = /^[A-Za-z0-9_-]{1,32}$/

interface BatchRow {
  id: unknown
  user_id: DjangoUserId | null
  status: unknown
  created_at: unknown
  modified_at: unknown
  deleted_at: unknown
  expiry_date: unknown
}

interface CodeRow {
  id: unknown
  batch_id: unknown
  user_id: unknown
  batch_user_id: unknown
  look_up_hash: unknown
  status: unknown
  is_used: unknown
  is_deactivated: unknown
  mark_for_deletion: unknown
  days_to_expire: unknown
  created_at: unknown
  modified_at: unknown
}

/** One batch row, read. */
interface Batch {
  id: string
  row: string
  status: string
  createdAt: number
  modifiedAt: number
  deletedAt: number | null
  expiryDate: number | null
}

/**
 * The django-auth-recovery-codes tables as an {@link ImportSource}: one {@link SourceBatch} per
 * `recoverycodesbatch` row, in a stable order (users by `user_id`, then each user's batches
 * oldest first), every code a legacy digest under `legacyKeyId`. A user's batches and codes are
 * read together, `pageSize` users at a time, so memory stays bounded at any table size.
 *
 * Left out with a reason (`skip`): batches whose user was deleted (`user_id` NULL) and batches
 * with no code left. `IMPORT_INVALID`, naming the row: a code whose batch is missing, a
 * `look_up_hash` that is not 128 hex digits, an unknown status, an unreadable date.
 *
 * @example
 * ```ts
 * const source = djangoRecoveryCodesSource({ db: djangoDb, legacyKeyId: 'django' })
 * const report = await rc.importCodes(source, { dryRun: true })
 * ```
 * @throws RecoveryCodesError `INVALID_INPUT` for unusable options.
 */
export function djangoRecoveryCodesSource(options: DjangoRecoveryCodesSourceOptions): ImportSource {
  const db = options?.db
  if (typeof db?.selectFrom !== 'function') throw invalidOption('db', 'must be a Kysely instance')
  const legacyKeyId = options.legacyKeyId
  if (typeof legacyKeyId !== 'string' || !LEGACY_KEY_ID.test(legacyKeyId)) {
    throw invalidOption('legacyKeyId', 'must match /^[A-Za-z0-9_-]{1,32}$/')
  }
  const mapUser = options.userId ?? String
  if (typeof mapUser !== 'function') throw invalidOption('userId', 'must be a function')
  const prefix = options.tablePrefix ?? DEFAULT_DJANGO_TABLE_PREFIX
  checkIdentifier('tablePrefix', `${prefix}recoverycodesbatch`)
  const pageSize = checkPageSize('pageSize', options.pageSize, DEFAULT_DJANGO_PAGE_SIZE, MAX_DJANGO_PAGE_SIZE)
  const batchTable = `${prefix}recoverycodesbatch`
  const codeTable = `${prefix}recoverycode`
  const batchLabel = (id: unknown) => `${batchTable} ${printableId(id)}`
  const codeLabel = (id: unknown, batchId: unknown) =>
    `${codeTable} ${printableId(id)} (batch ${printableId(batchId)})`

  /** Codes whose batch row is gone cannot be placed anywhere: the source is inconsistent. */
  async function checkOrphans(): Promise<void> {
    const orphan = await db
      .selectFrom(`${codeTable} as c`)
      .leftJoin(`${batchTable} as b`, 'b.id', 'c.batch_id')
      .select(['c.id as id', 'c.batch_id as batch_id'])
      .where('b.id', 'is', null)
      .orderBy('c.id')
      .limit(1)
      .executeTakeFirst()
    if (orphan !== undefined) {
      const label = codeLabel(
        canonicalUuid(orphan.id) ?? orphan.id,
        canonicalUuid(orphan.batch_id) ?? orphan.batch_id,
      )
      throw importInvalid(label, 'its batch is missing')
    }
  }

  /** Batches whose user was deleted (the seed's `on_delete=SET_NULL`): nobody to import them for. */
  async function skipOrphanedBatches(skip: (s: SourceSkip) => void): Promise<void> {
    let after: unknown
    for (;;) {
      const rows = await db
        .selectFrom(batchTable)
        .select('id')
        .where('user_id', 'is', null)
        .$if(after !== undefined, (qb) => qb.where('id', '>', after))
        .orderBy('id')
        .limit(pageSize)
        .execute()
      for (const r of rows) {
        skip({
          row: batchLabel(canonicalUuid(r.id) ?? r.id),
          reason: 'its user was deleted (user_id is NULL)',
        })
      }
      if (rows.length < pageSize) return
      after = rows[rows.length - 1]!.id
    }
  }

  function toBatch(r: BatchRow): Batch {
    const id = canonicalUuid(r.id)
    const row = batchLabel(id ?? r.id)
    const fail: Fail = (what) => {
      throw importInvalid(row, what)
    }
    if (id === null) fail('id is not a UUID')
    if (typeof r.status !== 'string' || !STATUSES.has(r.status))
      fail("status is not one of 'a', 'i', 'p', 'd'")
    const createdAt = readDatetime(r.created_at, 'created_at', fail)
    const modifiedAt = readDatetime(r.modified_at, 'modified_at', fail)
    if (createdAt === null) return fail('created_at is NULL')
    return {
      id: id!,
      row,
      status: r.status as string,
      createdAt,
      modifiedAt: modifiedAt ?? createdAt,
      deletedAt: readDatetime(r.deleted_at, 'deleted_at', fail),
      expiryDate: readDate(r.expiry_date, 'expiry_date', fail),
    }
  }

  function toCode(r: CodeRow): { batchId: string; createdAt: number; days: number; code: SourceCode } {
    const id = canonicalUuid(r.id)
    const batchId = canonicalUuid(r.batch_id)
    const row = codeLabel(id ?? r.id, batchId ?? r.batch_id)
    const fail: Fail = (what) => {
      throw importInvalid(row, what)
    }
    if (id === null) fail('id is not a UUID')
    if (String(r.user_id) !== String(r.batch_user_id)) {
      fail(`belongs to user ${printableId(r.user_id)}, its batch to user ${printableId(r.batch_user_id)}`)
    }
    const legacyDigest = djangoLookupHashDigest(r.look_up_hash as string)
    if (legacyDigest === null) fail('look_up_hash is not 128 hex digits (an HMAC-SHA3-512)')
    if (typeof r.status !== 'string' || !STATUSES.has(r.status))
      fail("status is not one of 'a', 'i', 'p', 'd'")
    const used = readBool(r.is_used, 'is_used', fail)
    const deactivated = readBool(r.is_deactivated, 'is_deactivated', fail)
    const marked = readBool(r.mark_for_deletion, 'mark_for_deletion', fail)
    const createdAt = readDatetime(r.created_at, 'created_at', fail)
    if (createdAt === null) fail('created_at is NULL')
    const modifiedAt = readDatetime(r.modified_at, 'modified_at', fail) ?? createdAt!
    const status = r.status as string
    const state: CodeState = used
      ? 'used'
      : marked || status === 'p' || status === 'd'
        ? 'deleted'
        : deactivated || status === 'i'
          ? 'invalidated'
          : 'active'
    return {
      batchId: batchId!,
      createdAt: createdAt!,
      days: readCount(r.days_to_expire, 'days_to_expire', fail),
      code: {
        sourceId: id!,
        state,
        usedAt: state === 'used' ? modifiedAt : null,
        legacyDigest: legacyDigest!,
      },
    }
  }

  /** One user's batches, oldest first, with the lifecycle mapped (see the README's table). */
  function* userBatches(
    djangoUserId: DjangoUserId,
    rows: BatchRow[],
    codes: Map<string, ReturnType<typeof toCode>[]>,
    skip: (s: SourceSkip) => void,
  ): Generator<SourceBatch> {
    const batches = rows.map(toBatch).sort((a, b) => a.createdAt - b.createdAt || compare(a.id, b.id))
    let userId: unknown
    try {
      userId = mapUser(djangoUserId)
    } catch {
      userId = undefined
    }
    if (typeof userId !== 'string' || userId.length === 0) {
      throw importInvalid(
        batchLabel(batches[0]?.id),
        `the userId option gave no user id for Django user ${printableId(djangoUserId)}`,
      )
    }
    const newestActive = batches.findLastIndex((b) => b.status === 'a')
    for (const [i, b] of batches.entries()) {
      const next = batches[i + 1]
      let status: BatchStatus
      let endedAt: number | null
      if (b.status === 'a') {
        // Several active batches (the seed supersedes in application code, not atomically): the
        // newest keeps working, the older ones ended when the next one was created.
        status = i === newestActive ? 'active' : 'superseded'
        endedAt = i === newestActive ? null : next!.createdAt
      } else if (b.status === 'i') {
        status = 'disabled'
        endedAt = b.deletedAt ?? b.modifiedAt
      } else {
        // 'p' with no deleted_at is what regeneration leaves (`_deactivate_all_batches_except_current`
        // updates status only): it ended when the next batch was created.
        status = 'deleted'
        endedAt = b.deletedAt ?? (b.status === 'p' && next !== undefined ? next.createdAt : b.modifiedAt)
      }
      const own = (codes.get(b.id) ?? []).sort(
        (x, y) => x.createdAt - y.createdAt || compare(x.code.sourceId, y.code.sourceId),
      )
      if (own.length === 0) {
        skip({ row: b.row, reason: 'has no codes left (purged)' })
        continue
      }
      const days = Math.max(...own.map((c) => c.days))
      yield {
        sourceId: b.id,
        row: b.row,
        userId,
        createdAt: b.createdAt,
        expiresAt: expiryOf(b.expiryDate, b.createdAt, days),
        status,
        endedAt: endedAt === null ? null : Math.max(endedAt, b.createdAt),
        legacyKeyId,
        codes: own.map((c) => c.code),
      }
    }
  }

  async function* batches(skip: (s: SourceSkip) => void): AsyncGenerator<SourceBatch> {
    await checkOrphans()
    await skipOrphanedBatches(skip)
    let after: DjangoUserId | undefined
    for (;;) {
      const users = await db
        .selectFrom(batchTable)
        .select('user_id')
        .where('user_id', 'is not', null)
        .$if(after !== undefined, (qb) => qb.where('user_id', '>', after))
        .groupBy('user_id')
        .orderBy('user_id')
        .limit(pageSize)
        .execute()
      if (users.length === 0) return
      const last = users[users.length - 1]!.user_id as DjangoUserId
      // This page's users: (after, last], by the ordering the database used to list them.
      // biome-ignore lint/suspicious/noExplicitAny: a select over either of the seed's tables
      const inPage = (qb: SelectQueryBuilder<any, any, any>, column: string) => {
        const q = qb.where(column, '<=', last)
        return after === undefined ? q.where(column, 'is not', null) : q.where(column, '>', after)
      }
      const batchRows = (await inPage(
        db.selectFrom(batchTable).select((eb) => [
          'id',
          'user_id',
          'status',
          'created_at',
          'modified_at',
          'deleted_at',
          // As text on both backends: a PostgreSQL `date` would otherwise become local midnight.
          eb.cast(eb.ref('expiry_date'), 'text').as('expiry_date'),
        ]),
        'user_id',
      ).execute()) as BatchRow[]
      const codeRows = (await inPage(
        db
          .selectFrom(`${codeTable} as c`)
          .innerJoin(`${batchTable} as b`, 'b.id', 'c.batch_id')
          .select([
            'c.id as id',
            'c.batch_id as batch_id',
            'c.user_id as user_id',
            'b.user_id as batch_user_id',
            'c.look_up_hash as look_up_hash',
            'c.status as status',
            'c.is_used as is_used',
            'c.is_deactivated as is_deactivated',
            'c.mark_for_deletion as mark_for_deletion',
            'c.days_to_expire as days_to_expire',
            'c.created_at as created_at',
            'c.modified_at as modified_at',
          ])
          // Codes are checked in a fixed order, so a bad row is always the same one reported.
          .orderBy('c.id'),
        'b.user_id',
      ).execute()) as CodeRow[]
      const codes = new Map<string, ReturnType<typeof toCode>[]>()
      for (const r of codeRows) {
        const c = toCode(r)
        const list = codes.get(c.batchId)
        if (list === undefined) codes.set(c.batchId, [c])
        else list.push(c)
      }
      const byUser = new Map<string, BatchRow[]>()
      for (const r of batchRows) {
        const key = String(r.user_id)
        const list = byUser.get(key)
        if (list === undefined) byUser.set(key, [r])
        else list.push(r)
      }
      for (const u of users) {
        const uid = u.user_id as DjangoUserId
        yield* userBatches(uid, byUser.get(String(uid)) ?? [], codes, skip)
      }
      if (users.length < pageSize) return
      after = last
    }
  }

  return { name: DJANGO_SOURCE_NAME, batches } satisfies ImportSource
}

/**
 * When a batch stops verifying. The seed stores `expiry_date = (now + N days)` as a `DateField`
 * (the calendar day of that instant; it never enforces it) and `days_to_expire = N` on each code.
 * When `created_at + N days` falls on `expiry_date` (UTC), that instant is the expiry the user was
 * promised; otherwise (an edited date, a non-UTC `TIME_ZONE`) the batch stays valid through the
 * whole of `expiry_date` (UTC). So an imported batch never expires before the seed said it would.
 */
export function expiryOf(expiryDate: number | null, createdAt: number, days: number): number | null {
  const exact = days > 0 ? createdAt + days * DAY_MS : null
  if (expiryDate === null) return exact
  if (exact !== null && Math.floor(exact / DAY_MS) * DAY_MS === expiryDate) return exact
  return expiryDate + DAY_MS
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
