/**
 * `runServiceConformance`: the service-level contract of `createRecoveryCodes` over a store,
 * with real parallel calls. Every store package runs it (in its conformance test) so the races are
 * proven on each backend, not only in memory.
 */

import { bytesToHex } from '@noble/hashes/utils.js'
import {
  createRecoveryCodes,
  digestCandidates,
  isRecoveryCodesError,
  normalize,
  type RecoveryCodeStore,
  type RecoveryCodes,
  type RecoveryCodesConfig,
  type RecoveryEvent,
  type RedeemCodeInput,
  type RedeemCodeOutcome,
  STORE_METHODS,
} from '@recovery-codes/core'
import { pdfExport } from '@recovery-codes/pdf'
import { createStorage } from 'unstorage'
import { beforeEach, describe, expect, it } from 'vitest'
import { startTogether } from './barrier.ts'
import { createManualClock, type ManualClock } from './clock.ts'
import { createEventRecorder } from './events.ts'
import { uniqueId } from './fixtures.ts'
import { createCaptureLogger } from './logger.ts'
import { createRecordingMailer } from './mailer.ts'
import { createInlineQueue } from './queue.ts'
import { createCountingStore } from './store-wrappers.ts'

/** Options of {@link runServiceConformance}. */
export interface ServiceConformanceOptions {
  /** Shown in the describe block. */
  name: string
  /** A store for one test; ids are unique per test, so a shared database works too. */
  setup: () => Promise<RecoveryCodeStore> | RecoveryCodeStore
  /** Every row/map the store holds, as plain data, for the no-plaintext scan (optional). */
  dump?: (store: RecoveryCodeStore) => Promise<unknown> | unknown
  /** Scale down the purge scenario for slow backends (default 10,000 eligible + 500 active). */
  purgeScale?: { eligible: number; active: number }
}

const DAY = 86_400_000
const PEPPER = 'ZmFrZS1wZXBwZXItZm9yLXRlc3RzLW9ubHktMzItYnl0ZXMhIQ=='
const PEPPER_BYTES = Uint8Array.from(atob(PEPPER), (c) => c.charCodeAt(0))

/** A pepper for tests (decodes to 36 bytes); never use it anywhere else. */
export const TEST_PEPPER = PEPPER

interface Harness {
  rc: RecoveryCodes
  store: RecoveryCodeStore
  clock: ManualClock
}

/**
 * Registers the service conformance suite.
 *
 * @example
 * ```ts
 * runServiceConformance({ name: 'memory', setup: () => memoryStore() })
 * ```
 */
