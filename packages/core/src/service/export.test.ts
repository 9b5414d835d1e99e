import { describe, expect, it, vi } from 'vitest'
import { isRecoveryCodesError } from '../errors.ts'
import {
  availableExportFormats,
  BUILT_IN_EXPORT_FORMATS,
  csvCell,
  EXPORT_FORMATS,
  type ExportInput,
  exportHeader,
  renderCsv,
  renderExport,
  renderTxt,
} from './export.ts'

const INPUT: ExportInput = {
  codes: ['AAAAA-BBBBB', 'CCCCC-DDDDD'],
  siteName: 'Example',
  fileName: 'recovery_codes',
  createdAtIso: '2025-01-02T03:04:05.000Z',
  expiresAtIso: null,
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: unknown) => e,
  )
}

describe('built-in formats', () => {
  it('txt: header, blank line, one code a line', () => {
    expect(renderTxt(INPUT)).toBe(`${[...exportHeader(INPUT), '', ...INPUT.codes].join('\n')}\n`)
    expect(exportHeader(INPUT)).toEqual([
      'Example: recovery codes',
      'Generated: 2025-01-02T03:04:05.000Z',
      'Expires: never',
      'Each code works once. Keep them somewhere safe and private.',
    ])
  })

  it('csv: CRLF rows, formula cells neutralised', () => {
    expect(renderCsv({ ...INPUT, siteName: '=HYPERLINK("x")' }).split('\r\n')).toEqual([
      '#,code,site,generated,expires',
      `1,AAAAA-BBBBB,"'=HYPERLINK(""x"")",2025-01-02T03:04:05.000Z,`,
      `2,CCCCC-DDDDD,"'=HYPERLINK(""x"")",2025-01-02T03:04:05.000Z,`,
      '',
    ])
    expect(csvCell('-1')).toBe("'-1")
  })

  it('txt and csv need no renderer', async () => {
    for (const format of BUILT_IN_EXPORT_FORMATS) {
      const file = await renderExport(format, INPUT)
      expect(file.filename).toBe(`recovery_codes.${format}`)
      expect(file.contentType).toMatch(format === 'txt' ? /^text\/plain/ : /^text\/csv/)
    }
  })
})

describe('pdf: a configured renderer', () => {
  it('without a renderer: FEATURE_DISABLED naming the package to install', async () => {
    for (const renderers of [undefined, {}, { pdf: null }]) {
      const e = await rejection(renderExport('pdf', INPUT, renderers))
      expect(isRecoveryCodesError(e, 'FEATURE_DISABLED')).toBe(true)
      expect((e as Error).message).toContain('@recovery-codes/pdf')
    }
  })

  it("uses the renderer's bytes with core's filename and content type", async () => {
    const bytes = new Uint8Array([0x25, 0x50, 0x44, 0x46])
    const pdf = vi.fn(async () => bytes)
    const file = await renderExport('pdf', INPUT, { pdf })
    expect(pdf).toHaveBeenCalledWith(INPUT)
    expect(file).toEqual({ filename: 'recovery_codes.pdf', contentType: 'application/pdf', body: bytes })
    // A synchronous renderer is fine too.
    expect((await renderExport('pdf', INPUT, { pdf: () => bytes })).body).toBe(bytes)
  })

  it('a renderer that returns no bytes is an INTERNAL error', async () => {
    const pdf = (async () => 'not bytes') as unknown as () => Promise<Uint8Array>
    expect(isRecoveryCodesError(await rejection(renderExport('pdf', INPUT, { pdf })), 'INTERNAL')).toBe(true)
  })

  it('available formats: built-ins, plus pdf only with a renderer', () => {
    expect(availableExportFormats()).toEqual(['txt', 'csv'])
    expect(availableExportFormats({ pdf: null })).toEqual(['txt', 'csv'])
    const withPdf = availableExportFormats({ pdf: () => new Uint8Array() })
    expect(withPdf).toEqual(['txt', 'csv', 'pdf'])
    expect(Object.isFrozen(withPdf)).toBe(true)
    expect(EXPORT_FORMATS).toEqual(['txt', 'csv', 'pdf'])
  })
})
