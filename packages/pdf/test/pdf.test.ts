import { createHash } from 'node:crypto'
import type { ExportInput, ExportRenderer } from '@recovery-codes/core'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { pdfExport, renderPdf } from '../src/index.ts'

const INPUT: ExportInput = {
  codes: ['ABCDE-FGHJK-MNPQR-STVWX-YZ012', '34567-89ABC-DEFGH-JKMNP-QRSTV'],
  siteName: 'Example',
  fileName: 'recovery_codes',
  createdAtIso: '2025-01-02T03:04:05.000Z',
  expiresAtIso: null,
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
const text = (b: Uint8Array) => new TextDecoder('latin1').decode(b)

describe('renderPdf', () => {
  it('is a PDF whose bytes depend only on the input (no metadata dates)', async () => {
    const a = await renderPdf(INPUT)
    expect(text(a.slice(0, 5))).toBe('%PDF-')
    expect(text(a)).not.toMatch(/CreationDate|ModDate|Producer/)
    expect(sha256(await renderPdf(INPUT))).toBe(sha256(a))
    expect(sha256(await renderPdf({ ...INPUT, codes: ['OTHER-CODES'] }))).not.toBe(sha256(a))
  })

  // Regression guard for the move out of core: the bytes are the ones core's renderPdf produced.
  it('renders exactly what core rendered before the move', async () => {
    expect(sha256(await renderPdf(INPUT))).toBe(
      'cb2af37e6be938000ab090bc833a20749d17c33f68f029ca96c644e248da63be',
    )
    const unicode: ExportInput = {
      codes: Array.from({ length: 10 }, (_, i) => `CODE${i}-XXXXX`),
      siteName: 'Zoë’s Café ✓ 日本',
      fileName: 'x',
      createdAtIso: '2025-01-02T03:04:05.000Z',
      expiresAtIso: '2026-01-02T03:04:05.000Z',
    }
    expect(sha256(await renderPdf(unicode))).toBe(
      '0ca9ca16ea575a33f3a20f5619c8236adc7077181d326d10bcf7e310ca278c33',
    )
  })

  it('replaces characters outside WinAnsi instead of throwing', async () => {
    const out = await renderPdf({ ...INPUT, siteName: 'Σ ✓ 日本 \u0000' })
    expect(text(out.slice(0, 5))).toBe('%PDF-')
  })
})

describe('pdfExport', () => {
  it('is an ExportRenderer for export.pdf that renders like renderPdf', async () => {
    const render = pdfExport()
    expectTypeOf(render).toEqualTypeOf<ExportRenderer>()
    expect(sha256(await render(INPUT))).toBe(sha256(await renderPdf(INPUT)))
  })
})
