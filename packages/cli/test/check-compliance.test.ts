import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ComplianceReport } from '@recovery-codes/core'
import { describe, expect, it } from 'vitest'
import { runCheck } from '../src/commands/check.ts'
import { formatCompliance, runCompliance } from '../src/commands/compliance.ts'
import { cleanEnv, KEY_B64, runCli, tempDir } from './helpers.ts'

const NOTIFY = { contact: 'Call support at +1 555 0100', linkBaseUrl: 'https://example.com/wasnt-me' }

/** A `--config` file holding `options`. */
function configFile(options: Record<string, unknown>): string {
  const file = join(tempDir(), 'rc.json')
  writeFileSync(file, JSON.stringify(options))
  return file
}

/** The requirement lines of the table (status first). */
const itemLines = (stdout: string) => stdout.split('\n').filter((l) => /^ {2}(MET|NOT MET) /.test(l))

describe('check --compliance (real CLI)', () => {
  it('on the nist-800-63b-4 preset: exit 0 and every SHALL line says MET', async () => {
    const r = await runCli(
      [
        'check',
        '--compliance',
        '--preset',
        'nist-800-63b-4',
        '--config',
        configFile({ notifications: NOTIFY }),
      ],
      { env: cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64 }) },
    )
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const lines = itemLines(r.stdout)
    const shall = lines.filter((l) => / SHALL /.test(l))
    expect(shall.length).toBeGreaterThanOrEqual(15)
    for (const line of shall) expect(line).toMatch(/^ {2}MET {6}SHALL /)
    expect(r.stdout).toContain('preset: nist-800-63b-4')
    expect(r.stdout).toContain('every SHALL is met')
    expect(r.stdout).toMatch(/SHALL: \d+ met, 0 not met/)
    // Every listed section is there.
    for (const section of ['§3.1.2', '§3.2.2', '§4.2.1.1', '§4.2.3', '§4.6', 'ASVS V6.5'])
      expect(
        lines.some((l) => l.includes(` ${section} `)),
        section,
      ).toBe(true)
    expect(r.stdout + r.stderr).not.toContain(KEY_B64)
  })

  it('RECOVERY_CODES_PRESET works as well as --preset', async () => {
    const r = await runCli(['check', '--compliance', '--config', configFile({ notifications: NOTIFY })], {
      env: cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64, RECOVERY_CODES_PRESET: 'nist-800-63b-4' }),
    })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('every SHALL is met')
  })

  it('on the defaults: exit 1, naming replaceOnUse and notifications on the unmet SHALL lines', async () => {
    const r = await runCli(['check', '--compliance'], { env: cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64 }) })
    expect(r.code).toBe(1)
    const unmet = itemLines(r.stdout).filter((l) => l.startsWith('  NOT MET  SHALL '))
    expect(unmet).toHaveLength(5)
    for (const line of unmet) expect(line).toMatch(/ -> set (replaceOnUse|notifications)/)
    expect(
      unmet.filter((l) => l.includes('-> set replaceOnUse: true (env RECOVERY_CODES_REPLACE_ON_USE)')),
    ).toHaveLength(1)
    expect(unmet.filter((l) => l.includes('-> set notifications'))).toHaveLength(4)
    expect(r.stdout).toContain('SHALL not met: sp800-63b-4/4.2.1.1/replace-on-use,')
    expect(r.stdout).toMatch(/SHALL: \d+ met, 5 not met/)
  })

  it('--json prints the report', async () => {
    const r = await runCli(['check', '--compliance', '--json'], {
      env: cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64 }),
    })
    expect(r.code).toBe(1)
    const json = JSON.parse(r.stdout) as { ok: boolean; issues: unknown[]; report: ComplianceReport }
    expect(json.ok).toBe(false)
    expect(json.issues).toEqual([])
    expect(json.report.summary.unmetShall).toEqual([
      'sp800-63b-4/4.2.1.1/replace-on-use',
      'sp800-63b-4/4.2.1.1/replacement-notification',
      'sp800-63b-4/4.2.3/recovery-notification',
      'sp800-63b-4/4.6/notification-address',
      'sp800-63b-4/4.6/repudiation-instructions',
    ])
    const replace = json.report.items.find((i) => i.id === 'sp800-63b-4/4.2.1.1/replace-on-use')
    expect(replace).toMatchObject({
      met: false,
      level: 'SHALL',
      section: '4.2.1.1',
      option: 'replaceOnUse: true',
    })
    expect(r.stdout).not.toContain(KEY_B64)
  })

  it('--preset foo is a usage error (exit 2) with a stable message', async () => {
    const r = await runCli(['check', '--compliance', '--preset', 'foo'], {
      env: cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64 }),
    })
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain(
      "error: option '--preset <name>' argument 'foo' is invalid. Allowed choices are nist-800-63b-4.",
    )
  })

  it('the preset without notifications: the configuration is invalid, exit 1, naming notifications', async () => {
    const r = await runCli(['check', '--compliance', '--preset', 'nist-800-63b-4'], {
      env: cleanEnv({ RECOVERY_CODES_PEPPER: KEY_B64 }),
    })
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('configuration INVALID: 1 problem (no compliance report)')
    expect(r.stdout).toMatch(/ {2}- notifications: is required by preset 'nist-800-63b-4'/)
  })

  it('--help documents --compliance, its exit codes and --preset', async () => {
    const r = await runCli(['check', '--help'], { env: cleanEnv() })
    expect(r.code).toBe(0)
    const help = r.stdout.replace(/\s+/g, ' ')
    expect(help).toContain('--compliance')
    expect(help).toContain('exit 0 when every SHALL is met, 1 when one is not')
    expect(help).toContain('--preset <name>')
    expect(help).toContain('nist-800-63b-4')
  })
})

