/**
 * An editor and a reader in two real Chromium contexts: the reader, on the
 * view-only link, watches the editor's text and named cursor live, cannot
 * change anything, and still shows up in the editor's presence list. The
 * Share dialog offers each of them the links they may pass on.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type { DocId } from '../../common/ids'
import { startServer, type TestServer } from '../helpers/start-server'
import { launchBrowser, openAs } from '../helpers/browser'

/** The document's text as the server stores it. */
async function storedText(server: TestServer, docId: DocId): Promise<string> {
  const doc = new Y.Doc()
  const stored = await server.store.load(docId)
  if (stored) Y.applyUpdate(doc, stored)
  return fragmentText(doc.getXmlFragment('prosemirror'))
}

function fragmentText(node: Y.XmlFragment | Y.XmlElement): string {
  return node
    .toArray()
    .map((child) => (child instanceof Y.XmlText ? child.toString().replace(/<[^>]*>/g, '') : fragmentText(child as Y.XmlElement)))
    .join('')
}

describe('view-only links in real browsers', () => {
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

  it('lets a reader watch live, change nothing, and be seen', async () => {
    const created = await fetch(`${server.url}/api/docs`, { method: 'POST' })
    const { id, editUrl, viewUrl } = (await created.json()) as { id: DocId; editUrl: string; viewUrl: string }

    const ada = await openAs(browser, editUrl, { name: 'Ada Lovelace', color: '#d81b60' })
    contexts.push(ada.context)
    const rita = await openAs(browser, viewUrl, { name: 'Rita Reader', color: '#1e88e5' })
    contexts.push(rita.context)

    // The reader's page is view-only from the start.
    await rita.page.locator('#view-only-badge', { hasText: 'View only' }).waitFor({ timeout: 10_000 })
    assert.equal(await rita.page.locator('#toolbar').isHidden(), true)
    assert.equal(await rita.page.locator('.ProseMirror').getAttribute('contenteditable'), 'false')
    assert.equal(await rita.page.evaluate(() => window.cometpad?.provider.status.readOnly), true)
    assert.equal(await ada.page.locator('#view-only-badge').count(), 0)
    assert.equal(await ada.page.locator('#toolbar').isVisible(), true)

    // The editor types; the reader sees the text and the editor's named caret live.
    await ada.page.locator('.ProseMirror').click()
    await ada.page.keyboard.type('Hello from Ada')
    await rita.page.locator('.ProseMirror', { hasText: 'Hello from Ada' }).waitFor({ timeout: 10_000 })
    await rita.page.locator('.remote-cursor-label', { hasText: 'Ada Lovelace' }).waitFor({ timeout: 10_000 })
    await ada.page.locator('#save-status[data-saved="true"]', { hasText: 'All changes saved' }).waitFor({ timeout: 10_000 })

    // The editor sees the reader in the presence list.
    await ada.page.locator('#presence .presence-user[data-name="Rita Reader"]').waitFor({ timeout: 10_000 })

    // The reader tries to type and to format.
    await rita.page.locator('.ProseMirror').click()
    await rita.page.keyboard.type('XYZ typed by Rita')
    await rita.page.keyboard.press('Enter')
    await rita.page.keyboard.press('Backspace')
    await rita.page.keyboard.press('Control+b')
    // A later presence change travels the same channel after anything the
    // typing could have sent: once the editor sees it, it all arrived.
    await rita.page.locator('#user-name').fill('Rita, done typing')
    await ada.page.locator('#presence .presence-user[data-name="Rita, done typing"]').waitFor({ timeout: 10_000 })

    // The documents' text (the DOM also holds the remote carets' labels).
    const text = (page: Page) => page.evaluate(() => window.cometpad?.view.state.doc.textContent)
    assert.equal(await text(rita.page), 'Hello from Ada')
    assert.equal(await text(ada.page), 'Hello from Ada')
    assert.equal(await rita.page.evaluate(() => window.cometpad?.provider.status.unsavedCount), 0)
    const room = server.rooms.peek(id)
    assert.ok(room)
    await room.durable()
    assert.equal(await storedText(server, id), 'Hello from Ada')
  })

  it('offers an editor both links and a reader only the view link', async () => {
    const created = await fetch(`${server.url}/api/docs`, { method: 'POST' })
    const { editUrl, viewUrl } = (await created.json()) as { editUrl: string; viewUrl: string }
    const ed = await openAs(browser, editUrl, { name: 'Ed', color: '#43a047' })
    const vi = await openAs(browser, viewUrl, { name: 'Vi', color: '#fb8c00' })
    contexts.push(ed.context, vi.context)

    await ed.page.locator('#share').click()
    const dialog = ed.page.getByRole('dialog', { name: 'Share this document' })
    await dialog.waitFor()
    assert.equal(await ed.page.locator('#share').getAttribute('aria-expanded'), 'true')
    assert.equal(await dialog.getByLabel('Edit link', { exact: true }).inputValue(), editUrl)
    await ed.page.waitForFunction((url) => (document.getElementById('share-view-link') as HTMLInputElement | null)?.value === url, viewUrl)
    assert.equal(await dialog.getByRole('button', { name: /Copy the/ }).count(), 2)
    await ed.page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'detached' })
    assert.equal(await ed.page.locator('#share').getAttribute('aria-expanded'), 'false')

    await vi.page.locator('#share').click()
    const readerDialog = vi.page.getByRole('dialog', { name: 'Share this document' })
    await readerDialog.waitFor()
    assert.equal(await readerDialog.getByLabel('View-only link', { exact: true }).inputValue(), viewUrl)
    assert.equal(await readerDialog.getByLabel('Edit link', { exact: true }).count(), 0)
    assert.doesNotMatch((await readerDialog.textContent()) ?? '', new RegExp(new URL(editUrl).pathname.slice(3)))
  })
})
