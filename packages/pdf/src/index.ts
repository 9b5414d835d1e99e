/**
 * `@recovery-codes/pdf`: the PDF renderer of the one-time download, kept out of core so an app
 * that never offers PDF never installs pdf-lib. Plug it in with `export: { pdf: pdfExport() }`.
 */
import { type ExportInput, type ExportRenderer, exportHeader } from '@recovery-codes/core'
import { PDFDocument, StandardFonts } from 'pdf-lib'

/**
 * The PDF renderer for `createRecoveryCodes({ export: { pdf } })`: a one-page A4 document with the
 * header and the numbered codes in a monospaced font. No metadata dates, so the bytes depend only
 * on the input.
 *
 * @example
 * ```ts
 * import { createRecoveryCodes } from '@recovery-codes/core'
 * import { pdfExport } from '@recovery-codes/pdf'
 *
 * const rc = createRecoveryCodes({ peppers, store, export: { pdf: pdfExport() } })
 * rc.exportFormats // ['txt', 'csv', 'pdf']
 * ```
 */
export function pdfExport(): ExportRenderer {
  return renderPdf
}

/** Renders `input` as the PDF of {@link pdfExport}; for use outside the service. */
export async function renderPdf(input: ExportInput): Promise<Uint8Array> {
  const doc = await PDFDocument.create({ updateMetadata: false })
  const page = doc.addPage([595, 842])
  const sans = await doc.embedFont(StandardFonts.Helvetica)
  const mono = await doc.embedFont(StandardFonts.Courier)
  let y = 790
  for (const [i, line] of exportHeader(input).entries()) {
    page.drawText(winAnsi(line), { x: 50, y, size: i === 0 ? 16 : 10, font: sans })
    y -= i === 0 ? 28 : 16
  }
  y -= 12
  input.codes.forEach((code, i) => {
    page.drawText(`${String(i + 1).padStart(2, ' ')}. ${code}`, { x: 60, y, size: 13, font: mono })
    y -= 22
  })
  return doc.save({ useObjectStreams: false })
}

// The standard fonts only encode WinAnsi; replace anything else rather than throw.
function winAnsi(s: string): string {
  return s.replace(/[^\x20-\x7E\u00A0-\u00FF]/g, '?')
}
