/**
 * Acceptance 3 (R-DB-1): injection payloads through every store input leave row counts unchanged
 * and reach the database only as bound parameters.
 */
import {
  type AuditRecord,
  type ImportedBatch,
  isRecoveryCodesError,
  type RecoveryCodeStore,
  type RedeemCodeInput,
} from '@recovery-codes/core'
import type { Compilable, Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createQueries, kyselyStore } from '../src/store.ts'
import { type Backend, pgliteBackend, pgUnavailable, postgresBackend, sqliteBackend } from './backends.ts'
import { batch, codes, rowCount } from './contract.ts'

const PAYLOADS = [
  "' OR 1=1 --",
  '"; DROP TABLE rc_codes; --',
  "x'); DELETE FROM rc_batches; --",
  '\u0000',
  `a\u0000' OR '1'='1`,
  'rc_codes.id',
  `${'A'.repeat(100_000)}' OR 1=1 --`,
]
const TABLES = ['rc_batches', 'rc_codes', 'rc_attempts', 'rc_audit_log', 'rc_email_log']

const storable = (p: string) => !p.includes('\u0000') && p.length <= 1024

/** An audit record with the payload in every text field. */
const auditOf = (p: string): AuditRecord => ({
  id: p,
  at: 1,
  event: p,
  userId: p,
  batchId: null,
  identifierHash: p,
  clientHash: p,
  outcome: 'success',
  reason: p,
  data: { note: p },
})

/** An imported batch with `p` in every string field (ids, user, key id). */
const imported = (p: string): ImportedBatch => ({
  id: `${p}-ib`,
  userId: p,
  keyId: p,
  createdAt: 1,
  expiresAt: null,
  status: 'active',
  endedAt: null,
  codes: [{ id: `${p}-ic`, digest: new Uint8Array(32).fill(7), state: 'used', usedAt: 2 }],
})

async function counts(db: Kysely<any>) {
  return Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await rowCount(db, t)] as const)))
}