describe('check --compliance (in process)', () => {
  const env = { RECOVERY_CODES_PEPPER: KEY_B64 }

  it('a flipped option flips its line: replaceOnUse from the environment', () => {
    const off = runCompliance({ env })
    const on = runCompliance({ env: { ...env, RECOVERY_CODES_REPLACE_ON_USE: 'true' } })
    const line = (text: string) =>
      text.split('\n').find((l) => l.includes('a new saved recovery code is issued'))
    expect(line(formatCompliance(off))).toMatch(/^ {2}NOT MET {2}SHALL /)
    expect(line(formatCompliance(on))).toMatch(/^ {2}MET {6}SHALL /)
    expect(on.report!.summary.shallUnmet).toBe(off.report!.summary.shallUnmet - 1)
  })

  it('notifications without recovery-login: the §4.2.3 line names notifications.kinds', () => {
    const kinds = ['codes-generated', 'low-codes', 'exhausted', 'locked', 'disabled']
    const result = runCompliance({
      env,
      preset: 'nist-800-63b-4',
      configFile: configFile({ notifications: { ...NOTIFY, kinds } }),
    })
    expect(result.ok).toBe(false)
    expect(result.report!.summary.unmetShall).toEqual([
      'sp800-63b-4/4.2.1.1/replacement-notification',
      'sp800-63b-4/4.2.3/recovery-notification',
    ])
    expect(formatCompliance(result)).toContain(
      "an account recovery causes a notification to the subscriber -> set notifications.kinds: add 'recovery-login' (in the --config file)",
    )
  })

  it('notes the ports it stood in for; an imported weak format shows in the report', () => {
    const result = runCompliance({
      env,
      preset: 'nist-800-63b-4',
      configFile: configFile({ notifications: NOTIFY, import: { formats: ['better-auth'] } }),
    })
    expect(result.notes).toContain('assumed wired in code (ports the options need): mailer, resolveEmail')
    expect(result.report!.summary.unmetShall).toEqual([
      'sp800-63b-4/3.1.2/offline-resistant-storage',
      'sp800-63b-4/4.2.1.1/min-entropy',
      'asvs-5.0/v6.5/stored-hashed',
    ])
  })

  it('plain check accepts the preset: the validation store has addCodes, as kyselyStore does', () => {
    // Without it, `replaceOnUse` (on under the preset) was reported as needing a store with addCodes.
    const result = runCheck({ env: { ...env, RECOVERY_CODES_REPLACE_ON_USE: 'true' } })
    expect(result).toEqual({ ok: true, issues: [], notes: [] })
  })
})
