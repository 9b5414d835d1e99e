/**
 * The NIST SP 800-63B-4 recovery lifecycle (issue 16) in a real browser (Debian's Chromium via
 * playwright-core), at 1280 and 390 px, with axe-core on every page (0 serious or critical
 * violations): generate → the codes page (copy, print sheet, each download, pending note) → "I have
 * saved my codes" → email after confirm → a recovery login with `replaceOnUse` shows the
 * replacement code once (copy, print) → it works → the "This wasn't me" link of the notification
 * email: GET explains and changes nothing, POST revokes and shows the contact, a replay and a
 * garbled link are refused with a 4xx.
 */

import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { IS_CI } from '@recovery-codes/testing'
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEMO_CONTACT } from '../src/app.ts'
import {
  artifactsDir,
  CHROMIUM,
  type DemoProcess,
  filesUnder,
  launchBrowser,
  startDemoProcess,
} from './helpers.ts'

const SITE = 'Recovery Codes Demo'
const ACCOUNT = 'demo@example.com'
const CODE = /^[0-9A-HJKMNP-TV-Z]{5}(?:-[0-9A-HJKMNP-TV-Z]{5}){4}$/
const DATE = /\d{4}-\d\d-\d\d \d\d:\d\d UTC/

function axeSource(): string | null {
  try {
    return readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
  } catch {
    return null
  }
}
const AXE = axeSource()

interface Finding {
  id: string
  impact: string | null
  targets: string[]
}

async function axe(page: Page): Promise<Finding[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE!)
  return page.evaluate(async () => {
    const w = window as unknown as {
      axe: {
        run(
          ctx: Document,
          o: object,
        ): Promise<{ violations: { id: string; impact: string | null; nodes: { target: string[] }[] }[] }>
      }
    }
    const r = await w.axe.run(document, { resultTypes: ['violations'] })
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }))
  })
}

/** The "This wasn't me" tokens in the demo's mail folder, oldest file first. */
function repudiationTokens(mailDir: string): string[] {
  // Each message has the link twice (text and HTML part): one entry per link.
  return [
    ...new Set(
      filesUnder(mailDir)
        .sort()
        .flatMap((f) => {
          // The bodies are quoted-printable: soft line breaks and `=XX` escapes undone.
          const text = readFileSync(f, 'utf8')
            .replace(/=\r?\n/g, '')
            .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
          return [...text.matchAll(/\/wasnt-me\?token=([A-Za-z0-9._%-]+)/g)].map((m) =>
            decodeURIComponent(m[1]!),
          )
        }),
    ),
  ]
}

const missing = !existsSync(CHROMIUM)
  ? `${CHROMIUM} is missing`
  : AXE === null
    ? 'axe-core is not installed'
    : null
