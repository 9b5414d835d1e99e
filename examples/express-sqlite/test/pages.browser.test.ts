/**
 * Issue 16, "The pages, made for people", in a real browser (Debian's Chromium via playwright-core)
 * at 1280 and 390 px: axe-core on every page the issue touches (sign-in, the recovery login with
 * an error, the 404 page, the codes pages, the dashboard with a long history and its second page,
 * re-authentication) with no serious or critical violation; the printed sheet (`@media print`);
 * the live region; codes spelled for screen readers; the history region reachable by keyboard and
 * not clipped; the Regenerate button enabling itself when its cooldown ends; the cooldown and
 * empty-submission messages of the login. The pages' CSP stays on (no `bypassCSP`): axe is
 * evaluated through the DevTools protocol, and any CSP report fails the test.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { IS_CI } from '@recovery-codes/testing'
import { dashboardPage, pagePaths } from '@recovery-codes/ui'
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { artifactsDir, CHROMIUM, type DemoProcess, launchBrowser, startDemoProcess } from './helpers.ts'

/** axe-core's browser bundle, or `null` when the package is not installed. */
function axeSource(): string | null {
  try {
    return readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
  } catch {
    return null
  }
}

const AXE = axeSource()
const BATCHES = 8
const SITE = 'Recovery Codes Demo'
const ACCOUNT = 'demo@example.com'

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

const missing = !existsSync(CHROMIUM)
  ? `${CHROMIUM} is missing`
  : AXE === null
    ? 'axe-core is not installed'
    : null
