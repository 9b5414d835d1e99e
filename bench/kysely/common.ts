/**
 * Shared pieces of the store-kysely benchmarks: sizes, the seeded data set, code sources (issued
 * through the service, or seeded rows whose digest is known), the redeem input, small helpers.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import {
  type createRecoveryCodes,
  DEFAULT_CODE_FORMAT,
  normalize,
  type RedeemCodeInput,
} from '@recovery-codes/core'

/** The databases a run can target (`mysql`: MySQL 8 or MariaDB, see mysql.ts). */
export type BenchDialect = 'sqlite' | 'postgres' | 'mysql'

export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
export const DAY = 86_400_000
export const CODES_PER_BATCH = 20
/** Seeded code rows at full size (50,000 batches × 20 codes, half of them purge-eligible). */
export const BIG_ROWS = Number(process.env.RC_BENCH_ROWS ?? 1_000_000)
export const BIG_BATCHES = Math.max(400, Math.floor(BIG_ROWS / CODES_PER_BATCH / 4) * 4)
/** The big table in row names: `1M` at full size. */
export const BIG_LABEL =
  BIG_BATCHES * CODES_PER_BATCH >= 1e6
    ? `${(BIG_BATCHES * CODES_PER_BATCH) / 1e6}M`
    : `${Math.round((BIG_BATCHES * CODES_PER_BATCH) / 1e3)}k`
/** The small table: 350 seeded batches (7,000 rows) + 150 service batches of 20 (3,000 rows) = 10,000. */
export const SMALL_BATCHES = 350
export const SMALL_USERS = 150
export const CLIENT_KEY = '203.0.113.7'
export const PURGE_CHUNK = Number(process.env.RC_BENCH_PURGE_CHUNK ?? 1000)
/** The purge retention (days): `before = now - 90 d` (the service default). */
export const RETENTION_DAYS = 90

export const PEPPER = randomBytes(32)
export const PEPPERS = [{ id: 'k1', secret: PEPPER.toString('base64') }]

export const fmt = (n: number) => n.toLocaleString('en-US')

// ---------------------------------------------------------------------------------------------
// The data set. Batch b belongs to user `seed-<b/4>`; k = b % 4 is its age:
//   k=0 superseded 500 d ago, created 800 d ago, expired (expires_at = created + 365 d), 3/20 used
//   k=1 superseded 200 d ago, 2/20 used
//   k=2 superseded 30 d ago, 1/20 used
//   k=3 the user's active batch, 1/20 used, 1 in 2 of them with expires_at in 300 d
// Used codes die one by one at their own time (code j of every batch on day j+1 after creation, so
// a purge chunk by changed_at picks them from many batches: scattered pages); the unused rest of a
// batch dies at once when it is superseded (runs of neighbouring rows). Recovery codes are rarely
// used, and a used code asks the user to regenerate, so most dead rows are superseded ones.
// Purge cutoff `before = now - 90 d`: every code of k=0 and k=1 is eligible (changed_at, and for
// k=0 also expires_at, is older), none of k=2/k=3: exactly half the seeded rows.
// Code i = b*20 + j: id = hex12(created ms) || md5('c' || i)[0..20] (32 hex, time-prefixed like the
// service's ids, so a batch's codes are adjacent in the id index), digest =
// sha256(int8be(i)) (32 bytes, unique), the same on every database. The active batches' unused
// codes (k=3, j ≥ 1) are redeemable through the store by that digest: see {@link seededCodes}.
//
// Columns are written only when the table has them (the store's migrations decide the schema;
// `columns` is read from the database), so a later migration that drops a counter still seeds.

export interface SeedOptions {
  from: number
  to: number
  now: number
  what: 'batches' | 'codes'
  eligibleOnly?: boolean
  /** The table's columns (of `rc_batches` or `rc_codes`, per `what`). */
  columns: ReadonlySet<string>
}

