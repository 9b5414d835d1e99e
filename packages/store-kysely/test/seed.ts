import type { Kysely } from 'kysely'
import { createQueries } from '../src/store.ts'

/** Bulk-inserts code rows straight into `rc_codes` (and their batch), for volume tests. */
export async function seedCodes(
  db: Kysely<any>,
  dialect: 'sqlite' | 'postgres',
  o: {
    userId: string
    batchId: string
    count: number
    status?: 'active' | 'superseded'
    state?: 'active' | 'used'
    changedAt?: (i: number) => number | null
    expiresAt?: number | null
    endedAt?: number | null
    createdAt?: number
  },
): Promise<string[]> {
  const { ts } = createQueries(dialect)
  const t = (v: number | null | undefined) => (v === null || v === undefined ? null : ts(v))
  const createdAt = o.createdAt ?? 1
  await db
    .insertInto('rc_batches')
    .values({
      id: o.batchId,
      user_id: o.userId,
      key_id: 'k1',
      status: o.status ?? 'active',
      created_at: ts(createdAt),
      expires_at: t(o.expiresAt),
      ended_at: t(o.endedAt),
      issued: o.count,
      purged_used: 0,
    })
    .execute()
  const ids: string[] = []
  const CHUNK = 500
  for (let start = 0; start < o.count; start += CHUNK) {
    const rows = []
    for (let i = start; i < Math.min(o.count, start + CHUNK); i++) {
      const id = `${o.batchId}-c${i}`
      ids.push(id)
      rows.push({
        id,
        user_id: o.userId,
        batch_id: o.batchId,
        key_id: 'k1',
        digest: Buffer.from(crypto.getRandomValues(new Uint8Array(32))),
        state: o.state ?? 'active',
        created_at: ts(createdAt),
        expires_at: t(o.expiresAt),
        used_at: o.state === 'used' ? t(o.changedAt?.(i)) : null,
        changed_at: t(o.changedAt?.(i)),
      })
    }
    await db.insertInto('rc_codes').values(rows).execute()
  }
  return ids
}
