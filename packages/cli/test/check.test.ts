import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCheck } from '../src/commands/check.ts'
import { cleanEnv, KEY_B64, runCli, tempDir } from './helpers.ts'

const FIXTURE = new URL('./fixtures/reference-settings.env', import.meta.url)

/** The reference README's example with its placeholders replaced by a real key and real addresses. */
function referenceEnvFile(): string {
  const text = readFileSync(FIXTURE, 'utf8')
    .replace('"add-recovery-key-here"', `"${KEY_B64}"`)
    .replace('"your-email-address-here"', '"admin@example.com"')
    .replace('"your-host-email-address-here"', '"noreply@example.com"')
  const file = join(tempDir(), 'reference.env')
  writeFileSync(file, text)
  return file
}

describe('check (real CLI)', () => {
  it("passes on the reference app's example flag set, translated by the mapping", async () => {
    const r = await runCli(['check', '--reference', '--env-file', referenceEnvFile()], { env: cleanEnv() })
    expect(r.stdout).toContain('configuration OK')
    expect(r.code).toBe(0)
    // Dropped flags are explained, never silently ignored.
    expect(r.stdout).toContain('DJANGO_AUTH_RECOVERY_CODE_REDIRECT_VIEW_AFTER_LOGOUT not used')
    expect(r.stdout + r.stderr).not.toContain(KEY_B64)
  })

  it('the same flags passed as process environment variables also pass', async () => {
    const parsed = (await import('dotenv')).parse(readFileSync(referenceEnvFile(), 'utf8'))
    const r = await runCli(['check', '--reference'], { env: cleanEnv(parsed) })
    expect(r.code).toBe(0)
  })

  it('the verbatim example (placeholder key and addresses) fails, naming each variable', async () => {
    const r = await runCli(['check', '--reference', '--env-file', new URL(FIXTURE).pathname], {
      env: cleanEnv(),
    })
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('3 problems')
    expect(r.stdout).toMatch(
      /RECOVERY_CODES_PEPPER \(peppers\.0\.secret\): is a published demo or placeholder/,
    )
    expect(r.stdout).toMatch(/RECOVERY_CODES_EMAIL_FROM \(email\.from\): must be an email address/)
    expect(r.stdout).toMatch(/RECOVERY_CODES_EMAIL_ADMIN \(email\.adminEmail\): must be an email address/)
    expect(r.stdout).not.toContain('add-recovery-key-here')
  })

  it('on a broken environment exits non-zero and lists every problem, each naming its variable', async () => {
    const secret = 'c2hvcnQ=' // 5 bytes: too short
    const env = cleanEnv({
      RECOVERY_CODES_PEPPER: secret,
      RECOVERY_CODES_BATCH_SIZE: 'abc',
      RECOVERY_CODES_MAX_LOGIN_ATTEMPTS: '500',
      RECOVERY_CODES_HISTORY_PER_PAGE: '50',
      RECOVERY_CODES_COOLDOWN_MULTIPLIER: '-2',
      RECOVERY_CODES_EXPORT_DEFAULT_FORMAT: 'docx',
      RECOVERY_CODES_LOGOUT_REDIRECT: '//evil.example',
      RECOVERY_CODES_TYPO: '1',
      RECOVERY_CODES_EMAIL_ENABLED: 'yes',
    })
    const r = await runCli(['check'], { env })
    expect(r.code).toBe(1)
    const expected = [
      'RECOVERY_CODES_PEPPER',
      'RECOVERY_CODES_BATCH_SIZE',
      'RECOVERY_CODES_MAX_LOGIN_ATTEMPTS',
      'RECOVERY_CODES_HISTORY_PER_PAGE',
      'RECOVERY_CODES_COOLDOWN_MULTIPLIER',
      'RECOVERY_CODES_EXPORT_DEFAULT_FORMAT',
      'RECOVERY_CODES_LOGOUT_REDIRECT',
      'RECOVERY_CODES_TYPO',
      'RECOVERY_CODES_EMAIL_ENABLED',
    ]
    const problems = r.stdout.split('\n').filter((l) => l.startsWith('  - '))
    expect(problems).toHaveLength(expected.length)
    for (const name of expected)
      expect(
        problems.some((l) => l.startsWith(`  - ${name}`)),
        name,
      ).toBe(true)
    expect(r.stdout).toContain(`${expected.length} problems`)
    expect(r.stdout + r.stderr).not.toContain(secret)
  })

  it('no pepper at all is a problem named RECOVERY_CODES_PEPPER', async () => {
    const r = await runCli(['check'], { env: cleanEnv() })
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/- RECOVERY_CODES_PEPPER \(peppers\)/)
  })

  it('generate-pepper output is accepted by check', async () => {
    const g = await runCli(['generate-pepper'], { env: cleanEnv() })
    expect(g.code).toBe(0)
    const [secret, line] = g.stdout.trim().split('\n')
    expect(Buffer.from(secret!, 'base64')).toHaveLength(32)
    expect(line).toBe(`RECOVERY_CODES_PEPPER=${secret}`)
    const envFile = join(tempDir(), '.env')
    writeFileSync(envFile, `${line}\n`)
    const c = await runCli(['check', '--env-file', envFile], { env: cleanEnv() })
    expect(c.stdout).toContain('configuration OK')
    expect(c.code).toBe(0)
    expect(c.stdout).not.toContain(secret)
    const raw = await runCli(['generate-pepper', '--raw', '--bytes', '48'], { env: cleanEnv() })
    expect(Buffer.from(raw.stdout.trim(), 'base64')).toHaveLength(48)
  })
})

