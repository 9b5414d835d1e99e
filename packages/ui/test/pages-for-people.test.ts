/**
 * Issue 16, "The pages, made for people": the printable sheet, the live region, codes spelled for
 * screen readers, the history region, the 404 page, and the messages and scripts around cooldowns,
 * empty submissions and re-authentication. The same pages in a browser, with axe, are in
 * `examples/express-sqlite/test/pages.browser.test.ts`.
 */
import type { AddressInfo } from 'node:net'
import { createRecoveryCodes } from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import { createManualClock } from '@recovery-codes/testing'
import express from 'express'
import session from 'express-session'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { recoveryCodesPages } from '../src/express.ts'
import { recoveryCodesPages as honoPages } from '../src/hono.ts'
import {
  codesPage,
  createPagesHandler,
  dashboardPage,
  type LayoutModel,
  notFoundPage,
  type PageRequest,
  type PageSession,
  pagePaths,
  spellCode,
} from '../src/index.ts'

const layout: LayoutModel = {
  siteName: 'Demo Site',
  title: 'T',
  nonce: 'n0nce',
  paths: pagePaths(''),
  user: { label: 'ada@example.com' },
  csrf: 'tok',
}

const CODES = ['ABCDE-FGHJK-MNPQR-STVWX-YZ012', '34567-89ABC-DEFGH-JKMNP-QRSTV']

function codes(extra: Partial<Parameters<typeof codesPage>[1]> = {}) {
  return codesPage(layout, {
    codes: CODES,
    batchId: 'batch_123',
    createdAt: Date.UTC(2026, 11, 7, 8, 30),
    expiresAt: null,
    emailEnabled: false,
    formats: ['txt', 'pdf'],
    used: ['view'],
    fresh: true,
    ...extra,
  })
}

const batch = {
  id: 'b1',
  status: 'active' as const,
  createdAt: 0,
  expiresAt: null,
  endedAt: null,
  issued: 10,
  unused: 10,
  used: 0,
  invalidated: 0,
  deleted: 0,
  viewed: true,
  downloaded: false,
  emailed: false,
  verified: true,
  lastUsedAt: null,
}

function dashboard(extra: Partial<Parameters<typeof dashboardPage>[1]> = {}) {
  return dashboardPage(layout, {
    remaining: 10,
    lowCodes: false,
    lowCodesThreshold: 3,
    shouldRegenerate: false,
    active: batch,
    generateRetryAfterMs: 0,
    reveal: null,
    history: { items: [batch], page: 1, perPage: 5, total: 1, totalPages: 1 },
    fresh: true,
    ...extra,
  })
}

describe('the codes page as a printable sheet', () => {
  it('prints the site, the account, the date and the batch id, and hides navigation and buttons', () => {
    const out = codes()
    expect(out).toMatch(/<dl class="sheet print-only" id="sheet">/)
    expect(out).toContain('<dt>Site</dt><dd>Demo Site</dd>')
    expect(out).toContain('<dd id="sheet-account">ada@example.com</dd>')
    expect(out).toContain('<dd id="sheet-date">2026-12-07 08:30 UTC</dd>')
    expect(out).toContain('<dd id="sheet-batch">batch_123</dd>')
    const print = /@media print\{([^}]*\{[^}]*\})*[^}]*\}/.exec(out)?.[0] ?? ''
    expect(print).toMatch(/header\.top,\.no-print,\.flash,button,form\{display:none!important\}/)
    expect(print).toContain('.print-only{display:block!important}')
    // On screen the sheet's header is hidden (the page header already says it).
    expect(out).toContain('.print-only{display:none!important}')
  })

  it('the Print button runs window.print() from the nonced script, with no inline handler', () => {
    const out = codes()
    expect(out).toContain('<button type="button" class="secondary" data-print id="print">Print</button>')
    expect(out).toContain('<script nonce="n0nce">')
    expect(out).toContain("addEventListener('click',()=>window.print())")
    expect(out).not.toMatch(/\son[a-z]+="/)
    // Every <script> and <style> carries the response's nonce (the CSP allows nothing else).
    expect(out.match(/<script(?![^>]*nonce="n0nce")/g)).toBeNull()
    expect(out.match(/<style(?![^>]*nonce="n0nce")/g)).toBeNull()
  })
})

