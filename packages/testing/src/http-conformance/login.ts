/**
 * HTTP adapter conformance, recovery login: a redeem logs in on a regenerated session, `/login`
 * only when opted in, and every failed redeem answers byte for byte the same.
 */
import { expect, it } from 'vitest'
import { comparableHeaders, DAY, errorCode, type HarnessSetup, wrongCode } from './harness.ts'

/** Registers the recovery-login tests inside the running `describe` block. */
export function loginTests(setup: HarnessSetup): void {
  it('redeem completes the login on a regenerated session; the old cookie is dead', async () => {
    const h = await setup()
    const codes = await h.batch(h.login('alice'))
    const before = h.pending('alice')
    const r = await h.post('/redeem', { code: codes[0] }, { cookie: before })
    expect(r.status).toBe(200)
    expect(await r.json()).toEqual({
      remaining: codes.length - 1,
      lowCodes: false,
      shouldRegenerate: true,
      method: 'recovery_code',
      mustBindFactor: false,
    })
    const setCookie = r.headers.get('set-cookie') ?? ''
    const after = setCookie.split(';')[0]!
    expect(after).toMatch(/^sid=/)
    expect(after).not.toBe(before)
    expect(h.recoveryLogins).toEqual(['alice'])
    // The pre-login session is gone, with everything in it.
    const old = await h.get('/status', before)
    expect(old.status).toBe(401)
    expect(await errorCode(old)).toBe('UNAUTHENTICATED')
    expect([...h.sessions.values()].some((s) => s.preAuth !== undefined)).toBe(false)
    expect((await h.get('/status', after)).status).toBe(200)
    // The code is spent.
    const reuse = await h.post('/redeem', { code: codes[0] }, { cookie: h.pending('alice') })
    expect(reuse.status).toBe(401)
  })

  it('replaceOnUse: the replacement is shown once through /codes/view of the new session, never in the redeem body', async () => {
    const h = await setup({ replaceOnUse: true })
    const codes = await h.batch(h.login('alice'))
    const r = await h.post('/redeem', { code: codes[0] }, { cookie: h.pending('alice') })
    expect(r.status).toBe(200)
    const text = await r.text()
    const body = JSON.parse(text) as { remaining: number; replacement?: Record<string, unknown> }
    expect(body.remaining).toBe(codes.length)
    expect(Object.keys(body.replacement ?? {})).toEqual(['revealExpiresAt'])
    const after = (r.headers.get('set-cookie') ?? '').split(';')[0]!
    const v = await h.post('/codes/view', {}, { cookie: after })
    expect(v.status).toBe(200)
    const { codes: shown } = (await v.json()) as { codes: string[] }
    expect(shown).toHaveLength(1)
    expect(text).not.toContain(shown[0]!)
    const again = await h.post('/codes/view', {}, { cookie: after })
    expect([409, 410]).toContain(again.status)
    expect((await h.post('/redeem', { code: shown[0] }, { cookie: h.pending('alice') })).status).toBe(200)
  })

  it('redeem without a pending second factor: 401 UNAUTHENTICATED', async () => {
    const h = await setup()
    const codes = await h.batch(h.login('alice'))
    const r = await h.post('/redeem', { code: codes[0] })
    expect(r.status).toBe(401)
    expect(await errorCode(r)).toBe('UNAUTHENTICATED')
  })

  it('/login is absent unless loginMode is identifier-and-code', async () => {
    const h = await setup()
    const r = await h.post('/login', { identifier: 'alice@example.test', code: 'X' })
    expect(r.status).toBe(404)
    expect(await errorCode(r)).toBe('ROUTE_NOT_FOUND')
  })

  it('identifier + code login (opt-in) logs in on a regenerated session', async () => {
    const users = new Map([['alice@example.test', 'alice']])
    const h = await setup({
      loginMode: 'identifier-and-code',
      resolveUserId: async (id) => users.get(id) ?? null,
    })
    const codes = await h.batch(h.login('alice'))
    const r = await h.post('/login', { identifier: 'Alice@Example.test ', code: codes[0] })
    expect(r.status).toBe(200)
    expect(r.headers.get('set-cookie')).toMatch(/^sid=/)
    expect(h.recoveryLogins).toEqual(['alice'])
  })

  it('every failed redeem is byte-identical: unknown, wrong, used, expired, invalidated, locked', async () => {
    const users = new Map(
      ['known', 'used', 'expired', 'invalidated', 'locked'].map((u) => [`${u}@example.test`, u]),
    )
    const h = await setup({
      loginMode: 'identifier-and-code',
      resolveUserId: async (id) => users.get(id) ?? null,
      maxLoginAttempts: 3,
      hardFailureCap: 50,
    })
    const codes: Record<string, string[]> = {}
    for (const u of users.values()) {
      codes[u] = await h.batch(h.login(u), u === 'expired' ? { expiresInDays: 1 } : {})
    }
    expect((await h.post('/login', { identifier: 'used@example.test', code: codes.used![0] })).status).toBe(
      200,
    )
    expect(
      (await h.post('/codes/invalidate', { code: codes.invalidated![0] }, { cookie: h.login('invalidated') }))
        .status,
    ).toBe(200)
    h.clock.advance(DAY + 1)
    const login = (identifier: string, code: string) =>
      h.post('/login', { identifier, code }, { headers: { 'x-test-client': `client-${identifier}` } })
    for (let i = 0; i < 3; i++) await login('locked@example.test', wrongCode(codes.locked![1]!))
    for (let i = 0; i < 3; i++) await login('ghost-locked@example.test', wrongCode(codes.known![1]!))

    const failures = [
      await login('ghost@example.test', codes.known![0]!), // unknown identifier
      await login('known@example.test', wrongCode(codes.known![0]!)), // wrong code
      await login('used@example.test', codes.used![0]!), // used code
      await login('expired@example.test', codes.expired![0]!), // expired batch
      await login('invalidated@example.test', codes.invalidated![0]!), // invalidated code
      await login('locked@example.test', codes.locked![0]!), // right code, known identifier locked
      await login('ghost-locked@example.test', codes.known![0]!), // unknown identifier locked
    ]
    // The second factor answers the same way.
    failures.push(
      await h.post('/redeem', { code: wrongCode(codes.known![2]!) }, { cookie: h.pending('known') }),
    )
    const first = failures[0]!
    const firstBody = await first.clone().text()
    expect(first.status).toBe(401)
    expect(JSON.parse(firstBody)).toEqual({ error: { code: 'INVALID_CODE', message: expect.any(String) } })
    for (const res of failures) {
      expect(res.status).toBe(first.status)
      expect(await res.text()).toBe(firstBody)
      expect(comparableHeaders(res)).toEqual(comparableHeaders(first))
      expect(res.headers.get('retry-after')).toBeNull()
      expect(res.headers.get('set-cookie')).toBeNull()
    }
    // And the locked account really is locked: the right code did not log in.
    expect((await login('locked@example.test', codes.locked![2]!)).status).toBe(401)
  })
}
