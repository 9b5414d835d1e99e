/**
 * Every ```ts block of the READMEs and docs compiles against the workspace packages. A block
 * may rely on names it does not define only through an HTML comment right before it:
 * `<!-- ts-context: declare const userId: string -->` (kept out of the rendered page).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..')
const outDir = join(import.meta.dirname, '.snippets')

/** The Markdown files that document the public surface. */
function docs(): string[] {
  const files = ['README.md', 'docs/security.md', 'docs/import.md']
  for (const group of ['packages', 'examples']) {
    for (const dir of readdirSync(join(root, group))) {
      for (const name of ['README.md', 'docs/configuration.md']) {
        try {
          readFileSync(join(root, group, dir, name))
          files.push(join(group, dir, name))
        } catch {}
      }
    }
  }
  return files
}

interface Snippet {
  file: string
  line: number
  code: string
}

/** The TypeScript blocks of one Markdown text, with their hidden context. */
export function snippetsOf(file: string, text: string): Snippet[] {
  const out: Snippet[] = []
  const re = /(?:<!--\s*ts-context:([\s\S]*?)-->\s*\n)?```(?:ts|typescript)\n([\s\S]*?)```/g
  for (const m of text.matchAll(re)) {
    const line = text.slice(0, m.index).split('\n').length
    out.push({ file, line, code: `${m[1]?.trim() ?? ''}\n${m[2]}\nexport {}\n` })
  }
  return out
}

describe('README and docs snippets', () => {
  const snippets = docs().flatMap((f) => snippetsOf(f, readFileSync(join(root, f), 'utf8')))

  it('finds the blocks (and the hidden context syntax works)', () => {
    expect(snippets.length).toBeGreaterThan(10)
    const [s] = snippetsOf('x.md', '<!-- ts-context: declare const a: 1 -->\n```ts\nconst b = a\n```\n')
    expect(s!.code).toContain('declare const a: 1')
  })

  it('every TypeScript block compiles (strict)', () => {
    rmSync(outDir, { recursive: true, force: true })
    mkdirSync(outDir, { recursive: true })
    const names = new Map<string, Snippet>()
    snippets.forEach((s, i) => {
      const name = join(outDir, `${s.file.replace(/[^\w]+/g, '_')}_${i}.ts`)
      writeFileSync(name, s.code)
      names.set(name, s)
    })
    const program = ts.createProgram([...names.keys()], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      allowImportingTsExtensions: true,
      skipLibCheck: true,
      types: ['node'],
      lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
    })
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file && names.has(d.file.fileName))
      .map((d) => {
        const s = names.get(d.file!.fileName)!
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0)
        // Line 1 of the file is the hidden context; the block starts on the fence's next line.
        return `${s.file}:${s.line + line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
      })
    expect(
      problems,
      `snippets that do not compile (${relative(root, outDir)}):\n${problems.join('\n')}`,
    ).toEqual([])
  }, 120_000)
})
