import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const guard = join(import.meta.dirname, 'prepack-guard.mjs')
const run = (agent: string | undefined) => {
  const cwd = mkdtempSync(join(tmpdir(), 'rc-prepack-'))
  const env = { ...process.env }
  delete env.npm_config_user_agent
  if (agent !== undefined) env.npm_config_user_agent = agent
  return { cwd, r: spawnSync(process.execPath, [guard], { cwd, env, encoding: 'utf8' }) }
}

describe('prepack guard', () => {
  it('refuses npm (and no agent at all): its tarball would ship workspace:* and src exports', () => {
    for (const agent of ['npm/11.0.0 node/v20.20.0 linux x64', undefined, 'yarn/4.0.0']) {
      const { cwd, r } = run(agent)
      expect(r.status, String(agent)).toBe(1)
      expect(r.stderr).toContain('pack and publish with pnpm')
      expect(existsSync(join(cwd, 'LICENSE'))).toBe(false)
    }
  })

  it('lets pnpm pack and puts the root LICENSE in the package', () => {
    const { cwd, r } = run('pnpm/10.34.9 npm/? node/v20.20.0 linux x64')
    expect(r.status).toBe(0)
    expect(readFileSync(join(cwd, 'LICENSE'), 'utf8')).toMatch(/^MIT License/)
  })
})
