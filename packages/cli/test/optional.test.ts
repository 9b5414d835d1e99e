import { describe, expect, it } from 'vitest'
import { CliError } from '../src/io.ts'
import { isMissingPackage, loadOptional } from '../src/optional.ts'

/** An error shaped like Node's own, for a loader that cannot find `what`. */
function notFound(code: 'ERR_MODULE_NOT_FOUND' | 'MODULE_NOT_FOUND', message: string): Error {
  return Object.assign(new Error(message), { code })
}
const esmMissing = (name: string) =>
  notFound(
    'ERR_MODULE_NOT_FOUND',
    `Cannot find package '${name}' imported from /app/node_modules/x/dist/cli.js`,
  )
const cjsMissing = (name: string) =>
  notFound('MODULE_NOT_FOUND', `Cannot find module '${name}'\nRequire stack:\n- /app/index.js`)

describe('loadOptional', () => {
  it('returns the module when it loads', async () => {
    const mod = { default: 'driver' }
    await expect(loadOptional('better-sqlite3', 'SQLite', async () => mod)).resolves.toBe(mod)
  })

  for (const [kind, error] of [
    ['import() (ERR_MODULE_NOT_FOUND)', esmMissing('better-sqlite3')],
    ['require (MODULE_NOT_FOUND)', cjsMissing('better-sqlite3')],
  ] as const) {
    it(`a missing package through ${kind} becomes a usage error saying what to install`, async () => {
      const p = loadOptional('better-sqlite3', 'SQLite', () => Promise.reject(error))
      await expect(p).rejects.toBeInstanceOf(CliError)
      const e = (await p.catch((x: unknown) => x)) as CliError
      expect(e.message).toBe(
        'This command needs the optional package "better-sqlite3" (SQLite). Install it: npm install better-sqlite3',
      )
      expect(e.exitCode).toBe(2)
      expect(e.cause).toBe(error)
    })
  }

  it('a scoped package is named as the user installs it', async () => {
    const e = (await loadOptional('@recovery-codes/queue-pgboss', 'the pg-boss queue', () =>
      Promise.reject(esmMissing('@recovery-codes/queue-pgboss')),
    ).catch((x: unknown) => x)) as CliError
    expect(e.message).toMatch(
      /"@recovery-codes\/queue-pgboss" \(the pg-boss queue\)\. Install it: npm install @recovery-codes\/queue-pgboss$/,
    )
  })

  it('other failures propagate unchanged', async () => {
    const others: Array<[name: string, error: unknown]> = [
      // Installed, but one of its own dependencies is missing: not what the message would say.
      ['@recovery-codes/queue-pgboss', esmMissing('pg-boss')],
      ['better-sqlite3', cjsMissing('bindings')],
      // A package whose name starts with the one asked for is another package.
      ['pg', esmMissing('pg-boss')],
      // A broken install: a file inside the package is missing.
      [
        'better-sqlite3',
        notFound(
          'ERR_MODULE_NOT_FOUND',
          "Cannot find module '/app/node_modules/better-sqlite3/lib/index.js' imported from /app/x.js",
        ),
      ],
      // Found, but its native part does not load.
      [
        'better-sqlite3',
        Object.assign(new Error('Could not locate the bindings file.'), { code: 'ERR_DLOPEN_FAILED' }),
      ],
      ['pg', new SyntaxError("Unexpected token 'export'")],
      // The right message with another code, or with none.
      ['pg', Object.assign(new Error("Cannot find package 'pg'"), { code: 'ENOENT' })],
      ['pg', new Error("Cannot find package 'pg' imported from /x.js")],
      ['pg', 'a string'],
      ['pg', undefined],
    ]
    for (const [name, error] of others) {
      await expect(
        loadOptional(name, 'x', () => Promise.reject(error)),
        String(error),
      ).rejects.toBe(error)
    }
  })

  it('isMissingPackage matches the exact name only', () => {
    expect(isMissingPackage(esmMissing('pg'), 'pg')).toBe(true)
    expect(isMissingPackage(esmMissing('pg'), 'pg-boss')).toBe(false)
    expect(isMissingPackage(esmMissing('pg-boss'), 'pg')).toBe(false)
    expect(isMissingPackage(cjsMissing('pg/lib/client'), 'pg')).toBe(false)
    expect(isMissingPackage(null, 'pg')).toBe(false)
  })
})