describe('check (in process)', () => {
  it('merges a JSON config file under the environment and names file options', () => {
    const dir = tempDir()
    const file = join(dir, 'rc.json')
    writeFileSync(
      file,
      JSON.stringify({ purge: { retentionDays: -1 }, siteName: 'Acme', history: { perPage: 5 } }),
    )
    const bad = runCheck({ env: { RECOVERY_CODES_PEPPER: KEY_B64 }, configFile: file })
    expect(bad.ok).toBe(false)
    expect(bad.issues).toEqual([{ where: `${file}: purge.retentionDays`, message: expect.any(String) }])
    // The environment wins over the file.
    const good = runCheck({
      env: { RECOVERY_CODES_PEPPER: KEY_B64, RECOVERY_CODES_PURGE_RETENTION_DAYS: '30' },
      configFile: file,
    })
    expect(good).toEqual({ ok: true, issues: [], notes: [] })
  })

  it('a __proto__ key in the config file pollutes nothing and is reported as an unknown option', () => {
    const dir = tempDir()
    const file = join(dir, 'proto.json')
    writeFileSync(
      file,
      '{ "__proto__": { "polluted": true }, "history": { "__proto__": { "polluted": true } } }',
    )
    const r = runCheck({ env: { RECOVERY_CODES_PEPPER: KEY_B64 }, configFile: file })
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(r.ok).toBe(false)
    expect(r.issues.map((i) => i.where.replace(`${file}: `, '')).sort()).toEqual([
      '__proto__',
      'history.__proto__',
    ])
    expect(r.issues.every((i) => i.message === 'is not a known option')).toBe(true)
  })

  it('reports an unreadable or non-JSON config file as a problem', () => {
    const dir = tempDir()
    const file = join(dir, 'bad.json')
    writeFileSync(file, '{ nope')
    const r = runCheck({ env: { RECOVERY_CODES_PEPPER: KEY_B64 }, configFile: file })
    expect(r.issues).toEqual([{ where: '--config', message: `${file} is not valid JSON` }])
    const missing = runCheck({ env: { RECOVERY_CODES_PEPPER: KEY_B64 }, configFile: join(dir, 'none.json') })
    expect(missing.issues[0]?.message).toMatch(/cannot read .*ENOENT/)
  })
})
