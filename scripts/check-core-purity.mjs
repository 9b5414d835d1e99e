#!/usr/bin/env node
/**
 * Fails when core code outside `runtime.ts` reads the clock or randomness, schedules timers or
 * imports a Node builtin. Comments are ignored; strings are not (a conservative choice).
 * `new Date(ms)` with an argument is allowed: it formats an instant passed in, it reads no clock.
 *
 * Usage: node scripts/check-core-purity.mjs [dir]   (default: packages/core/src)
 * Exit 0 with one OK line, or exit 1 listing each offence as `file:line: reason`.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const FORBIDDEN = [
  [/\bDate\.now\b/, 'Date.now'],
  // `new Date()` / `new Date` read the clock; `new Date(ms)` only formats a given instant.
  [/\bnew\s+Date\b(?!\s*\(\s*[^\s)])/, 'new Date() without an argument'],
  [/(?<!\bnew\s+)(?<![.\w$])Date\s*\(/, 'Date() (reads the clock)'],
  [/\bMath\.random\b/, 'Math.random'],
  [/\bgetRandomValues\b/, 'getRandomValues'],
  [/\brandomBytes\b/, 'randomBytes'],
  [/\brandomUUID\b/, 'randomUUID'],
  [/\bsetTimeout\b/, 'setTimeout'],
  [/\bsetInterval\b/, 'setInterval'],
  [/\bsetImmediate\b/, 'setImmediate'],
  [/\bperformance\.now\b/, 'performance.now'],
  [/\bprocess\.hrtime\b/, 'process.hrtime'],
  [/\bgetBuiltinModule\b/, 'getBuiltinModule (loads a platform module)'],
]

const IMPORT_SPECIFIERS = [
  /\bfrom\s*(['"])([^'"]+)\1/g,
  /\bimport\s*(['"])([^'"]+)\1/g,
  /\bimport\s*\(\s*(['"])([^'"]+)\1/g,
  /\brequire\s*\(\s*(['"])([^'"]+)\1/g,
]

const BUILTINS = new Set(builtinModules)

/** Whether an import specifier names a Node builtin (`node:x`, `fs`, `fs/promises`, …). */
function isBuiltin(specifier) {
  return specifier.startsWith('node:') || BUILTINS.has(specifier) || BUILTINS.has(specifier.split('/')[0])
}

/**
 * Replaces comments with spaces (newlines kept, so line numbers hold), leaving code, strings,
 * template literals and regular-expression literals intact.
 */
function stripComments(src) {
  let out = ''
  let i = 0
  let prev = '' // last significant code character, to tell a regex literal from a division
  const braces = [] // template-literal nesting: depth of `{` inside each `${`
  const blank = (s) => s.replace(/[^\n]/g, ' ')
  while (i < src.length) {
    const c = src[i]
    const d = src[i + 1]
    if (c === '/' && d === '/') {
      const end = src.indexOf('\n', i)
      const stop = end === -1 ? src.length : end
      out += blank(src.slice(i, stop))
      i = stop
    } else if (c === '/' && d === '*') {
      const end = src.indexOf('*/', i + 2)
      const stop = end === -1 ? src.length : end + 2
      out += blank(src.slice(i, stop))
      i = stop
    } else if (c === "'" || c === '"') {
      let j = i + 1
      while (j < src.length && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1
      out += src.slice(i, j + 1)
      i = j + 1
      prev = c
    } else if (c === '`' || (c === '}' && braces.length > 0 && braces.at(-1) === 0)) {
      if (c === '}') braces.pop()
      let j = i + 1
      while (j < src.length && src[j] !== '`' && !(src[j] === '$' && src[j + 1] === '{')) {
        j += src[j] === '\\' ? 2 : 1
      }
      if (src[j] === '$') {
        braces.push(0)
        j += 2
      } else {
        j += 1
      }
      out += src.slice(i, j)
      i = j
      prev = '`'
    } else if (c === '/' && (prev === '' || '(,=:[!&|?{};+-*%<>~^'.includes(prev))) {
      let j = i + 1
      let inClass = false
      while (j < src.length && src[j] !== '\n') {
        if (src[j] === '\\') j++
        else if (src[j] === '[') inClass = true
        else if (src[j] === ']') inClass = false
        else if (src[j] === '/' && !inClass) break
        j++
      }
      out += src.slice(i, j + 1)
      i = j + 1
      prev = '/'
    } else {
      if (braces.length > 0 && c === '{') braces[braces.length - 1]++
      if (braces.length > 0 && c === '}') braces[braces.length - 1]--
      if (!/\s/.test(c)) prev = c
      out += c
      i++
    }
  }
  return out
}

/** Every `*.ts` file under `dir` except `*.test.ts` and the top-level `runtime.ts`. */
function sourceFiles(dir) {
  const files = []
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) continue
    const file = join(entry.parentPath ?? entry.path, entry.name)
    if (file === join(dir, 'runtime.ts')) continue
    files.push(file)
  }
  return files.sort()
}

/** `{ line, reason }` for each offence in one file's source. */
export function findOffences(src) {
  const offences = []
  const lines = stripComments(src).split('\n')
  lines.forEach((text, index) => {
    for (const [pattern, name] of FORBIDDEN) {
      if (pattern.test(text)) offences.push({ line: index + 1, reason: `${name} outside runtime.ts` })
    }
    for (const pattern of IMPORT_SPECIFIERS) {
      for (const match of text.matchAll(pattern)) {
        if (isBuiltin(match[2]))
          offences.push({ line: index + 1, reason: `imports Node builtin '${match[2]}'` })
      }
    }
  })
  return offences
}

function main() {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
  const dir = resolve(process.argv[2] ?? join(root, 'packages/core/src'))
  let files
  try {
    files = sourceFiles(dir)
  } catch (error) {
    console.error(`check-core-purity: cannot read ${dir}: ${error.message}`)
    process.exit(1)
  }
  let count = 0
  for (const file of files) {
    for (const { line, reason } of findOffences(readFileSync(file, 'utf8'))) {
      console.error(`${relative(process.cwd(), file)}:${line}: ${reason}`)
      count++
    }
  }
  if (count > 0) {
    console.error(`check-core-purity: ${count} offence(s) in ${relative(process.cwd(), dir) || '.'}`)
    process.exit(1)
  }
  console.log(`check-core-purity: OK (${files.length} files in ${relative(process.cwd(), dir) || '.'})`)
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main()
