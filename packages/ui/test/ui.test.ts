import { createRecoveryCodes, type RecoveryCodesConfig } from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import { createRecordingMailer } from '@recovery-codes/testing'
import { describe, expect, it } from 'vitest'
import {
  createPagesHandler,
  dashboardPage,
  escapeHtml,
  formatDuration,
  html,
  isSameOriginRequest,
  type LayoutModel,
  type PageRequest,
  type PageSession,
  pagePaths,
  raw,
  recoveryLoginPage,
  safeFilename,
} from '../src/index.ts'

const layout: LayoutModel = {
  siteName: 'Site <b>',
  title: 'T',
  nonce: 'n0nce',
  paths: pagePaths(''),
  user: { label: '"><script>alert(1)</script>' },
  csrf: 'tok',
}

describe('html', () => {
  it('escapes interpolations but not nested html or raw', () => {
    expect(html`<p>${'<x & "y">'}</p>`.value).toBe('<p>&lt;x &amp; &quot;y&quot;&gt;</p>')
    expect(html`<p>${html`<b>${"'"}</b>`}${raw('<i>')}</p>`.value).toBe('<p><b>&#39;</b><i></p>')
    expect(html`${[1, null, false, undefined, 'a']}`.value).toBe('1a')
    expect(escapeHtml('`')).toBe('&#96;')
  })
})