export function seedSql(d: BenchDialect, o: SeedOptions): string {
  const sqlite = d === 'sqlite'
  const ts = (x: string) => (sqlite ? `(${x})` : `to_timestamp((${x}) / 1000.0)`)
  const { now } = o
  const series = sqlite ? 'g' : `generate_series(${o.from}::bigint, ${o.to - 1}::bigint) AS g(b)`
  const ba = `
    SELECT b, k, created, ended, u,
      CASE WHEN k = 0 THEN created + ${365 * DAY} WHEN k = 3 AND b % 8 = 3 THEN ${now + 300 * DAY} END AS expires
    FROM (SELECT b, k,
        ${now} - (CASE k WHEN 0 THEN ${800 * DAY} WHEN 1 THEN ${500 * DAY} WHEN 2 THEN ${80 * DAY} ELSE ${20 * DAY} END) + b * 1000 AS created,
        (CASE k WHEN 0 THEN ${now - 500 * DAY} WHEN 1 THEN ${now - 200 * DAY} WHEN 2 THEN ${now - 30 * DAY} END) + b * 1000 AS ended,
        CASE k WHEN 0 THEN 3 WHEN 1 THEN 2 WHEN 2 THEN 1 ELSE 1 END AS u
      FROM (SELECT b, b % 4 AS k FROM ${series}) s
      ${o.eligibleOnly ? 'WHERE k < 2' : ''}) t`
  const cte = sqlite
    ? `WITH RECURSIVE g(b) AS (SELECT ${o.from} UNION ALL SELECT b + 1 FROM g WHERE b < ${o.to - 1}),
         js(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM js WHERE j < ${CODES_PER_BATCH - 1}) `
    : ''
  const pick = (table: string, all: [string, string][], required: string[]) => {
    for (const c of required) {
      if (!o.columns.has(c)) throw new Error(`bench: ${table} has no column ${c}; the seed needs it`)
    }
    const kept = all.filter(([c]) => o.columns.has(c))
    return { cols: kept.map(([c]) => c).join(', '), exprs: kept.map(([, e]) => e).join(',\n        ') }
  }
  if (o.what === 'batches') {
    const { cols, exprs } = pick(
      'rc_batches',
      [
        ['id', `'sb-' || b`],
        ['user_id', `'seed-' || (b / 4)`],
        ['key_id', `'k1'`],
        ['status', `CASE WHEN k < 3 THEN 'superseded' ELSE 'active' END`],
        ['created_at', ts('created')],
        ['expires_at', ts('expires')],
        ['ended_at', ts('ended')],
        ['issued', `${CODES_PER_BATCH}`],
        ['unused', `${CODES_PER_BATCH} - u`],
        ['used', 'u'],
        ['invalidated', '0'],
        ['deleted', '0'],
        ['viewed_at', ts('created + 60000')],
        ['last_used_at', ts(`created + u * ${DAY}`)],
      ],
      ['id', 'user_id', 'status'],
    )
    return `${cte}INSERT INTO rc_batches (${cols}) SELECT ${exprs} FROM (${ba}) bt`
  }
  const js = sqlite ? 'js' : `generate_series(0::bigint, ${CODES_PER_BATCH - 1}::bigint) AS js(j)`
  // Time-prefixed like the service's ids (`newId(now)`: 48-bit ms, then random): a batch's codes
  // share the prefix and sit next to each other in the id index.
  const id = sqlite
    ? `printf('%012x', created) || substr(rc_md5(i), 1, 20)`
    : `lpad(to_hex(created), 12, '0') || substr(md5('c' || i), 1, 20)`
  const digest = sqlite ? 'rc_sha256(i)' : 'sha256(int8send(i))'
  const usedAt = `created + (j + 1) * ${DAY}`
  const { cols, exprs } = pick(
    'rc_codes',
    [
      ['id', id],
      ['user_id', `'seed-' || (b / 4)`],
      ['batch_id', `'sb-' || b`],
      ['key_id', `'k1'`],
      ['digest', digest],
      ['state', `CASE WHEN j < u THEN 'used' ELSE 'active' END`],
      ['created_at', ts('created')],
      ['expires_at', ts('expires')],
      ['used_at', `CASE WHEN j < u THEN ${ts(usedAt)} END`],
      ['changed_at', `CASE WHEN j < u THEN ${ts(usedAt)} WHEN k < 3 THEN ${ts('ended')} END`],
    ],
    ['id', 'user_id', 'batch_id', 'digest'],
  )
  return `${cte}INSERT INTO rc_codes (${cols})
    SELECT ${exprs}
    FROM (SELECT bt.*, js.j, bt.b * ${CODES_PER_BATCH} + js.j AS i FROM (${ba}) bt CROSS JOIN ${js}) x`
}

/** The digest of seeded code i: sha256(int8be(i)). */
export function seededDigest(i: number): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigInt64BE(BigInt(i))
  return createHash('sha256').update(b).digest()
}

export interface StoreCode {
  userId: string
  digest: Buffer
}

/**
 * The redeemable seeded codes (active batches b ≡ 3 mod 4, codes j = 1..19), handed out without
 * repeats: code n is in active batch n·P mod M (P ≈ M / φ, coprime to M, so neighbouring draws land
 * far apart in the table), j = 1 + ⌊n / M⌋. `take(n)` returns the next n.
 */
