/**
 * Two people in two real Chromium contexts edit one document: text, cursors
 * with names, presence, save status, and a reload.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Browser, BrowserContext } from 'playwright-core'
import { startServer, type TestServer } from '../helpers/start-server'
import { launchBrowser, openAs } from '../helpers/browser'

describe('two users in real browsers', () => {
  let server: TestServer
  let browser: Browser
  const contexts: BrowserContext[] = []

  before(async () => {
    server = await startServer()
    browser = await launchBrowser()
  })
  after(async () => {
    for (const context of contexts) await context.close()
    await browser?.close()
    await server?.stop()
  })

  it('GET / creates a document and redirects to its edit link', async () => {
    const response = await fetch(`${server.url}/`, { redirect: 'manual' })
    assert.equal(response.status, 302)
    const location = response.headers.get('location') ?? ''
    assert.match(location, /^\/d\/[A-Za-z0-9_-]{22}$/)
    const page = await fetch(`${server.url}${location}`)
    assert.equal(page.status, 200)
    assert.match(await page.text(), /<div id="editor"/)
  })

  it('shows what one user types to the other, with a named cursor, and keeps it across a reload', async () => {
    const response = await fetch(`${server.url}/`, { redirect: 'manual' })
    const link = `${server.url}${response.headers.get('location')}`
    const ada = await openAs(browser, link, { name: 'Ada Lovelace', color: '#d81b60' })
    const alan = await openAs(browser, link, { name: 'Alan Turing', color: '#1e88e5' })
    contexts.push(ada.context, alan.context)

    await ada.page.locator('.ProseMirror').click()
    await ada.page.keyboard.type('Hello from Ada')
    await alan.page.locator('.ProseMirror', { hasText: 'Hello from Ada' }).waitFor({ timeout: 10_000 })

    // Alan sees Ada's caret, labelled with her name, in her colour.
    const label = alan.page.locator('.remote-cursor-label', { hasText: 'Ada Lovelace' })
    await label.waitFor({ timeout: 10_000 })
    const caretColor = await alan.page.locator('.remote-cursor').first().evaluate((el) => getComputedStyle(el).borderLeftColor || getComputedStyle(el).borderColor)
    assert.match(caretColor, /rgb\(216, 27, 96\)/)

    // Both appear in each other's presence list.
    await alan.page.locator('#presence .presence-user[data-name="Ada Lovelace"]').waitFor({ timeout: 10_000 })
    await ada.page.locator('#presence .presence-user[data-name="Alan Turing"]').waitFor({ timeout: 10_000 })

    // Alan answers with bold text; Ada sees it.
    await alan.page.locator('.ProseMirror').click()
    await alan.page.keyboard.press('End')
    await alan.page.keyboard.press('Enter')
    await alan.page.keyboard.press('Control+b')
    await alan.page.keyboard.type('Hi Ada')
    await ada.page.locator('.ProseMirror strong', { hasText: 'Hi Ada' }).waitFor({ timeout: 10_000 })

    // Everything confirmed stored.
    await ada.page.locator('#save-status[data-saved="true"]', { hasText: 'All changes saved' }).waitFor({ timeout: 10_000 })
    await alan.page.locator('#save-status[data-saved="true"]').waitFor({ timeout: 10_000 })

    // A reload, in a brand-new context (no local copy), shows the whole document.
    const fresh = await openAs(browser, link, { name: 'Grace Hopper', color: '#43a047' })
    contexts.push(fresh.context)
    await fresh.page.locator('.ProseMirror', { hasText: 'Hello from Ada' }).waitFor({ timeout: 10_000 })
    await fresh.page.locator('.ProseMirror strong', { hasText: 'Hi Ada' }).waitFor({ timeout: 10_000 })
    await ada.page.reload()
    await ada.page.locator('.ProseMirror', { hasText: 'Hi Ada' }).waitFor({ timeout: 10_000 })

    // Closing a tab removes that user's cursor for the others within seconds.
    await fresh.page.locator('.ProseMirror').click()
    await alan.page.locator('.remote-cursor-label', { hasText: 'Grace Hopper' }).waitFor({ timeout: 10_000 })
    await fresh.context.close()
    await alan.page.locator('#presence .presence-user[data-name="Grace Hopper"]').waitFor({ state: 'detached', timeout: 5_000 })
    assert.equal(await alan.page.locator('.remote-cursor-label', { hasText: 'Grace Hopper' }).count(), 0)
  })

  it('shows a user name with markup as literal text', async () => {
    const response = await fetch(`${server.url}/`, { redirect: 'manual' })
    const link = `${server.url}${response.headers.get('location')}`
    const evil = '<img src=x onerror=alert(1)>'
    const mallory = await openAs(browser, link, { name: evil, color: '#000000' })
    const bob = await openAs(browser, link, { name: 'Bob', color: '#fb8c00' })
    contexts.push(mallory.context, bob.context)
    let dialogs = 0
    bob.page.on('dialog', (dialog) => {
      dialogs++
      void dialog.dismiss()
    })
    await mallory.page.locator('.ProseMirror').click()
    await mallory.page.keyboard.type('x')
    const label = bob.page.locator('.remote-cursor-label').first()
    await label.waitFor({ timeout: 10_000 })
    assert.equal(await label.textContent(), evil)
    assert.equal(await bob.page.locator('img[src="x"], img[onerror]').count(), 0)
    assert.equal(dialogs, 0)
  })
})
