#!/usr/bin/env node
/**
 * R-DB-1: only Kysely-bound parameters reach SQL. Fails (exit 1, one `file:line` per finding) on
 * - `sql.raw(`, `sql.lit(`, `sql.ref(`, `sql.id(`, `sql.table(`, `CompiledQuery.raw(`;
 * - `sql.join(` whose first argument is not an array literal;
 * - SQL built by string concatenation or by an untagged template literal with `${…}`
 * in `packages/* /src` (tests, fixtures and benches are free to build SQL), outside ALLOW below.
 * Comments are ignored; `sql\`…${x}…\`` templates bind `x` and are fine.
 *
 * Usage: node scripts/check-sql-safety.mjs [repoRoot]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Explicit exceptions: `{ file, line text (substring), reason }`. Keep it short and justified. */
const ALLOW = [
  {
    file: 'packages/store-kysely/src/migrations/redeem-function.ts',
    line: 'const constantSql = (text: string) => sql.raw(text)',
    reason: 'the rc_redeem function bodies: constants of the package, no input reaches them',
  },
  {
    file: 'packages/store-kysely/src/migrations/redeem-function-v3.ts',
    line: 'export const REDEEM_FUNCTION_V3 = `${SIGNATURE}declare',
    reason: "0005's rc_redeem, assembled from constants of the package (0002's text and its own)",
  },
]

const root = resolve(process.argv[2] ?? join(fileURLToPath(new URL('.', import.meta.url)), '..'))
const SQL_WORDS =
  /\b(select\b[\s\S]*\bfrom|insert\s+into|update\s+["\w.]+\s+set|delete\s+from|drop\s+(table|schema|index)|create\s+(table|index|schema)|alter\s+table|truncate\b|where\s+["\w.]+\s*(=|<|>|in\b|like\b))/i
const DANGEROUS = /\b(sql\s*\.\s*(raw|lit|ref|id|table)|CompiledQuery\s*\.\s*raw)\s*\(/g

function* sourceFiles(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue
    const p = join(dir, name)
    if (statSync(p).isDirectory()) yield* sourceFiles(p)
    else if (
      /\.(m|c)?[tj]sx?$/.test(name) &&
      !/\.(test|spec)\.[tj]sx?$/.test(name) &&
      !name.endsWith('.d.ts')
    )
      yield p
  }
}

/** Blanks comments (keeping newlines and string contents) so line numbers stay true. */
function stripComments(src) {
  let out = ''
  let i = 0
  let quote = null
  while (i < src.length) {
    const c = src[i]
    const n = src[i + 1]
    if (quote) {
      out += c
      if (c === '\\') {
        out += n ?? ''
        i += 2
        continue
      }
      if (c === quote) quote = null
      i++
    } else if (c === '/' && n === '/') {
      while (i < src.length && src[i] !== '\n') {
        out += ' '
        i++
      }
    } else if (c === '/' && n === '*') {
      const end = src.indexOf('*/', i + 2)
      const stop = end < 0 ? src.length : end + 2
      out += src.slice(i, stop).replace(/[^\n]/g, ' ')
      i = stop
    } else {
      if (c === '"' || c === "'" || c === '`') quote = c
      out += c
      i++
    }
  }
  return out
}

const lineOf = (src, index) => src.slice(0, index).split('\n').length

function check(file, raw) {
  const src = stripComments(raw)
  const lines = raw.split('\n')
  const found = []
  const add = (index, why) => {
    const line = lineOf(src, index)
    const text = lines[line - 1] ?? ''
    const rel = relative(root, file)
    if (ALLOW.some((a) => rel === a.file && text.includes(a.line))) return
    found.push({ file: rel, line, why, text: text.trim() })
  }
  for (const m of src.matchAll(DANGEROUS)) add(m.index, `${m[1].replace(/\s/g, '')}() can inject SQL`)
  for (const m of src.matchAll(/\bsql\s*\.\s*join\s*\(\s*([^\s)])/g)) {
    if (m[1] !== '[') add(m.index, 'sql.join() with a non-literal list')
  }
  // Untagged template literals that look like SQL and interpolate.
  for (const m of src.matchAll(/(\b[\w$.]+\s*(<[^`>]*>)?\s*)?`((?:\\[\s\S]|[^`\\])*)`/g)) {
    const tag = (m[1] ?? '').trim()
    const tagged = /(^|\.)sql\s*(<[^`>]*>)?$/.test(tag)
    if (!tagged && m[3].includes('${') && SQL_WORDS.test(m[3]))
      add(m.index, 'SQL built in an untagged template literal')
  }
  // String literals that look like SQL and are concatenated.
  for (const m of src.matchAll(/(\+\s*)?(['"])((?:\\.|(?!\2)[^\\\n])*)\2(\s*\+)?/g)) {
    if ((m[1] || m[4]) && SQL_WORDS.test(m[3])) add(m.index, 'SQL built by string concatenation')
  }
  return found
}

const findings = []
const packages = join(root, 'packages')
for (const pkg of readdirSync(packages)) {
  const src = join(packages, pkg, 'src')
  try {
    if (!statSync(src).isDirectory()) continue
  } catch {
    continue
  }
  for (const file of sourceFiles(src)) findings.push(...check(file, readFileSync(file, 'utf8')))
}

if (findings.length > 0) {
  for (const f of findings) console.error(`${f.file}:${f.line}: ${f.why}\n    ${f.text}`)
  console.error(
    `\ncheck-sql-safety: ${findings.length} finding(s). Bind values with sql\`…\${value}…\` or the query builder.`,
  )
  process.exit(1)
}
console.log('check-sql-safety: ok')
