/**
 * Real Chromium against servers with tiny limits: typing past the document
 * size limit shows a clear, non-blocking notice that the last change was
 * not saved, and the editor stays usable; a document the server is too busy
 * to open says so, and opens by itself once the server has room.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Browser, BrowserContext } from 'playwright-core'
import { startServer, type TestServer } from '../helpers/start-server'
import { launchBrowser, openAs } from '../helpers/browser'
import { connectClient } from '../helpers/comet-client'
import { waitFor } from '../helpers/wait-for'

describe('document limits in a real browser', () => {
  let server: TestServer
  let browser: Browser
  const contexts: BrowserContext[] = []
  const maxDocBytes = 2_048

  before(async () => {
    server = await startServer({ maxDocBytes })
    browser = await launchBrowser()
  })
  after(async () => {
    for (const context of contexts) await context.close().catch(() => {})
    await browser?.close()
    await server?.stop()
  })

  it('shows a notice when typing takes the document past its size limit, without blocking the editor', async () => {
    const { docId } = await server.directory.create()
    const ada = await openAs(browser, `${server.url}/d/${docId}`, { name: 'Ada', color: '#d81b60' })
    contexts.push(ada.context)
    const { page } = ada
    const notice = page.locator('#notices .notice[data-notice="size-limit"]')
    assert.equal(await page.locator('#notices').isHidden(), true, 'no notice at first')
    await page.locator('.ProseMirror').click()
    await page.keyboard.type('fits easily. ')
    await page.locator('#save-status[data-saved="true"]').waitFor({ timeout: 10_000 })
    assert.equal(await notice.count(), 0)

    // Each keystroke is an update of some tens of bytes: 200 of them pass 2 KiB.
    for (let i = 0; i < 20 && (await notice.count()) === 0; i++) await page.keyboard.type('0123456789')
    await notice.waitFor({ timeout: 10_000 })
    assert.match((await notice.textContent()) ?? '', /This document has reached its size limit; your last change was not saved/)
    assert.equal(await page.locator('#notices').getAttribute('role'), 'status', 'announced politely, not as a modal alert')
    assert.match((await page.locator('#save-status').textContent()) ?? '', /Not saved — size limit/)
    // Non-blocking: the editor still takes input, and the notice covers nothing.
    assert.equal(await page.locator('.ProseMirror').getAttribute('contenteditable'), 'true')
    await page.keyboard.type('!')
    assert.match((await page.locator('.ProseMirror').textContent()) ?? '', /!$/)
    const room = server.rooms.peek(docId)
    assert.ok(room && room.sizeEstimate <= maxDocBytes, `the server kept the document within ${maxDocBytes} bytes (${room?.sizeEstimate})`)
  })

  it('says the server is busy while it cannot open the document, and loads it by itself once it can', async () => {
    const busyServer = await startServer({ maxOpenRooms: 1 })
    const occupier = connectClient(busyServer.url)
    try {
      const [first, second] = await Promise.all([busyServer.directory.create(), busyServer.directory.create()])
      const held = occupier.open(first.docId)
      await waitFor(() => held.status.synced, 'the only room to be taken')

      const ada = await openAs(browser, `${busyServer.url}/d/${second.docId}`, { name: 'Ada', color: '#d81b60' })
      contexts.push(ada.context)
      const notice = ada.page.locator('#notices .notice[data-notice="server-busy"]')
      await notice.waitFor({ timeout: 10_000 })
      assert.match((await notice.textContent()) ?? '', /server is busy.*retrying/)
      assert.equal(await ada.page.locator('.ProseMirror').getAttribute('contenteditable'), 'true', 'the editor is not blocked')

      occupier.close()
      await notice.waitFor({ state: 'detached', timeout: 15_000 })
      assert.equal(await ada.page.locator('#notices').isHidden(), true)
      assert.equal(await ada.page.evaluate(() => window.cometpad?.provider.status.synced), true)
      await ada.page.locator('.ProseMirror').click()
      await ada.page.keyboard.type('opened after all')
      await ada.page.locator('#save-status[data-saved="true"]').waitFor({ timeout: 10_000 })
      await waitFor(() => busyServer.rooms.peek(second.docId)?.doc.getXmlFragment('prosemirror').toString().includes('opened after all'), 'the text on the server')
    } finally {
      occupier.close()
      await busyServer.stop()
    }
  })
})