export function runServiceConformance(options: ServiceConformanceOptions): void {
  describe(`service conformance: ${options.name}`, () => {
    let store: RecoveryCodeStore

    beforeEach(async () => {
      store = await options.setup()
    })

    function make(
      overrides: Partial<RecoveryCodesConfig> = {},
      wrap?: (s: RecoveryCodeStore) => RecoveryCodeStore,
    ): Harness {
      const clock = createManualClock()
      const s = wrap ? wrap(store) : store
      const rc = createRecoveryCodes({
        peppers: [{ id: 'k1', secret: PEPPER }],
        store: s,
        clock,
        export: { pdf: pdfExport() },
        ...overrides,
      })
      return { rc, store: s, clock }
    }

    async function batchFor(h: Harness, userId = uniqueId('user'), count = 5, expiresInDays?: number) {
      const r = await h.rc.generate({ userId, count, ...(expiresInDays ? { expiresInDays } : {}) })
      if (!r.ok) throw new Error('unexpected cooldown')
      return { userId, ...r }
    }

    it('64 parallel redeems of one code: exactly one success', async () => {
      const h = make({ maxLoginAttempts: 100, hardFailureCap: 100, clientMaxAttempts: 100 })
      const b = await batchFor(h)
      const results = await startTogether(
        Array.from({ length: 64 }, () => () => h.rc.redeem({ userId: b.userId, code: b.codes[0]! })),
      )
      const ok = results.filter((r) => r.status === 'fulfilled' && r.value.ok)
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true)
      expect(ok).toHaveLength(1)
      expect((await h.rc.status({ userId: b.userId })).remaining).toBe(4)
    })

    it('two different codes redeemed in parallel: both succeed', async () => {
      const h = make()
      const b = await batchFor(h)
      const [x, y] = await Promise.all([
        h.rc.redeem({ userId: b.userId, code: b.codes[0]! }),
        h.rc.redeem({ userId: b.userId, code: b.codes[1]! }),
      ])
      expect(x.ok && y.ok).toBe(true)
      expect((await h.rc.status({ userId: b.userId })).remaining).toBe(3)
    })

    // Both redeem paths: the store's own `redeemCode` (when it has one) and the composed calls.
    for (const path of ['one call', 'composed'] as const) {
      it(`100 parallel wrong guesses with maxAttempts 5: at most 5 lookups, then locked, none lost (${path})`, async () => {
        const counting = createCountingStore(store)
        let lookups = 0
        const h = make({ maxLoginAttempts: 5 }, () =>
          onPath(path, counting.store, (out) => {
            if (out.outcome !== 'denied') lookups++
          }),
        )
        const b = await batchFor(h)
        counting.reset()
        const wrong = b.codes[0]!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))
        const results = await startTogether(
          Array.from(
            { length: 100 },
            () => () => h.rc.redeem({ userId: b.userId, code: wrong, clientKey: '203.0.113.9' }),
          ),
        )
        expect(results.every((r) => r.status === 'fulfilled' && !r.value.ok)).toBe(true)
        const calls = counting.count('redeemCode') + counting.count('reserveAttempts')
        expect(calls).toBeGreaterThanOrEqual(100)
        lookups += counting.count('consumeCode')
        expect(lookups).toBe(5)
        // Locked now: even the right code fails, with a cooldown.
        const locked = await h.rc.redeem({ userId: b.userId, code: b.codes[1]! })
        expect(locked.ok).toBe(false)
        expect(!locked.ok && locked.retryAfterMs).toBeGreaterThan(0)
        // After the cooldown the right code works again.
        h.clock.advance(3_600_000)
        expect((await h.rc.redeem({ userId: b.userId, code: b.codes[1]! })).ok).toBe(true)
      })
    }

    it('successes do not use up the client budget; failures from one client across users do', async () => {
      const h = make({ clientMaxAttempts: 10 })
      const users = await Promise.all(Array.from({ length: 4 }, () => batchFor(h, uniqueId('user'), 5)))
      for (const u of users) {
        for (const code of u.codes)
          expect((await h.rc.redeem({ userId: u.userId, code, clientKey: '192.0.2.1' })).ok).toBe(true)
      }
      // A sprayer: one wrong guess per fresh user from one client, ten allowed, then locked out.
      const sprayed = await Promise.all(Array.from({ length: 3 }, () => batchFor(h, uniqueId('user'), 5)))
      const spray = async (i: number) =>
        h.rc.redeem({
          userId: sprayed[i % 3]!.userId,
          code: flip(sprayed[i % 3]!.codes[0]!),
          clientKey: '192.0.2.66',
        })
      for (let i = 0; i < 10; i++) await spray(i)
      const victim = sprayed[0]!
      const blocked = await h.rc.redeem({
        userId: victim.userId,
        code: victim.codes[1]!,
        clientKey: '192.0.2.66',
      })
      expect(blocked).toMatchObject({ ok: false })
      // Another client is not affected by the sprayer's lockout (the user's own budget of 5 is not spent).
      expect(
        (
          await h.rc.redeem({
            userId: sprayed[2]!.userId,
            code: sprayed[2]!.codes[1]!,
            clientKey: '192.0.2.2',
          })
        ).ok,
      ).toBe(true)
    })

    it('a store error during the lookup gives the reservation back; a stranded counter heals', async () => {
      let failConsume = 0
      let failSettle = 0
      const h = make({ maxLoginAttempts: 5 }, (s) => ({
        ...bindAll(s),
        async consumeCode(input) {
          if (failConsume > 0) {
            failConsume--
            throw new Error('ECONNRESET')
          }
          return s.consumeCode(input)
        },
        async settleAttempts(input) {
          if (failSettle > 0) {
            failSettle--
            throw new Error('ECONNRESET')
          }
          return s.settleAttempts(input)
        },
      }))
      const b = await batchFor(h)
      for (let i = 0; i < 4; i++) await h.rc.redeem({ userId: b.userId, code: flip(b.codes[0]!) })
      failConsume = 1
      await expect(h.rc.redeem({ userId: b.userId, code: b.codes[0]! })).rejects.toMatchObject({
        code: 'STORE_UNAVAILABLE',
      })
      // The errored attempt was not counted: the right code works at once.
      expect((await h.rc.redeem({ userId: b.userId, code: b.codes[0]! })).ok).toBe(true)

      // A crash between reserve and settle (simulated: the give-back fails too) strands a full counter.
      for (let i = 0; i < 4; i++) await h.rc.redeem({ userId: b.userId, code: flip(b.codes[1]!) })
      failConsume = 1
      failSettle = 1
      await expect(h.rc.redeem({ userId: b.userId, code: b.codes[1]! })).rejects.toMatchObject({
        code: 'STORE_UNAVAILABLE',
      })
      const stuck = await h.rc.redeem({ userId: b.userId, code: b.codes[1]! })
      expect(stuck.ok).toBe(false)
      expect(!stuck.ok && stuck.retryAfterMs).toBeGreaterThan(0) // turned into an ordinary lockout
      h.clock.advance(h.rc.config.cooldownPolicy.cutoffMs)
      expect((await h.rc.redeem({ userId: b.userId, code: b.codes[1]! })).ok).toBe(true)
    })

    it('two concurrent generates for one user: one batch, and the codes returned are the live ones', async () => {
      const h = make()
      const userId = uniqueId('user')
      const results = await Promise.all([
        h.rc.generate({ userId, count: 5 }),
        h.rc.generate({ userId, count: 5 }),
      ])
      const ok = results.filter((r) => r.ok)
      expect(ok).toHaveLength(1)
      expect(results.find((r) => !r.ok)).toMatchObject({ ok: false, reason: 'COOLDOWN_ACTIVE' })
      expect((await h.rc.history({ userId })).total).toBe(1)
      const live = ok[0]!
      expect(live.ok && (await h.rc.redeem({ userId, code: live.codes[0]! })).ok).toBe(true)
      // The claim is released: after the cooldown a new batch can be generated.
      h.clock.advance(h.rc.config.cooldownPolicy.cutoffMs)
      expect((await h.rc.generate({ userId, count: 5 })).ok).toBe(true)
    })

    it('second-factor failures are audited against the user; identifier failures are not', async () => {
      const h = make()
      const b = await batchFor(h)
      await h.rc.redeem({ userId: b.userId, code: flip(b.codes[0]!) })
      const rows = await h.store.listAudit({ limit: 10, event: 'login.failure' })
      expect(rows.find((r) => r.userId === b.userId)).toBeDefined()
    })

    it('regeneration racing 20 redeems of an old code: no success after the new batch commits', async () => {
      let committed = false
      let lateSuccesses = 0
      const h = make({ maxLoginAttempts: 100, hardFailureCap: 100, clientMaxAttempts: 100 }, (s) => ({
        ...bindAll(s),
        async createBatch(batch, codes) {
          await s.createBatch(batch, codes)
          committed = true
        },
        async consumeCode(input) {
          const startedAfter = committed
          const r = await s.consumeCode(input)
          if (r && startedAfter) lateSuccesses++
          return r
        },
      }))
      const b = await batchFor(h)
      committed = false // only the regeneration below counts
      h.clock.advance(DAY) // past the regeneration cooldown
      const tasks = [
        () => h.rc.generate({ userId: b.userId, count: 5 }),
        ...Array.from({ length: 20 }, () => () => h.rc.redeem({ userId: b.userId, code: b.codes[0]! })),
      ]
      const results = await startTogether<unknown>(tasks)
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true)
      expect(committed).toBe(true)
      expect(lateSuccesses).toBe(0)
      const successes = results
        .slice(1)
        .filter((r) => r.status === 'fulfilled' && (r.value as { ok: boolean }).ok)
      expect(successes.length).toBeLessThanOrEqual(1)
      expect(await h.rc.redeem({ userId: b.userId, code: b.codes[1]! })).toMatchObject({ ok: false })
    })

    it('expiry: omitted takes the configured default, null never expires, bad values are rejected', async () => {
      const h = make({ defaultExpiryDays: 7 })
      const userId = uniqueId('user')
      const a = await h.rc.generate({ userId })
      expect(a.ok && a.expiresAt).toBe(h.clock.now() + 7 * DAY)
      h.clock.advance(DAY)
      const b = await h.rc.generate({ userId, expiresInDays: null })
      expect(b.ok && b.expiresAt).toBeNull()
      h.clock.advance(DAY)
      for (const bad of [0, -1, 1.5, 3651, '7']) {
        await expect(h.rc.generate({ userId, expiresInDays: bad as never })).rejects.toMatchObject({
          code: 'INVALID_INPUT',
        })
      }
    })

    it('expiry boundary: valid at expiresAt − 1, invalid at expiresAt', async () => {
      const h = make()
      const b = await batchFor(h, uniqueId('user'), 5, 1)
      h.clock.set(b.expiresAt! - 1)
      expect((await h.rc.redeem({ userId: b.userId, code: b.codes[0]! })).ok).toBe(true)
      h.clock.set(b.expiresAt!)
      const late = await h.rc.redeem({ userId: b.userId, code: b.codes[1]! })
      expect(late).toEqual({ ok: false, reason: 'INVALID_CODE', retryAfterMs: 0 })
    })

    it('a code reused after use, invalidation, delete, batch delete, supersede, disable, purge or expiry fails like a wrong code', async () => {
      const h = make({ maxLoginAttempts: 50, hardFailureCap: 50, clientMaxAttempts: 50 })
      const wrongCode = async () => {
        const w = await batchFor(h)
        return h.rc.redeem({ userId: w.userId, code: flip(w.codes[0]!) })
      }
      const expected = await wrongCode()
      expect(expected).toEqual({ ok: false, reason: 'INVALID_CODE', retryAfterMs: 0 })
      const cases: Record<string, () => Promise<unknown>> = {
        used: async () => {
          const b = await batchFor(h)
          await h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
          return h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
        },
        invalidated: async () => {
          const b = await batchFor(h)
          expect((await h.rc.invalidateCode({ userId: b.userId, code: b.codes[0]! })).ok).toBe(true)
          return h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
        },
        deleted: async () => {
          const b = await batchFor(h)
          expect((await h.rc.deleteCode({ userId: b.userId, code: b.codes[0]! })).ok).toBe(true)
          return h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
        },
        batchDeleted: async () => {
          const b = await batchFor(h)
          await h.rc.deleteBatch({ userId: b.userId })
          return h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
        },
        superseded: async () => {
          const b = await batchFor(h)
          h.clock.advance(DAY)
          await batchFor(h, b.userId)
          return h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
        },
        disabled: async () => {
          const b = await batchFor(h)
          const d = make({ maxLoginAttempts: 3, hardFailureCap: 3 })
          for (let i = 0; i < 3; i++) await d.rc.redeem({ userId: b.userId, code: flip(b.codes[0]!) })
          expect((await d.rc.status({ userId: b.userId })).active).toBeNull()
          expect((await d.rc.history({ userId: b.userId })).items[0]?.status).toBe('disabled')
          h.clock.advance(DAY) // past the lockout those three failures started
          return h.rc.redeem({ userId: b.userId, code: b.codes[1]! })
        },
        purged: async () => {
          const p = make({
            maxLoginAttempts: 50,
            hardFailureCap: 50,
            clientMaxAttempts: 50,
            purge: { retentionDays: 1 },
          })
          const b = await batchFor(p)
          await p.rc.redeem({ userId: b.userId, code: b.codes[0]! })
          p.clock.advance(2 * DAY)
          await p.rc.purge()
          return p.rc.redeem({ userId: b.userId, code: b.codes[0]! })
        },
        expired: async () => {
          const b = await batchFor(h, uniqueId('user'), 5, 1)
          const e = make({ maxLoginAttempts: 50, hardFailureCap: 50, clientMaxAttempts: 50 })
          e.clock.set(b.expiresAt!)
          return e.rc.redeem({ userId: b.userId, code: b.codes[0]! })
        },
      }
      for (const [name, run] of Object.entries(cases)) {
        expect({ name, result: await run() }).toEqual({ name, result: expected })
      }
    })

    for (const path of ['one call', 'composed'] as const) {
      it(`unknown identifier and wrong code: same result, same store calls, same digest work (${path})`, async () => {
        const users = new Map<string, string>()
        const counting = createCountingStore(store)
        const digestsSeen: number[] = []
        const h = make(
          { loginMode: 'identifier-and-code', resolveUserId: async (id) => users.get(id) ?? null },
          () => {
            const wrapped = counting.store
            return {
              ...onPath(
                path,
                wrapped,
                () => {},
                (input) => digestsSeen.push(input.digests.length),
              ),
              consumeCode(input) {
                digestsSeen.push(input.digests.length)
                return wrapped.consumeCode(input)
              },
            }
          },
        )
        const b = await batchFor(h)
        users.set('known@example.test', b.userId)
        const kinds = {
          unknown: () => h.rc.redeem({ identifier: 'nobody@example.test', code: flip(b.codes[0]!) }),
          wrong: () => h.rc.redeem({ identifier: 'known@example.test', code: flip(b.codes[0]!) }),
        }
        counting.reset()
        digestsSeen.length = 0
        const unknown = await kinds.unknown()
        const unknownCalls = counting.sequence()
        const unknownDigests = [...digestsSeen]
        counting.reset()
        digestsSeen.length = 0
        const wrong = await kinds.wrong()
        expect(wrong).toEqual(unknown)
        expect(Object.keys(wrong).sort()).toEqual(Object.keys(unknown).sort())
        expect(counting.sequence()).toEqual(unknownCalls)
        expect(digestsSeen).toEqual(unknownDigests)
        expect(unknownDigests).toEqual([1])
        // Locked: unknown and known identifiers lock alike and answer alike.
        for (let i = 0; i < 6; i++) await kinds.unknown()
        for (let i = 0; i < 6; i++) await kinds.wrong()
        const lockedUnknown = await kinds.unknown()
        const lockedKnown = await kinds.wrong()
        expect(Object.keys(lockedKnown)).toEqual(Object.keys(lockedUnknown))
        expect(lockedKnown.ok).toBe(false)
      })

      describe('download and email once', () => {
        function withMail() {
          const mailer = createRecordingMailer()
          const h = make({
            email: { enabled: true, from: 'codes@example.test' },
            mailer,
            resolveEmail: async () => 'owner@example.test',
          })
          return { ...h, mailer }
        }

        it('20 concurrent downloads: exactly one succeeds; 20 concurrent emails: exactly one', async () => {
          const h = withMail()
          const b = await batchFor(h)
          const downloads = await startTogether(
            Array.from(
              { length: 20 },
              () => () => h.rc.exportCodes({ userId: b.userId, reveal: b.reveal, format: 'txt' }),
            ),
          )
          expect(downloads.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
          for (const r of downloads) {
            if (r.status === 'rejected') expect(isRecoveryCodesError(r.reason, 'ALREADY_DONE')).toBe(true)
          }
          const h2 = withMail()
          const b2 = await batchFor(h2)
          const emails = await startTogether(
            Array.from(
              { length: 20 },
              () => () => h2.rc.emailCodes({ userId: b2.userId, reveal: b2.reveal }),
            ),
          )
          expect(emails.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
          expect(h2.mailer.messages).toHaveLength(1)
        })

        it('after logout, a new batch or the TTL the slot answers the same REVEAL_UNAVAILABLE', async () => {
          const h = withMail()
          const codeOf = async (p: Promise<unknown>) =>
            p.then(
              () => 'ok',
              (e) => (isRecoveryCodesError(e) ? e.code : 'other'),
            )
          const a = await batchFor(h)
          await h.rc.discardReveal({ reveal: a.reveal })
          expect(await codeOf(h.rc.exportCodes({ userId: a.userId, reveal: a.reveal }))).toBe(
            'REVEAL_UNAVAILABLE',
          )
          const b = await batchFor(h)
          h.clock.advance(DAY)
          await batchFor(h, b.userId)
          expect(await codeOf(h.rc.exportCodes({ userId: b.userId, reveal: b.reveal }))).toBe(
            'REVEAL_UNAVAILABLE',
          )
          expect(await codeOf(h.rc.emailCodes({ userId: b.userId, reveal: b.reveal }))).toBe(
            'REVEAL_UNAVAILABLE',
          )
          const c = await batchFor(h)
          h.clock.set(c.revealExpiresAt)
          expect(await codeOf(h.rc.exportCodes({ userId: c.userId, reveal: c.reveal }))).toBe(
            'REVEAL_UNAVAILABLE',
          )
          // Another user's token is no use either.
          const d = await batchFor(h)
          const e = await batchFor(h)
          expect(await codeOf(h.rc.exportCodes({ userId: e.userId, reveal: d.reveal }))).toBe(
            'REVEAL_UNAVAILABLE',
          )
        })

        it('through a queue: the job carries ids only, the mail goes once, the outbox is emptied', async () => {
          const mailer = createRecordingMailer()
          const queue = createInlineQueue()
          const cache = createStorage()
          const h = make({
            email: { enabled: true, from: 'codes@example.test' },
            mailer,
            queue,
            cache,
            resolveEmail: async () => 'owner@example.test',
          })
          const b = await batchFor(h)
          expect(await h.rc.emailCodes({ userId: b.userId, reveal: b.reveal })).toEqual({
            sentTo: 'owner@example.test',
            queued: true,
          })
          await queue.idle()
          expect(mailer.messages).toHaveLength(1)
          expect(b.codes.every((c) => mailer.messages[0]!.text.includes(c))).toBe(true)
          const payloads = JSON.stringify(queue.jobs)
          for (const c of b.codes)
            expect(payloads.includes(c) || payloads.includes(normalize(c, h.rc.config.format)!)).toBe(false)
          expect((await cache.getKeys()).filter((k) => k.includes('outbox'))).toEqual([])
        })

        it('a recipient passed by the caller is ignored', async () => {
          const h = withMail()
          const b = await batchFor(h)
          const input = {
            userId: b.userId,
            reveal: b.reveal,
            to: 'attacker@evil.test',
            email: 'attacker@evil.test',
          }
          await h.rc.emailCodes(input as Parameters<RecoveryCodes['emailCodes']>[0])
          expect(h.mailer.messages.map((m) => m.to)).toEqual(['owner@example.test'])
        })
      })

      it('full lifecycle: no plaintext code, pepper or digest anywhere but generate, exports and the one email', async () => {
        const logger = createCaptureLogger()
        const events = createEventRecorder()
        const mailer = createRecordingMailer()
        const cache = createStorage()
        const h = make({
          logger,
          events,
          mailer,
          cache,
          email: { enabled: true, from: 'codes@example.test' },
          resolveEmail: async () => 'owner@example.test',
          purge: { retentionDays: 1, deleteEmptyBatches: true },
          audit: { storeEmailLog: true },
        })
        const userId = uniqueId('user')
        const b = await batchFor(h, userId, 8)
        const exports = [await h.rc.exportCodes({ userId, reveal: b.reveal, format: 'txt' })]
        // Download is once per batch: the other formats come from fresh batches.
        for (const format of ['csv', 'pdf'] as const) {
          h.clock.advance(DAY)
          const x = await batchFor(h, userId, 8)
          b.codes.push(...x.codes)
          exports.push(await h.rc.exportCodes({ userId, reveal: x.reveal, format }))
          if (format === 'pdf') {
            await h.rc.emailCodes({ userId, reveal: x.reveal })
            await h.rc.verifySetup({ userId, code: x.codes[0]! })
            await h.rc.redeem({ userId, code: x.codes[1]!, clientKey: '198.51.100.7' })
            await h.rc.redeem({ userId, code: flip(x.codes[2]!), clientKey: '198.51.100.7' })
            await h.rc.invalidateCode({ userId, code: x.codes[3]! })
            await h.rc.deleteCode({ userId, code: x.codes[4]! })
            await h.rc.history({ userId })
            await h.rc.status({ userId })
          }
        }
        h.clock.advance(DAY)
        await batchFor(h, userId, 8).then((x) => b.codes.push(...x.codes))
        h.clock.advance(3 * DAY)
        await h.rc.purge()
        expect(exports.map((e) => e.body.length).every((n) => n > 0)).toBe(true)

        const secrets = new Set<string>()
        for (const display of b.codes) {
          const canonical = normalize(display, h.rc.config.format)!
          secrets.add(display)
          secrets.add(canonical)
          secrets.add(
            bytesToHex(digestCandidates([{ id: 'k1', secret: PEPPER_BYTES }], userId, canonical)[0]!.digest),
          )
        }
        secrets.add(PEPPER)
        secrets.add(bytesToHex(PEPPER_BYTES))
        const cacheDump: Record<string, unknown> = {}
        for (const key of await cache.getKeys()) cacheDump[key] = await cache.getItem(key)
        const places: Record<string, string> = {
          logs: logger.text(),
          audit: JSON.stringify(await h.store.listAudit({ limit: 10_000 })),
          events: JSON.stringify(events.events as readonly RecoveryEvent[]),
          cache: JSON.stringify(cacheDump),
          store: options.dump ? JSON.stringify(await options.dump(h.store), hexReplacer) : '',
          config: JSON.stringify(h.rc.config),
          mailsOtherThanCodes: JSON.stringify(
            mailer.messages.filter((m) => !/recovery codes$/.test(m.subject)),
          ),
        }
        for (const [where, text] of Object.entries(places)) {
          for (const secret of secrets)
            expect({ where, leaked: text.includes(secret) }).toEqual({ where, leaked: false })
        }
        // The one codes email carries exactly its batch's codes.
        expect(mailer.messages.filter((m) => /recovery codes$/.test(m.subject))).toHaveLength(1)
      })
    }

    it('purge: eligible rows go in chunks, a failure mid-run is reported, a re-run finishes; no active code lost', async () => {
      const scale = options.purgeScale ?? { eligible: 10_000, active: 500 }
      let calls = 0
      let failOn = 3
      const h = make({ purge: { retentionDays: 1, batchSize: 1000, maxDeletionsPerRun: null } }, (s) => ({
        ...bindAll(s),
        async purgeCodes(input) {
          calls++
          if (calls === failOn) throw new Error('database went away')
          return s.purgeCodes(input)
        },
      }))
      // Eligible: whole batches soft-deleted long ago (written through the store for speed).
      const perBatch = 1000
      for (let i = 0; i < scale.eligible / perBatch; i++) {
        const userId = uniqueId('old')
        const batchId = uniqueId('batch')
        const now = h.clock.now()
        await h.store.createBatch(
          { id: batchId, userId, keyId: 'k1', createdAt: now, expiresAt: null },
          Array.from({ length: perBatch }, () => ({
            id: uniqueId('code'),
            digest: crypto.getRandomValues(new Uint8Array(32)),
          })),
        )
        await h.store.endBatch({ userId, batchId, to: 'deleted', now })
      }
      h.clock.advance(2 * DAY)
      const active: { userId: string; codes: string[] }[] = []
      for (let i = 0; i < scale.active / 50; i++) active.push(await batchFor(h, uniqueId('user'), 50))

      const first = await h.rc.purge()
      expect(first.error).toBeDefined()
      expect(first.done).toBe(false)
      expect(first.deleted).toBe(2 * 1000)
      failOn = -1
      const second = await h.rc.purge()
      expect(second.error).toBeUndefined()
      expect(second.done).toBe(true)
      expect(first.deleted + second.deleted).toBe(scale.eligible)
      const third = await h.rc.purge()
      expect(third.deleted).toBe(0)
      for (const a of active) expect((await h.rc.status({ userId: a.userId })).remaining).toBe(50)
      const runs = await h.store.listAudit({ limit: 100, event: 'purge.run' })
      expect(runs).toHaveLength(3)
      expect(runs.reduce((n, r) => n + Number(r.data?.deleted ?? 0), 0)).toBe(scale.eligible)
      // Every active code still redeems.
      const sample = active[0]!
      for (const code of sample.codes)
        expect((await h.rc.redeem({ userId: sample.userId, code })).ok).toBe(true)
    })

    it("purge takes per-run overrides (a schedule's options) and rejects bad ones before deleting", async () => {
      const h = make({ purge: { retentionDays: 30 } })
      const b = await batchFor(h)
      await h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
      h.clock.advance(DAY)
      expect((await h.rc.purge()).deleted).toBe(0) // 30-day retention keeps yesterday's used code
      for (const bad of [
        { retentionDays: -1 },
        { chunkSize: 0 },
        { maxDeletionsPerRun: 1.5 },
        { retentionDays: '0' },
      ]) {
        await expect(h.rc.purge(bad as never)).rejects.toMatchObject({ code: 'INVALID_INPUT' })
      }
      expect((await h.rc.purge({ retentionDays: 0, chunkSize: 1, maxDeletionsPerRun: null })).deleted).toBe(1)
      expect((await h.rc.status({ userId: b.userId })).remaining).toBe(4)
    })

    // The default cache is private to the service (its versions stay in process); a configured
    // cache may be shared (its versions live in it). Both must read through and never serve stale.
    const cacheSetups = [
      ['the default cache', () => ({})],
      ['a configured cache', () => ({ cache: createStorage() })],
    ] as const

    it.each(cacheSetups)('history and status read through %s; the next write misses it', async (_, cache) => {
      const counting = createCountingStore(store)
      const h = make({ ...cache(), history: { perPage: 2, maxVisible: 5 } }, () => counting.store)
      const b = await batchFor(h)
      const reads = () => counting.count('listBatches') + counting.count('getActiveBatch')
      const first = await h.rc.history({ userId: b.userId })
      await h.rc.status({ userId: b.userId })
      const after = reads()
      expect(after).toBeGreaterThan(0)
      expect(await h.rc.history({ userId: b.userId })).toEqual(first)
      await h.rc.status({ userId: b.userId })
      expect(reads()).toBe(after) // both served from the cache
      await h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
      const before = reads()
      expect((await h.rc.history({ userId: b.userId })).items[0]).toMatchObject({ used: 1 })
      expect(reads()).toBeGreaterThan(before)
      // Another user's write leaves this user's pages cached.
      await batchFor(h)
      const still = reads()
      await h.rc.history({ userId: b.userId })
      expect(reads()).toBe(still)
    })

    it.each(cacheSetups)('history pages are never stale with %s', async (_, cache) => {
      const h = make({ ...cache(), history: { perPage: 2, maxVisible: 5 } })
      const b = await batchFor(h)
      const page = async () => (await h.rc.history({ userId: b.userId })).items[0]!
      expect(await page()).toMatchObject({ used: 0, unused: 5 })
      await h.rc.redeem({ userId: b.userId, code: b.codes[0]! })
      expect(await page()).toMatchObject({ used: 1, unused: 4 })
      await h.rc.invalidateCode({ userId: b.userId, code: b.codes[1]! })
      expect(await page()).toMatchObject({ invalidated: 1, unused: 3 })
      await h.rc.deleteCode({ userId: b.userId, code: b.codes[2]! })
      expect(await page()).toMatchObject({ deleted: 1, unused: 2 })
      await h.rc.verifySetup({ userId: b.userId, code: b.codes[3]! })
      expect(await page()).toMatchObject({ verified: true })
      await h.rc.exportCodes({ userId: b.userId, reveal: b.reveal, format: 'csv' })
      expect(await page()).toMatchObject({ downloaded: true })
      await h.rc.deleteBatch({ userId: b.userId })
      expect(await page()).toMatchObject({ status: 'deleted' })
      for (let i = 0; i < 6; i++) {
        h.clock.advance(DAY)
        await batchFor(h, b.userId)
      }
      const p1 = await h.rc.history({ userId: b.userId, page: 1 })
      const p3 = await h.rc.history({ userId: b.userId, page: 3 })
      expect(p1.total).toBe(5)
      expect(p1.totalPages).toBe(3)
      expect(p1.items[0]!.status).toBe('active')
      expect(p3.items).toHaveLength(1)
      expect((await h.rc.history({ userId: b.userId, page: 4 })).items).toHaveLength(0)
    })
  })
}

