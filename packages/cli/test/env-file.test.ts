/**
 * `--env-file` that cannot be read. Regression: `recovery-codes check --env-file missing.env` exited
 * 9 with Node's own `node: missing.env: not found`. Node.js scans the whole command line for
 * `--env-file`, so through a plain `#!/usr/bin/env node` bin only `-f` reaches the CLI with a
 * missing file; these tests run the CLI with `--` before the script (see helpers.ts), and
 * package.test.ts runs `-f` through the built bin.
 */
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readEnvFile } from '../src/config-source.ts'
import { run } from '../src/main.ts'
import { cleanEnv, fakeIO, KEY_B64, runCli, tempDir } from './helpers.ts'

describe('--env-file that cannot be read: one line naming the path, exit 2', () => {
  const dir = tempDir('rc-env-file-')
  const missing = join(dir, 'missing.env')

  const cases: Array<[label: string, path: string, message: string]> = [
    ['a missing file', missing, `error: --env-file: cannot read ${missing} (ENOENT)\n`],
    ['a directory', dir, `error: --env-file: cannot read ${dir} (EISDIR)\n`],
    ['an empty path', '', 'error: --env-file: the path is empty\n'],
    // Quoted, so a crafted name cannot write control sequences to the terminal.
    [
      'a path with control characters',
      'a\nb\u001b[2J.env',
      'error: --env-file: cannot read "a\\nb\\u001b[2J.env" (ENOENT)\n',
    ],
  ]
  for (const command of [
    ['check'],
    ['check', '--json'],
    ['purge', '--dry-run'],
    ['purge-audit', '--dry-run'],
  ]) {
    for (const [label, path, message] of cases) {
      for (const flag of ['--env-file', '-f']) {
        it(`${command.join(' ')} ${flag} with ${label}`, async () => {
          const db = join(dir, 'never-created.db')
          const { io, out } = fakeIO({ RECOVERY_CODES_PEPPER: KEY_B64 })
          const code = await run(
            [...command, flag, path, ...(command[0] === 'check' ? [] : ['--database', db])],
            {
              io,
            },
          )
          expect(out.stderr).toBe(message)
          expect(out.stdout).toBe('')
          expect(code).toBe(2)
          expect(existsSync(db)).toBe(false)
        })
      }
    }
  }

  it('the real CLI (from source) prints the same line and exits 2', async () => {
    const r = await runCli(['check', '--env-file', missing], { env: cleanEnv() })
    expect(r.stderr).toBe(`error: --env-file: cannot read ${missing} (ENOENT)\n`)
    expect(r.stdout).toBe('')
    expect(r.code).toBe(2)
  })

  it('never prints what the file holds', async () => {
    const file = join(dir, 'secrets.env')
    writeFileSync(file, 'RECOVERY_CODES_PEPPER=c2hvcnQ=\nRECOVERY_CODES_TYPO=hunter2-secret\n')
    const r = await runCli(['check', '--env-file', file], { env: cleanEnv() })
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('RECOVERY_CODES_TYPO')
    expect(r.stdout + r.stderr).not.toMatch(/hunter2|c2hvcnQ/)
  })

  it('readEnvFile throws the same usage error (exit 2) for hosts calling it', () => {
    expect(() => readEnvFile(missing)).toThrow(
      expect.objectContaining({ message: `--env-file: cannot read ${missing} (ENOENT)`, exitCode: 2 }),
    )
  })
})
