/**
 * Renders the one-time download of a batch: plain text, CSV (RFC 4180, formula-injection safe)
 * and PDF (pdf-lib, no metadata dates so output depends only on its input).
 */
import { PDFDocument, StandardFonts } from 'pdf-lib'
import type { ExportFile, ExportFormat } from './types.ts'

/** What an export shows besides the codes. */
export interface ExportInput {
  codes: readonly string[]
  siteName: string
  /** Base name without extension, already validated by config. */
  fileName: string
  /** ISO-8601 date of the batch, rendered as given. */
  createdAtIso: string
  expiresAtIso: string | null
}

const CONTENT_TYPES: Record<ExportFormat, string> = {
  txt: 'text/plain; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  pdf: 'application/pdf',
}

/** The supported formats, for validation. */
export const EXPORT_FORMATS: readonly ExportFormat[] = Object.freeze(['txt', 'csv', 'pdf'])

/** Renders `input` in `format`. */
export async function renderExport(format: ExportFormat, input: ExportInput): Promise<ExportFile> {
  const body =
    format === 'txt'
      ? new TextEncoder().encode(renderTxt(input))
      : format === 'csv'
        ? new TextEncoder().encode(renderCsv(input))
        : await renderPdf(input)
  return { filename: `${input.fileName}.${format}`, contentType: CONTENT_TYPES[format], body }
}

function header(input: ExportInput): string[] {
  return [
    `${input.siteName}: recovery codes`,
    `Generated: ${input.createdAtIso}`,
    `Expires: ${input.expiresAtIso ?? 'never'}`,
    'Each code works once. Keep them somewhere safe and private.',
  ]
}

/** Plain text, one code a line after a short header. */
export function renderTxt(input: ExportInput): string {
  return `${[...header(input), '', ...input.codes].join('\n')}\n`
}

/**
 * CSV per RFC 4180 (CRLF, quoted when needed). Cells that a spreadsheet would run as a formula
 * (leading `=`, `+`, `-`, `@`, tab, CR) are prefixed with `'` (OWASP CSV injection).
 */
export function renderCsv(input: ExportInput): string {
  const rows = [['#', 'code', 'site', 'generated', 'expires']]
  input.codes.forEach((code, i) => {
    rows.push([String(i + 1), code, input.siteName, input.createdAtIso, input.expiresAtIso ?? ''])
  })
  return `${rows.map((r) => r.map(csvCell).join(',')).join('\r\n')}\r\n`
}

/** One CSV cell, neutralised and quoted. */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe
}

/** A one-page PDF with the codes in a monospaced font. */
export async function renderPdf(input: ExportInput): Promise<Uint8Array> {
  const doc = await PDFDocument.create({ updateMetadata: false })
  const page = doc.addPage([595, 842])
  const sans = await doc.embedFont(StandardFonts.Helvetica)
  const mono = await doc.embedFont(StandardFonts.Courier)
  let y = 790
  for (const [i, line] of header(input).entries()) {
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
