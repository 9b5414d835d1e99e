/**
 * Core benchmarks: generating a batch, one redeem on the memory store, and the bare operations
 * they are judged against.
 *
 * The redeem figure of issue 15 ("Memory: `rc.redeem` ≤ 3.5× one native HMAC") comes from one
 * interleaved run: each round times 1,000 native HMACs, 1,000 floor operations and 1,000 fresh
 * redeems back to back, so the three share their moment on a noisy machine; the ratios are the
 * medians of the per-round ratios.
 */
import { createHmac, randomBytes } from 'node:crypto'
import {
  computeDigest,
  createRecoveryCodes,
  DEFAULT_CODE_FORMAT,
  generateCodes,
  nobleHmacSha256,
  systemHmacSha256,
  systemRandom,
} from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import { type createReport, measure, measureInterleaved, pairRatio } from './harness.ts'

/** Rounds of the interleaved redeem run (after {@link WARMUP_ROUNDS}), and iterations per arm and round. */
const ROUNDS = 30
const WARMUP_ROUNDS = 3
const PER_ROUND = 1000

/** One native HMAC-SHA-256 of a code-sized message (one SHA-256 block, like the service's). */
const codeMessage = (i: number) => `rc1\0user-${i}\0ABCDEFGHJKMNPQRSTVWXYZ0123`

export async function runCoreBench(report: ReturnType<typeof createReport>) {
  // 32 bytes, as the service's pepper below decodes to.
  const pepper = randomBytes(32)
  const nativeHmac = (i: number) => createHmac('sha256', pepper).update(codeMessage(i)).digest()
  report.add(
    await measure(
      'core digest of one code (computeDigest, platform HMAC as the service uses)',
      (i) => computeDigest(pepper, `user-${i}`, 'ABCDEFGHJKMNPQRSTVWXYZ0123', systemHmacSha256),
      { inner: 1000 },
    ),
  )
  report.add(
    await measure(
      'core digest of one code (computeDigest, @noble/hashes: the portable fallback)',
      (i) => computeDigest(pepper, `user-${i}`, 'ABCDEFGHJKMNPQRSTVWXYZ0123', nobleHmacSha256),
      { inner: 1000 },
    ),
  )
  report.add(
    await measure(
      'generate a batch of 10 codes, no storage (target ≤ 20 µs)',
      () => generateCodes(systemRandom, DEFAULT_CODE_FORMAT, 10),
      {
        inner: 500,
      },
    ),
  )

  // Redeem end to end on the memory store: normalize, digest, one `redeemCode` (reserve, consume,
  // settle, audit), the cache version bump, events. 120,000 live codes; each redeem uses a fresh one.
  const users = 2_400
  const perUser = 50
  const rc = createRecoveryCodes({
    peppers: [{ id: 'k1', secret: pepper.toString('base64') }],
    store: memoryStore(),
    // The batches are written as they are generated (no confirm step to time).
    activation: 'immediate',
  })
  const codes: { userId: string; code: string }[] = []
  for (let u = 0; u < users; u++) {
    const r = await rc.generate({ userId: `bench-${u}`, count: perUser })
    if (!r.ok) throw new Error('cooldown')
    for (const code of r.codes) codes.push({ userId: `bench-${u}`, code })
  }
  // Interleave users so consecutive redeems do not hit one batch.
  codes.sort((a, b) => a.code.localeCompare(b.code))
  const needed = (ROUNDS + WARMUP_ROUNDS) * PER_ROUND
  if (codes.length < needed) throw new Error(`bench needs ${needed} codes, has ${codes.length}`)

  // The floor: what no redeem can avoid. One native HMAC of the code, one `Map` lookup of the row
  // by a 30-bit digest prefix (a small-integer key) with the full digest compared, and one write
  // marking it used. Rows sharing a prefix are chained, as in the memory store, and there are as
  // many rows as the store holds codes, so both look up in a table of the same size.
  type FloorRow = { digest: Buffer; used: boolean; next: FloorRow | undefined }
  const floorRows = new Map<number, FloorRow>()
  for (let i = 0; i < codes.length; i++) {
    const digest = nativeHmac(i)
    const key = digest.readUInt32BE(0) >>> 2
    floorRows.set(key, { digest, used: false, next: floorRows.get(key) })
  }
  const floor = (i: number) => {
    const digest = nativeHmac(i)
    let row = floorRows.get(digest.readUInt32BE(0) >>> 2)
    while (row !== undefined && !row.digest.equals(digest)) row = row.next
    if (row === undefined || row.used) throw new Error('floor lookup failed')
    row.used = true
  }

  const { results, samples } = await measureInterleaved(
    [
      { name: 'hmac-sha256 of one code (node:crypto), interleaved', fn: nativeHmac, inner: PER_ROUND },
      { name: 'floor: native HMAC + Map lookup + write, interleaved', fn: floor, inner: PER_ROUND },
      {
        name: 'rc.redeem on the memory store (end to end), interleaved',
        fn: async (i) => {
          const c = codes[i]!
          const r = await rc.redeem({ userId: c.userId, code: c.code, clientKey: '127.0.0.1' })
          if (!r.ok) throw new Error('bench redeem failed')
        },
        inner: PER_ROUND,
      },
    ],
    { samples: ROUNDS, warmup: WARMUP_ROUNDS },
  )
  const [hmac, floorTimes, redeem] = samples
  for (const row of results) report.add(row)
  report.add(
    pairRatio(
      `rc.redeem (memory) / native HMAC, median of ${ROUNDS} interleaved rounds (target ≤ 3.5)`,
      hmac!,
      redeem!,
    ),
  )
  report.add(pairRatio(`floor / native HMAC, median of ${ROUNDS} interleaved rounds`, hmac!, floorTimes!))
}

/** Rejecting hostile input must cost nothing: a 1 MB string never reaches NFKC. */
export async function runNormalizeBench(report: ReturnType<typeof createReport>) {
  const { normalize } = await import('@recovery-codes/core')
  const huge = 'ABCDE-'.repeat(174_763)
  report.add(
    await measure(
      'normalize rejects a 1 MB input (target < 1 ms)',
      () => normalize(huge, DEFAULT_CODE_FORMAT),
      { inner: 100 },
    ),
  )
  const sloppy = ' 7k2qx m9d4r–ab0cd-efghj-kmnpq '
  report.add(
    await measure('normalize a sloppy 25-symbol input', () => normalize(sloppy, DEFAULT_CODE_FORMAT), {
      inner: 1000,
    }),
  )
}
