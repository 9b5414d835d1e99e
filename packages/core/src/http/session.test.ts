import { describe, expect, it } from 'vitest'
import { isRecoveryCodesError } from '../errors.ts'
import {
  callbackSession,
  type HostSession,
  isHostSession,
  markFirstFactor,
  markSignedIn,
  SESSION_KEYS,
  sessionHooks,
} from './session.ts'

/** An express-session-like object: properties plus callback regenerate/destroy. */
function fakeReq() {
  const req: {
    session?: Record<string, unknown> & {
      regenerate: (cb: (e?: unknown) => void) => void
      destroy: (cb: (e?: unknown) => void) => void
    }
  } = {}
  const make = () => {
    const s = {
      regenerate(cb: (e?: unknown) => void) {
        req.session = make()
        cb()
      },
      destroy(cb: (e?: unknown) => void) {
        req.session = undefined
        cb()
      },
    }
    return s as typeof s & Record<string, unknown>
  }
  req.session = make()
  return req
}

describe('callbackSession', () => {
  it('reads the current session on every access, so regenerate starts clean', async () => {
    const req = fakeReq()
    const s = callbackSession(() => req.session, 'express-session')
    s.set('a', 1)
    expect(req.session?.a).toBe(1)
    await s.regenerate()
    expect(s.get('a')).toBeUndefined()
    s.set('b', 'x')
    s.set('b', undefined)
    expect(Object.hasOwn(req.session!, 'b')).toBe(false)
    await s.destroy()
    expect(req.session).toBeUndefined()
    await s.destroy() // nothing left: still fine
  })

  it('without a session names the middleware in a typed error', () => {
    const s = callbackSession(() => undefined, 'express-session')
    let caught: unknown
    try {
      s.get('x')
    } catch (e) {
      caught = e
    }
    expect(isRecoveryCodesError(caught, 'CONFIG_INVALID')).toBe(true)
    expect((caught as Error).message).toContain('express-session')
    for (const bad of [null, 1, 'str', {}, { regenerate: 1, destroy: () => {} }]) {
      expect(() => callbackSession(() => bad, 'm').get('k')).toThrow(/m before recovery-codes/)
    }
  })

  it('passes a failed regenerate on', async () => {
    const s = callbackSession(
      () => ({ regenerate: (cb: (e?: unknown) => void) => cb(new Error('store down')), destroy: () => {} }),
      'm',
    )
    await expect(s.regenerate()).rejects.toThrow('store down')
  })
})

describe('sessionHooks', () => {
  const mapSession = (): HostSession & { data: Map<string, unknown> } => {
    const data = new Map<string, unknown>()
    return {
      data,
      get: (k) => data.get(k),
      set: (k, v) => (v === undefined ? data.delete(k) : data.set(k, v)),
      regenerate: async () => data.clear(),
      destroy: async () => data.clear(),
    }
  }
  let t = 1_000_000
  const clock = { now: () => t }

  it('reads the user, the pending user within its TTL and the reveal token from SESSION_KEYS', async () => {
    const s = mapSession()
    const hooks = sessionHooks(
      () => s,
      () => '10.0.0.1',
      { clock, pendingTtlMs: 1000, freshnessMs: 5000 },
    )
    expect(await hooks.getUserId({})).toBeNull()
    markFirstFactor(s, 'u1', t)
    expect(await hooks.getPendingUserId({})).toBe('u1')
    t += 1000
    expect(await hooks.getPendingUserId({})).toBeNull()
    await hooks.setRevealToken({}, 'tok')
    expect(await hooks.getRevealToken({})).toBe('tok')
    s.set(SESSION_KEYS.revealUntil, t + 10)
    await hooks.setRevealToken({}, null)
    expect(s.data.has(SESSION_KEYS.reveal)).toBe(false)
    expect(s.data.has(SESSION_KEYS.revealUntil)).toBe(false)
    expect(await hooks.getClientKey({})).toBe('10.0.0.1')
    // Wrong types in the session never pass for an id.
    s.set(SESSION_KEYS.user, 42)
    expect(await hooks.getUserId({})).toBeNull()
    s.set(SESSION_KEYS.user, '')
    expect(await hooks.getUserId({})).toBeNull()
  })

  it('a recovery login is fresh only when its password step is, across the new session id', async () => {
    const s = mapSession()
    const hooks = sessionHooks(
      () => s,
      () => null,
      { clock, freshnessMs: 5000 },
    )
    markFirstFactor(s, 'u1', t)
    s.set('other', 'pre-auth datum')
    await hooks.regenerateSession({})
    await hooks.logIn({}, 'u1')
    expect(s.data.get('other')).toBeUndefined()
    expect(await hooks.getUserId({})).toBe('u1')
    expect(await hooks.isFreshlyAuthenticated({})).toBe(true)
    t += 5000
    expect(await hooks.isFreshlyAuthenticated({})).toBe(false)

    // A password step older than the window: the code login is not fresh.
    const s2 = mapSession()
    const h2 = sessionHooks(
      () => s2,
      () => null,
      { clock, freshnessMs: 5000 },
    )
    markFirstFactor(s2, 'u2', t - 6000)
    await h2.regenerateSession({})
    await h2.logIn({}, 'u2')
    expect(await h2.isFreshlyAuthenticated({})).toBe(false)
    expect(s2.data.has(SESSION_KEYS.passwordAt)).toBe(false)
  })

  it('markSignedIn ends the pending state and is fresh', async () => {
    const s = mapSession()
    const hooks = sessionHooks(
      () => s,
      () => null,
      { clock },
    )
    markFirstFactor(s, 'u1', t)
    markSignedIn(s, 'u1', t)
    expect(await hooks.getPendingUserId({})).toBeNull()
    expect(await hooks.isFreshlyAuthenticated({})).toBe(true)
  })

  it('isHostSession checks every method', () => {
    expect(isHostSession(mapSession())).toBe(true)
    expect(isHostSession({ get() {}, set() {}, regenerate() {} })).toBe(false)
    expect(isHostSession(null)).toBe(false)
  })
})