describe('views', () => {
  it('escapes the site name and the user label; logout is a POST form with the token', () => {
    const out = recoveryLoginPage(layout, { mode: 'second-factor' })
    expect(out).not.toContain('<script>alert(1)')
    expect(out).toContain('Site &lt;b&gt;')
    expect(out).toMatch(
      /<form method="post" action="\/logout"><input type="hidden" name="_csrf" value="tok">/,
    )
    expect(out).toContain('<style nonce="n0nce">')
    expect(out).not.toMatch(/<link|<img|src="http/)
  })

  it('code inputs are labelled and typed for one-time codes', () => {
    const out = recoveryLoginPage(layout, { mode: 'identifier-and-code' })
    expect(out).toContain('<label for="code">Recovery code</label>')
    expect(out).toMatch(
      /id="code"[^>]*autocomplete="one-time-code"[^>]*autocapitalize="none"[^>]*spellcheck="false"/,
    )
    expect(out).toContain('<label for="identifier">Email</label>')
  })

  it('the dashboard shows the cooldown, the low-codes warning and pagination', () => {
    const active = {
      id: 'b1',
      status: 'active' as const,
      createdAt: 0,
      expiresAt: null,
      endedAt: null,
      issued: 10,
      unused: 2,
      used: 8,
      invalidated: 0,
      deleted: 0,
      viewed: true,
      downloaded: false,
      emailed: false,
      verified: false,
      lastUsedAt: null,
    }
    const out = dashboardPage(layout, {
      remaining: 2,
      lowCodes: true,
      lowCodesThreshold: 3,
      shouldRegenerate: true,
      active,
      generateRetryAfterMs: 95_000,
      reveal: null,
      history: { items: [active], page: 2, perPage: 1, total: 3, totalPages: 3 },
      fresh: false,
    })
    expect(out).toContain('You can generate a new batch in 1 minute 35 seconds.')
    expect(out).toMatch(/<button type="submit" id="generate" data-enable-in="95" [^>]* disabled>/)
    expect(out).toContain('id="low-codes"')
    expect(out).toContain('href="/?page=1"')
    expect(out).toContain('href="/?page=3"')
    expect(out).toContain('You will be asked for your password first.')
  })
})

describe('helpers', () => {
  it('formats durations', () => {
    expect(formatDuration(1)).toBe('1 second')
    expect(formatDuration(60_000)).toBe('1 minute')
    expect(formatDuration(3_725_000)).toBe('1 hour 2 minutes')
  })

  it('checks the origin', () => {
    const h = (m: Record<string, string>) => (n: string) => m[n]
    const own = 'http://localhost:3000'
    expect(isSameOriginRequest(h({}), own)).toBe(true)
    expect(isSameOriginRequest(h({ 'sec-fetch-site': 'same-origin', origin: own }), own)).toBe(true)
    expect(isSameOriginRequest(h({ 'sec-fetch-site': 'same-site' }), own)).toBe(false)
    expect(isSameOriginRequest(h({ 'sec-fetch-site': 'cross-site' }), own)).toBe(false)
    expect(isSameOriginRequest(h({ origin: 'http://evil' }), own)).toBe(false)
    expect(isSameOriginRequest(h({ origin: 'null' }), own)).toBe(false)
    expect(isSameOriginRequest(h({ origin: 'null', 'sec-fetch-site': 'same-origin' }), own)).toBe(true)
    expect(isSameOriginRequest(h({ origin: 'http://app' }), own, ['http://app'])).toBe(true)
  })

  it('sanitises file names', () => {
    expect(safeFilename('a"b\r\nc.txt')).toBe('a_b__c.txt')
    expect(safeFilename('..')).toBe('recovery-codes')
  })
})

describe('page controller', () => {
  const pepper = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64')
  function setup(clientAddress: string | null = '127.0.0.1', overrides: Partial<RecoveryCodesConfig> = {}) {
    const store = memoryStore()
    const rc = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: pepper }],
      store,
      // These tests are about the page mechanics; the confirm step has its own (lifecycle.test.ts).
      activation: 'immediate',
      ...overrides,
    })
    let data: Record<string, unknown> = {}
    let regenerated = 0
    const session: PageSession = {
      get: (k) => data[k],
      set: (k, v) => {
        if (v === undefined) delete data[k]
        else data[k] = v
      },
      regenerate: async () => {
        regenerated++
        data = {}
      },
      destroy: async () => {
        data = {}
      },
    }
    const pages = createPagesHandler<null>(rc, {
      session: () => session,
      getClientKey: () => clientAddress,
      signInWithPassword: async (e, p) => (e === 'a@b.c' && p === 'pw' ? 'u1' : null),
      verifyPassword: async (id, p) => id === 'u1' && p === 'pw',
    })
    const req = (method: string, path: string, form?: Record<string, string>): PageRequest => ({
      method,
      path,
      query: new URLSearchParams(),
      form: form ? new URLSearchParams(form) : null,
      header: () => undefined,
      origin: 'http://x',
    })
    return { rc, store, pages, req, data: () => data, regenerated: () => regenerated }
  }

  /** Signs in with the password and generates a batch; the next page is `/codes`. */
  async function signInAndGenerate({ pages, req, data }: ReturnType<typeof setup>) {
    await pages.handle(req('GET', '/signin'), null)
    await pages.handle(
      req('POST', '/signin', { _csrf: data().rc_csrf as string, email: 'a@b.c', password: 'pw' }),
      null,
    )
    await pages.handle(req('GET', '/'), null)
    return pages.handle(req('POST', '/generate', { _csrf: data().rc_csrf as string }), null)
  }

  const codesIn = (body: unknown) =>
    [...String(body).matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!)

  it('ignores unknown paths and answers 405 to the wrong method', async () => {
    const { pages, req } = setup()
    expect(await pages.handle(req('GET', '/elsewhere'), null)).toBeNull()
    expect((await pages.handle(req('GET', '/generate'), null))?.status).toBe(405)
    expect((await pages.handle(req('PUT', '/signin'), null))?.status).toBe(405)
  })

  it('signs in with a token, regenerating the session; codes never enter the session', async () => {
    const { pages, req, data, regenerated } = setup()
    await pages.handle(req('GET', '/signin'), null)
    const token = data().rc_csrf as string
    expect(
      (await pages.handle(req('POST', '/signin', { email: 'a@b.c', password: 'pw' }), null))?.status,
    ).toBe(403)
    const ok = await pages.handle(
      req('POST', '/signin', { _csrf: token, email: 'a@b.c', password: 'pw' }),
      null,
    )
    expect(ok?.headers.Location).toBe('/')
    expect(regenerated()).toBe(1)
    await pages.handle(req('GET', '/'), null)
    const t2 = data().rc_csrf as string
    const gen = await pages.handle(req('POST', '/generate', { _csrf: t2 }), null)
    expect(gen?.headers.Location).toBe('/codes')
    await pages.handle(req('GET', '/codes'), null)
    const codes = await pages.handle(req('POST', '/codes', { _csrf: data().rc_csrf as string }), null)
    const shown = codesIn(codes?.body)
    expect(shown).toHaveLength(10)
    const dump = JSON.stringify(data())
    for (const c of shown) expect(dump).not.toContain(c)
  })

  it('a GET of the codes page spends nothing; one POST shows the codes, once', async () => {
    const h = setup()
    const { pages, req, data, store } = h
    expect((await signInAndGenerate(h))?.headers.Location).toBe('/codes')
    // A reload, a prefetch or a link preview: the page offers the codes and shows none.
    for (let i = 0; i < 3; i++) {
      const ready = await pages.handle(req('GET', '/codes'), null)
      expect(ready?.status).toBe(200)
      expect(String(ready?.body)).toContain('id="show-codes"')
      expect(codesIn(ready?.body)).toHaveLength(0)
    }
    expect((await store.getActiveBatch('u1'))?.viewedAt).toBeNull()
    // Without the token the POST is refused and spends nothing either.
    expect((await pages.handle(req('POST', '/codes', { _csrf: 'forged' }), null))?.status).toBe(403)
    expect((await store.getActiveBatch('u1'))?.viewedAt).toBeNull()
    const shown = await pages.handle(req('POST', '/codes', { _csrf: data().rc_csrf as string }), null)
    expect(shown?.status).toBe(200)
    expect(shown?.headers['Cache-Control']).toContain('no-store')
    expect(codesIn(shown?.body)).toHaveLength(10)
    expect((await store.getActiveBatch('u1'))?.viewedAt).not.toBeNull()
    // Shown once: a second POST and any later GET say so and show nothing.
    for (const again of [
      await pages.handle(req('POST', '/codes', { _csrf: data().rc_csrf as string }), null),
      await pages.handle(req('GET', '/codes'), null),
    ]) {
      expect(again?.status).toBe(303)
      expect(again?.headers.Location).toBe('/')
      expect(codesIn(again?.body)).toHaveLength(0)
    }
    const dashboard = await pages.handle(req('GET', '/'), null)
    expect(String(dashboard?.body)).toContain('already been shown')
  })

  describe('saving without traps (issue 16): the view, each format and the email, once each, in any order', () => {
    const FAKE_PDF = new TextEncoder().encode('%PDF-1.4 ui test')
    function withEverything() {
      const mailer = createRecordingMailer()
      const h = setup('127.0.0.1', {
        mailer,
        email: { enabled: true, from: 'codes@example.test' },
        resolveEmail: async () => 'a@b.c',
        export: { pdf: () => FAKE_PDF },
      })
      return { ...h, mailer }
    }
    const csrf = (h: ReturnType<typeof setup>) => h.data().rc_csrf as string
    const body = (r: { body?: unknown } | null) =>
      typeof r?.body === 'string' ? r.body : new TextDecoder().decode(r?.body as Uint8Array)
    const download = async (h: ReturnType<typeof setup>, format: string) =>
      h.pages.handle(h.req('POST', '/download', { _csrf: csrf(h), format }), null)
    const dashboard = async (h: ReturnType<typeof setup>) =>
      body(await h.pages.handle(h.req('GET', '/'), null))
    const button = (page: string, id: string) =>
      page.match(new RegExp(`<button[^>]*id="${id}"[^>]*>([^<]*)<`))

    it('view, then .txt, then .pdf, then the email, then .csv: each works once; the pages offer what is left', async () => {
      const h = withEverything()
      await signInAndGenerate(h)
      await h.pages.handle(h.req('GET', '/codes'), null)
      const shown = await h.pages.handle(h.req('POST', '/codes', { _csrf: csrf(h) }), null)
      const codes = codesIn(shown?.body)
      expect(codes).toHaveLength(10)
      // The codes page offers every format and the email, none used yet.
      for (const id of ['download-txt', 'download-csv', 'download-pdf', 'email-codes'])
        expect(button(body(shown), id)?.[0], id).not.toContain('disabled')

      const txt = await download(h, 'txt')
      expect(txt?.status).toBe(200)
      expect(txt?.headers['Content-Disposition']).toMatch(/\.txt"$/)
      for (const c of codes) expect(body(txt)).toContain(c)
      // The same format again: refused, with the reason; the others stay available.
      const again = await download(h, 'txt')
      expect([again?.status, again?.headers.Location]).toEqual([303, '/'])
      let page = await dashboard(h)
      expect(page).toContain('already been downloaded as .txt')
      expect(button(page, 'download-txt')?.[0]).toContain('disabled')
      expect(button(page, 'download-txt')?.[1]).toBe('Downloaded .txt')
      expect(button(page, 'download-pdf')?.[0]).not.toContain('disabled')
      expect(page).toContain('Already done: shown, .txt downloaded.')
      expect(page).not.toContain('id="show-codes-link"')

      const pdf = await download(h, 'pdf')
      expect(pdf?.status).toBe(200)
      expect(body(pdf).slice(0, 5)).toBe('%PDF-')
      const email = await h.pages.handle(h.req('POST', '/email', { _csrf: csrf(h) }), null)
      expect(email?.status).toBe(303)
      expect(h.mailer.messages).toHaveLength(1)
      for (const c of codes) expect(h.mailer.messages[0]!.text).toContain(c)
      page = await dashboard(h)
      expect(button(page, 'email-codes')?.[0]).toContain('disabled')
      expect(button(page, 'download-csv')?.[0]).not.toContain('disabled')

      // The last channel: the slot is spent, the dashboard offers nothing, the codes are gone.
      expect((await download(h, 'csv'))?.status).toBe(200)
      expect(await dashboard(h)).not.toContain('Save your new codes')
      await h.pages.handle(h.req('POST', '/codes', { _csrf: csrf(h) }), null)
      expect(await dashboard(h)).toContain('no longer available')
    })

    it('a download before the view leaves the view open: the codes page then shows the codes', async () => {
      const h = withEverything()
      await signInAndGenerate(h)
      expect((await download(h, 'csv'))?.status).toBe(200)
      const page = await dashboard(h)
      expect(page).toContain('id="show-codes-link"')
      const ready = await h.pages.handle(h.req('GET', '/codes'), null)
      expect([ready?.status, body(ready)]).toEqual([200, expect.stringContaining('id="show-codes"')])
      const shown = await h.pages.handle(h.req('POST', '/codes', { _csrf: csrf(h) }), null)
      expect(codesIn(shown?.body)).toHaveLength(10)
      expect(button(body(shown), 'download-csv')?.[0]).toContain('disabled')
      expect(button(body(shown), 'download-txt')?.[0]).not.toContain('disabled')
    })
  })

  it('a request without a client address spends the shared "unknown" client counter, as the JSON API does', async () => {
    const clientHashes = async (address: string | null) => {
      const h = setup(address)
      await signInAndGenerate(h)
      const rows = await h.store.listAudit({ limit: 10, event: 'batch.generated' })
      expect(rows).toHaveLength(1)
      return rows[0]!.clientHash
    }
    // Counted against a client: the audit row carries a client hash, the same one for every
    // request without an address, and not the hash of a real address.
    const unknownA = await clientHashes(null)
    const unknownB = await clientHashes('')
    expect(unknownA).toMatch(/^[0-9a-f]{32}$/)
    expect(unknownB).toBe(unknownA)
    expect(await clientHashes('127.0.0.1')).not.toBe(unknownA)
  })
})
