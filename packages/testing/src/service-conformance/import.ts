/**
 * `rc.importCodes` over the store: imported codes redeem exactly once through `rc.redeem` (native
 * ones and legacy-digest ones, typed as printed and as this project normalises input), dead ones
 * never; a re-run and a concurrent run write nothing twice; a bad row names itself and a re-run
 * resumes. Runs only on stores with `importBatch`.
 */
import {
  type ImportSource,
  isRecoveryCodesError,
  legacyDigest,
  type RecoveryCodesConfig,
  type SourceBatch,
  type SourceCode,
} from '@recovery-codes/core'
import { expect, it } from 'vitest'
import { uniqueId } from '../fixtures.ts'
import { checkStoreInvariants, formatViolation } from '../invariants.ts'
import { DAY, type ServiceSuite } from './harness.ts'

/** The seed's alphabet (django-auth-recovery-codes `SAFE_ALPHABET`) and better-auth's. */
const SEED_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijklmnopqrstuvwzyz23456789'
const BA_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const LEGACY_SECRET = 'test-only django recovery key (not a real one)'

export const IMPORT_CONFIG: Partial<RecoveryCodesConfig> = {
  import: {
    legacyDigests: [{ id: 'seed1', scheme: 'django-auth-recovery-codes', secret: LEGACY_SECRET }],
    formats: ['better-auth'],
  },
}

let counter = 0
/** A deterministic code over `alphabet` in `groups` × `length`, distinct per call. */
function code(alphabet: string, groups: number, length: number): string {
  counter++
  // A 32-bit LCG in exact integer arithmetic (Math.imul), seeded per call.
  let x = Math.imul(counter, 2654435761) >>> 0
  const parts: string[] = []
  for (let g = 0; g < groups; g++) {
    let p = ''
    for (let i = 0; i < length; i++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0
      p += alphabet[(x >>> 16) % alphabet.length]
    }
    parts.push(p)
  }
  return parts.join('-')
}

interface Built {
  source: ImportSource
  /** Codes that must redeem once, by user. */
  live: { userId: string; code: string }[]
  /** Codes that must never redeem. */
  dead: { userId: string; code: string }[]
  batches: number
  codes: number
}

/** A source of `users` users: per user a legacy (seed) batch or a native (better-auth) one. */
function buildSource(now: number, users = 6, name = uniqueId('src')): Built {
  const live: Built['live'] = []
  const dead: Built['dead'] = []
  const batches: SourceBatch[] = []
  const key = {
    id: 'seed1',
    scheme: 'django-auth-recovery-codes' as const,
    secret: new TextEncoder().encode(LEGACY_SECRET),
  }
  for (let u = 0; u < users; u++) {
    const userId = uniqueId('imported-user')
    if (u % 2 === 0) {
      // The seed: an old superseded batch (all dead), and the active one with mixed states.
      const old = Array.from({ length: 3 }, () => code(SEED_ALPHABET, 6, 6))
      const current = Array.from({ length: 6 }, () => code(SEED_ALPHABET, 6, 6))
      const states: SourceCode['state'][] = ['active', 'active', 'active', 'used', 'invalidated', 'deleted']
      batches.push({
        sourceId: `b-old-${userId}`,
        row: `recoverycodesbatch old-${u}`,
        userId,
        createdAt: now - 20 * DAY,
        expiresAt: null,
        status: 'superseded',
        endedAt: now - 10 * DAY,
        legacyKeyId: 'seed1',
        codes: old.map((c, i) => ({
          sourceId: `c${i}`,
          state: 'active',
          usedAt: null,
          legacyDigest: legacyDigest(key, c)!,
        })),
      })
      for (const c of old) dead.push({ userId, code: c })
      batches.push({
        sourceId: `b-${userId}`,
        row: `recoverycodesbatch ${u}`,
        userId,
        createdAt: now - 10 * DAY,
        expiresAt: now + 30 * DAY,
        status: 'active',
        endedAt: null,
        legacyKeyId: 'seed1',
        codes: current.map((c, i) => ({
          sourceId: `c${i}`,
          state: states[i]!,
          usedAt: states[i] === 'used' ? now - DAY : null,
          legacyDigest: legacyDigest(key, c)!,
        })),
      })
      for (const [i, c] of current.entries()) (states[i] === 'active' ? live : dead).push({ userId, code: c })
    } else {
      const codes = Array.from({ length: 4 }, () => code(BA_ALPHABET, 2, 5))
      batches.push({
        sourceId: userId,
        row: `twoFactor ${userId}`,
        userId,
        createdAt: now,
        expiresAt: null,
        status: 'active',
        endedAt: null,
        codes: codes.map((c, i) => ({ sourceId: String(i), state: 'active', usedAt: null, plaintext: c })),
      })
      for (const c of codes) live.push({ userId, code: c })
    }
  }
  return {
    source: { name, batches: () => iterate(batches) },
    live,
    dead,
    batches: batches.length,
    codes: batches.reduce((n, b) => n + b.codes.length, 0),
  }
}