if (missing) {
  describe('pages for people (browser)', () => {
    it.runIf(IS_CI)(`requires Chromium and axe-core under CI=true: ${missing}`, () => {
      throw new Error(missing)
    })
    it.skipIf(IS_CI)(`SKIPPED: ${missing}`, () => {})
  })
} else {
  describe('pages for people (browser)', () => {
    let demo: DemoProcess
    /** The newest batch's codes, for the logins of the tests (each login spends one). */
    let codes: string[] = []
    const report: Record<string, Record<number, { serious: number; critical: number; all: string[] }>> = {}

    beforeAll(async () => {
      demo = await startDemoProcess({
        RECOVERY_CODES_COOLDOWN_BASE_SECONDS: '1',
        RECOVERY_CODES_COOLDOWN_CUTOFF_SECONDS: '2',
        RECOVERY_CODES_HISTORY_PER_PAGE: '6',
      })
      // A long history: eight batches, two pages. Between two batches the Regenerate button
      // enables itself when the cooldown ends, without a reload.
      const ctx = await launchBrowser(1280, 900)
      try {
        const page = ctx.pages()[0] ?? (await ctx.newPage())
        page.on('dialog', (d) => void d.accept())
        await signIn(page)
        for (let i = 0; i < BATCHES; i++) {
          await page.goto(`${demo.url}/`)
          const generate = page.locator('#generate')
          if (i > 0) {
            expect(await generate.isDisabled(), `batch ${i}: cooldown after the previous one`).toBe(true)
            expect(await generate.getAttribute('data-enable-in')).toMatch(/^\d+$/)
          }
          await page.waitForFunction(
            () => !(document.getElementById('generate') as HTMLButtonElement).disabled,
            null,
            {
              timeout: 15_000,
            },
          )
          if (i > 0)
            expect(await page.locator('#generate-cooldown').textContent()).toBe(
              'You can generate a new batch now.',
            )
          await generate.click()
          await page.waitForURL(`${demo.url}/codes`)
          await page.locator('#show-codes').click()
          await page.locator('#codes').waitFor()
          codes = await page.locator('#codes li code').allInnerTexts()
          // "I have saved my codes" (activation 'confirm', the default) turns the batch on.
          await page.locator('#confirm').click()
          await page.waitForURL(`${demo.url}/`)
        }
        expect(codes).toHaveLength(10)
      } finally {
        await ctx.close()
      }
    }, 120_000)

    afterAll(async () => {
      await demo?.stop()
      console.log(`axe (serious/critical) per page and width:\n${JSON.stringify(report, null, 1)}`)
    })

    async function signIn(page: Page) {
      await page.goto(`${demo.url}/signin`)
      await page.getByLabel('Email').fill(ACCOUNT)
      await page.getByLabel('Password').fill('demo-password')
      await page.getByRole('button', { name: 'Sign in' }).click()
    }

    for (const width of [1280, 390]) {
      describe(`at ${width} px`, () => {
        let ctx: BrowserContext
        let page: Page
        const cspReports: string[] = []
        const dir = artifactsDir(`pages-${width}px`)
        const snap = (name: string) => page.screenshot({ path: join(dir, `${name}.png`), fullPage: true })

        beforeAll(async () => {
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
        })

        /** axe on the current page: no serious or critical violation, and never a scroll trap. */
        async function check(name: string) {
          const found = await axe(page)
          const bad = found.filter((f) => f.impact === 'serious' || f.impact === 'critical')
          report[name] ??= {}
          report[name][width] = {
            serious: found.filter((f) => f.impact === 'serious').length,
            critical: found.filter((f) => f.impact === 'critical').length,
            all: found.map((f) => `${f.id} (${f.impact})`),
          }
          expect(bad, `${name} at ${width} px: ${JSON.stringify(bad)}`).toEqual([])
          expect(found.map((f) => f.id)).not.toContain('scrollable-region-focusable')
          expect(cspReports, 'CSP reports').toEqual([])
        }

        it('sign-in, the 404 page (signed out and in) and the recovery login with its messages', async () => {
          await page.goto(`${demo.url}/signin`)
          await check('signin')

          const missingPage = await page.goto(`${demo.url}/no/such/page`)
          expect(missingPage?.status()).toBe(404)
          expect(await page.title()).toBe(`Page not found · ${SITE}`)
          expect(await page.locator('html').getAttribute('lang')).toBe('en')
          expect(await page.getByRole('main').count()).toBe(1)
          expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Page not found')
          await check('404 (signed out)')

          await signIn(page)
          await page.waitForURL(`${demo.url}/login`)
          // An empty submission (the browser's own check bypassed): its own message, no attempt spent.
          await page.locator('#code').evaluate((el) => el.removeAttribute('required'))
          await page.getByRole('button', { name: 'Verify and sign in' }).click()
          expect(await page.locator('#login-error').textContent()).toBe('Enter one of your recovery codes.')
          await page.getByLabel('Recovery code').fill('WRONG-CODE')
          await page.getByRole('button', { name: 'Verify and sign in' }).click()
          expect(await page.locator('#login-error').textContent()).toContain('did not work')
          await check('recovery login (error)')
          await page.getByLabel('Recovery code').fill(codes.shift()!)
          await page.getByRole('button', { name: 'Verify and sign in' }).click()
          await page.waitForURL(`${demo.url}/`)

          await page.goto(`${demo.url}/elsewhere`)
          expect(await page.getByRole('link', { name: 'Go to your recovery codes' }).count()).toBe(1)
          await check('404 (signed in)')
        })

        it('the dashboard with a long history: a keyboard-reachable region, not clipped', async () => {
          await page.goto(`${demo.url}/`)
          await expect.poll(() => page.locator('#history tbody tr').count()).toBe(6)
          await check('dashboard (long history)')
          await snap('dashboard-long-history')
          const wrap = page.locator('#history-wrap')
          expect(await wrap.getAttribute('tabindex')).toBe('0')
          expect(await wrap.getAttribute('role')).toBe('region')
          expect(await page.getByRole('region', { name: 'History table' }).count()).toBe(1)
          const size = await wrap.evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth }))
          if (width >= 1280) {
            // Nothing hidden behind a scrollbar on a desktop.
            expect(size.scroll).toBeLessThanOrEqual(size.client)
          } else {
            // On a phone the table scrolls, and the keyboard scrolls it: focus by Tab, then arrows.
            expect(size.scroll).toBeGreaterThan(size.client)
            await page.locator('#history-wrap').evaluate((el) => {
              const prev = el.closest('section')?.querySelector('h2')
              prev?.setAttribute('tabindex', '-1')
              ;(prev as HTMLElement | null)?.focus()
            })
            await page.keyboard.press('Tab')
            expect(await page.evaluate(() => document.activeElement?.id)).toBe('history-wrap')
            await page.keyboard.press('ArrowRight')
            await page.keyboard.press('End')
            await expect.poll(() => wrap.evaluate((el) => el.scrollLeft)).toBeGreaterThan(0)
          }
          await page.getByRole('link', { name: 'Older' }).click()
          await expect.poll(() => page.locator('.pager').textContent()).toContain('Page 2 of 2')
          expect(await page.locator('#history tbody tr').count()).toBeGreaterThan(0)
          await check('dashboard (history page 2)')
          await page.goto(`${demo.url}/reauth`)
          await check('reauth')
        })

        it('the codes pages: spelled codes, copy announced, printable sheet, download announced', async () => {
          await page.goto(`${demo.url}/`)
          await page.waitForFunction(
            () => !(document.getElementById('generate') as HTMLButtonElement).disabled,
            null,
            {
              timeout: 15_000,
            },
          )
          await page.locator('#generate').click()
          await page.waitForURL(`${demo.url}/codes`)
          await check('codes ready')
          await page.locator('#show-codes').click()
          await page.locator('#codes').waitFor()
          await check('codes')
          await snap('codes')
          const shown = await page.locator('#codes li code').allInnerTexts()
          codes = [...shown]
          expect(shown).toHaveLength(10)
          // Screen readers get each code spelled out; the grouped list is hidden from them.
          expect(await page.locator('#codes').getAttribute('aria-hidden')).toBe('true')
          const spelled = await page.locator('#codes-spelled li').allTextContents()
          expect(spelled).toEqual(
            shown.map((c) =>
              c
                .split('-')
                .map((g) => [...g].join(' '))
                .join(', '),
            ),
          )
          const list = page.getByRole('list', { name: 'Your recovery codes, spelled character by character' })
          expect(await list.getByRole('listitem').count()).toBe(10)

          // Copy: the clipboard holds the codes, and the live region says so.
          const live = page.locator('#live')
          expect(await live.getAttribute('aria-live')).toBe('polite')
          await page.locator('#copy').click()
          expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(shown.join('\n'))
          await expect.poll(() => live.textContent()).toBe('The codes were copied to the clipboard.')

          // Print: the sheet says whose codes they are, from where, when and which batch; the
          // header, buttons and forms are gone.
          const batchId = await page.locator('#batch-id').textContent()
          expect(batchId).toMatch(/\S+/)
          expect(await page.locator('#sheet').isVisible()).toBe(false)
          await page.emulateMedia({ media: 'print' })
          try {
            const sheet = page.locator('#sheet')
            expect(await sheet.isVisible()).toBe(true)
            const text = (await sheet.textContent()) ?? ''
            expect(text).toContain(SITE)
            expect(text).toContain(ACCOUNT)
            expect(text).toMatch(/\d{4}-\d\d-\d\d \d\d:\d\d UTC/)
            expect(text).toContain(batchId!)
            expect(await page.locator('#codes').isVisible()).toBe(true)
            // Each printed code fits its column (no code runs into the next one).
            const overflowing = await page
              .locator('#codes li')
              .evaluateAll((items) => items.filter((li) => li.scrollWidth > li.clientWidth).length)
            expect(overflowing).toBe(0)
            await snap('codes-print')
            for (const hidden of ['#print', '#copy', '#download-txt', '#logout', 'header.top', '#done'])
              expect(await page.locator(hidden).isVisible(), `${hidden} printed`).toBe(false)
          } finally {
            await page.emulateMedia({ media: 'screen' })
          }
          await expect.poll(() => page.locator('#print').isVisible()).toBe(true)

          // Download: the file arrives and the live region announces it.
          const [dl] = await Promise.all([
            page.waitForEvent('download'),
            page.locator('#download-txt').click(),
          ])
          expect(dl.suggestedFilename()).toBe('recovery_codes.txt')
          await expect.poll(() => live.textContent()).toContain('downloading as a .txt file')
          await expect.poll(() => page.locator('#download-txt').textContent()).toBe('Downloaded .txt')
          await dl.delete()

          // The dashboard during the new batch's cooldown, with the reveal slot still open: the
          // new codes are not active yet, the old ones still work; "I have saved my codes" is there.
          await page.goto(`${demo.url}/`)
          expect(await page.locator('#pending-note').textContent()).toContain('not active yet')
          await check('dashboard (reveal, pending, cooldown)')
          await page.locator('#confirm-dashboard').click()
          await page.waitForURL(`${demo.url}/`)
          expect(await page.locator('.flash.success').textContent()).toContain(
            'Your new recovery codes are active.',
          )
          expect(await page.locator('#pending-note').count()).toBe(0)
          await check('dashboard (confirmed)')
        })

        it('the dashboard when not fresh (password fields in the forms), rendered from the view', async () => {
          // A state the demo reaches only after 10 minutes: the view itself, in the same browser.
          const batch = (i: number) => ({
            id: `b${i}`,
            status: i === 0 ? ('active' as const) : ('superseded' as const),
            createdAt: Date.UTC(2026, 0, 1 + i),
            expiresAt: i % 2 ? Date.UTC(2027, 0, 1 + i) : null,
            endedAt: null,
            issued: 10,
            unused: 10 - (i % 10),
            used: i % 10,
            invalidated: 0,
            deleted: 0,
            viewed: true,
            downloaded: i % 2 === 0,
            emailed: i % 3 === 0,
            verified: i % 2 === 1,
            lastUsedAt: null,
          })
          const items = Array.from({ length: 20 }, (_, i) => batch(i))
          // A blank document: no CSP of a served page applies to the markup set below.
          await page.goto('about:blank')
          await page.setContent(
            dashboardPage(
              {
                siteName: SITE,
                title: 'Recovery codes',
                nonce: 'n',
                paths: pagePaths(''),
                user: { label: ACCOUNT },
                csrf: 't',
              },
              {
                remaining: 9,
                lowCodes: false,
                lowCodesThreshold: 3,
                shouldRegenerate: true,
                active: { ...items[0]!, unused: 9, used: 1 },
                generateRetryAfterMs: 1500,
                reveal: { used: ['view'], emailEnabled: true, formats: ['txt', 'csv', 'pdf'] },
                history: { items, page: 1, perPage: 20, total: 40, totalPages: 2 },
                fresh: false,
                reauthInline: true,
              },
            ),
          )
          for (const id of ['generate-password', 'one-password', 'all-password'])
            expect(await page.locator(`#${id}`).getAttribute('type')).toBe('password')
          await check('dashboard (not fresh, 20 rows)')
          const wrap = page.locator('#history-wrap')
          if (width >= 1280) expect(await wrap.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true)
          // The script enables the button when the cooldown's seconds run out.
          expect(await page.locator('#generate').isDisabled()).toBe(true)
          await expect.poll(() => page.locator('#generate').isEnabled(), { timeout: 5000 }).toBe(true)
          await snap('dashboard-not-fresh')
        })
      })
    }
  })
}
