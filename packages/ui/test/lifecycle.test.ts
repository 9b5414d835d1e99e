/**
 * The pages of the recovery lifecycle (issue 16, NIST SP 800-63B-4): "I have saved my codes"
 * (`activation: 'confirm'`), the replacement code after a recovery login (`replaceOnUse`) and the
 * "This wasn't me" page (GET read-only, POST revokes once), with bad input on every path.
 */
import { createRecoveryCodes, type RecoveryCodesConfig } from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import { createManualClock, createRecordingMailer, randomPepperSecret } from '@recovery-codes/testing'
import { describe, expect, it, vi } from 'vitest'
import { createPagesHandler, type PageRequest, type PageSession } from '../src/index.ts'

const CONTACT = 'Call the help desk on +1 555 0100.'

function setup(overrides: Partial<RecoveryCodesConfig> = {}) {
  const store = memoryStore()
  const clock = createManualClock()
  const mailer = createRecordingMailer()
  const onRepudiated = vi.fn(async (_userId: string) => {})
  const rc = createRecoveryCodes({
    peppers: [{ id: 'k1', secret: randomPepperSecret() }],
    store,
    clock,
    mailer,
    resolveEmail: async () => 'a@b.c',
    notifications: { contact: CONTACT, linkBaseUrl: 'https://app.example/wasnt-me', linkTtlSeconds: 3600 },
    onRepudiated,
    ...overrides,
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
    },
    { now: () => clock.now() },
  )
  const req = (method: string, path: string, form?: Record<string, string>, query = ''): PageRequest => ({
    method,
    path,
    query: new URLSearchParams(query),
    form: form ? new URLSearchParams(form) : null,
    header: () => undefined,
    origin: 'http://x',
  })
  const csrf = () => data.rc_csrf as string
  const get = async (path: string, query = '') =>
    (await pages.handle(req('GET', path, undefined, query), null))!
  const post = async (path: string, form: Record<string, string> = {}) =>
    (await pages.handle(req('POST', path, { _csrf: csrf(), ...form }), null))!
  async function signIn() {
    await get('/signin')
    return post('/signin', { email: 'a@b.c', password: 'pw' })
  }
  /** Generate and show; returns the codes (the page is the codes page). */
  async function generateAndShow() {
    await get('/')
    expect((await post('/generate')).headers.Location).toBe('/codes')
    await get('/codes')
    const shown = await post('/codes')
    return { page: String(shown.body), codes: codesIn(shown.body) }
  }
  /** The first factor passed, the recovery code next. */
  async function passwordStep() {
    await post('/logout')
    await get('/signin')
    expect((await post('/signin', { email: 'a@b.c', password: 'pw' })).headers.Location).toBe('/login')
    await get('/login')
  }
  return { rc, store, clock, mailer, pages, onRepudiated, get, post, signIn, generateAndShow, passwordStep }
}

const codesIn = (body: unknown) =>
  [...String(body).matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!)
const text = (r: { body: string | Uint8Array }) => String(r.body)