async function* iterate<T>(items: readonly T[], failAt = -1): AsyncGenerator<T> {
  for (let i = 0; i < items.length; i++) {
    if (i === failAt) throw new Error('source failed')
    yield items[i]!
  }
}

/** Registers the import tests. */
export function importTests(suite: ServiceSuite): void {
  const supported = () => typeof suite.store.importBatch === 'function'

  it('imports native and legacy codes: each live one redeems exactly once, typed as printed or normalised; dead ones never', async (ctx) => {
    if (!supported()) return ctx.skip()
    const h = suite.make(IMPORT_CONFIG)
    const built = buildSource(h.clock.now())
    const report = await h.rc.importCodes(built.source)
    expect(report.batches).toMatchObject({
      read: built.batches,
      imported: built.batches,
      existing: 0,
      conflicts: 0,
    })
    expect(report.codes.read).toBe(built.codes)
    expect(report.codes.byState).toEqual({ active: 3 * 3 + 3 * 3 + 12, used: 3, invalidated: 3, deleted: 3 })
    expect(report.users).toBe(6)
    for (const [i, { userId, code }] of built.live.entries()) {
      // Every other one typed with spaces for dashes: both schemes strip them.
      const typed = i % 2 === 0 ? code : code.replaceAll('-', ' ')
      const first = await h.rc.redeem({ userId, code: typed })
      expect(first.ok, `live code ${i}`).toBe(true)
      const again = await h.rc.redeem({ userId, code })
      expect(again.ok, `live code ${i} twice`).toBe(false)
    }
    for (const [i, { userId, code }] of built.dead.entries()) {
      expect((await h.rc.redeem({ userId, code })).ok, `dead code ${i}`).toBe(false)
    }
    // Imported batches keep the store's invariants (their audit row stands for generation).
    const swept = await checkStoreInvariants(h.store, {
      userIds: [...new Set(built.live.map((l) => l.userId))],
    })
    expect(swept.violations.map(formatViolation)).toEqual([])
  })

  it('case is kept for case-sensitive imported codes: a case-flipped code does not redeem', async (ctx) => {
    if (!supported()) return ctx.skip()
    const h = suite.make(IMPORT_CONFIG)
    const built = buildSource(h.clock.now(), 2)
    await h.rc.importCodes(built.source)
    for (const { userId, code } of built.live) {
      const flipped = code.replace(/[A-Za-z]/, (c) =>
        c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase(),
      )
      if (flipped === code) continue
      expect((await h.rc.redeem({ userId, code: flipped })).ok).toBe(false)
    }
  })

  it('without the legacy key configured, imported legacy codes do not redeem; the import itself is refused', async (ctx) => {
    if (!supported()) return ctx.skip()
    const h = suite.make({ import: { formats: ['better-auth'] } })
    const built = buildSource(h.clock.now(), 1)
    const error = await h.rc.importCodes(built.source).catch((e: unknown) => e)
    expect(isRecoveryCodesError(error, 'IMPORT_INVALID')).toBe(true)
    expect((error as Error).message).toContain('recoverycodesbatch old-0')
    expect((error as Error).message).toContain('seed1')
  })

  it('expiry is enforced on imported batches', async (ctx) => {
    if (!supported()) return ctx.skip()
    const h = suite.make(IMPORT_CONFIG)
    const built = buildSource(h.clock.now(), 1)
    await h.rc.importCodes(built.source)
    h.clock.advance(31 * DAY)
    for (const { userId, code } of built.live) expect((await h.rc.redeem({ userId, code })).ok).toBe(false)
  })

  it('a second run writes nothing; a dry run writes nothing and reports the same counts', async (ctx) => {
    if (!supported()) return ctx.skip()
    const h = suite.make(IMPORT_CONFIG)
    const built = buildSource(h.clock.now(), 4)
    const dry = await h.rc.importCodes(built.source, { dryRun: true })
    expect(dry.dryRun).toBe(true)
    expect(dry.batches.imported).toBe(built.batches)
    for (const { userId } of built.live) expect((await h.rc.status({ userId })).active).toBeNull()
    const first = await h.rc.importCodes(built.source)
    expect(first.codes).toEqual({ ...dry.codes })
    const audits = (await h.store.listAudit({ limit: 1000, event: 'batch.imported' })).length
    const second = await h.rc.importCodes(built.source)
    expect(second.batches).toMatchObject({ read: built.batches, imported: 0, existing: built.batches })
    expect((await h.store.listAudit({ limit: 1000, event: 'batch.imported' })).length).toBe(audits)
  })

  it('two imports of one source at once write every batch once', async (ctx) => {
    if (!supported()) return ctx.skip()
    const h = suite.make(IMPORT_CONFIG)
    const built = buildSource(h.clock.now(), 8)
    const [a, b] = await Promise.all([
      h.rc.importCodes(built.source, { concurrency: 3 }),
      h.rc.importCodes(built.source, { concurrency: 3 }),
    ])
    expect(a.batches.imported + b.batches.imported).toBe(built.batches)
    expect(a.batches.existing + b.batches.existing).toBe(built.batches)
    for (const { userId, code } of built.live) expect((await h.rc.redeem({ userId, code })).ok).toBe(true)
  })

  it("never supersedes: a user's own active batch stays, the imported active one is reported as a conflict", async (ctx) => {
    if (!supported()) return ctx.skip()
    const h = suite.make(IMPORT_CONFIG)
    const built = buildSource(h.clock.now(), 2)
    const own = await suite.batchFor(h, built.live.at(-1)!.userId, 3)
    const report = await h.rc.importCodes(built.source)
    expect(report.batches.conflicts).toBe(1)
    expect(report.skipped).toContainEqual({
      row: `twoFactor ${own.userId}`,
      reason: expect.stringContaining('active batch'),
    })
    expect((await h.rc.redeem({ userId: own.userId, code: own.codes[0]! })).ok).toBe(true)
  })

  it('a bad row names itself and writes nothing of itself; rows before it stay, and a re-run resumes', async (ctx) => {
    if (!supported()) return ctx.skip()
    const h = suite.make(IMPORT_CONFIG)
    const built = buildSource(h.clock.now(), 4)
    const all: SourceBatch[] = []
    for await (const b of built.source.batches(() => {})) all.push(b)
    const broken = all.map((b, i) =>
      i === 3 ? { ...b, codes: [...b.codes, { ...b.codes[0]!, sourceId: 'x' }] } : b,
    )
    const error = await h.rc
      .importCodes({ name: built.source.name, batches: () => iterate(broken) }, { concurrency: 1 })
      .catch((e: unknown) => e)
    expect(isRecoveryCodesError(error, 'IMPORT_INVALID')).toBe(true)
    expect((error as Error).message).toContain(all[3]!.row)
    // A failing source: the same.
    const failing = await h.rc
      .importCodes({ name: built.source.name, batches: () => iterate(all, 5) }, { concurrency: 1 })
      .catch((e: unknown) => e)
    expect((failing as Error).message).toBe('source failed')
    const resumed = await h.rc.importCodes(built.source)
    // Rows 0-2 came in before the bad row, 3-4 before the source failed: one is left.
    expect(resumed.batches.imported).toBe(built.batches - 5)
    expect(resumed.batches.existing).toBe(5)
  })

  it('bad input: unfit plaintext, a missing digest, an unknown status, a bad source are refused before any write', async (ctx) => {
    if (!supported()) return ctx.skip()
    const h = suite.make(IMPORT_CONFIG)
    const userId = uniqueId('bad-import')
    const base: SourceBatch = {
      sourceId: 'b',
      row: 'row 7',
      userId,
      createdAt: h.clock.now(),
      expiresAt: null,
      status: 'active',
      endedAt: null,
      codes: [{ sourceId: '1', state: 'active', usedAt: null, plaintext: 'short' }],
    }
    const cases: Partial<SourceBatch>[] = [
      {},
      { legacyKeyId: 'seed1' },
      { status: 'gone' as never },
      { userId: '' },
      { codes: [] },
      { createdAt: Number.NaN },
    ]
    for (const change of cases) {
      const e = await h.rc
        .importCodes({ name: 's', batches: () => iterate([{ ...base, ...change }]) })
        .catch((x: unknown) => x)
      expect(isRecoveryCodesError(e, 'IMPORT_INVALID'), JSON.stringify(Object.keys(change))).toBe(true)
      expect((e as Error).message).toMatch(/^row 7: /)
      expect((e as Error).message).not.toContain('short')
    }
    expect((await h.rc.status({ userId })).active).toBeNull()
    for (const bad of [null, {}, { name: '', batches: () => iterate([]) }]) {
      const e = await h.rc.importCodes(bad as never).catch((x: unknown) => x)
      expect(isRecoveryCodesError(e, 'INVALID_INPUT')).toBe(true)
    }
    const e = await h.rc
      .importCodes(buildSource(h.clock.now(), 1).source, { concurrency: 0 })
      .catch((x: unknown) => x)
    expect(isRecoveryCodesError(e, 'INVALID_INPUT')).toBe(true)
  })

  it('audits each imported batch once, with counts and never a code', async (ctx) => {
    if (!supported()) return ctx.skip()
    const h = suite.make(IMPORT_CONFIG)
    const built = buildSource(h.clock.now(), 2)
    await h.rc.importCodes(built.source)
    const rows = (await h.store.listAudit({ limit: 1000, event: 'batch.imported' })).filter((r) =>
      built.live.some((l) => l.userId === r.userId),
    )
    expect(rows.length).toBe(built.batches)
    const text = JSON.stringify(rows)
    for (const { code } of [...built.live, ...built.dead]) {
      expect(text).not.toContain(code)
      expect(text).not.toContain(code.replaceAll('-', ''))
    }
    expect(rows.every((r) => r.data?.source === built.source.name)).toBe(true)
  })
}
