/** `readRowsFile`: JSON and CSV exports, renamed columns, and errors that never quote the file. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readRowsFile } from '../src/index.ts'
import { expectImportInvalid } from './fixtures/read.ts'

const dir = mkdtempSync(join(tmpdir(), 'rc-rows-file-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const file = (name: string, text: string) => {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}
/** A value that must never appear in a message. */
const SECRET_LOOKING = 'Zm9vYmFyYmF6cXV4-sEcReT-VaLuE-0123456789abcdef'

describe('readRowsFile', () => {
  it('CSV with a header (quotes, commas, CRLF, empty cells, a BOM), every value text', async () => {
    const p = file('a.csv', '\uFEFFuserId,backupCodes,note\r\n1,abc,"x, ""y"""\r\n2,,\r\n\r\n')
    expect(await readRowsFile(p)).toEqual([
      { userId: '1', backupCodes: 'abc', note: 'x, "y"' },
      { userId: '2', backupCodes: '', note: '' },
    ])
  })

  it('JSON arrays of objects; the format from the option, the extension or the content', async () => {
    const rows = [{ userId: 5, recoveryCodes: null, on: true }]
    expect(await readRowsFile(file('b.json', JSON.stringify(rows)))).toEqual(rows)
    expect(await readRowsFile(file('b.txt', ` \n${JSON.stringify(rows)}`))).toEqual(rows)
    expect(await readRowsFile(file('c.txt', 'userId\n7\n'))).toEqual([{ userId: '7' }])
    expect(await readRowsFile(file('d.data', JSON.stringify(rows)), { format: 'json' })).toEqual(rows)
  })

  it('renames columns; keys such as __proto__ stay plain data', async () => {
    const rows = await readRowsFile(file('e.csv', 'id,two_factor_recovery_codes,__proto__\n1,v,x\n'), {
      columns: { id: 'userId', two_factor_recovery_codes: 'recoveryCodes' },
    })
    expect(rows).toEqual([{ userId: '1', recoveryCodes: 'v', ['__proto__']: 'x' }])
    expect(Object.getPrototypeOf(rows[0])).toBe(Object.prototype)
    expect(({} as Record<string, unknown>).x).toBeUndefined()
  })

  it.each([
    ['invalid JSON', 'f.json', `[{"userId": "${SECRET_LOOKING}"`, /is not valid JSON/],
    ['JSON that is not a list', 'g.json', `{"userId": "${SECRET_LOOKING}"}`, /is not a JSON array of rows/],
    [
      'a nested value',
      'h.json',
      `[{"userId": 1}, {"userId": {"v": "${SECRET_LOOKING}"}}]`,
      /row 2: is not an object of text/,
    ],
    [
      'a ragged CSV row',
      'i.csv',
      `userId,backupCodes\n1,${SECRET_LOOKING},extra\n`,
      /is not CSV \(CSV_RECORD_INCONSISTENT_FIELDS_LENGTH at line 2\)/,
    ],
    [
      'a bad CSV quote',
      'j.csv',
      `userId,backupCodes\n1,"${SECRET_LOOKING}"x\n`,
      /is not CSV \(CSV_[A-Z_]+ at line 2\)/,
    ],
    [
      'a repeated CSV column',
      'k.csv',
      `userId,userId\n1,${SECRET_LOOKING}\n`,
      /has no header row of distinct, non-empty column names/,
    ],
  ])('%s: IMPORT_INVALID naming the file, never quoting it', async (_, name, text, what) => {
    const p = file(name, text)
    const e = await readRowsFile(p).catch((err: unknown) => err)
    expectImportInvalid(e, new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), what, [SECRET_LOOKING])
  })

  it('a missing file, and unusable options', async () => {
    const e = await readRowsFile(join(dir, 'missing.csv')).catch((err: unknown) => err)
    expectImportInvalid(e, /missing\.csv: /, /cannot be read \(ENOENT\)/)
    await expect(readRowsFile('')).rejects.toMatchObject({ code: 'INVALID_INPUT' })
    await expect(readRowsFile(join(dir, 'a.csv'), { format: 'xml' as never })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    })
    await expect(readRowsFile(join(dir, 'a.csv'), { columns: { a: 1 } as never })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    })
  })
})
