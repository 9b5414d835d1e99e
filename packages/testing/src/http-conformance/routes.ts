/**
 * HTTP adapter conformance, success paths: every route's answer (statuses, bodies, attachments,
 * security headers), once-only views, downloads (each format) and emails, and 404 for another user's rows.
 */
import { expect, it } from 'vitest'
import { errorCode, type HarnessSetup, wrongCode } from './harness.ts'

/** Registers the success-path tests inside the running `describe` block. */
export function routeTests(setup: HarnessSetup): void {
  it('generate (201), view once, confirm, status, history', async () => {
    const h = await setup()
    const alice = h.login('alice')
    const g = await h.post('/generate', { count: 6 }, { cookie: alice })
    expect(g.status).toBe(201)
    const gb = (await g.json()) as Record<string, unknown>
    expect(Object.keys(gb).sort()).toEqual([
      'batchId',
      'count',
      'createdAt',
      'expiresAt',
      'pending',
      'revealExpiresAt',
    ])
    expect(gb.count).toBe(6)
    expect(gb.pending).toBe(true)
    expect(JSON.stringify(gb)).not.toMatch(/codes/)

    const v = await h.post('/codes/view', {}, { cookie: alice })
    expect(v.status).toBe(200)
    const vb = (await v.json()) as { batchId: string; codes: string[] }
    expect(vb.batchId).toBe(gb.batchId)
    expect(vb.codes).toHaveLength(6)
    const again = await h.post('/codes/view', {}, { cookie: alice })
    expect(again.status).toBe(409)
    expect(await errorCode(again)).toBe('ALREADY_DONE')

    // Pending until confirmed: no active batch yet.
    const before = (await (await h.get('/status', alice)).json()) as { active: unknown; remaining: number }
    expect([before.active, before.remaining]).toEqual([null, 0])
    const c = await h.post('/confirm', {}, { cookie: alice })
    expect(c.status).toBe(200)
    expect(await c.json()).toEqual({ batchId: gb.batchId, supersededBatchId: null })

    const s = await h.get('/status', alice)
    expect(s.status).toBe(200)
    const sb = (await s.json()) as { remaining: number; active: { id: string; viewed: boolean } }
    expect(sb.remaining).toBe(6)
    expect(sb.active.id).toBe(gb.batchId)
    expect(sb.active.viewed).toBe(true)

    const hist = await h.get('/history?page=1', alice)
    expect(hist.status).toBe(200)
    const hb = (await hist.json()) as { items: unknown[]; page: number }
    expect(hb.page).toBe(1)
    expect(hb.items).toHaveLength(1)
    expect((await h.get('/history', alice)).status).toBe(200)
  })

  it('every response carries no-store, nosniff and no-referrer', async () => {
    const h = await setup()
    const alice = h.login('alice')
    const responses = [
      await h.post('/generate', {}, { cookie: alice }),
      await h.post('/codes/view', {}, { cookie: alice }),
      await h.get('/status', alice),
      await h.get('/status'),
      await h.get('/nope'),
      await h.get('/openapi.json'),
      await h.post('/download', { format: 'csv' }, { cookie: alice }),
    ]
    for (const res of responses) {
      expect(res.headers.get('cache-control')).toBe('no-store')
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      expect(res.headers.get('referrer-policy')).toBe('no-referrer')
    }
  })

  it('each format downloads once, as an attachment with a generated filename; a repeat is 409', async () => {
    const h = await setup()
    const alice = h.login('alice')
    const codes = await h.batch(alice)
    const d = await h.post('/download', { format: 'txt' }, { cookie: alice })
    expect(d.status).toBe(200)
    expect(d.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(d.headers.get('content-disposition')).toMatch(/^attachment; filename="[A-Za-z0-9._-]+\.txt"$/)
    const text = await d.text()
    for (const c of codes) expect(text).toContain(c)
    const again = await h.post('/download', { format: 'txt' }, { cookie: alice })
    expect(again.status).toBe(409)
    expect(await errorCode(again)).toBe('ALREADY_DONE')
    // Another format is another channel of the same slot.
    const pdf = await h.post('/download', { format: 'pdf' }, { cookie: alice })
    expect(pdf.status).toBe(200)
    expect(pdf.headers.get('content-type')).toBe('application/pdf')
  })

  it('download as pdf and csv', async () => {
    const h = await setup()
    for (const format of ['pdf', 'csv'] as const) {
      const cookie = h.login(`u-${format}`)
      await h.batch(cookie)
      const d = await h.post('/download', { format }, { cookie })
      expect(d.status).toBe(200)
      expect(d.headers.get('content-disposition')).toMatch(
        new RegExp(`^attachment; filename="[A-Za-z0-9._-]+\\.${format}"$`),
      )
      const bytes = new Uint8Array(await d.arrayBuffer())
      if (format === 'pdf') expect(new TextDecoder().decode(bytes.slice(0, 5))).toBe('%PDF-')
    }
  })

  it('pdf without a renderer: 501 FEATURE_DISABLED, and the download stays available', async () => {
    const h = await setup({ export: { pdf: null } })
    expect(h.rc.exportFormats).toEqual(['txt', 'csv'])
    const alice = h.login('alice')
    const codes = await h.batch(alice)
    const refused = await h.post('/download', { format: 'pdf' }, { cookie: alice })
    expect(refused.status).toBe(501)
    expect(await errorCode(refused)).toBe('FEATURE_DISABLED')
    const d = await h.post('/download', { format: 'txt' }, { cookie: alice })
    expect(d.status).toBe(200)
    const text = await d.text()
    for (const c of codes) expect(text).toContain(c)
  })

  it('email once to the stored address; 501 when email is off', async () => {
    const h = await setup()
    const alice = h.login('alice')
    const codes = await h.batch(alice)
    const e = await h.post('/email', {}, { cookie: alice })
    expect(e.status).toBe(200)
    const eb = (await e.json()) as { sent: boolean; sentTo: string }
    expect(eb.sent).toBe(true)
    expect(eb.sentTo).not.toBe('alice@example.test')
    expect(h.mailer.messages).toHaveLength(1)
    expect(h.mailer.messages[0]!.to).toBe('alice@example.test')
    expect(h.mailer.messages[0]!.text).toContain(codes[0])
    const again = await h.post('/email', {}, { cookie: alice })
    expect(again.status).toBe(409)
    expect(await errorCode(again)).toBe('ALREADY_DONE')

    const off = await setup({ email: { enabled: false } })
    const bob = off.login('bob')
    await off.batch(bob)
    const r = await off.post('/email', {}, { cookie: bob })
    expect(r.status).toBe(501)
    expect(await errorCode(r)).toBe('FEATURE_DISABLED')
  })

  it('view, download and email without a reveal slot: 410', async () => {
    const h = await setup()
    const alice = h.login('alice')
    await h.batch(alice)
    const other = h.login('alice') // a second session of the same user holds no reveal token
    for (const [path, body] of [
      ['/codes/view', {}],
      ['/download', {}],
      ['/email', {}],
    ] as const) {
      const r = await h.post(path, body, { cookie: other })
      expect(r.status).toBe(410)
      expect(await errorCode(r)).toBe('REVEAL_UNAVAILABLE')
    }
  })

  it('verify-setup: wrong code 401, right code 200 once, then 409', async () => {
    const h = await setup()
    const alice = h.login('alice')
    const codes = await h.batch(alice)
    const wrong = await h.post('/verify-setup', { code: wrongCode(codes[0]!) }, { cookie: alice })
    expect(wrong.status).toBe(401)
    expect(await errorCode(wrong)).toBe('INVALID_CODE')
    const ok = await h.post('/verify-setup', { code: codes[0] }, { cookie: alice })
    expect(ok.status).toBe(200)
    expect(await ok.json()).toMatchObject({ verified: true })
    const again = await h.post('/verify-setup', { code: codes[1] }, { cookie: alice })
    expect(again.status).toBe(409)
    expect(await errorCode(again)).toBe('ALREADY_DONE')
  })

  it('invalidate and delete a code (200), then it no longer redeems; unknown code 404', async () => {
    const h = await setup()
    const alice = h.login('alice')
    const codes = await h.batch(alice)
    const inv = await h.post('/codes/invalidate', { code: codes[0] }, { cookie: alice })
    expect(inv.status).toBe(200)
    const del = await h.post('/codes/delete', { code: codes[1] }, { cookie: alice })
    expect(del.status).toBe(200)
    for (const code of [codes[0], codes[1]]) {
      const r = await h.post('/redeem', { code }, { cookie: h.pending('alice') })
      expect(r.status).toBe(401)
      expect(await errorCode(r)).toBe('INVALID_CODE')
    }
    const gone = await h.post('/codes/invalidate', { code: codes[0] }, { cookie: alice })
    expect(gone.status).toBe(404)
    expect(await errorCode(gone)).toBe('NOT_FOUND')
    const s = (await (await h.get('/status', alice)).json()) as { remaining: number }
    expect(s.remaining).toBe(codes.length - 2)
  })

  it('delete the batch (200), then 404; status shows no active batch', async () => {
    const h = await setup()
    const alice = h.login('alice')
    await h.batch(alice)
    const d = await h.post('/batch/delete', {}, { cookie: alice })
    expect(d.status).toBe(200)
    expect(((await (await h.get('/status', alice)).json()) as { active: unknown }).active).toBeNull()
    const again = await h.post('/batch/delete', {}, { cookie: alice })
    expect(again.status).toBe(404)
    expect(await errorCode(again)).toBe('NOT_FOUND')
  })

  it("another user's code or batch is 404, never touched", async () => {
    const h = await setup()
    const alice = h.login('alice')
    const bob = h.login('bob')
    const aliceCodes = await h.batch(alice)
    for (const path of ['/codes/invalidate', '/codes/delete']) {
      const r = await h.post(path, { code: aliceCodes[0] }, { cookie: bob })
      expect(r.status).toBe(404)
      expect(await errorCode(r)).toBe('NOT_FOUND')
    }
    const b = await h.post('/batch/delete', {}, { cookie: bob })
    expect(b.status).toBe(404)
    expect(((await (await h.get('/status', alice)).json()) as { remaining: number }).remaining).toBe(
      aliceCodes.length,
    )
  })
}
