/**
 * Core benchmarks: generating a batch, one redeem on the memory store, and the bare operations
 * they are judged against (one native HMAC-SHA-256, one @noble HMAC).
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
import { type createReport, measure, measurePaired } from './harness.ts'

export async function runCoreBench(report: ReturnType<typeof createReport>) {
  const pepper = randomBytes(32)
  const nativeHmac = report.add(
    await measure(
      'hmac-sha256 of one code (node:crypto)',
      (i) => createHmac('sha256', pepper).update(`rc1\0user-${i}\0ABCDEFGHJKMNPQRSTVWXYZ0123`).digest(),
      { inner: 1000 },
    ),
  )
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
  // settle, audit), the cache version bump, events.
  const users = 2_400
  const perUser = 50
  const rc = createRecoveryCodes({
    peppers: [{ id: 'k1', secret: pepper.toString('base64') }],
    store: memoryStore(),
  })
  const codes: { userId: string; code: string }[] = []
  for (let u = 0; u < users; u++) {
    const r = await rc.generate({ userId: `bench-${u}`, count: perUser })
    if (!r.ok) throw new Error('cooldown')
    for (const code of r.codes) codes.push({ userId: `bench-${u}`, code })
  }
  // Interleave users so consecutive redeems do not hit one batch.
  codes.sort((a, b) => a.code.localeCompare(b.code))
  const redeemRun = { samples: 30, inner: 1000, warmup: 3 }
  const redeem = report.add(
    await measure(
      'redeem one code on the memory store (end to end)',
      async (i) => {
        const c = codes[i]!
        const r = await rc.redeem({ userId: c.userId, code: c.code, clientKey: '127.0.0.1' })
        if (!r.ok) throw new Error('bench redeem failed')
      },
      redeemRun,
    ),
  )
  // Two medians taken seconds apart: on a noisy machine this swings both ways (see the paired row).
  report.ratio('redeem (memory) / native HMAC, medians of separate runs', redeem, nativeHmac)

  // The same two, in alternating samples on fresh codes: the median of the pair ratios.
  let next = (redeemRun.samples + redeemRun.warmup) * redeemRun.inner
  const paired = await measurePaired(
    'redeem (memory) / native HMAC, median of 30 paired samples (target ≤ 3)',
    {
      name: 'hmac-sha256 of one code (node:crypto), paired',
      fn: (i) => createHmac('sha256', pepper).update(`rc1\0user-${i}\0ABCDEFGHJKMNPQRSTVWXYZ0123`).digest(),
      inner: 1000,
    },
    {
      name: 'redeem one code on the memory store (end to end), paired',
      fn: async () => {
        const c = codes[next++]!
        const r = await rc.redeem({ userId: c.userId, code: c.code, clientKey: '127.0.0.1' })
        if (!r.ok) throw new Error('bench redeem failed')
      },
      inner: 1000,
    },
  )
  report.add(paired.a)
  report.add(paired.b)
  report.add(paired.ratio)
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
