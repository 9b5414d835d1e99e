/**
 * "This wasn't me" links (issue 16, acceptance 3): works once, expires, revokes; a forged,
 * tampered, replayed or other user's link changes nothing.
 */
import { describe, expect, it, vi } from 'vitest'
import { memoryStore } from '../../../store-memory/src/index.ts'
import { createManualClock } from '../../../testing/src/clock.ts'
import { randomPepperSecret } from '../../../testing/src/fixtures.ts'
import { createCaptureLogger } from '../../../testing/src/logger.ts'
import { createRecordingMailer } from '../../../testing/src/mailer.ts'
import { resolveConfig } from '../config.ts'
import { createServiceContext } from './context.ts'
import { createRecoveryCodes } from './create.ts'
import { createRepudiation } from './repudiate.ts'

function make(onRepudiated = vi.fn(async (_userId: string) => {})) {
  const clock = createManualClock()
  const input = {
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    activation: 'immediate' as const,
    store: memoryStore(),
    clock,
    logger: createCaptureLogger(),
    mailer: createRecordingMailer(),
    resolveEmail: async () => 'user@example.test',
    notifications: {
      contact: 'Call +1 555 0100',
      linkBaseUrl: 'https://example.test/wasnt-me',
      linkTtlSeconds: 3600,
    },
    onRepudiated,
  }
  const rc = createRecoveryCodes(input)
  const rep = createRepudiation(createServiceContext(resolveConfig(input)))
  return { rc, rep, clock, store: input.store, onRepudiated }
}

async function snapshot(store: ReturnType<typeof memoryStore>, userId: string) {
  return {
    active: await store.getActiveBatch(userId),
    audit: await store.listAudit({ limit: 1000 }),
  }
}