/** Every statement of the query layer, built with `p` in each string slot. */
function everyQuery(db: Kysely<any>, dialect: 'sqlite' | 'postgres', p: string): [string, Compilable][] {
  const q = createQueries(dialect)
  const d = new Uint8Array(32)
  const k = db as never
  const nb = { id: p, userId: p, keyId: p, createdAt: 1, expiresAt: 2 }
  return [
    ['consume', q.consume(k, { userId: p, digest: d, now: 1 })],
    ['remaining', q.remaining(k, { batchId: p })],
    ['find', q.find(k, { userId: p, digests: [d], now: 1 })],
    ...(dialect === 'postgres'
      ? ([
          ['lockUser', { compile: () => q.lockUser(p)!.compile(db) } as Compilable],
          ['lockBatch', { compile: () => q.lockBatch(p)!.compile(db) } as Compilable],
        ] as [string, Compilable][])
      : []),
    ['endActiveBatchCodes', q.endActiveBatchCodes(k, { userId: p, now: 1 })],
    ['supersedeActive', q.supersedeActive(k, { userId: p, now: 1 })],
    ['insertBatch', q.insertBatch(k, nb, 1)],
    ['insertCodes', q.insertCodes(k, nb, [{ id: p, digest: d }])],
    ['setCodeState', q.setCodeState(k, { userId: p, codeId: p, to: 'invalidated', now: 1 })],
    ['countStateChange', q.countStateChange(k, { batchId: p, to: 'deleted' })],
    ['endBatchCodes', q.endBatchCodes(k, { userId: p, batchId: p, now: 1 })],
    ['endBatch', q.endBatch(k, { userId: p, batchId: p, to: 'disabled', now: 1 })],
    ['setBatchFlag', q.setBatchFlag(k, { userId: p, batchId: p, flag: 'viewed', now: 1 })],
    ['activeBatch', q.activeBatch(k, p)],
    ['history', q.history(k, { userId: p, offset: 0, limit: 10 })],
    ['historyTotal', q.historyTotal(k, p)],
    ['raiseIssued', q.raiseIssued(k, { userId: p, batchId: p, now: 1, count: 1 })],
    ['batchWithId', q.batchWithId(k, p)],
    ['activeBatchOf', q.activeBatchOf(k, p)],
    ['insertImportedBatch', q.insertImportedBatch(k, { ...imported(p), status: 'superseded', endedAt: 3 })],
    ['insertImportedCodes', q.insertImportedCodes(k, imported(p), imported(p).codes)],
    ['reserveAttempts', q.reserveAttempts(k, { keys: [{ key: p, maxAttempts: 5 }], now: 1 })],
    [
      'reserveAttempts ×2',
      q.reserveAttempts(k, {
        keys: [
          { key: p, maxAttempts: 5 },
          { key: `${p}2`, maxAttempts: 3 },
        ],
        now: 1,
      }),
    ],
    ['readAttempts', q.readAttempts(k, [p, `${p}2`])],
    ['getAttempts', q.getAttempts(k, p)],
    ['lockAttempts', q.lockAttempts(k, { key: p, until: 1 })],
    ['deleteAttempts', q.deleteAttempts(k, [p])],
    ['releaseAttempts', q.releaseAttempts(k, [p, `${p}2`])],
    // Built for PostgreSQL only (data-modifying CTE); compiled here for both dialects anyway.
    ['settleAttempts', q.settleAttempts(k, { reset: [p], release: [`${p}2`] })],
    ['settleAttempts release', q.settleAttempts(k, { reset: [], release: [p] })],
    ['settleAttempts reset', q.settleAttempts(k, { reset: [p], release: [] })],
    [
      'appendAudit',
      q.appendAudit(k, {
        id: p,
        at: 1,
        event: p,
        userId: p,
        batchId: p,
        identifierHash: p,
        clientHash: p,
        outcome: 'info',
        reason: p,
        data: { k: p },
      }),
    ],
    ['listAudit', q.listAudit(k, { limit: 5, userId: p, event: p })],
    [
      'appendEmailLog',
      q.appendEmailLog(k, { id: p, at: 1, userId: p, batchId: p, kind: p, recipient: p, outcome: 'sent' }),
    ],
    // Built for PostgreSQL only (the `rc_redeem` function); compiled here for both dialects anyway.
    [
      'redeem',
      q.redeem(k, {
        keys: [p, `${p}2`],
        max: [5, 3],
        reset: [p],
        now: 1,
        deadline: 2,
        userId: p,
        digests: [d, d],
        audit: {
          id: p,
          at: 1,
          event: p,
          userId: p,
          identifierHash: p,
          clientHash: p,
          outcome: 'success',
          reason: p,
          data: JSON.stringify({ k: p }),
        },
      }),
    ],
  ]
}

