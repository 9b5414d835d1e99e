/**
 * Service conformance, secrets at rest: after a full lifecycle no plaintext code, pepper or digest
 * is anywhere (logs, audit, events, cache, store, config, other mail) but where it belongs.
 */
import { bytesToHex } from '@noble/hashes/utils.js'
import { digestCandidates, normalize, type RecoveryEvent } from '@recovery-codes/core'
import { createStorage } from 'unstorage'
import { expect, it } from 'vitest'
import { createEventRecorder } from '../events.ts'
import { uniqueId } from '../fixtures.ts'
import { createCaptureLogger } from '../logger.ts'
import { createRecordingMailer } from '../mailer.ts'
import { DAY, flip, type ServiceSuite, TEST_PEPPER } from './harness.ts'

const PEPPER_BYTES = Uint8Array.from(atob(TEST_PEPPER), (c) => c.charCodeAt(0))

/** Registers the full-lifecycle secret scan inside the running `describe` block. */
export function noPlaintextTest(suite: ServiceSuite): void {
  const { make, batchFor } = suite

  it('full lifecycle: no plaintext code, pepper or digest anywhere but generate, the view, exports and the one email', async () => {
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
    // Every channel of one reveal slot: the view, each format, the email.
    expect((await h.rc.viewCodes({ userId, reveal: b.reveal })).codes).toEqual(b.codes)
    const exports = []
    for (const format of ['txt', 'csv', 'pdf'] as const) {
      exports.push(await h.rc.exportCodes({ userId, reveal: b.reveal, format }))
    }
    await h.rc.emailCodes({ userId, reveal: b.reveal })
    h.clock.advance(DAY)
    const x = await batchFor(h, userId, 8)
    b.codes.push(...x.codes)
    await h.rc.exportCodes({ userId, reveal: x.reveal, format: 'txt' })
    await h.rc.verifySetup({ userId, code: x.codes[0]! })
    await h.rc.redeem({ userId, code: x.codes[1]!, clientKey: '198.51.100.7' })
    await h.rc.redeem({ userId, code: flip(x.codes[2]!), clientKey: '198.51.100.7' })
    await h.rc.invalidateCode({ userId, code: x.codes[3]! })
    await h.rc.deleteCode({ userId, code: x.codes[4]! })
    await h.rc.history({ userId })
    await h.rc.status({ userId })
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
    secrets.add(TEST_PEPPER)
    secrets.add(bytesToHex(PEPPER_BYTES))
    const cacheDump: Record<string, unknown> = {}
    for (const key of await cache.getKeys()) cacheDump[key] = await cache.getItem(key)
    const places: Record<string, string> = {
      logs: logger.text(),
      audit: JSON.stringify(await h.store.listAudit({ limit: 10_000 })),
      events: JSON.stringify(events.events as readonly RecoveryEvent[]),
      cache: JSON.stringify(cacheDump),
      store: suite.options.dump ? JSON.stringify(await suite.options.dump(h.store), hexReplacer) : '',
      config: JSON.stringify(h.rc.config),
      mailsOtherThanCodes: JSON.stringify(mailer.messages.filter((m) => !/recovery codes$/.test(m.subject))),
    }
    for (const [where, text] of Object.entries(places)) {
      for (const secret of secrets)
        expect({ where, leaked: text.includes(secret) }).toEqual({ where, leaked: false })
    }
    // The one codes email carries exactly its batch's codes.
    expect(mailer.messages.filter((m) => /recovery codes$/.test(m.subject))).toHaveLength(1)
  })
}

// The digest column is where digests belong; everything else in the store must be free of them.
function hexReplacer(key: string, value: unknown): unknown {
  if (key === 'digest' || key === 'digestIndex') return undefined
  return value instanceof Uint8Array ? bytesToHex(value) : value
}
