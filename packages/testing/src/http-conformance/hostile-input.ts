/**
 * HTTP adapter conformance, hostile input: on every route, hostile bodies, fields and queries get a
 * 4xx with a stable error code, never a 5xx, and pollute no prototype.
 */
import { createHttpHandler } from '@recovery-codes/core'
import { expect, it } from 'vitest'
import { DAY, errorCode, type HarnessSetup } from './harness.ts'

/** Every error code a hostile request may answer with. */
const STABLE_CODES = new Set([
  'INVALID_INPUT',
  'UNSUPPORTED_MEDIA_TYPE',
  'PAYLOAD_TOO_LARGE',
  'UNAUTHENTICATED',
  'INVALID_CODE',
  'FORBIDDEN',
  'REAUTH_REQUIRED',
  'CSRF_REJECTED',
  'NOT_FOUND',
  'ROUTE_NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'ALREADY_DONE',
  'ILLEGAL_TRANSITION',
  'REVEAL_UNAVAILABLE',
  'COOLDOWN_ACTIVE',
  'RATE_LIMITED',
])

/** Registers the hostile-input test inside the running `describe` block. */
export function hostileInputTests(setup: HarnessSetup): void {
  it('hostile inputs on every route: 4xx with a stable code, never 5xx, no prototype pollution', async () => {
    const users = new Map([['alice@example.test', 'alice']])
    const h = await setup({
      loginMode: 'identifier-and-code',
      resolveUserId: async (id) => users.get(id) ?? null,
    })
    const alice = h.login('alice')
    await h.batch(alice)
    const strings = [
      '\u0000',
      'ABCDE\u0000FGHJK',
      'A'.repeat(65),
      'Ａ'.repeat(25),
      'ＡＢＣＤＥ-ＦＧＨＪＫ-ＭＮＰＱＲ-ＳＴＶＷＸ-ＹＺ０１２',
      'АВСDЕ-FGНJK-MNРQR-SТVWX-YZ012',
      "' OR 1=1 --",
      "'; DROP TABLE recovery_codes; --",
      '" OR ""="',
      '1; SELECT pg_sleep(10)',
      '../../etc/passwd',
      '%00',
      '\r\nSet-Cookie: x=1',
      '<script>alert(1)</script>',
      '',
      ' ',
    ]
    const wrongTypes: unknown[] = [
      ['ABCDE'],
      { $ne: null },
      { __proto__: { polluted: true } },
      12345,
      1e308,
      -1,
      true,
      null,
    ]
    const values = [...strings, ...wrongTypes]
    const bodies: unknown[] = [
      [],
      null,
      'string',
      42,
      JSON.parse('{"__proto__":{"polluted":true}}'),
      JSON.parse('{"constructor":{"prototype":{"polluted":true}}}'),
      JSON.parse('{"code":"ABCDE","__proto__":{"polluted":true}}'),
      { code: 'ABCDE', extra: 1 },
      { code: 'A'.repeat(1_000_000) },
    ]
    const fields: Record<string, string[]> = {
      '/generate': ['count', 'expiresInDays'],
      '/download': ['format'],
      '/verify-setup': ['code'],
      '/codes/invalidate': ['code'],
      '/codes/delete': ['code'],
      '/redeem': ['code'],
      '/login': ['identifier', 'code'],
      '/codes/view': ['reveal'],
      '/email': ['to'],
      '/batch/delete': ['batchId'],
    }
    const seen: string[] = []
    const check = async (res: Response, what: string) => {
      expect(res.status, what).toBeGreaterThanOrEqual(400)
      expect(res.status, what).toBeLessThan(500)
      const code = await errorCode(res)
      expect(STABLE_CODES.has(code), `${what}: ${code}`).toBe(true)
      seen.push(code)
    }
    for (const route of createHttpHandler(h.rc, h.hooks).routes) {
      const cookie = route.path === '/redeem' ? h.pending('alice') : route.auth === 'none' ? undefined : alice
      if (route.method === 'GET') {
        for (const q of [
          '?page=0',
          '?page=-1',
          '?page=1e3',
          '?page=__proto__',
          '?__proto__[polluted]=1',
          '?page=1&page=2',
          '?page[]=1',
          '?code=ABCDE',
          `?page=${'9'.repeat(400)}`,
          '?constructor=x',
        ]) {
          if (route.path === '/openapi.json' && q === '?page=1&page=2') continue
          await check(await h.get(route.path + q, cookie), `${route.path}${q}`)
        }
        continue
      }
      for (const body of bodies) {
        await check(
          await h.post(route.path, body, cookie ? { cookie } : {}),
          `${route.path} ${JSON.stringify(body)?.slice(0, 40)}`,
        )
      }
      for (const field of fields[route.path] ?? []) {
        for (const value of values) {
          const body: Record<string, unknown> =
            route.path === '/login' ? { identifier: 'alice@example.test', code: 'ABCDE' } : {}
          // `expiresInDays: null` is valid (the configured default), so not hostile.
          if (field === 'expiresInDays' && value === null) continue
          body[field] = value
          if (route.path === '/generate') h.clock.advance(DAY) // a valid-looking body must not end in a cooldown
          const res = await h.post(route.path, body, cookie ? { cookie } : {})
          await check(res, `${route.path} ${field}=${JSON.stringify(value)?.slice(0, 40)}`)
        }
      }
    }
    expect(seen).not.toContain(undefined)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined()
  })
}