function suite(label: string, open: () => Promise<Backend>, dialect: 'sqlite' | 'postgres') {
  describe(`SQL injection: ${label}`, () => {
    let backend: Backend
    beforeAll(async () => {
      backend = await open()
    })
    afterAll(async () => {
      await backend?.close()
    })

    it('every statement carries each payload only in .parameters, never in .sql', () => {
      let checked = 0
      for (const p of PAYLOADS) {
        for (const [name, query] of everyQuery(backend.db, dialect, p)) {
          const c = query.compile()
          expect(c.sql, name).not.toContain(p)
          expect(c.sql.includes('\u0000'), name).toBe(false)
          expect(c.sql.includes('DROP') || c.sql.includes('OR 1=1'), name).toBe(false)
          const inParams = c.parameters.some((v) => v === p || (typeof v === 'string' && v.includes(p)))
          expect(inParams, `${name} binds the payload`).toBe(true)
          checked++
        }
      }
      expect(checked).toBe(PAYLOADS.length * (dialect === 'postgres' ? 36 : 34))
    })

    it('payloads through every store input leave row counts unchanged', async () => {
      await backend.reset()
      const db = backend.db
      const store: RecoveryCodeStore = kyselyStore(db)
      const cs = codes(3)
      const b = batch('victim', 1000)
      await store.createBatch(b, cs)
      await store.appendAudit({
        id: 'a1',
        at: 1,
        event: 'batch.generated',
        userId: 'victim',
        batchId: b.id,
        identifierHash: null,
        clientHash: null,
        outcome: 'info',
        reason: null,
        data: null,
      })
      await store.reserveAttempts({ keys: [{ key: 'victim-key', maxAttempts: 5 }], now: 1 })
      const before = await counts(db)
      const d = cs[0]!.digest
      for (const p of PAYLOADS) {
        expect(await store.consumeCode({ userId: p, digests: [d], now: 2000 })).toBeNull()
        expect(await store.findCode({ userId: p, digests: [d], now: 2000 })).toBeNull()
        expect(await store.setCodeState({ userId: p, codeId: cs[1]!.id, to: 'deleted', now: 2000 })).toBe(
          false,
        )
        expect(await store.setCodeState({ userId: 'victim', codeId: p, to: 'deleted', now: 2000 })).toBe(
          false,
        )
        expect(await store.endBatch({ userId: p, batchId: b.id, to: 'deleted', now: 2000 })).toBe(false)
        expect(await store.endBatch({ userId: 'victim', batchId: p, to: 'deleted', now: 2000 })).toBe(false)
        expect(await store.setBatchFlag({ userId: 'victim', batchId: p, flag: 'viewed', now: 2000 })).toBe(
          false,
        )
        expect(await store.setBatchFlag({ userId: p, batchId: b.id, flag: 'viewed', now: 2000 })).toBe(false)
        expect(await store.addCodes!({ userId: p, batchId: b.id, codes: codes(1), now: 2000 })).toBe(false)
        expect(await store.addCodes!({ userId: 'victim', batchId: p, codes: codes(1), now: 2000 })).toBe(
          false,
        )
        expect(await store.getActiveBatch(p)).toBeNull()
        expect(await store.listBatches({ userId: p, offset: 0, limit: 10 })).toEqual({ items: [], total: 0 })
        expect(await store.getAttempts(p)).toEqual({
          failures: 0,
          consecutive: 0,
          lockouts: 0,
          lockedUntil: 0,
        })
        await store.settleAttempts({ reset: [p], release: [] })
        await store.settleAttempts({ reset: [], release: [p] })
        await store.settleAttempts({ reset: [p], release: [`${p}2`, p] })
        // A redeem as a payload user (or with a payload digest list) misses; a payload key with no
        // attempt allowed denies before writing; the audit record is never written.
        const victimKey = { key: 'victim-key', maxAttempts: 1_000 }
        const redeemAs = (over: Partial<RedeemCodeInput>) =>
          store.redeemCode!({
            userId: p,
            digests: [d],
            now: 2000,
            keys: [victimKey],
            reset: [p],
            audit: { ...auditOf('ok'), at: 2000 },
            ...over,
          })
        expect(await redeemAs({})).toMatchObject({ outcome: 'missed' })
        // Payload digest bytes for the victim; then the payload in the audit record of a lookup
        // (refused when it cannot be stored, else a miss that writes no audit row).
        const wrongDigest = { userId: 'victim', digests: [Buffer.from(p.slice(0, 64))] }
        expect(await redeemAs(wrongDigest)).toMatchObject({ outcome: 'missed' })
        const withAudit = { ...wrongDigest, audit: { ...auditOf(p), at: 2000 } }
        if (storable(p)) expect(await redeemAs(withAudit)).toMatchObject({ outcome: 'missed' })
        else
          await expect(redeemAs(withAudit)).rejects.toSatisfy((e) => isRecoveryCodesError(e, 'INVALID_INPUT'))
        if (storable(p)) {
          expect(await redeemAs({ keys: [victimKey, { key: p, maxAttempts: 0 }] })).toMatchObject({
            outcome: 'denied',
          })
        }
        expect(await store.listAudit({ limit: 10, userId: p })).toEqual([])
        expect(await store.listAudit({ limit: 10, event: p })).toEqual([])
        // page numbers and limits: only integers reach SQL
        for (const bad of [p, Number.NaN, 1.5, -1, Number.POSITIVE_INFINITY] as unknown as number[]) {
          await expect(store.listBatches({ userId: 'victim', offset: bad, limit: 10 })).rejects.toSatisfy(
            (e) => isRecoveryCodesError(e, 'INVALID_INPUT'),
          )
          await expect(store.listBatches({ userId: 'victim', offset: 0, limit: bad })).rejects.toSatisfy(
            (e) => isRecoveryCodesError(e, 'INVALID_INPUT'),
          )
          await expect(store.purgeCodes({ before: 5, limit: bad })).rejects.toSatisfy((e) =>
            isRecoveryCodesError(e, 'INVALID_INPUT'),
          )
        }
        expect(await counts(db), JSON.stringify(p.slice(0, 40))).toEqual(before)
      }
      // The victim's data is intact and still works.
      expect(await store.getActiveBatch('victim')).toMatchObject({ id: b.id, unused: 3, viewedAt: null })
      expect(await store.consumeCode({ userId: 'victim', digests: [d], now: 2000 })).not.toBeNull()
    })

    it('redeemCode stores a payload verbatim as data, or refuses it (NUL, oversize) before any SQL', async () => {
      await backend.reset()
      const db = backend.db
      const store: RecoveryCodeStore = kyselyStore(db)
      for (const p of PAYLOADS) {
        const cs = codes(2)
        const victim = batch(`victim-${p.length}`, 1000)
        await store.createBatch(victim, cs)
        const input: RedeemCodeInput = {
          userId: victim.userId,
          digests: [cs[0]!.digest],
          now: 2000,
          keys: [
            { key: p, maxAttempts: 5 },
            { key: `${p}-ip`, maxAttempts: 5 },
          ],
          reset: [p],
          audit: { ...auditOf(p), id: `${p}-r`, at: 2000 },
        }
        const before = await counts(db)
        if (!storable(p)) {
          await expect(store.redeemCode!(input)).rejects.toSatisfy((e) =>
            isRecoveryCodesError(e, 'INVALID_INPUT'),
          )
          expect(await counts(db)).toEqual(before)
          continue
        }
        expect(await store.redeemCode!(input)).toMatchObject({
          outcome: 'consumed',
          code: { codeId: cs[0]!.id },
        })
        expect(await store.getAttempts(`${p}-ip`)).toEqual({
          failures: 0,
          consecutive: 0,
          lockouts: 0,
          lockedUntil: 0,
        })
        const [row] = await store.listAudit({ limit: 1, event: p })
        expect(row).toEqual({ ...input.audit, batchId: victim.id, data: { note: p, remaining: 1 } })
        // No limiter row written on either dialect: the keys are read under a lock (SQLite's write
        // lock, PostgreSQL advisory locks), and a consume has nothing to give back.
        expect(await counts(db)).toEqual({ ...before, rc_audit_log: before.rc_audit_log! + 1 })
      }
    })

    it('importBatch stores a payload verbatim as data, or refuses it (NUL, oversize) before any SQL', async () => {
      await backend.reset()
      const db = backend.db
      const store = kyselyStore(db)
      for (const p of PAYLOADS) {
        const before = await counts(db)
        const audit = { ...auditOf(p), id: `${p}-ia`, at: 1 }
        if (!storable(p)) {
          await expect(store.importBatch(imported(p), audit)).rejects.toSatisfy((e) =>
            isRecoveryCodesError(e, 'INVALID_INPUT'),
          )
          expect(await counts(db)).toEqual(before)
          continue
        }
        expect(await store.importBatch(imported(p), audit)).toBe('imported')
        expect(await store.importBatch(imported(p), { ...audit, id: `${p}-ib2` })).toBe('exists')
        expect(await counts(db)).toEqual({
          ...before,
          rc_batches: before.rc_batches! + 1,
          rc_codes: before.rc_codes! + 1,
          rc_audit_log: before.rc_audit_log! + 1,
        })
        expect(await store.getActiveBatch(p)).toMatchObject({
          id: `${p}-ib`,
          keyId: p,
          used: 1,
          lastUsedAt: 2,
        })
      }
    })

    it('addCodes stores a payload verbatim as data, or refuses it (NUL, oversize) before any SQL', async () => {
      await backend.reset()
      const db = backend.db
      const store = kyselyStore(db)
      for (const p of PAYLOADS) {
        const owner = batch(`owner-${p.length}-${PAYLOADS.indexOf(p)}`, 1000)
        await store.createBatch(owner, codes(1))
        const before = await counts(db)
        const input = {
          userId: owner.userId,
          batchId: owner.id,
          codes: [{ id: `${p}-ac`, digest: new Uint8Array(32).fill(9) }],
          now: 2000,
          audit: { ...auditOf(p), id: `${p}-aa`, at: 2000 },
        }
        if (!storable(p)) {
          await expect(store.addCodes(input)).rejects.toSatisfy((e) =>
            isRecoveryCodesError(e, 'INVALID_INPUT'),
          )
          expect(await counts(db)).toEqual(before)
          continue
        }
        expect(await store.addCodes(input)).toBe(true)
        expect(await counts(db)).toEqual({
          ...before,
          rc_codes: before.rc_codes! + 1,
          rc_audit_log: before.rc_audit_log! + 1,
        })
        expect(await store.getActiveBatch(owner.userId)).toMatchObject({ issued: 2, unused: 2 })
        expect((await store.listAudit({ limit: 1, event: p }))[0]).toMatchObject({
          reason: p,
          data: { note: p },
        })
        const used = await store.consumeCode({
          userId: owner.userId,
          digests: [input.codes[0]!.digest],
          now: 2001,
        })
        expect(used).toMatchObject({ codeId: `${p}-ac`, batchId: owner.id, remaining: 1 })
      }
    })

    it('writes store a payload verbatim as data, or refuse it (NUL, oversize) before any SQL', async () => {
      await backend.reset()
      const db = backend.db
      const store: RecoveryCodeStore = kyselyStore(db)
      for (const p of PAYLOADS) {
        const storable = !p.includes('\u0000') && p.length <= 1024
        const writes = [
          () =>
            store.createBatch(batch(p, 1000, { id: `${p}-b`, keyId: p }), [
              { id: `${p}-c`, digest: new Uint8Array(32) },
            ]),
          () => store.reserveAttempts({ keys: [{ key: p, maxAttempts: 3 }], now: 1 }),
          () =>
            store.appendAudit({
              id: `${p}-a`,
              at: 1,
              event: p,
              userId: p,
              batchId: p,
              identifierHash: p,
              clientHash: p,
              outcome: 'info',
              reason: p,
              data: { note: p },
            }),
          () =>
            store.appendEmailLog({
              id: `${p}-m`,
              at: 1,
              userId: p,
              batchId: p,
              kind: p,
              recipient: p,
              outcome: 'sent',
            }),
        ]
        const before = await counts(db)
        for (const w of writes) {
          if (storable) await w()
          else await expect(w()).rejects.toSatisfy((e) => isRecoveryCodesError(e, 'INVALID_INPUT'))
        }
        const after = await counts(db)
        const grew = storable ? 1 : 0
        expect(after).toEqual(Object.fromEntries(TABLES.map((t) => [t, before[t]! + grew])))
        if (storable) {
          expect((await store.getActiveBatch(p))?.keyId).toBe(p)
          expect((await store.getAttempts(p)).failures).toBe(1)
          expect((await store.listAudit({ limit: 1, event: p }))[0]).toMatchObject({
            userId: p,
            reason: p,
            data: { note: p },
          })
        }
      }
    })
  })
}

suite('SQLite', sqliteBackend, 'sqlite')
if (pgUnavailable === null) suite('PostgreSQL', () => postgresBackend(), 'postgres')
else suite('PGlite (real PostgreSQL unreachable)', pgliteBackend, 'postgres')