function flip(code: string): string {
  const i = code.search(/[0-9A-Za-z]/)
  const c = code[i]!
  return code.slice(0, i) + (c === '2' ? '3' : '2') + code.slice(i + 1)
}

/**
 * The store's methods bound to it, without `redeemCode`: a test that wraps `consumeCode` or
 * `settleAttempts` then sees every redeem go through them (the composed path).
 */
function bindAll(store: RecoveryCodeStore): RecoveryCodeStore {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(store) as (keyof RecoveryCodeStore)[]) {
    if (key === 'redeemCode') continue
    const v = store[key]
    out[key] = typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(store) : v
  }
  // Proxies (counting store) have no own keys: fall back to the port's method names.
  for (const key of STORE_METHODS)
    if (!(key in out)) out[key] = (...a: unknown[]) => (store[key] as (...a: unknown[]) => unknown)(...a)
  return out as unknown as RecoveryCodeStore
}

/**
 * `store` on one redeem path: `'one call'` keeps its own `redeemCode` (when it has one),
 * reporting each outcome and digest list; `'composed'` leaves it out.
 */
function onPath(
  path: 'one call' | 'composed',
  store: RecoveryCodeStore,
  onOutcome: (out: RedeemCodeOutcome) => void,
  onInput: (input: RedeemCodeInput) => void = () => {},
): RecoveryCodeStore {
  const bound = bindAll(store)
  const own = store.redeemCode
  if (path === 'composed' || !own) return bound
  return {
    ...bound,
    async redeemCode(input) {
      onInput(input)
      const out = await own.call(store, input)
      onOutcome(out)
      return out
    },
  }
}

// The digest column is where digests belong; everything else in the store must be free of them.
function hexReplacer(key: string, value: unknown): unknown {
  if (key === 'digest' || key === 'digestIndex') return undefined
  return value instanceof Uint8Array ? bytesToHex(value) : value
}