describe('copy and download announced', () => {
  it('has one polite live region, and the scripts write copy and download results into it', () => {
    for (const out of [codes(), dashboard()]) {
      expect(out.match(/aria-live="polite"/g)).toHaveLength(1)
      expect(out).toContain('<div id="live" class="sr-only" role="status" aria-live="polite"></div>')
    }
    const out = codes()
    expect(out).toContain("say('The codes were copied to the clipboard.')")
    expect(out).toMatch(/<form method="post" action="\/download" data-download="txt">/)
    expect(out).toContain("say('Your codes are downloading as a .'+x+' file. Each format downloads once.')")
  })
})

describe('codes for screen readers', () => {
  it('spells each code one character at a time, groups separated by commas', () => {
    expect(spellCode('ABCDE-FGHJK')).toBe('A B C D E, F G H J K')
    expect(spellCode('AB 12')).toBe('A B, 1 2')
  })

  it('hides the grouped list from assistive technology and offers the spelled one, same order', () => {
    const out = codes()
    expect(out).toContain(
      '<ol class="codes" id="codes" aria-hidden="true"><li><code>ABCDE-FGHJK-MNPQR-STVWX-YZ012</code></li>',
    )
    const spelled = /<ol class="sr-only" id="codes-spelled" aria-label="([^"]+)">(.*?)<\/ol>/.exec(out)
    expect(spelled?.[1]).toContain('spelled character by character')
    expect([...(spelled?.[2] ?? '').matchAll(/<li>([^<]+)<\/li>/g)].map((m) => m[1])).toEqual(
      CODES.map(spellCode),
    )
    // No aria-label on an element whose role forbids naming (axe aria-prohibited-attr).
    expect(out).not.toMatch(/<(code|span|li)[^>]*aria-label=/)
  })
})

describe('the history table', () => {
  it('is a named region in the tab order (axe scrollable-region-focusable)', () => {
    expect(dashboard()).toContain(
      '<div class="table-wrap" id="history-wrap" role="region" aria-label="History table" tabindex="0"><table id="history">',
    )
    expect(dashboard()).toContain('<h2 id="hist-h">History</h2>')
  })
})

describe('the Regenerate button during a cooldown', () => {
  it('is disabled and carries the remaining seconds for the script that enables it', () => {
    const out = dashboard({ generateRetryAfterMs: 4_200 })
    expect(out).toMatch(
      /<button type="submit" id="generate" data-enable-in="5" data-status="generate-cooldown" data-enabled-text="You can generate a new batch now." disabled>Regenerate codes<\/button>/,
    )
    expect(out).toContain('id="generate-cooldown" role="status"')
    expect(out).toContain("querySelectorAll('button[data-enable-in]')")
    expect(dashboard()).not.toMatch(/id="generate" data-enable-in/)
  })
})

describe('the 404 page', () => {
  it('has the layout, lang, a title, a main landmark, a heading and a way back', () => {
    const out = notFoundPage(
      { ...layout, title: 'Page not found' },
      { home: { href: '/', label: 'Go to your recovery codes' } },
    )
    expect(out).toMatch(/^<!doctype html>\n<html lang="en">/)
    expect(out).toContain('<title>Page not found · Demo Site</title>')
    expect(out).toMatch(/<main>[\s\S]*<h1>Page not found<\/h1>[\s\S]*<\/main>/)
    expect(out).toContain('<a href="/">Go to your recovery codes</a>')
  })
})

