/**
 * Real Chromium (Debian's `chromium`) driven by playwright-core. The flags
 * keep it from reaching for the network, which this machine does not have.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { existsSync } from 'node:fs'

/** Where Chromium is: `CHROMIUM_PATH`, or Debian's package. */
export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p)
  const found = candidates.find((p) => existsSync(p))
  if (!found) throw new Error(`Chromium not found (looked at ${candidates.join(', ')}); install Debian's chromium package or set CHROMIUM_PATH`)
  return found
}

/** Launch a headless Chromium. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  })
}

/** A user's identity, as the page keeps it in localStorage. */
export interface TestUser {
  name: string
  color: string
}

/**
 * Open `url` in a fresh browser context as `user` (their name and colour
 * set before the page loads) and wait until the editor is connected.
 */
export async function openAs(browser: Browser, url: string, user: TestUser, connectTimeoutMs = 20_000): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext()
  await context.addInitScript((identity) => {
    localStorage.setItem('cometpad:user', JSON.stringify(identity))
  }, user)
  const page = await context.newPage()
  page.on('pageerror', (error) => console.error(`[${user.name}] page error:`, error.message))
  await page.goto(url)
  await page.locator('#status[data-connection="connected"]').waitFor({ timeout: connectTimeoutMs })
  return { context, page }
}
