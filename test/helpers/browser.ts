/**
 * Real Chromium (Debian's `chromium`) driven by playwright-core. The flags
 * keep it from reaching for the network, which this machine does not have.
 */
import { chromium, type Browser } from 'playwright-core'
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
