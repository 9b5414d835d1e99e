import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const SCRIPT = fileURLToPath(new URL('./check-sql-safety.mjs', import.meta.url))
const dirs: string[] = []

function repoWith(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'sql-safety-'))
  dirs.push(root)
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  return root
}

const run = (root?: string) =>
  spawnSync(process.execPath, [SCRIPT, ...(root ? [root] : [])], { encoding: 'utf8' })

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('scripts/check-sql-safety.mjs', () => {
  it('passes on this repository', () => {
    expect(execFileSync(process.execPath, [SCRIPT], { encoding: 'utf8' })).toContain('ok')
  })

  it('fails with file:line on sql.raw(userInput)', () => {
    const root = repoWith({
      'packages/x/src/bad.ts':
        "import { sql } from 'kysely'\n\nexport const q = (userInput: string) => sql.raw(userInput)\n",
    })
    const r = run(root)
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(`${join('packages', 'x', 'src', 'bad.ts')}:3`)
  })

  it.each([
    ['sql.lit(', 'export const a = (v: string) => sql.lit(v)'],
    ['sql.ref(', 'export const a = (col: string) => sql.ref(col)'],
    ['sql.id(', 'export const a = (t: string) => sql.id(t)'],
    ['sql.table(', 'export const a = (t: string) => sql.table(t)'],
    ['sql.join(', 'export const a = (xs: string[]) => sql.join(xs)'],
    ['concatenation', 'export const a = (id: string) => "SELECT * FROM users WHERE id = " + id'],
    ['untagged template', 'export const a = (id: string) => `DELETE FROM rc_codes WHERE id = ${id}`'],
  ])('fails on %s', (_name, line) => {
    const r = run(repoWith({ 'packages/x/src/a.ts': `${line}\n` }))
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(':1:')
  })

  it('allows bound templates, literal joins, comments and tests', () => {
    const r = run(
      repoWith({
        'packages/x/src/ok.ts': [
          '// sql.raw(x) in a comment is fine',
          '/** `DELETE FROM t WHERE id = ${id}` in docs */',
          'export const a = (id: string) => sql`select * from t where id = ${id}`',
          'export const b = (ids: string[]) => sql.join([sql`a`, sql`b`])',
          "export const c = (e: string) => 'update failed: ' + e",
        ].join('\n'),
        'packages/x/test/t.test.ts': 'sql.raw(userInput)\n',
        'packages/x/src/t.test.ts': 'sql.raw(userInput)\n',
      }),
    )
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
  })
})
