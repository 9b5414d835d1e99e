/**
 * The reference app's walkthrough in a real browser (Debian's Chromium via playwright-core), at a
 * desktop and a phone width: sign in, generate, download each format (checking the files), a
 * second format of the same batch and a refused repeat of one, email, verify setup, log out, five
 * failures and the cooldown, a
 * recovery-code login, regenerate, old codes rejected, invalidate and delete one code, delete all.
 * Afterwards the SQLite file, the server log, the cookies and the mail folder are scanned for the
 * codes (acceptance 4).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { IS_CI } from '@recovery-codes/testing'
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  artifactsDir,
  CHROMIUM,
  containsCode,
  type DemoProcess,
  filesUnder,
  launchBrowser,
  readLatin1,
  startDemoProcess,
} from './helpers.ts'

const CODE = /[0-9A-HJKMNP-TV-Z]{5}(?:-[0-9A-HJKMNP-TV-Z]{5}){4}/g
const COOLDOWN_S = 2

async function pdfText(bytes: Uint8Array): Promise<string> {
  const { getDocument } = await import('pdfjs-dist/legacy/build/pdf.mjs')
  const fonts = fileURLToPath(new URL('./standard_fonts/', import.meta.resolve('pdfjs-dist/package.json')))
  const doc = await getDocument({
    data: bytes,
    isEvalSupported: false,
    useSystemFonts: false,
    standardFontDataUrl: fonts,
  }).promise
  let text = ''
  for (let i = 1; i <= doc.numPages; i++) {
    const content = await (await doc.getPage(i)).getTextContent()
    text += `${content.items.map((it) => ('str' in it ? it.str : '')).join('\n')}\n`
  }
  await doc.destroy()
  return text
}

// Debian's Chromium is installed by .ci/run; never a downloaded browser. Locally, without it, the
// walkthrough is skipped with a message; under CI its absence fails the run.
if (!existsSync(CHROMIUM)) {
  describe('browser walkthrough', () => {
    it.runIf(IS_CI)(`requires ${CHROMIUM} under CI=true`, () => {
      throw new Error(`${CHROMIUM} is missing: apt-get install chromium`)
    })
    it.skipIf(IS_CI)(`SKIPPED: ${CHROMIUM} not installed (apt-get install chromium)`, () => {})
  })
}

for (const width of existsSync(CHROMIUM) ? [1280, 390] : []) {
  describe(`walkthrough at ${width} px`, () => {
    let demo: DemoProcess
    let ctx: BrowserContext
    let page: Page
    let shot = 0
    const dir = artifactsDir(`${width}px`)
    const setCookies: string[] = []
    const downloads: string[] = []
    const downloadTexts: string[] = []
    const shown: string[][] = []

    beforeAll(async () => {
      demo = await startDemoProcess({
        RECOVERY_CODES_COOLDOWN_BASE_SECONDS: String(COOLDOWN_S),
        RECOVERY_CODES_COOLDOWN_CUTOFF_SECONDS: '8',
      })
      ctx = await launchBrowser(width, 900)
      await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: demo.url })
      page = ctx.pages()[0] ?? (await ctx.newPage())
      page.on('dialog', (d) => void d.accept())
      page.on('response', async (r) => {
        const v = await r.headerValue('set-cookie').catch(() => null)
        if (v) setCookies.push(v)
      })
    })

    afterAll(async () => {
      await ctx?.close()
      await demo?.stop()
      if (demo) writeFileSync(join(dir, 'server.log'), demo.log())
    })

    async function snap(name: string) {
      shot += 1
      await page.screenshot({
        path: join(dir, `${String(shot).padStart(2, '0')}-${name}.png`),
        fullPage: true,
      })
    }

    async function flashText(kind: 'success' | 'error' | 'info') {
      return (await page.locator(`.flash.${kind}`).allInnerTexts()).join('\n')
    }

    async function signInWithPassword() {
      await page.goto(`${demo.url}/signin`)
      await page.getByLabel('Email').fill('demo@example.com')
      await page.getByLabel('Password').fill('demo-password')
      await page.getByRole('button', { name: 'Sign in' }).click()
    }

    /** "I have saved my codes" on the codes page: the new batch becomes the active one. */
    async function confirmSaved() {
      await page.locator('#confirm').click()
      await page.waitForURL(`${demo.url}/`)
      expect(await flashText('success')).toContain('recovery codes are active')
    }

    /** Generates and shows a batch; `confirm` (default) then says "I have saved my codes". */
    async function generate(confirm = true): Promise<string[]> {
      // Wait out the regeneration cooldown (short in this test), then generate.
      for (let i = 0; i < 40; i++) {
        await page.goto(`${demo.url}/`)
        if (await page.locator('#generate').isEnabled()) break
        await page.waitForTimeout(250)
      }
      await page.locator('#generate').click()
      await page.waitForURL(`${demo.url}/codes`)
      // The page after generating offers the codes; its button shows them (a POST).
      expect(await page.locator('#codes').count()).toBe(0)
      if (shown.length === 0) await snap('codes-ready')
      await page.locator('#show-codes').click()
      await page.locator('#codes').waitFor()
      const codes = await page.locator('#codes li code').allInnerTexts()
      expect(codes).toHaveLength(10)
      for (const c of codes) expect(c).toMatch(new RegExp(`^${CODE.source}$`))
      shown.push(codes)
      if (confirm) await confirmSaved()
      return codes
    }

    async function download(format: 'txt' | 'csv' | 'pdf'): Promise<Buffer> {
      const [dl] = await Promise.all([
        page.waitForEvent('download'),
        page.locator(`#download-${format}`).click(),
      ])
      expect(dl.suggestedFilename()).toBe(`recovery_codes.${format}`)
      const file = join(dir, `download-${shown.length}.${format}`)
      await dl.saveAs(file)
      downloads.push(file)
      return readFileSync(file)
    }

    async function enterCode(code: string) {
      await page.getByLabel('Recovery code').fill(code)
      await page.getByRole('button', { name: 'Verify and sign in' }).click()
    }

    async function logout() {
      const button = page.locator('#logout')
      await expect.poll(() => button.isVisible()).toBe(true)
      const box = await button.boundingBox()
      expect(box).not.toBeNull()
      expect(box!.x).toBeGreaterThanOrEqual(0)
      expect(box!.x + box!.width).toBeLessThanOrEqual(width)
      await button.click()
      await page.waitForURL(`${demo.url}/signin`)
    }

    it('runs the whole walkthrough', { timeout: 180_000 }, async () => {
      // 1. Sign in with the password: no codes yet, so no second step.
      await page.goto(demo.url)
      await page.waitForURL(`${demo.url}/signin`)
      await snap('signin')
      await signInWithPassword()
      await page.waitForURL(`${demo.url}/`)
      expect(await flashText('info')).toContain('no recovery codes yet')
      await snap('dashboard-empty')

      // 2. Generate: the codes page shows them once, with copy and print.
      const a = await generate(false)
      await snap('codes')
      await page.locator('#copy').click()
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(a.join('\n'))
      await expect.poll(() => page.locator('#print').isVisible()).toBe(true)
      // Not active until "I have saved my codes" (activation 'confirm', the default).
      expect(await page.locator('#pending-note').textContent()).toContain('not active yet')
      await confirmSaved()

      // 3. Download .txt: exactly the codes shown.
      const txt = (await download('txt')).toString('utf8')
      downloadTexts.push(txt)
      expect(txt.match(CODE)).toEqual(a)
      expect(txt.trimEnd().split('\n').slice(-10)).toEqual(a)

      // 4. The same format again is refused with a clear message; another format is another
      // channel of the same batch, once too (issue 16, "Saving without traps").
      await page.locator('#download-txt').click()
      await page.waitForURL(`${demo.url}/`)
      expect(await flashText('error')).toContain('already been downloaded as .txt')
      await snap('second-download-refused')
      await expect.poll(() => page.locator('#download-txt').isDisabled()).toBe(true)
      const csvOfA = (await download('csv')).toString('utf8')
      expect(
        csvOfA
          .trimEnd()
          .split('\r\n')
          .slice(1)
          .map((r) => r.split(',')[1]),
      ).toEqual(a)

      // 5. The codes page cannot be shown twice.
      await page.goto(`${demo.url}/codes`)
      await page.waitForURL(`${demo.url}/`)
      expect(await flashText('info')).toContain('already been shown')

      // 6. Email them to me (the demo writes .eml files and says where).
      await page.locator('#email-codes').click()
      await page.waitForURL(`${demo.url}/`)
      expect(await flashText('success')).toContain('successfully delivered')
      expect(await flashText('info')).toContain(join(demo.dataDir, 'mail'))
      // The mail folder also holds the security notifications (no code in them): the one
      // message with codes is the codes email.
      const emls = filesUnder(join(demo.dataDir, 'mail')).filter(
        (f) => readFileSync(f, 'utf8').match(CODE) !== null,
      )
      expect(emls).toHaveLength(1)
      expect(readFileSync(emls[0]!, 'utf8').match(CODE)).toEqual(a)

      // 7. Verify setup once, with a sloppily typed code.
      await page.locator('#verify-code').fill(` ${a[0]!.toLowerCase().replace(/-/g, ' ')} `)
      await page.locator('#verify').click()
      await page.waitForURL(`${demo.url}/`)
      expect(await flashText('success')).toContain('Setup verified')
      await expect.poll(() => page.locator('#verify').count()).toBe(0)

      // 8. Regenerate and download .csv; regenerate and download .pdf.
      const b = await generate()
      const csv = (await download('csv')).toString('utf8')
      downloadTexts.push(csv)
      const rows = csv.trimEnd().split('\r\n').slice(1)
      expect(rows.map((r) => r.split(',')[1])).toEqual(b)
      const c = await generate()
      const pdf = await download('pdf')
      expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-')
      const pdfCodes = await pdfText(new Uint8Array(pdf))
      downloadTexts.push(pdfCodes)
      expect(pdfCodes.match(CODE)).toEqual(c)
      await page.goto(`${demo.url}/`)
      await expect.poll(() => page.locator('#remaining').textContent()).toBe('10')
      await snap('dashboard-with-codes')

      // 9. Log out (visible and usable at every width).
      await logout()
      await snap('logged-out')

      // 10. Password, then five wrong codes: the same message each time, then the cooldown.
      await signInWithPassword()
      await page.waitForURL(`${demo.url}/login`)
      await snap('second-factor')
      for (let i = 1; i <= 5; i++) {
        await enterCode(a[i]!) // a superseded batch's code: fails exactly like a wrong one
        const err = await page.locator('#login-error').textContent()
        expect(err).toContain('That recovery code did not work.')
        if (i < 5) expect(err).not.toContain('Too many')
        else expect(err).toMatch(/Too many failed attempts: wait \d+ seconds? before trying again/)
      }
      await snap('cooldown')
      // Even the right code is refused while the cooldown runs: told to wait, not that it failed.
      await enterCode(c[0]!)
      const waitText = await page.locator('#login-error').textContent()
      expect(waitText).toMatch(/Too many failed attempts: wait \d+ seconds?, then enter your code again/)
      expect(waitText).not.toContain('did not work')

      // 11. After the cooldown, a good code logs in; it is marked used and the count drops.
      await page.waitForTimeout(COOLDOWN_S * 1000 + 300)
      await enterCode(c[0]!)
      await page.waitForURL(`${demo.url}/`)
      expect(await flashText('success')).toContain('9 codes left')
      expect(await page.locator('#remaining').textContent()).toBe('9')
      const firstRow = page.locator('#history tbody tr').first()
      expect(await firstRow.locator('td').nth(4).textContent()).toBe('1') // used
      expect(await firstRow.locator('td').nth(3).textContent()).toBe('9') // unused
      await snap('after-code-login')
      // Reusing the same code after logging out fails.
      await logout()
      await signInWithPassword()
      await enterCode(c[0]!)
      expect(await page.locator('#login-error').textContent()).toContain('That recovery code did not work.')
      await enterCode(c[1]!)
      await page.waitForURL(`${demo.url}/`)

      // 12. Regenerate (the password login is fresh), then the old codes are rejected.
      const d = await generate()
      await page.goto(`${demo.url}/`)
      await page.locator('#one-code').fill(c[2]!)
      await page.locator('#invalidate').click()
      await page.waitForURL(`${demo.url}/`)
      expect(await flashText('error')).toContain('does not match')
      await page.locator('#one-code').fill(d[1]!)
      await page.locator('#invalidate').click()
      expect(await flashText('success')).toContain('invalidated')
      await page.locator('#one-code').fill(d[2]!)
      await page.locator('#delete-one').click()
      expect(await flashText('success')).toContain('deleted')
      expect(await page.locator('#remaining').textContent()).toBe('8')
      await logout()
      await signInWithPassword()
      await enterCode(c[3]!)
      expect(await page.locator('#login-error').textContent()).toContain('That recovery code did not work.')
      await enterCode(d[1]!) // invalidated
      expect(await page.locator('#login-error').textContent()).toContain('That recovery code did not work.')
      await enterCode(d[0]!)
      await page.waitForURL(`${demo.url}/`)
      expect(await page.locator('#remaining').textContent()).toBe('7')
      expect(await page.locator('#low-codes').count()).toBe(0)

      // 13. History paginates (5 per page in the demo): six batches make two pages.
      await generate()
      await generate()
      await page.goto(`${demo.url}/`)
      await expect.poll(() => page.locator('#history tbody tr').count()).toBe(5)
      expect(await page.locator('.pager').textContent()).toContain('Page 1 of 2')
      await page.getByRole('link', { name: 'Older' }).click()
      await expect.poll(() => page.locator('#history tbody tr').count()).toBe(1)
      await snap('history-page-2')
      await page.getByRole('link', { name: 'Newer' }).click()

      // 14. Delete all.
      await page.locator('#delete-all').click()
      await page.waitForURL(`${demo.url}/`)
      expect(await flashText('success')).toContain('All your recovery codes were deleted')
      await expect.poll(() => page.locator('#remaining-none').isVisible()).toBe(true)
      await snap('deleted-all')
      await logout()
    })

    it('keeps every code out of the database, the log and the cookies (acceptance 4)', async () => {
      await ctx.close()
      await demo.stop()
      const codes = shown.flat()
      expect(codes.length).toBeGreaterThanOrEqual(50)
      const dbFiles = filesUnder(demo.dataDir).filter((f) => f.includes('demo.sqlite'))
      expect(dbFiles.length).toBeGreaterThan(0)
      const db = dbFiles.map(readLatin1).join('\n')
      const log = demo.log()
      const cookies = setCookies.join('\n')
      expect(cookies).toContain('rc_demo_sid')
      const mails = filesUnder(join(demo.dataDir, 'mail')).map(readLatin1)
      expect(downloads).toHaveLength(4)
      for (const code of codes) {
        expect(containsCode(db, code), `database holds ${code}`).toBe(false)
        expect(containsCode(log, code), `server log holds ${code}`).toBe(false)
        expect(containsCode(cookies, code), `a cookie holds ${code}`).toBe(false)
        for (const m of mails) {
          const headerEnd = m.indexOf('\r\n\r\n')
          expect(containsCode(m.slice(0, headerEnd), code), 'an email header holds a code').toBe(false)
        }
      }
      // Where codes may be: the first batch in the email body, each downloaded batch in its file.
      const [a, b, c] = shown
      for (const code of a!) expect(mails.some((m) => containsCode(m, code))).toBe(true)
      for (const code of a!) expect(containsCode(downloadTexts[0]!, code)).toBe(true)
      for (const code of b!) expect(containsCode(downloadTexts[1]!, code)).toBe(true)
      for (const code of c!) expect(containsCode(downloadTexts[2]!, code)).toBe(true)
      // Nothing else in the data dir (the pepper file, nothing more) holds a code.
      const others = filesUnder(demo.dataDir).filter((f) => !f.includes('demo.sqlite') && !f.endsWith('.eml'))
      for (const f of others) for (const code of codes) expect(containsCode(readLatin1(f), code)).toBe(false)
    })
  })
}
