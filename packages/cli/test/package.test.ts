/**
 * The package as a plain npm app installs it. Regression: the bin imported `../src/main.ts` through
 * tsx, but only `bin` and `dist` were shipped, so `npx recovery-codes --help` failed with
 * ERR_MODULE_NOT_FOUND; tsx, better-sqlite3, pg and pg-boss came with every install.
 *
 * Each package is built with its own `build` script (tsup, JavaScript only) into a temporary
 * node_modules laid out like npm's, with `publishConfig` applied as pnpm publishes it, and only the
 * declared dependencies linked: no tsx, and none of the optional peers.
 */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { beforeAll, describe, expect, it } from 'vitest'
import { cleanEnv, KEY_B64, tempDir } from './helpers.ts'

interface PackageJson {
  name: string
  version: string
  bin?: Record<string, string>
  files?: string[]
  scripts?: Record<string, string>
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
  devDependencies?: Record<string, string>
  publishConfig?: Record<string, unknown>
}

const PACKAGES = fileURLToPath(new URL('../../', import.meta.url))
const CLI_DIR = join(PACKAGES, 'cli')
const OPTIONAL = [
  'better-sqlite3',
  'pg',
  'mysql2',
  '@recovery-codes/queue-pgboss',
  '@recovery-codes/import',
] as const
const TSUP = join(dirname(createRequire(import.meta.url).resolve('tsup/package.json')), 'dist/cli-default.js')

const readPackage = (dir: string): PackageJson => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
const cliPackage = readPackage(CLI_DIR)

/** `node_modules/<name>` → the workspace's installed copy (its real path, as npm would hoist it). */
function link(nodeModules: string, name: string, from: string): void {
  const to = join(nodeModules, name)
  if (existsSync(to)) return
  mkdirSync(dirname(to), { recursive: true })
  symlinkSync(realpathSync(from), to, 'junction')
}

/** Builds a workspace package into `nodeModules` as it is published, and links its dependencies. */
function install(nodeModules: string, dir: string): string {
  const pkg = readPackage(dir)
  const [tool, ...args] = (pkg.scripts?.build ?? '').split(/\s+/)
  if (tool !== 'tsup') throw new Error(`${pkg.name}: the build script is not tsup`)
  const dest = join(nodeModules, pkg.name)
  const out = join(dest, 'dist')
  const built = spawnSync(
    process.execPath,
    [TSUP, ...args.filter((a) => a !== '--dts'), '--no-dts', '--out-dir', out],
    { cwd: dir, encoding: 'utf8' },
  )
  if (built.status !== 0) throw new Error(`${pkg.name}: tsup failed\n${built.stdout}${built.stderr}`)
  const { publishConfig, ...published } = pkg
  writeFileSync(join(dest, 'package.json'), JSON.stringify({ ...published, ...publishConfig }, null, 2))
  const required = [
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}).filter((p) => !pkg.peerDependenciesMeta?.[p]?.optional),
  ]
  for (const dep of required) {
    if (!dep.startsWith('@recovery-codes/')) link(nodeModules, dep, join(dir, 'node_modules', dep))
  }
  return dest
}