describe('repudiation', () => {
  it('a used link stays used until it expires, even when limiter counters are purged sooner', async () => {
    const clock = createManualClock()
    const store = memoryStore()
    const rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: randomPepperSecret() }],
      activation: 'immediate',
      store,
      clock,
      mailer: createRecordingMailer(),
      resolveEmail: async () => 'user@example.test',
      notifications: { contact: 'Call +1 555 0100', linkBaseUrl: 'https://example.test/wasnt-me' },
      purge: { attemptRetentionDays: 1 },
    })
    const rep = createRepudiation(createServiceContext(rc.config))
    const first = await rc.generate({ userId: 'alice' })
    if (!first.ok) throw new Error('generate failed')
    const token = rep.mint({
      userId: 'alice',
      kind: 'recovery-login',
      batchId: first.batchId,
      now: clock.now(),
    })
    expect(await rc.repudiate({ token })).toEqual({ ok: true, batchDisabled: true })
    // Two days later (the 7-day link still valid): counters older than a day are purged, and the
    // user has a new batch a replay would disable.
    clock.advance(2 * 86_400_000)
    await rc.purge()
    const second = await rc.generate({ userId: 'alice' })
    if (!second.ok) throw new Error('generate failed')
    expect(await rc.repudiate({ token })).toEqual({ ok: false, reason: 'used' })
    expect((await store.getActiveBatch('alice'))?.id).toBe(second.batchId)
  })

  it('works once: disables the batch, calls the hook, audits; a replay is refused', async () => {
    const { rc, rep, clock, store, onRepudiated } = make()
    const gen = await rc.generate({ userId: 'alice' })
    if (!gen.ok) throw new Error('generate failed')
    const token = rep.mint({
      userId: 'alice',
      kind: 'recovery-login',
      batchId: gen.batchId,
      now: clock.now(),
    })
    expect(token).not.toContain(gen.codes[0]!.replaceAll('-', ''))
    expect(await rep.inspect({ token })).toEqual({
      ok: true,
      kind: 'recovery-login',
      expiresAt: clock.now() + 3_600_000,
    })
    // Inspecting (the GET page) changes nothing.
    expect((await store.getActiveBatch('alice'))?.id).toBe(gen.batchId)

    expect(await rep.repudiate({ token, clientKey: '203.0.113.9' })).toEqual({
      ok: true,
      batchDisabled: true,
    })
    expect(await store.getActiveBatch('alice')).toBeNull()
    expect(onRepudiated).toHaveBeenCalledExactlyOnceWith('alice')
    const audit = await store.listAudit({ limit: 100, userId: 'alice' })
    expect(audit.map((r) => r.event)).toEqual(
      expect.arrayContaining(['batch.disabled', 'account.repudiated']),
    )
    expect(JSON.stringify(audit)).not.toContain(token.split('.')[2])

    const before = await snapshot(store, 'alice')
    expect(await rep.repudiate({ token })).toEqual({ ok: false, reason: 'used' })
    expect(await rep.inspect({ token })).toEqual({ ok: false, reason: 'used' })
    expect(await snapshot(store, 'alice')).toEqual(before)
    expect(onRepudiated).toHaveBeenCalledTimes(1)
  })

  it('refuses an expired link and changes nothing', async () => {
    const { rc, rep, clock, store, onRepudiated } = make()
    const gen = await rc.generate({ userId: 'alice' })
    if (!gen.ok) throw new Error('generate failed')
    const token = rep.mint({ userId: 'alice', kind: 'low-codes', batchId: gen.batchId, now: clock.now() })
    clock.advance(3_600_000)
    const before = await snapshot(store, 'alice')
    expect(await rep.inspect({ token })).toEqual({ ok: false, reason: 'expired' })
    expect(await rep.repudiate({ token })).toEqual({ ok: false, reason: 'expired' })
    expect(await snapshot(store, 'alice')).toEqual(before)
    expect(onRepudiated).not.toHaveBeenCalled()
  })

  it('refuses forged, tampered and other-instance tokens and changes nothing', async () => {
    const { rc, rep, clock, store, onRepudiated } = make()
    const other = make()
    const gen = await rc.generate({ userId: 'alice' })
    if (!gen.ok) throw new Error('generate failed')
    const good = rep.mint({ userId: 'alice', kind: 'locked', batchId: gen.batchId, now: clock.now() })
    const [prefix, payload, tag] = good.split('.') as [string, string, string]
    const forgedUser = JSON.parse(Buffer.from(payload, 'hex').toString('utf8'))
    forgedUser.u = 'bob'
    const tampered = [
      `${prefix}.${Buffer.from(JSON.stringify(forgedUser)).toString('hex')}.${tag}`,
      `${prefix}.${payload}.${tag.slice(0, -1)}${tag.endsWith('0') ? '1' : '0'}`,
      other.rep.mint({ userId: 'alice', kind: 'locked', batchId: gen.batchId, now: clock.now() }),
      'rcr1.00.00',
      undefined,
    ]
    const before = await snapshot(store, 'alice')
    for (const token of tampered) {
      expect(await rep.repudiate({ token })).toEqual({ ok: false, reason: 'invalid' })
    }
    expect(await snapshot(store, 'alice')).toEqual(before)
    expect(onRepudiated).not.toHaveBeenCalled()
    // The real one still works afterwards.
    expect((await rep.repudiate({ token: good })).ok).toBe(true)
  })

  it('a failing hook is logged and the revoke stands', async () => {
    const hook = vi.fn(async () => {
      throw new TypeError('session store down')
    })
    const { rc, rep, clock, store } = make(hook)
    const gen = await rc.generate({ userId: 'alice' })
    if (!gen.ok) throw new Error('generate failed')
    const token = rep.mint({
      userId: 'alice',
      kind: 'codes-generated',
      batchId: gen.batchId,
      now: clock.now(),
    })
    expect(await rep.repudiate({ token })).toEqual({ ok: true, batchDisabled: true })
    expect(await store.getActiveBatch('alice')).toBeNull()
  })

  it('rc.repudiate revokes through the service; status is not served stale from the cache', async () => {
    const { rc, rep, clock } = make()
    const gen = await rc.generate({ userId: 'alice' })
    if (!gen.ok) throw new Error('generate failed')
    expect((await rc.status({ userId: 'alice' })).active?.id).toBe(gen.batchId)
    const token = rep.mint({ userId: 'alice', kind: 'disabled', batchId: gen.batchId, now: clock.now() })
    expect(await rc.inspectRepudiation({ token })).toMatchObject({ ok: true, kind: 'disabled' })
    expect(await rc.repudiate({ token })).toEqual({ ok: true, batchDisabled: true })
    expect((await rc.status({ userId: 'alice' })).remaining).toBe(0)
    expect(await rc.repudiate({ token })).toEqual({ ok: false, reason: 'used' })
  })
})
