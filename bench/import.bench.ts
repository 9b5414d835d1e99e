/**
 * Import benchmarks (issue 17): `rc.importCodes` throughput in codes per second from a seed-shaped
 * source (django-auth-recovery-codes: 10 codes per user, legacy digests) on the memory store and
 * on SQLite, and the cost of redeeming a legacy-digest code next to a native one (interleaved
 * rounds on one service, ratio of medians per round; target ≤ 1.5).
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createRecoveryCodes,
  type ImportSource,
  legacyDigest,
  type RecoveryCodeStore,
  type SourceBatch,
} from '@recovery-codes/core'
import { kyselyStore, migrateRecoveryCodes } from '@recovery-codes/store-kysely'
import { memoryStore } from '@recovery-codes/store-memory'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { type createReport, measureInterleaved, pairRatio, single } from './harness.ts'

const USERS = Number(process.env.RC_BENCH_IMPORT_USERS ?? 10_000)
const PER_USER = 10
const ROUNDS = 30
const PER_ROUND = 200
const SEED_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijklmnopqrstuvwzyz23456789'
const LEGACY_SECRET = 'bench-only django recovery key'
const PEPPER = Buffer.from(Uint8Array.from({ length: 32 }, (_, i) => (i * 29 + 7) % 251)).toString('base64')
const key = {
  id: 'seed1',
  scheme: 'django-auth-recovery-codes' as const,
  secret: new TextEncoder().encode(LEGACY_SECRET),
}
const config = {
  peppers: [{ id: 'k1', secret: PEPPER }],
  // The native arm's batches are written as they are generated.
  activation: 'immediate' as const,
  import: {
    legacyDigests: [{ id: 'seed1', scheme: 'django-auth-recovery-codes' as const, secret: LEGACY_SECRET }],
  },
}

/** A seed-shaped code (6 groups of 6), distinct per index: bytes of SHA-256 over the index. */
function seedCode(i: number): string {
  const bytes = createHash('sha256').update(`seed-code-${i}`).digest()
  let out = ''
  for (let k = 0; k < 36; k++) {
    out += SEED_ALPHABET[bytes[k % 32]! % SEED_ALPHABET.length]
    if (k % 6 === 5 && k < 35) out += '-'
  }
  return out
}

/** `users` users of one active seed batch each; the plaintexts by user for the redeem arm. */
function seedSource(users: number, now: number) {
  const batches: SourceBatch[] = []
  const plain: { userId: string; code: string }[] = []
  for (let u = 0; u < users; u++) {
    const userId = `seed-user-${u}`
    const codes = Array.from({ length: PER_USER }, (_, k) => seedCode(u * PER_USER + k))
    for (const code of codes) plain.push({ userId, code })
    batches.push({
      sourceId: `batch-${u}`,
      row: `recoverycodesbatch ${u}`,
      userId,
      createdAt: now - 86_400_000,
      expiresAt: null,
      status: 'active',
      endedAt: null,
      legacyKeyId: 'seed1',
      codes: codes.map((c, k) => ({
        sourceId: String(k),
        state: 'active',
        usedAt: null,
        legacyDigest: legacyDigest(key, c)!,
      })),
    })
  }
  const source: ImportSource = {
    name: 'django-auth-recovery-codes',
    async *batches() {
      yield* batches
    },
  }
  return { source, plain }
}

async function throughput(report: ReturnType<typeof createReport>, label: string, store: RecoveryCodeStore) {
  const rc = createRecoveryCodes({ ...config, store })
  const { source } = seedSource(USERS, Date.now())
  const t0 = performance.now()
  const r = await rc.importCodes(source, { concurrency: 4 })
  const seconds = (performance.now() - t0) / 1000
  if (r.codes.imported !== USERS * PER_USER) throw new Error(`bench: imported ${r.codes.imported}`)
  report.add(
    single(
      `import ${label}: ${USERS} users × ${PER_USER} seed codes, codes (rows) per second`,
      'rows/s',
      r.codes.imported / seconds,
    ),
  )
  console.log(
    `[import] ${label}: ${r.codes.imported} codes in ${seconds.toFixed(2)} s (${Math.round(r.codes.imported / seconds)} codes/s)`,
  )
}

export async function runImportBench(report: ReturnType<typeof createReport>) {
  await throughput(report, 'memory store', memoryStore())
  const dir = mkdtempSync(join(tmpdir(), 'rc-import-bench-'))
  try {
    const raw = new Database(join(dir, 'rc.db'))
    raw.pragma('journal_mode = WAL')
    raw.pragma('synchronous = NORMAL')
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: raw }) })
    await migrateRecoveryCodes(db)
    await throughput(report, 'SQLite (WAL, synchronous=NORMAL)', kyselyStore(db))
    await db.destroy()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }

  // Legacy vs native redeem on one memory-store service configured with the legacy scheme: the
  // native arm pays the legacy candidate too (one HMAC-SHA3-512), as every redeem of such a host.
  const rc = createRecoveryCodes({ ...config, store: memoryStore() })
  const needed = (ROUNDS + 3) * PER_ROUND
  const { source, plain } = seedSource(Math.ceil(needed / PER_USER), Date.now())
  await rc.importCodes(source)
  const native: { userId: string; code: string }[] = []
  for (let u = 0; native.length < needed; u++) {
    const g = await rc.generate({ userId: `native-user-${u}`, count: 50 })
    if (!g.ok) throw new Error('bench: cooldown')
    for (const code of g.codes) native.push({ userId: `native-user-${u}`, code })
  }
  const redeemOf = (list: { userId: string; code: string }[]) => async (i: number) => {
    const c = list[i]!
    const r = await rc.redeem({ userId: c.userId, code: c.code, clientKey: '127.0.0.1' })
    if (!r.ok) throw new Error('bench: redeem failed')
  }
  const { results, samples } = await measureInterleaved(
    [
      {
        name: 'rc.redeem of a native code (memory, import configured), interleaved',
        fn: redeemOf(native),
        inner: PER_ROUND,
      },
      {
        name: 'rc.redeem of an imported seed code (legacy digest), interleaved',
        fn: redeemOf(plain),
        inner: PER_ROUND,
      },
    ],
    { samples: ROUNDS, warmup: 3 },
  )
  for (const row of results) report.add(row)
  report.add(
    pairRatio(
      `legacy / native rc.redeem, median of ${ROUNDS} interleaved rounds (target ≤ 1.5)`,
      samples[0]!,
      samples[1]!,
    ),
  )
}