describe('page controller', () => {
  const pepper = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64')

  function setup(opts: { freshnessMs?: number } = {}) {
    const clock = createManualClock()
    const store = memoryStore()
    const rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: pepper }],
      store,
      clock,
      activation: 'immediate',
    })
    let data: Record<string, unknown> = {}
    const session: PageSession = {
      get: (k) => data[k],
      set: (k, v) => {
        if (v === undefined) delete data[k]
        else data[k] = v
      },
      regenerate: async () => {
        data = {}
      },
      destroy: async () => {
        data = {}
      },
    }
    const pages = createPagesHandler<null>(
      rc,
      {
        session: () => session,
        getClientKey: () => '127.0.0.1',
        signInWithPassword: async (e, p) => (e === 'a@b.c' && p === 'pw' ? 'u1' : null),
        verifyPassword: async (id, p) => id === 'u1' && p === 'pw',
        userLabel: async () => 'a@b.c',
      },
      { now: clock.now, ...(opts.freshnessMs === undefined ? {} : { freshnessMs: opts.freshnessMs }) },
    )
    const req = (method: string, path: string, form?: Record<string, string>): PageRequest => ({
      method,
      path,
      query: new URLSearchParams(),
      form: form ? new URLSearchParams(form) : null,
      header: () => undefined,
      origin: 'http://x',
    })
    const csrf = () => data.rc_csrf as string
    const post = (path: string, form: Record<string, string> = {}) =>
      pages.handle(req('POST', path, { _csrf: csrf(), ...form }), null)
    const get = (path: string) => pages.handle(req('GET', path), null)
    const flashes = async () => String((await get('/'))?.body)
    /** Signs in with the password, then opens the page it leads to (for the next form's token). */
    async function signIn() {
      await get('/signin')
      const r = await post('/signin', { email: 'a@b.c', password: 'pw' })
      await get(r?.headers.Location ?? '/')
      return r
    }
    /** Signs in, generates and shows the codes; returns them. */
    async function withCodes(): Promise<string[]> {
      await signIn()
      await get('/')
      await post('/generate')
      const shown = await post('/codes')
      return [...String(shown?.body).matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!)
    }
    return { rc, store, clock, pages, req, data: () => data, post, get, flashes, signIn, withCodes }
  }

  it('the codes page prints the account and the batch id of the batch shown', async () => {
    const h = setup()
    await h.signIn()
    await h.get('/')
    await h.post('/generate')
    const shown = String((await h.post('/codes'))?.body)
    const batch = await h.store.getActiveBatch('u1')
    expect(shown).toContain(`<dd id="sheet-batch">${batch!.id}</dd>`)
    expect(shown).toContain('<dd id="sheet-account">a@b.c</dd>')
    expect(shown).toMatch(/<dd id="sheet-date">\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/dd>/)
  })

  it('a correct code entered during a cooldown is told to wait, with the time, not that it did not work', async () => {
    const h = setup()
    const good = await h.withCodes()
    await h.post('/logout')
    await h.signIn()
    let last = ''
    for (let i = 0; i < 5; i++) last = String((await h.post('/login', { code: 'WRONG-WRONG' }))?.body)
    // The attempt that starts the cooldown was a wrong code: it says so, and how long to wait.
    expect(last).toContain('That recovery code did not work.')
    expect(last).toMatch(/Too many failed attempts: wait \d+ (second|minute)/)
    const during = await h.post('/login', { code: good[0]! })
    expect(during?.status).toBe(429)
    const text = String(during?.body)
    expect(text).not.toContain('did not work')
    expect(text).toMatch(
      /Too many failed attempts: wait \d+ (seconds?|minutes?)( \d+ seconds?)?, then enter your code again\./,
    )
    // After the wait, the same code signs in.
    h.clock.advance(60 * 60_000)
    h.data().rc_pending_at = h.clock.now()
    const after = await h.post('/login', { code: good[0]! })
    expect(after?.headers.Location).toBe('/')
  })

  it('an empty submission gets its own message and spends no attempt', async () => {
    const h = setup()
    await h.withCodes()
    await h.post('/logout')
    await h.signIn()
    for (let i = 0; i < 8; i++) {
      const r = await h.post('/login', { code: '   ' })
      expect(r?.status).toBe(400)
      expect(String(r?.body)).toContain('Enter one of your recovery codes.')
      expect(String(r?.body)).toMatch(
        /id="code"[^>]*aria-describedby="login-error code-hint"[^>]*aria-invalid="true"/,
      )
    }
    // Eight empty tries later, a wrong code is still the first failure (no cooldown yet).
    const wrong = String((await h.post('/login', { code: 'WRONG' }))?.body)
    expect(wrong).toContain('did not work')
    expect(wrong).not.toContain('Too many')
  })

  it('empty codes in the dashboard forms get a message too', async () => {
    const h = setup()
    await h.withCodes()
    await h.post('/verify-setup', { code: '' })
    expect(await h.flashes()).toContain('Enter a code first.')
    await h.post('/code', { action: 'invalidate', code: ' ' })
    expect(await h.flashes()).toContain('Enter a code first.')
  })

  it('a generate during the cooldown is refused before any password detour', async () => {
    const h = setup({ freshnessMs: 1000 })
    await h.withCodes()
    h.clock.advance(2000) // no longer fresh, still in the regeneration cooldown
    const dash = String((await h.get('/'))?.body)
    expect(dash).toMatch(/id="generate" data-enable-in="\d+"/)
    const r = await h.post('/generate')
    expect(r?.headers.Location).toBe('/')
    expect(await h.flashes()).toContain('You can generate a new batch in')
  })

  describe('after a re-authentication the action completes with what was typed', () => {
    async function stale() {
      const h = setup()
      const good = await h.withCodes()
      h.clock.advance(11 * 60_000) // past freshness (10 min) and the regeneration cooldown
      return { h, good }
    }

    it('the dashboard forms carry a password field when not fresh', async () => {
      const { h } = await stale()
      const dash = String((await h.get('/'))?.body)
      for (const id of ['generate-password', 'one-password', 'all-password'])
        expect(dash).toMatch(
          new RegExp(`<input id="${id}" name="password" type="password" autocomplete="current-password"`),
        )
      expect(dash).not.toContain('You will be asked for your password first.')
    })

    it('invalidate with the password: done in one step, the code typed is used', async () => {
      const { h, good } = await stale()
      const r = await h.post('/code', { action: 'invalidate', code: good[3]!, password: 'pw' })
      expect(r?.headers.Location).toBe('/')
      expect(await h.flashes()).toContain('The code was invalidated.')
      expect((await h.store.getActiveBatch('u1'))?.id).toBeTruthy()
      const st = await h.rc.status({ userId: 'u1' })
      expect(st.remaining).toBe(9)
    })

    it('regenerate with the password keeps the typed expiry', async () => {
      const { h } = await stale()
      const r = await h.post('/generate', { expiresInDays: '30', password: 'pw' })
      expect(r?.headers.Location).toBe('/codes')
      const b = await h.store.getActiveBatch('u1')
      expect(b!.expiresAt! - b!.createdAt).toBe(30 * 86_400_000)
    })

    it('a wrong password changes nothing and says so; no password still goes through /reauth', async () => {
      const { h } = await stale()
      const before = (await h.store.getActiveBatch('u1'))?.id
      const r = await h.post('/delete-all', { password: 'nope' })
      expect(r?.headers.Location).toBe('/')
      expect(await h.flashes()).toContain('Incorrect password. Nothing was changed')
      expect((await h.store.getActiveBatch('u1'))?.id).toBe(before)
      expect((await h.post('/delete-all'))?.headers.Location).toBe('/reauth')
    })
  })

  it('notFound answers a 404 page that links onward and writes nothing to a visitor session', async () => {
    const h = setup()
    const out = await h.pages.notFound(h.req('GET', '/no/such/page'), null)
    expect(out.status).toBe(404)
    expect(out.headers['Content-Security-Policy']).toMatch(/script-src 'nonce-/)
    expect(String(out.body)).toContain('<a href="/signin">Go to sign in</a>')
    expect(h.data()).toEqual({})
    await h.signIn()
    const signedIn = await h.pages.notFound(h.req('GET', '/nope'), null)
    expect(String(signedIn.body)).toContain('<a href="/">Go to your recovery codes</a>')
    expect(String(signedIn.body)).toContain('Signed in as a@b.c')
  })
})