/** Static and dynamic specifiers of the module graph from `entry`, following relative static imports. */
function moduleGraph(entry: string): { files: string[]; static: Set<string>; dynamic: Set<string> } {
  const files: string[] = []
  const statics = new Set<string>()
  const dynamics = new Set<string>()
  const visit = (file: string) => {
    if (files.includes(file)) return
    files.push(file)
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
    const walk = (node: ts.Node): void => {
      if (
        (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
        node.moduleSpecifier &&
        ts.isStringLiteral(node.moduleSpecifier)
      ) {
        const s = node.moduleSpecifier.text
        if (s.startsWith('.')) visit(join(dirname(file), s))
        else statics.add(s)
      } else if (ts.isCallExpression(node)) {
        const [arg] = node.arguments
        const text = arg && ts.isStringLiteralLike(arg) ? arg.text : '<computed>'
        if (node.expression.kind === ts.SyntaxKind.ImportKeyword) dynamics.add(text)
        // A require() (esbuild's __require for CommonJS) loads as eagerly as a static import.
        else if (ts.isIdentifier(node.expression) && /require$/i.test(node.expression.text)) statics.add(text)
      }
      ts.forEachChild(node, walk)
    }
    walk(source)
  }
  visit(entry)
  return { files, static: statics, dynamic: dynamics }
}

describe('the published package (built, installed without tsx or any optional peer)', () => {
  const root = tempDir('rc-cli-install-')
  const nodeModules = join(root, 'node_modules')
  let cliDest = ''
  let binFile = ''
  const run = (args: string[], nodeArgs: string[] = [], env = cleanEnv()): SpawnSyncReturns<string> =>
    spawnSync(process.execPath, [...nodeArgs, binFile, ...args], { cwd: root, env, encoding: 'utf8' })

  beforeAll(() => {
    install(nodeModules, join(PACKAGES, 'core'))
    install(nodeModules, join(PACKAGES, 'store-kysely'))
    cliDest = install(nodeModules, CLI_DIR)
    binFile = join(cliDest, cliPackage.bin?.['recovery-codes'] ?? 'missing-bin')
  })

  it('package.json: the bin is built output inside `files`; tsx is gone; drivers and queue are optional peers', () => {
    expect(cliPackage.bin).toEqual({ 'recovery-codes': './dist/cli.js' })
    expect(cliPackage.files).toEqual(expect.arrayContaining(['dist', 'LICENSE']))
    expect(cliPackage.files).not.toContain('src')
    expect(cliPackage.scripts?.prepack).toBe('node ../../scripts/prepack-guard.mjs && pnpm run build')
    const dependencies = Object.keys(cliPackage.dependencies ?? {})
    expect(dependencies.sort()).toEqual(
      [
        '@recovery-codes/core',
        '@recovery-codes/store-kysely',
        'cli-progress',
        'commander',
        'dotenv',
        'kysely',
      ].sort(),
    )
    for (const name of OPTIONAL) {
      expect(cliPackage.peerDependencies?.[name], name).toBeDefined()
      expect(cliPackage.peerDependenciesMeta?.[name]?.optional, name).toBe(true)
      expect(cliPackage.devDependencies?.[name], `${name} stays a devDependency for the tests`).toBeDefined()
    }
  })

  it('the bin is dist/cli.js: plain JavaScript with a node shebang, executable', () => {
    const text = readFileSync(binFile, 'utf8')
    expect(text.startsWith('#!/usr/bin/env node\n')).toBe(true)
    if (process.platform !== 'win32') expect(statSync(binFile).mode & 0o111).not.toBe(0)
    for (const entry of ['cli.js', 'main.js', 'index.js']) {
      expect(existsSync(join(cliDest, 'dist', entry)), entry).toBe(true)
    }
  })

  it('the module graph imports no optional package statically, and no tsx or .ts file', () => {
    for (const entry of ['cli.js', 'main.js', 'index.js']) {
      const graph = moduleGraph(join(cliDest, 'dist', entry))
      for (const specifier of graph.static) {
        expect(OPTIONAL as readonly string[], `${entry}: static import of ${specifier}`).not.toContain(
          specifier,
        )
        expect(specifier, entry).not.toMatch(/^(tsx|esbuild|pg-boss)(\/|$)|\.ts$/)
      }
      expect([...graph.dynamic].sort(), entry).toEqual([...OPTIONAL].sort())
    }
  })

  it('--help, --version and check run under plain node with none of the optional packages', () => {
    // Resolved in a child with the clean environment: the test runner's NODE_PATH reaches the workspace.
    for (const name of [...OPTIONAL, 'tsx', 'pg-boss', 'commander']) {
      const found = spawnSync(process.execPath, ['-e', `require.resolve(${JSON.stringify(name)})`], {
        cwd: cliDest,
        env: cleanEnv(),
      })
      expect(found.status === 0, `${name} installed`).toBe(name === 'commander')
    }
    const help = run(['--help'])
    expect(help.stderr).toBe('')
    expect(help.status).toBe(0)
    expect(help.stdout).toContain('Usage: recovery-codes')
    for (const c of ['check', 'migrate', 'purge', 'schedule', 'flush', 'stats'])
      expect(help.stdout).toContain(`  ${c}`)
    expect(run(['--version']).stdout.trim()).toBe(cliPackage.version)
    const ok = run(['check'], [], cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64 }))
    expect(ok.stdout).toContain('configuration OK')
    expect(ok.status).toBe(0)
    const bad = run(['check'])
    expect(bad.status).toBe(1)
    expect(bad.stdout).toContain('RECOVERY_CODES_PEPPER')
    const pepper = run(['generate-pepper', '--raw'])
    expect(pepper.status).toBe(0)
  })

  it.skipIf(process.platform === 'win32')('node_modules/.bin/recovery-codes runs by its shebang', () => {
    const binLink = join(nodeModules, '.bin', 'recovery-codes')
    mkdirSync(dirname(binLink), { recursive: true })
    if (!existsSync(binLink)) symlinkSync(binFile, binLink)
    const env = cleanEnv({ PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` })
    const r = spawnSync(binLink, ['--help'], { cwd: root, env, encoding: 'utf8' })
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout).toContain('Usage: recovery-codes')
  })

  it('a command that needs a missing optional package says what to install and exits 2', () => {
    const cases: Array<[string[], string]> = [
      [
        ['migrate', '--database', `sqlite:${join(root, 'app.db')}`],
        'error: This command needs the optional package "better-sqlite3" (SQLite). Install it: npm install better-sqlite3\n',
      ],
      [
        ['purge', '--dry-run', '--database', join(root, 'app.db')],
        'error: This command needs the optional package "better-sqlite3" (SQLite). Install it: npm install better-sqlite3\n',
      ],
      [
        ['stats', '--database', 'postgres://127.0.0.1:1/none'],
        'error: This command needs the optional package "pg" (PostgreSQL). Install it: npm install pg\n',
      ],
      [
        ['migrate', '--database', 'mysql://root@127.0.0.1:1/none'],
        'error: This command needs the optional package "mysql2" (MySQL / MariaDB). Install it: npm install mysql2\n',
      ],
      [
        ['purge', '--dry-run', '--database', 'mariadb://root@127.0.0.1:1/none'],
        'error: This command needs the optional package "mysql2" (MySQL / MariaDB). Install it: npm install mysql2\n',
      ],
      [
        ['schedule', 'list', '--database', 'postgres://127.0.0.1:1/none'],
        'error: This command needs the optional package "@recovery-codes/queue-pgboss" (the pg-boss queue). Install it: npm install @recovery-codes/queue-pgboss\n',
      ],
    ]
    for (const [args, message] of cases) {
      const r = run(args)
      expect(r.stderr, args.join(' ')).toBe(message)
      expect(r.status, args.join(' ')).toBe(2)
    }
    expect(existsSync(join(root, 'app.db')), 'nothing was created').toBe(false)
  })

  it("-f with a missing file gives the CLI's message and exit 2 (Node.js takes a plain --env-file itself)", () => {
    const short = run(['check', '-f', 'missing.env'])
    expect(short.stderr).toBe('error: --env-file: cannot read missing.env (ENOENT)\n')
    expect(short.status).toBe(2)
    // After `--`, Node leaves --env-file to the script.
    const long = spawnSync(process.execPath, ['--', binFile, 'check', '--env-file', 'missing.env'], {
      cwd: root,
      env: cleanEnv(),
      encoding: 'utf8',
    })
    expect(long.stderr).toBe('error: --env-file: cannot read missing.env (ENOENT)\n')
    expect(long.status).toBe(2)
  })

  it('once better-sqlite3 is installed, migrate loads it and creates the tables', () => {
    link(nodeModules, 'better-sqlite3', join(CLI_DIR, 'node_modules', 'better-sqlite3'))
    const file = join(root, 'with-driver.db')
    const r = run(['migrate', '--database', `sqlite:${file}`])
    expect(r.stderr).toBe('')
    expect(r.stdout).toContain(`SQLite ${file}: 0001_init applied\n`)
    expect(r.status).toBe(0)
  })
})
