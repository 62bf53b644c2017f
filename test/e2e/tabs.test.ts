/**
 * Several tabs of one browser share one Comet channel (the "connection
 * budget"): the server sees one session, the tabs still see each other's
 * edits, and when the leader tab closes another takes over without losing
 * an edit.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { startServer, type TestServer } from '../helpers/start-server'
import { launchBrowser } from '../helpers/browser'
import { waitFor } from '../helpers/wait-for'

type User = { name: string; color: string }

async function newContextAs(browser: Browser, user: User): Promise<BrowserContext> {
  const context = await browser.newContext()
  await context.addInitScript((identity) => {
    localStorage.setItem('cometpad:user', JSON.stringify(identity))
  }, user)
  return context
}

async function openTab(context: BrowserContext, url: string, label: string): Promise<Page> {
  const page = await context.newPage()
  page.on('pageerror', (error) => console.error(`[${label}] page error:`, error.message))
  await page.goto(url)
  await page.locator('#status[data-connection="connected"]').waitFor({ timeout: 15_000 })
  return page
}

async function newDocument(server: TestServer): Promise<string> {
  const response = await fetch(`${server.url}/`, { redirect: 'manual' })
  return `${server.url}${response.headers.get('location')}`
}

function isLeader(page: Page): Promise<boolean> {
  return page.evaluate(() => (window.cometpad?.channel as { isLeader?: boolean } | undefined)?.isLeader === true)
}

async function typeAtEnd(page: Page, text: string): Promise<void> {
  await page.locator('.ProseMirror').click()
  await page.keyboard.press('Control+End')
  await page.keyboard.type(text)
}

function editorText(page: Page): Promise<string> {
  return page.locator('.ProseMirror').innerText()
}

describe('tabs of one browser in real Chromium', () => {
  let server: TestServer
  let browser: Browser
  const contexts: BrowserContext[] = []

  before(async () => {
    server = await startServer()
    browser = await launchBrowser()
  })
  after(async () => {
    for (const context of contexts) await context.close().catch(() => {})
    await browser?.close()
    await server?.stop()
  })

  it('hold one session between them, and a tab takes over when the leader closes, losing nothing', async () => {
    const link = await newDocument(server)
    const otherLink = await newDocument(server)
    const ada = await newContextAs(browser, { name: 'Ada Lovelace', color: '#d81b60' })
    contexts.push(ada)
    const tab1 = await openTab(ada, link, 'tab 1')
    const tab2 = await openTab(ada, link, 'tab 2')
    const tab3 = await openTab(ada, otherLink, 'tab 3 (other document)')

    // One browser, three tabs, two documents: one session.
    await waitFor(() => server.sessions.size === 1, 'the three tabs to share one session')
    const leaders = await Promise.all([tab1, tab2, tab3].map(isLeader))
    assert.equal(leaders.filter(Boolean).length, 1, `exactly one leader tab, got ${JSON.stringify(leaders)}`)

    // The tabs of one document see each other's edits (the server does not
    // echo a session's own changes: the leader hands them over).
    await typeAtEnd(tab1, 'Hello from tab one')
    await tab2.locator('.ProseMirror', { hasText: 'Hello from tab one' }).waitFor({ timeout: 10_000 })
    await tab2.keyboard.press('Control+End')
    await tab2.keyboard.press('Enter')
    await tab2.keyboard.type('And tab two')
    await tab1.locator('.ProseMirror', { hasText: 'And tab two' }).waitFor({ timeout: 10_000 })
    await typeAtEnd(tab3, 'Another document')
    for (const tab of [tab1, tab2, tab3]) await tab.locator('#save-status[data-saved="true"]').waitFor({ timeout: 10_000 })

    // Tabs of one browser see each other's presence too.
    await tab1.locator('.remote-cursor').first().waitFor({ state: 'attached', timeout: 10_000 })

    // Someone else, in another browser, on the same document.
    const alan = await newContextAs(browser, { name: 'Alan Turing', color: '#1e88e5' })
    contexts.push(alan)
    const other = await openTab(alan, link, 'Alan')
    await other.locator('.ProseMirror', { hasText: 'And tab two' }).waitFor({ timeout: 10_000 })
    await waitFor(() => server.sessions.size === 2, 'one session per browser')

    // Close the leader; a tab of the first document survives it.
    const pages = [tab1, tab2, tab3]
    const leader = pages[leaders.indexOf(true)]!
    const survivor = leader === tab1 ? tab2 : tab1
    const remaining = pages.filter((page) => page !== leader)

    // Typed just before the takeover: the leader may close before forwarding it.
    await typeAtEnd(survivor, ' before takeover')
    await leader.close({ runBeforeUnload: false })
    // Typed during the takeover, before a new channel is open.
    await survivor.keyboard.type(' during takeover')

    await waitFor(async () => (await Promise.all(remaining.map(isLeader))).filter(Boolean).length === 1, 'a remaining tab to take the lead', 15_000)
    await survivor.locator('#status[data-connection="connected"]').waitFor({ timeout: 15_000 })
    await typeAtEnd(survivor, ' after takeover')

    // Alan sees all of it, and it is stored.
    await waitFor(
      async () => {
        const text = await editorText(other)
        return text.includes('before takeover') && text.includes('during takeover') && text.includes('after takeover')
      },
      'the other browser to see every edit made around the takeover',
      15_000,
    )
    await survivor.locator('#save-status[data-saved="true"]').waitFor({ timeout: 15_000 })
    assert.match(await editorText(survivor), /before takeover during takeover after takeover/)
    await waitFor(() => server.sessions.size === 2, 'again one session for the remaining tabs (and one for Alan)', 15_000)

    // Alan's edits still reach the surviving tab, over the new leader's channel.
    await typeAtEnd(other, ' Alan was here')
    await survivor.locator('.ProseMirror', { hasText: 'Alan was here' }).waitFor({ timeout: 10_000 })

    // The other document's tab (if it survived) still edits and saves too.
    if (leader !== tab3) {
      await typeAtEnd(tab3, ' still here')
      await tab3.locator('#save-status[data-saved="true"]').waitFor({ timeout: 10_000 })
      const fresh = await newContextAs(browser, { name: 'Grace Hopper', color: '#43a047' })
      contexts.push(fresh)
      const check = await openTab(fresh, otherLink, 'Grace')
      await check.locator('.ProseMirror', { hasText: 'Another document still here' }).waitFor({ timeout: 10_000 })
    }
  })
})