describe('the 404 page in the adapters', () => {
  const PEPPER = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 73 + 19) % 251)).toString('base64')
  const rc = () =>
    createRecoveryCodes({
      peppers: [{ id: 'k1', secret: PEPPER }],
      store: memoryStore(),
      activation: 'immediate',
    })

  it('Express: app.use(pages.notFoundPage) answers unknown paths with the page, links under the mount', async () => {
    const app = express()
    app.use(session({ secret: 'test secret of the session', resave: false, saveUninitialized: false }))
    const pages = recoveryCodesPages(rc(), { signInWithPassword: async () => null })
    app.use('/account', pages)
    app.get('/', (_req, res) => void res.send('host home'))
    app.use(pages.notFoundPage)
    const server = app.listen(0, '127.0.0.1')
    await new Promise((ok) => server.once('listening', ok))
    try {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const res = await fetch(`${origin}/no/such/page`)
      expect(res.status).toBe(404)
      expect(res.headers.get('content-type')).toContain('text/html')
      expect(res.headers.get('content-security-policy')).toMatch(/script-src 'nonce-/)
      // A 404 starts no session for a visitor.
      expect(res.headers.get('set-cookie')).toBeNull()
      const text = await res.text()
      expect(text).toContain('<html lang="en">')
      expect(text).toContain('<a href="/account/signin">Go to sign in</a>')
      expect(await (await fetch(`${origin}/`)).text()).toBe('host home')
      const head = await fetch(`${origin}/nope`, { method: 'HEAD' })
      expect(head.status).toBe(404)
    } finally {
      await new Promise<void>((ok) => server.close(() => ok()))
    }
  })

  it('Hono: app.notFound(pages.notFoundPage), also without a session middleware', async () => {
    const pages = honoPages(rc())
    const app = new Hono().route('/', pages)
    app.notFound(pages.notFoundPage)
    const res = await app.request('/no/such/page')
    expect(res.status).toBe(404)
    const text = await res.text()
    expect(text).toContain('<title>Page not found · ')
    expect(text).toContain('<a href="/login">Go to sign in</a>')
  })
})