if (missing) {
  describe('recovery lifecycle (browser)', () => {
    it.runIf(IS_CI)(`requires Chromium and axe-core under CI=true: ${missing}`, () => {
      throw new Error(missing)
    })
    it.skipIf(IS_CI)(`SKIPPED: ${missing}`, () => {})
  })
} else {
  const report: Record<string, Record<number, string[]>> = {}
  afterAll(() =>
    console.log(`axe findings per lifecycle page and width:\n${JSON.stringify(report, null, 1)}`),
  )

  for (const width of [1280, 390]) {
    describe(`recovery lifecycle at ${width} px`, () => {
      let demo: DemoProcess
      let ctx: BrowserContext
      let page: Page
      const dir = artifactsDir(`lifecycle-${width}px`)
      const cspReports: string[] = []
      const snap = (name: string) => page.screenshot({ path: join(dir, `${name}.png`), fullPage: true })

      beforeAll(async () => {
        demo = await startDemoProcess({
          RECOVERY_CODES_REPLACE_ON_USE: 'true',
          RECOVERY_CODES_COOLDOWN_BASE_SECONDS: '1',
          RECOVERY_CODES_COOLDOWN_CUTOFF_SECONDS: '2',
        })
        ctx = await launchBrowser(width, 900)
        await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: demo.url })
        page = ctx.pages()[0] ?? (await ctx.newPage())
        page.on('dialog', (d) => void d.accept())
        page.on('console', (m) => {
          if (/Content Security Policy/i.test(m.text())) cspReports.push(m.text())
        })
      })
      afterAll(async () => {
        await ctx?.close()
        await demo?.stop()
      })

      async function check(name: string) {
        const found = await axe(page)
        report[name] ??= {}
        report[name][width] = found.map((f) => `${f.id} (${f.impact})`)
        const bad = found.filter((f) => f.impact === 'serious' || f.impact === 'critical')
        expect(bad, `${name} at ${width} px: ${JSON.stringify(bad)}`).toEqual([])
        expect(cspReports, 'CSP reports').toEqual([])
        // Every page has one h1, one main landmark and the polite live region.
        expect(await page.getByRole('heading', { level: 1 }).count(), name).toBe(1)
        expect(await page.locator('#live[aria-live="polite"]').count(), name).toBe(1)
      }

      const flash = async (kind: 'success' | 'error' | 'info') =>
        (await page.locator(`.flash.${kind}`).allInnerTexts()).join('\n')

      async function signIn() {
        await page.goto(`${demo.url}/signin`)
        await page.getByLabel('Email').fill(ACCOUNT)
        await page.getByLabel('Password').fill('demo-password')
        await page.getByRole('button', { name: 'Sign in' }).click()
      }

      /** The print media shows the sheet (site, account, date, batch id) and hides the controls. */
      async function checkPrintSheet(batchId: string, name: string) {
        expect(await page.locator('#sheet').isVisible()).toBe(false)
        await page.emulateMedia({ media: 'print' })
        try {
          const text = (await page.locator('#sheet').textContent()) ?? ''
          expect(await page.locator('#sheet').isVisible()).toBe(true)
          expect(text).toContain(SITE)
          expect(text).toContain(ACCOUNT)
          expect(text).toMatch(DATE)
          expect(text).toContain(batchId)
          expect(await page.locator('#codes').isVisible()).toBe(true)
          for (const hidden of ['#print', '#copy', '#logout', 'header.top', 'form'])
            expect(await page.locator(hidden).first().isVisible(), `${hidden} printed`).toBe(false)
          await snap(`${name}-print`)
        } finally {
          await page.emulateMedia({ media: 'screen' })
        }
      }

      async function copyAnnounced(expected: string) {
        await page.locator('#copy').click()
        expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(expected)
        await expect
          .poll(() => page.locator('#live').textContent())
          .toBe('The codes were copied to the clipboard.')
      }

      let codes: string[] = []

      it('generate → codes page (copy, print, each download) → "I have saved my codes" → email', async () => {
        await signIn()
        await page.waitForURL(`${demo.url}/`)
        await check('dashboard (no codes)')
        await page.locator('#generate').click()
        await page.waitForURL(`${demo.url}/codes`)
        await check('codes ready')
        await page.locator('#show-codes').click()
        await page.locator('#codes').waitFor()
        codes = await page.locator('#codes li code').allInnerTexts()
        expect(codes).toHaveLength(10)
        for (const c of codes) expect(c).toMatch(CODE)
        // Not active until confirmed; the primary button says so.
        expect(await page.locator('#pending-note').textContent()).toContain('not active yet')
        const confirm = page.getByRole('button', { name: 'I have saved my codes' })
        expect(await confirm.count()).toBe(1)
        expect(await confirm.getAttribute('aria-describedby')).toBe('confirm-hint')
        await check('codes (pending)')
        await snap('codes-pending')

        await copyAnnounced(codes.join('\n'))
        const batchId = (await page.locator('#batch-id').textContent()) ?? ''
        expect(batchId).toMatch(/\S+/)
        await checkPrintSheet(batchId, 'codes')
        // Each format downloads once, from the codes page, announced in the live region.
        for (const format of ['txt', 'csv', 'pdf'] as const) {
          const [dl] = await Promise.all([
            page.waitForEvent('download'),
            page.locator(`#download-${format}`).click(),
          ])
          expect(dl.suggestedFilename()).toBe(`recovery_codes.${format}`)
          await expect.poll(() => page.locator('#live').textContent()).toContain(`.${format} file`)
          if (format === 'txt') expect(readFileSync((await dl.path())!, 'utf8')).toContain(codes[0]!)
          await dl.delete()
        }
        expect(await page.locator('#email-codes').isVisible()).toBe(true)

        // The dashboard meanwhile: not active yet, no active batch, the confirm offered there too.
        await page.goto(`${demo.url}/`)
        expect(await page.locator('#pending-note').textContent()).toContain('not active yet')
        expect(await page.locator('#remaining-none').isVisible()).toBe(true)
        await check('dashboard (pending)')
        await snap('dashboard-pending')

        // Confirm with the keyboard: focus the button, press Enter.
        await page.locator('#confirm-dashboard').focus()
        await page.keyboard.press('Enter')
        await page.locator('.flash.success', { hasText: 'Your recovery codes are active.' }).waitFor()
        expect(await page.locator('.flash.success').getAttribute('role')).toBe('status')
        await expect.poll(() => page.locator('#remaining').textContent()).toBe('10')
        expect(await page.locator('#pending-note').count()).toBe(0)
        await check('dashboard (confirmed)')
        // The email channel still works after the confirm, once.
        await page.locator('#email-codes').click()
        await page.locator('.flash.success', { hasText: 'successfully delivered' }).waitFor()
        await snap('dashboard-confirmed')
      })

      let replacement = ''

      it('a recovery login shows the replacement code once, with copy and print; it works', async () => {
        await page.locator('#logout').click()
        await page.waitForURL(`${demo.url}/signin`)
        await signIn()
        await page.waitForURL(`${demo.url}/login`)
        await page.getByLabel('Recovery code').fill(codes[0]!)
        await page.getByRole('button', { name: 'Verify and sign in' }).click()
        await page.waitForURL(`${demo.url}/replacement`)
        expect(await flash('success')).toContain('a replacement code was issued')
        await check('replacement ready')
        await snap('replacement-ready')
        await page.locator('#show-replacement').click()
        await page.locator('#codes').waitFor()
        const shownCodes = await page.locator('#codes li code').allInnerTexts()
        expect(shownCodes).toHaveLength(1)
        replacement = shownCodes[0]!
        expect(replacement).toMatch(CODE)
        expect(codes).not.toContain(replacement)
        await check('replacement code')
        await snap('replacement')
        await copyAnnounced(replacement)
        const batchId = (await page.locator('#sheet-batch').textContent()) ?? ''
        expect(batchId).toMatch(/\S+/)
        await checkPrintSheet(batchId, 'replacement')
        // Shown once: a reload (a new POST is not offered) and a GET lead back to the dashboard.
        await page.goto(`${demo.url}/replacement`)
        await page.waitForURL(`${demo.url}/`)
        await expect.poll(() => page.locator('#remaining').textContent()).toBe('10')
        await page.locator('#logout').click()
        await page.waitForURL(`${demo.url}/signin`)
        // The replacement is a working code.
        await signIn()
        await page.waitForURL(`${demo.url}/login`)
        await page.getByLabel('Recovery code').fill(replacement)
        await page.getByRole('button', { name: 'Verify and sign in' }).click()
        await page.waitForURL(`${demo.url}/replacement`)
      })

      it('"This wasn\'t me": GET explains and changes nothing; POST revokes with the contact; replays refused', async () => {
        const tokens = repudiationTokens(join(demo.dataDir, 'mail'))
        expect(tokens.length).toBeGreaterThanOrEqual(2)
        const [token, other] = [tokens.at(-1)!, tokens.at(-2)!]
        const link = `${demo.url}/wasnt-me?token=${encodeURIComponent(token)}`
        // A GET (a mail scanner, a preview, a reload) revokes nothing.
        for (let i = 0; i < 2; i++) {
          const res = await page.goto(link)
          expect(res?.status()).toBe(200)
        }
        expect(await page.locator('#repudiate-effects').textContent()).toContain(
          'disable all your current recovery codes',
        )
        expect(await page.locator('#contact').textContent()).toBe(DEMO_CONTACT)
        await check("this wasn't me (confirm)")
        await snap('wasnt-me')
        await page.goto(`${demo.url}/`)
        await expect.poll(() => page.locator('#remaining').textContent()).toBe('10')

        await page.goto(link)
        await page.locator('#repudiate').focus()
        await page.keyboard.press('Enter')
        await page.locator('#repudiate-result').waitFor()
        expect(await page.locator('#repudiate-result').textContent()).toContain('no longer work')
        expect(await page.locator('#contact').textContent()).toBe(DEMO_CONTACT)
        await check("this wasn't me (done)")
        await snap('wasnt-me-done')
        // The demo's onRepudiated ended the user's sessions; the codes no longer sign in.
        await page.goto(`${demo.url}/`)
        await page.waitForURL(`${demo.url}/signin`)

        // The same link again, another (older) link after the revoke, and a garbled one: 4xx, clear.
        const again = await page.goto(link)
        expect(again?.status()).toBe(409)
        expect(await page.locator('h1').textContent()).toBe('This link was already used')
        expect(await page.locator('#repudiate').count()).toBe(0)
        await check("this wasn't me (used)")
        const garbled = await page.goto(
          `${demo.url}/wasnt-me?token=${encodeURIComponent(`${token.slice(0, -4)}0000`)}`,
        )
        expect(garbled?.status()).toBe(400)
        expect(await page.locator('h1').textContent()).toBe('This link is not valid')
        await check("this wasn't me (invalid)")
        await snap('wasnt-me-invalid')
        const none = await page.goto(`${demo.url}/wasnt-me`)
        expect(none?.status()).toBe(400)
        // An older, unused link still works once: there was no batch left to disable.
        const older = await page.goto(`${demo.url}/wasnt-me?token=${encodeURIComponent(other)}`)
        expect(older?.status()).toBe(200)
        await page.locator('#repudiate').click()
        await page.locator('#repudiate-result').waitFor()
        expect(await page.locator('#repudiate-result').textContent()).toContain('none had to be disabled')
      })
    })
  }
}
