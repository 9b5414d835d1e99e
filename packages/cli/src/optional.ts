/**
 * The optional peer dependencies (database drivers and the queue), loaded at the point a command
 * needs them, so `--help`, `check` and `generate-pepper` run with none of them installed.
 */
import { usageError } from './io.ts'

/**
 * `true` when `error` says that `name` itself cannot be found: Node's `ERR_MODULE_NOT_FOUND`
 * (`import()`) or `MODULE_NOT_FOUND` (`require`) naming exactly that package. A package that is
 * installed but cannot find one of its own dependencies or files names something else, and is not
 * a missing optional package.
 */
export function isMissingPackage(error: unknown, name: string): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as NodeJS.ErrnoException).code
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false
  return /^Cannot find (?:package|module) '([^']+)'/.exec(error.message)?.[1] === name
}

/**
 * Loads an optional package with `load` (a literal `import('…')`, so bundlers and the package-graph
 * test can see it). When the package itself is not installed, throws a usage error (exit 2) that
 * says what to install; any other failure (a broken install, a native module that does not load)
 * propagates unchanged.
 *
 * @param name the package name, as the user would install it
 * @param purpose what it is for, shown in parentheses (`SQLite`, `PostgreSQL`, …)
 * @throws CliError (exit 2) when `name` is not installed.
 * @example
 * ```ts
 * const { default: Database } = await loadOptional('better-sqlite3', 'SQLite', () => import('better-sqlite3'))
 * ```
 */
export async function loadOptional<T>(name: string, purpose: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (e) {
    if (!isMissingPackage(e, name)) throw e
    const missing = usageError(
      `This command needs the optional package "${name}" (${purpose}). Install it: npm install ${name}`,
    )
    missing.cause = e
    throw missing
  }
}
