/**
 * Renders the downloads of a batch, each offered format once per reveal slot. Plain text and CSV
 * (RFC 4180, formula-injection safe) are built in; PDF is a renderer the host configures
 * (`export.pdf`, e.g. `pdfExport()` from `@recovery-codes/pdf`), so an app that never offers PDF
 * never installs a PDF library.
 */
import { RecoveryCodesError } from '../errors.ts'
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

/**
 * Renders one export format that core does not build in (today: `pdf`) to the file's bytes.
 * Filename and content type are core's; the renderer only returns the body. It receives the
 * plaintext codes: it must not log, cache or persist them.
 *
 * @example
 * ```ts
 * import { pdfExport } from '@recovery-codes/pdf'
 * createRecoveryCodes({ peppers, store, export: { pdf: pdfExport() } })
 * ```
 */
export type ExportRenderer = (input: ExportInput) => Uint8Array | Promise<Uint8Array>

/** Renderers for the formats that are not built in; absent or `null` = format not offered. */
export interface ExportRenderers {
  pdf?: ExportRenderer | null
}

const CONTENT_TYPES: Record<ExportFormat, string> = {
  txt: 'text/plain; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  pdf: 'application/pdf',
}

/** Every format the API knows, for validating a request. `pdf` also needs a renderer. */
export const EXPORT_FORMATS: readonly ExportFormat[] = Object.freeze(['txt', 'csv', 'pdf'])

/** The formats core renders itself, with no renderer configured. */
export const BUILT_IN_EXPORT_FORMATS: readonly ExportFormat[] = Object.freeze(['txt', 'csv'])

/** The package that provides the PDF renderer, named in errors and config issues. */
export const PDF_RENDERER_PACKAGE = '@recovery-codes/pdf'

/** The formats available with `renderers`: the built-in ones, plus each format that has a renderer. */
export function availableExportFormats(renderers: ExportRenderers = {}): readonly ExportFormat[] {
  return Object.freeze(renderers.pdf ? [...BUILT_IN_EXPORT_FORMATS, 'pdf'] : [...BUILT_IN_EXPORT_FORMATS])
}

/** The error for a format that needs a renderer nobody configured. */
export function pdfRendererMissing(): RecoveryCodesError {
  return new RecoveryCodesError(
    'FEATURE_DISABLED',
    `PDF export is not configured: install ${PDF_RENDERER_PACKAGE} and pass \`export: { pdf: pdfExport() }\`.`,
  )
}

/**
 * Renders `input` in `format`. `txt` and `csv` are built in; `pdf` uses `renderers.pdf`.
 *
 * @throws RecoveryCodesError `FEATURE_DISABLED` for `pdf` without a renderer; `INTERNAL` when the
 * renderer returns something other than bytes.
 */
export async function renderExport(
  format: ExportFormat,
  input: ExportInput,
  renderers: ExportRenderers = {},
): Promise<ExportFile> {
  let body: Uint8Array
  if (format === 'txt') body = new TextEncoder().encode(renderTxt(input))
  else if (format === 'csv') body = new TextEncoder().encode(renderCsv(input))
  else {
    const render = renderers.pdf
    if (!render) throw pdfRendererMissing()
    const out: unknown = await render(input)
    if (!(out instanceof Uint8Array)) {
      throw new RecoveryCodesError('INTERNAL', 'The configured export.pdf renderer did not return bytes.')
    }
    body = out
  }
  return { filename: `${input.fileName}.${format}`, contentType: CONTENT_TYPES[format], body }
}

/** The header lines every format shows above the codes (site, dates, a short warning). */
export function exportHeader(input: ExportInput): string[] {
  return [
    `${input.siteName}: recovery codes`,
    `Generated: ${input.createdAtIso}`,
    `Expires: ${input.expiresAtIso ?? 'never'}`,
    'Each code works once. Keep them somewhere safe and private.',
  ]
}

/** Plain text, one code a line after a short header. */
export function renderTxt(input: ExportInput): string {
  return `${[...exportHeader(input), '', ...input.codes].join('\n')}\n`
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
