import { createRecoveryCodes, isRecoveryCodesError, type RecoveryCodesConfig } from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'
import { describe, expect, it, vi } from 'vitest'
import { pdfExport } from '../src/index.ts'

const PEPPER = Buffer.from(
  Uint8Array.from({ length: 32 }, (_, i) => (i * i * 73 + i * 11 + 5) % 251),
).toString('base64')

function make(extra: Partial<RecoveryCodesConfig> = {}) {
  return createRecoveryCodes({ peppers: [{ id: 'k1', secret: PEPPER }], store: memoryStore(), ...extra })
}

async function batch(rc: ReturnType<typeof make>, userId = 'u1') {
  const r = await rc.generate({ userId, count: 3 })
  if (!r.ok) throw new Error('unexpected cooldown')
  await rc.confirm({ userId, reveal: r.reveal })
  return r
}

const text = (b: Uint8Array) => new TextDecoder('latin1').decode(b)

describe('createRecoveryCodes with export.pdf', () => {
  it('offers pdf and downloads it once', async () => {
    const rc = make({ export: { pdf: pdfExport() } })
    expect(rc.exportFormats).toEqual(['txt', 'csv', 'pdf'])
    const b = await batch(rc)
    const file = await rc.exportCodes({ userId: 'u1', reveal: b.reveal, format: 'pdf' })
    expect(file.filename).toBe('recovery_codes.pdf')
    expect(file.contentType).toBe('application/pdf')
    expect(text(file.body.slice(0, 5))).toBe('%PDF-')
    const again = await rc.exportCodes({ userId: 'u1', reveal: b.reveal, format: 'pdf' }).catch((e) => e)
    // Each format is a channel of its own: pdf is used, the view, txt and csv are still open.
    expect(isRecoveryCodesError(again, 'ALREADY_DONE')).toBe(true)
    expect((await rc.exportCodes({ userId: 'u1', reveal: b.reveal, format: 'txt' })).filename).toBe(
      'recovery_codes.txt',
    )
  })

  it('a repeat while the slot lives is ALREADY_DONE without rendering again', async () => {
    const pdf = vi.fn(pdfExport())
    const rc = make({
      export: { pdf },
      email: { enabled: true, from: 'codes@example.test' },
      mailer: { send: async () => {} },
      resolveEmail: async () => 'owner@example.test',
    })
    const b = await batch(rc)
    await rc.exportCodes({ userId: 'u1', reveal: b.reveal, format: 'pdf' })
    const again = await rc.exportCodes({ userId: 'u1', reveal: b.reveal, format: 'pdf' }).catch((e) => e)
    expect(isRecoveryCodesError(again, 'ALREADY_DONE')).toBe(true)
    expect(pdf).toHaveBeenCalledTimes(1)
  })

  it("export.defaultFormat 'pdf' is used when the request names no format", async () => {
    const rc = make({ export: { defaultFormat: 'pdf', pdf: pdfExport() } })
    const b = await batch(rc)
    expect((await rc.exportCodes({ userId: 'u1', reveal: b.reveal })).contentType).toBe('application/pdf')
  })

  it('a renderer failure leaves the pdf download available', async () => {
    const render = pdfExport()
    const pdf = vi.fn(render).mockRejectedValueOnce(new Error('renderer down'))
    const rc = make({ export: { pdf } })
    const b = await batch(rc)
    await expect(rc.exportCodes({ userId: 'u1', reveal: b.reveal, format: 'pdf' })).rejects.toThrow(
      'renderer down',
    )
    const file = await rc.exportCodes({ userId: 'u1', reveal: b.reveal, format: 'pdf' })
    expect(text(file.body.slice(0, 5))).toBe('%PDF-')
    expect(pdf).toHaveBeenCalledTimes(2)
    expect(pdf.mock.calls[1]![0].codes).toEqual(b.codes)
  })
})

describe('createRecoveryCodes without export.pdf', () => {
  it('refuses pdf with FEATURE_DISABLED and keeps the download for another format', async () => {
    const rc = make()
    expect(rc.exportFormats).toEqual(['txt', 'csv'])
    const b = await batch(rc)
    const refused = await rc.exportCodes({ userId: 'u1', reveal: b.reveal, format: 'pdf' }).catch((e) => e)
    expect(isRecoveryCodesError(refused, 'FEATURE_DISABLED')).toBe(true)
    expect(refused.message).toContain('@recovery-codes/pdf')
    const status = await rc.status({ userId: 'u1' })
    expect(status.active?.downloaded).toBe(false)
    const file = await rc.exportCodes({ userId: 'u1', reveal: b.reveal, format: 'txt' })
    for (const code of b.codes) expect(new TextDecoder().decode(file.body)).toContain(code)
  })

  it("export.defaultFormat 'pdf' is a config error", () => {
    expect(() => make({ export: { defaultFormat: 'pdf' } })).toThrow(/export\.defaultFormat/)
  })
})