describe('"I have saved my codes"', () => {
  it('the codes page offers copy, print, each download, email and the confirm; the dashboard says not active yet', async () => {
    const h = setup({ email: { enabled: true, from: 'no-reply@x.test' } })
    await h.signIn()
    const { page, codes } = await h.generateAndShow()
    expect(codes).toHaveLength(10)
    for (const id of [
      'copy',
      'print',
      'download-txt',
      'download-csv',
      'email-codes',
      'confirm',
      'pending-note',
    ])
      expect(page, id).toContain(`id="${id}"`)
    expect(page).toContain('action="/confirm"')
    expect(page).toContain('I have saved my codes')
    expect(page).not.toContain('id="done"')
    // The sheet: site, account, date, batch id even before the batch is in the store.
    expect(page).toMatch(/id="sheet-date">\d{4}-\d\d-\d\d \d\d:\d\d UTC</)
    expect(page).toMatch(/id="sheet-batch">[^<]+</)
    expect(page).toContain('id="sheet-account">u1<')
    const dash = text(await h.get('/'))
    expect(dash).toContain('Your new codes are not active yet')
    expect(dash).toContain('id="confirm-dashboard"')
    expect(await h.store.getActiveBatch('u1')).toBeNull()

    const done = await h.post('/confirm')
    expect(done.headers.Location).toBe('/')
    const after = text(await h.get('/'))
    expect(after).toContain('Your recovery codes are active.')
    expect(after).not.toContain('not active yet')
    expect(await h.store.getActiveBatch('u1')).not.toBeNull()
  })

  it('regenerating: the old codes work until confirm, then stop; the success says so', async () => {
    const h = setup()
    await h.signIn()
    const first = await h.generateAndShow()
    await h.post('/confirm')
    h.clock.advance(86_400_000)
    await h.post('/reauth', { password: 'pw' })
    const second = await h.generateAndShow()
    const dash = text(await h.get('/'))
    expect(dash).toContain('Your current codes still work until you confirm')
    expect((await h.rc.verifySetup({ userId: 'u1', code: first.codes[0]! })).ok).toBe(true)
    await h.post('/confirm')
    expect(text(await h.get('/'))).toContain('Your previous codes no longer work.')
    expect((await h.rc.redeem({ userId: 'u1', code: first.codes[1]! })).ok).toBe(false)
    expect((await h.rc.redeem({ userId: 'u1', code: second.codes[0]! })).ok).toBe(true)
  })

  it('bad input: twice, expired, no reveal, no session, no CSRF token, GET', async () => {
    const h = setup()
    await h.signIn()
    await h.generateAndShow()
    await h.post('/confirm')
    await h.get('/')
    expect((await h.post('/confirm')).headers.Location).toBe('/')
    expect(text(await h.get('/'))).toContain('These codes are already active.')
    // Expired: the batch never activates and the page says so.
    h.clock.advance(86_400_000)
    await h.post('/reauth', { password: 'pw' })
    const before = (await h.store.getActiveBatch('u1'))!.id
    await h.generateAndShow()
    h.clock.advance(3 * 3600_000)
    await h.post('/confirm')
    expect(text(await h.get('/'))).toContain('expired before you confirmed them')
    expect((await h.store.getActiveBatch('u1'))!.id).toBe(before)
    // Nothing waiting any more.
    await h.post('/confirm')
    expect(text(await h.get('/'))).toContain('no new codes waiting')
    expect(
      (await h.pages.handle({ ...reqOf('POST', '/confirm'), form: new URLSearchParams() }, null))?.status,
    ).toBe(403)
    expect((await h.get('/confirm')).status).toBe(405)
    await h.post('/logout')
    await h.get('/signin')
    expect((await h.post('/confirm')).headers.Location).toBe('/signin')
  })
})

function reqOf(method: string, path: string): PageRequest {
  return {
    method,
    path,
    query: new URLSearchParams(),
    form: null,
    header: () => undefined,
    origin: 'http://x',
  }
}

describe('the replacement code (replaceOnUse)', () => {
  it('a recovery login leads to the replacement page: GET spends nothing, POST shows the one code once', async () => {
    const h = setup({ replaceOnUse: true })
    await h.signIn()
    const { codes } = await h.generateAndShow()
    await h.post('/confirm')
    await h.passwordStep()
    const login = await h.post('/login', { code: codes[0]! })
    expect(login.headers.Location).toBe('/replacement')
    for (let i = 0; i < 2; i++) {
      const ready = await h.get('/replacement')
      expect(ready.status).toBe(200)
      expect(text(ready)).toContain('id="show-replacement"')
      expect(codesIn(ready.body)).toHaveLength(0)
    }
    const dash = text(await h.get('/'))
    expect(dash).toContain('id="show-replacement-link"')
    expect(dash).not.toContain('id="download-txt"')
    const shown = await h.post('/replacement')
    const [code] = codesIn(shown.body)
    expect(codesIn(shown.body)).toHaveLength(1)
    expect(codes).not.toContain(code)
    for (const id of ['copy', 'print', 'sheet-account', 'sheet-date', 'sheet-batch', 'codes-spelled'])
      expect(text(shown), id).toContain(`id="${id}"`)
    // Once: neither a POST nor a GET shows it again.
    expect((await h.post('/replacement')).headers.Location).toBe('/')
    expect((await h.get('/replacement')).headers.Location).toBe('/')
    expect((await h.get('/codes')).headers.Location).toBe('/')
    expect((await h.rc.redeem({ userId: 'u1', code: code! })).ok).toBe(true)
  })

  it('without replaceOnUse the login goes to the dashboard and there is no replacement', async () => {
    const h = setup()
    await h.signIn()
    const { codes } = await h.generateAndShow()
    await h.post('/confirm')
    await h.passwordStep()
    expect((await h.post('/login', { code: codes[0]! })).headers.Location).toBe('/')
    expect((await h.get('/replacement')).headers.Location).toBe('/')
  })
})