export function seededCodes(batches: number) {
  const m = batches / 4
  // A step near m / φ: consecutive draws land about 0.62·m active batches apart.
  let p = Math.max(2, Math.floor(m * 0.6180339887))
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b))
  while (gcd(p, m) !== 1) p++
  let next = 0
  const at = (n: number): StoreCode => {
    const j = 1 + Math.floor(n / m)
    if (j >= CODES_PER_BATCH) throw new Error('bench: out of seeded codes')
    const active = Number((BigInt(n) * BigInt(p)) % BigInt(m))
    const b = active * 4 + 3
    return { userId: `seed-${active}`, digest: seededDigest(b * CODES_PER_BATCH + j) }
  }
  return {
    /** Index range [from, from + n) for a worker that draws them itself. */
    reserve(n: number) {
      const from = next
      next += n
      at(next - 1)
      return { from, count: n, batches }
    },
    /** Codes not handed out yet. */
    get left() {
      return m * (CODES_PER_BATCH - 1) - next
    },
    take(n: number): StoreCode[] {
      const r = this.reserve(n)
      return Array.from({ length: n }, (_, k) => at(r.from + k))
    },
    at,
  }
}

/** The store's redeem input for one code: limiter keys as the service builds them, one audit row. */
export function redeemInput(c: StoreCode, auditId: string, now: number): RedeemCodeInput {
  const idKey = `bench-id:${c.userId}`
  return {
    userId: c.userId,
    digests: [c.digest],
    now,
    keys: [
      { key: idKey, maxAttempts: 5 },
      { key: `bench-ip:${CLIENT_KEY}`, maxAttempts: 1_000_000 },
    ],
    reset: [idKey],
    audit: {
      id: auditId,
      at: now,
      event: 'login.success',
      userId: c.userId,
      batchId: null,
      identifierHash: null,
      clientHash: null,
      outcome: 'success',
      reason: null,
      data: { mode: 'code' },
    },
  }
}

/** The core digest with node:crypto: HMAC(pepper, "rc1\0" ‖ u32be(len) ‖ userId ‖ u32be(len) ‖ code). */
export function nativeDigest(userId: string, canonical: string): Buffer {
  const u = Buffer.from(userId, 'utf8')
  const c = Buffer.from(canonical, 'utf8')
  const msg = Buffer.allocUnsafe(4 + 8 + u.length + c.length)
  msg.write('rc1\0', 0, 'latin1')
  msg.writeUInt32BE(u.length, 4)
  u.copy(msg, 8)
  msg.writeUInt32BE(c.length, 8 + u.length)
  c.copy(msg, 12 + u.length)
  return createHmac('sha256', PEPPER).update(msg).digest()
}

export interface Code {
  userId: string
  code: string
  canonical: string
}

export type Service = ReturnType<typeof createRecoveryCodes>

/** Generates one batch per user through the service, so the plaintext is known. */
export async function issueCodes(rc: Service, prefix: string, users: number): Promise<Code[]> {
  const out: Code[] = []
  for (let u = 0; u < users; u++) {
    const userId = `${prefix}-${u}`
    const r = await rc.generate({ userId, count: CODES_PER_BATCH })
    if (!r.ok) throw new Error(`bench: generate refused for ${userId}`)
    for (const code of r.codes) out.push({ userId, code, canonical: normalize(code, DEFAULT_CODE_FORMAT)! })
  }
  // Interleave users so consecutive redeems do not hit one batch.
  out.sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0))
  return out
}

/** Hands out codes in order, without repeats. */
export function codePool<T>(codes: readonly T[]) {
  let next = 0
  return {
    take(n: number): T[] {
      const s = codes.slice(next, next + n)
      next += n
      if (s.length < n) throw new Error(`bench: not enough codes (${codes.length} issued)`)
      return s
    },
    get left() {
      return codes.length - next
    },
  }
}

/** Wraps every method of an object, adding call durations to `into` (method → ms per call). */
export function timing<T extends object>(
  target: T,
  into: Map<string, number[]>,
  prefix = '',
  tick?: (ms: number) => void,
): T {
  return new Proxy(target, {
    get(t, p, r) {
      const v = Reflect.get(t, p, r)
      if (typeof v !== 'function') return v
      return async (...args: unknown[]) => {
        const t0 = performance.now()
        try {
          return await v.apply(t, args)
        } finally {
          const ms = performance.now() - t0
          const key = `${prefix}${String(p)}`
          const arr = into.get(key)
          if (arr === undefined) into.set(key, [ms])
          else arr.push(ms)
          tick?.(ms)
        }
      }
    },
  })
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
