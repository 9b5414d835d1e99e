import { spawnSync } from 'node:child_process'
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const SCRIPT = join(ROOT, 'scripts/check-core-purity.mjs')
const CORE_SRC = join(ROOT, 'packages/core/src')

const temps: string[] = []
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function check(dir?: string) {
  const result = spawnSync(process.execPath, dir === undefined ? [SCRIPT] : [SCRIPT, dir], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  return { code: result.status, output: `${result.stdout}${result.stderr}` }
}

/** A copy of the real core sources in a temp dir. */
function copyOfCore(): string {
  const dir = mkdtempSync(join(tmpdir(), 'core-purity-'))
  temps.push(dir)
  cpSync(CORE_SRC, dir, { recursive: true, filter: (src) => !src.includes('node_modules') })
  return dir
}

describe('check-core-purity', () => {
  it('passes on the real core (default directory) with one OK line', () => {
    const { code, output } = check()
    expect(output).toMatch(/OK/)
    expect(code).toBe(0)
  })

  it('fails on a copy with Date.now() appended to a domain file, naming file and line', () => {
    const dir = copyOfCore()
    expect(check(dir).code).toBe(0)
    appendFileSync(join(dir, 'domain/cooldown.ts'), '\nexport const t = Date.now()\n')
    const { code, output } = check(dir)
    expect(code).toBe(1)
    expect(output).toMatch(/domain\/cooldown\.ts:\d+: Date\.now/)
  })

  it('flags each forbidden call and builtin import, ignores comments, runtime.ts and tests', () => {
    const dir = mkdtempSync(join(tmpdir(), 'core-purity-'))
    temps.push(dir)
    const offending = [
      'const a = new Date()',
      'const b = Math.random()',
      'globalThis.crypto.getRandomValues(buf)',
      "import { randomBytes } from 'node:crypto'",
      "import { readFileSync } from 'fs'",
      'setTimeout(f, 1)',
      'setInterval(f, 1)',
      'const p = performance.now()',
      'const u = crypto.randomUUID()',
      "const m = await import('node:path')",
    ]
    writeFileSync(join(dir, 'bad.ts'), `${offending.join('\n')}\n`)
    writeFileSync(
      join(dir, 'clean.ts'),
      [
        '// Date.now() is only read in runtime.ts',
        '/** Never Math.random. */',
        'export const iso = (ms: number) => new Date(ms).toISOString()',
        "import { x } from './x.ts'",
        'const re = /\\/\\//',
      ].join('\n'),
    )
    writeFileSync(join(dir, 'runtime.ts'), 'export const now = () => Date.now()\n')
    writeFileSync(join(dir, 'clean.test.ts'), 'const t = Date.now()\n')
    const { code, output } = check(dir)
    expect(code).toBe(1)
    for (let line = 1; line <= offending.length; line++) expect(output).toContain(`bad.ts:${line}:`)
    expect(output).not.toContain('clean.ts')
    expect(output).not.toContain('runtime.ts:')
    expect(output).not.toContain('clean.test.ts')
  })
})