describe('"This wasn\'t me"', () => {
  async function linkOf(h: ReturnType<typeof setup>): Promise<string> {
    await h.signIn()
    const { codes } = await h.generateAndShow()
    await h.post('/confirm')
    await h.passwordStep()
    await h.post('/login', { code: codes[0]! })
    const m = h.mailer.messages.map((x) => /[?&]token=([^\s&"]+)/.exec(x.text)).find(Boolean)
    expect(m).toBeTruthy()
    return decodeURIComponent(m![1]!)
  }

  it('GET explains and changes nothing; POST revokes once and shows the contact', async () => {
    const h = setup()
    const token = await linkOf(h)
    const batch = await h.store.getActiveBatch('u1')
    for (let i = 0; i < 3; i++) {
      const g = await h.get('/wasnt-me', `token=${encodeURIComponent(token)}`)
      expect(g.status).toBe(200)
      expect(text(g)).toContain('id="repudiate"')
      expect(text(g)).toContain('Nothing has changed yet')
      expect(text(g)).toContain(CONTACT)
    }
    expect(await h.store.getActiveBatch('u1')).toEqual(batch)
    expect(h.onRepudiated).not.toHaveBeenCalled()
    const done = await h.post('/wasnt-me', { token })
    expect(done.status).toBe(200)
    expect(text(done)).toContain('your recovery codes no longer work')
    expect(text(done)).toContain(CONTACT)
    expect(text(done)).toContain('role="status"')
    expect(await h.store.getActiveBatch('u1')).toBeNull()
    expect(h.onRepudiated).toHaveBeenCalledWith('u1')
    const again = await h.post('/wasnt-me', { token })
    expect(again.status).toBe(409)
    expect(text(again)).toContain('already been used')
    expect((await h.get('/wasnt-me', `token=${encodeURIComponent(token)}`)).status).toBe(409)
  })

  it('bad links: missing, repeated, garbled, tampered, expired; POST without CSRF token; not served without notifications', async () => {
    const h = setup()
    const token = await linkOf(h)
    const batch = await h.store.getActiveBatch('u1')
    expect((await h.get('/wasnt-me')).status).toBe(400)
    expect((await h.get('/wasnt-me', 'token=a&token=b')).status).toBe(400)
    const garbled = await h.get('/wasnt-me', 'token=%3Cscript%3E')
    expect(garbled.status).toBe(400)
    expect(text(garbled)).toContain('This link is not valid')
    expect(text(garbled)).not.toContain('<script>')
    expect(text(garbled)).toContain('role="alert"')
    const tampered = `${token.slice(0, -2)}${token.endsWith('00') ? '11' : '00'}`
    expect((await h.post('/wasnt-me', { token: tampered })).status).toBe(400)
    expect((await h.post('/wasnt-me', {})).status).toBe(400)
    expect((await h.post('/wasnt-me', { token: 'x'.repeat(5000) })).status).toBe(400)
    const forged = await h.pages.handle(
      { ...reqOf('POST', '/wasnt-me'), form: new URLSearchParams({ token, _csrf: 'forged' }) },
      null,
    )
    expect(forged?.status).toBe(403)
    const cross = await h.pages.handle(
      {
        ...reqOf('POST', '/wasnt-me'),
        form: new URLSearchParams({ token }),
        header: (n) => (n === 'sec-fetch-site' ? 'cross-site' : undefined),
      },
      null,
    )
    expect(cross?.status).toBe(403)
    expect(await h.store.getActiveBatch('u1')).toEqual(batch)
    h.clock.advance(3601_000)
    const expired = await h.get('/wasnt-me', `token=${encodeURIComponent(token)}`)
    expect(expired.status).toBe(410)
    expect(text(expired)).toContain('This link has expired')
    expect((await h.post('/wasnt-me', { token })).status).toBe(410)
    expect(await h.store.getActiveBatch('u1')).toEqual(batch)
    expect(h.onRepudiated).not.toHaveBeenCalled()

    const off = createPagesHandler<null>(
      createRecoveryCodes({ peppers: [{ id: 'k1', secret: randomPepperSecret() }], store: memoryStore() }),
      {
        session: () => ({
          get: () => undefined,
          set: () => {},
          regenerate: async () => {},
          destroy: async () => {},
        }),
        getClientKey: () => 'x',
      },
    )
    expect(await off.handle(reqOf('GET', '/wasnt-me'), null)).toBeNull()
  })
})
