/** Test helpers: the demo as a child process, Debian's Chromium through playwright-core, scans. */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BrowserContext, chromium } from 'playwright-core'

export const EXAMPLE_DIR = fileURLToPath(new URL('..', import.meta.url))
export const ARTIFACTS_DIR = fileURLToPath(new URL('../../../test-artifacts/express-sqlite', import.meta.url))
export const CHROMIUM = '/usr/bin/chromium'

/** The flags every browser test launches with (no network chatter, no sandbox in containers). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export interface DemoProcess {
  url: string
  dataDir: string
  /** Everything the server wrote to stdout and stderr. */
  log(): string
  stop(): Promise<void>
}

/** Starts `src/main.ts` on port 0 with a fresh data dir; resolves once it prints its URL. */
export async function startDemoProcess(env: Record<string, string> = {}): Promise<DemoProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rc-demo-'))
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: EXAMPLE_DIR,
    env: {
      ...process.env,
      PORT: '0',
      DEMO_DATA_DIR: dataDir,
      RECOVERY_CODES_PEPPER: undefined,
      RECOVERY_CODES_PEPPERS: undefined,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString('utf8')
  })
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString('utf8')
  })
  const url = await new Promise<string>((ok, ko) => {
    const timer = setTimeout(() => ko(new Error(`demo did not start:\n${out}`)), 30_000)
    const check = () => {
      const m = /running at (http:\/\/localhost:\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        ok(m[1]!)
      }
    }
    child.stdout!.on('data', check)
    child.once('exit', (code) => {
      clearTimeout(timer)
      ko(new Error(`demo exited with ${code}:\n${out}`))
    })
  })
  return {
    url,
    dataDir,
    log: () => out,
    stop: () =>
      new Promise<void>((ok) => {
        if (child.exitCode !== null) return ok()
        child.once('exit', () => ok())
        child.kill('SIGTERM')
      }),
  }
}

/** A fresh Chromium profile; never downloads a browser. */
export async function launchBrowser(width: number, height: number): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`)
  }
  const profile = mkdtempSync(join(tmpdir(), 'rc-chromium-'))
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width, height },
    acceptDownloads: true,
  })
}

export function artifactsDir(name: string): string {
  const dir = join(ARTIFACTS_DIR, name)
  mkdirSync(dir, { recursive: true })
  return dir
}

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? filesUnder(p) : [p]
  })
}

/** The forms a code could be stored in: as shown, canonical (no dashes), lower-case. */
export function needles(code: string): string[] {
  const canonical = code.replace(/-/g, '')
  return [code, canonical, code.toLowerCase(), canonical.toLowerCase()]
}

/** Whether `haystack` (any bytes, read as latin1) contains any form of `code`. */
export function containsCode(haystack: string | Buffer, code: string): boolean {
  const text = typeof haystack === 'string' ? haystack : haystack.toString('latin1')
  return needles(code).some((n) => text.includes(n))
}

export function readLatin1(file: string): string {
  return readFileSync(file).toString('latin1')
}
