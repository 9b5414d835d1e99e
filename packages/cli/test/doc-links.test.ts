/**
 * Links to docs in messages. Regression: `check` pointed to `docs/configuration.md`, which exists
 * neither at the repository root nor in any installed package (it is packages/core/docs/).
 */
import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { runCheck } from '../src/commands/check.ts'
import { CONFIGURATION_DOCS_URL, linkDocs } from '../src/doc-links.ts'
import { cleanEnv, KEY_B64, runCli } from './helpers.ts'

const REPO_ROOT = new URL('../../../', import.meta.url)

describe('links to the configuration reference', () => {
  it('the URL is on the repository named in package.json, and the file is there on its branch', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      repository: { url: string }
    }
    const repo = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '')
    expect(CONFIGURATION_DOCS_URL.startsWith(`${repo}/blob/main/`)).toBe(true)
    const path = CONFIGURATION_DOCS_URL.slice(`${repo}/blob/main/`.length)
    expect(path).toBe('packages/core/docs/configuration.md')
    expect(existsSync(new URL(path, REPO_ROOT))).toBe(true)
  })

  it("check rewrites core's repository-relative hint and adds the link under the problems", async () => {
    const r = await runCli(['check'], {
      env: cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64, RECOVERY_CODES_TYPO: '1' }),
    })
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(
      `  - RECOVERY_CODES_TYPO: is not a known variable (see ${CONFIGURATION_DOCS_URL})\n`,
    )
    expect(r.stdout).toContain(`every variable and option: ${CONFIGURATION_DOCS_URL}\n`)
    expect(r.stdout.replaceAll(CONFIGURATION_DOCS_URL, '')).not.toContain('docs/')
    const json = runCheck({ env: { RECOVERY_CODES_PEPPER: KEY_B64, RECOVERY_CODES_TYPO: '1' } })
    expect(json.issues).toEqual([
      { where: 'RECOVERY_CODES_TYPO', message: `is not a known variable (see ${CONFIGURATION_DOCS_URL})` },
    ])
  })

  it('a valid configuration prints no link', async () => {
    const r = await runCli(['check'], { env: cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64 }) })
    expect(r.stdout).toBe('configuration OK\n')
  })

  it('linkDocs rewrites only the bare path, once', () => {
    expect(linkDocs('x (see docs/configuration.md)')).toBe(`x (see ${CONFIGURATION_DOCS_URL})`)
    expect(linkDocs(linkDocs('see docs/configuration.md'))).toBe(`see ${CONFIGURATION_DOCS_URL}`)
    for (const untouched of [
      'must be an integer from 1 to 100',
      'packages/core/docs/configuration.md',
      'see mydocs/configuration.md',
      'see docs/configuration.mdx',
      '',
    ]) {
      expect(linkDocs(untouched)).toBe(untouched)
    }
  })
})
