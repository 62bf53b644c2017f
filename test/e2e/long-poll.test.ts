/**
 * Real Chromium behind a proxy that refuses WebSocket upgrades: the editor
 * falls back to long-polling by itself, says so, and collaborates with a
 * user on WebSocket.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Browser, BrowserContext } from 'playwright-core'
import { startServer, type TestServer } from '../helpers/start-server'
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy'
import { launchBrowser, openAs } from '../helpers/browser'

describe('long-polling in real browsers', () => {
  let server: TestServer
  let proxy: FaultProxy
  let browser: Browser
  const contexts: BrowserContext[] = []

  before(async () => {
    // A short connect timeout keeps the fallback quick; the default is 5 s.
    server = await startServer({ pingIntervalMs: 2_000, pingTimeoutMs: 2_000, sessionGraceMs: 2_000 })
    // Refuses WebSocket upgrades and buffers streamed responses, like many
    // corporate proxies: only long-polling gets through.
    proxy = await startFaultProxy(Number(new URL(server.url).port), { refuseWebSocket: true, bufferStreams: true })
    browser = await launchBrowser()
  })
  after(async () => {
    for (const context of contexts) await context.close().catch(() => {})
    await browser?.close()
    await proxy?.close()
    await server?.stop()
  })

  it('two users behind a WebSocket-refusing proxy edit together over long-polling and see each other', async () => {
    const { docId } = await server.directory.create()
    const link = `${proxy.url}/d/${docId}`
    const ada = await openAs(browser, link, { name: 'Ada', color: '#d81b60' })
    const bob = await openAs(browser, link, { name: 'Bob', color: '#1e88e5' })
    contexts.push(ada.context, bob.context)
    for (const { page } of [ada, bob]) {
      await page.locator('#status[data-transport="long-poll"]').waitFor({ timeout: 20_000 })
      assert.match((await page.locator('#status').textContent()) ?? '', /Long-polling/)
    }
    assert.ok(proxy.refusedUpgrades >= 2, 'the proxy refused the WebSocket attempts')
    await ada.page.locator('.ProseMirror').click()
    await ada.page.keyboard.type('typed over long-polling')
    await bob.page.locator('.ProseMirror', { hasText: 'typed over long-polling' }).waitFor({ timeout: 10_000 })
    await bob.page.locator('.remote-cursor-label', { hasText: 'Ada' }).waitFor({ timeout: 10_000 })
    await bob.page.locator('.ProseMirror').click()
    await bob.page.keyboard.press('End')
    await bob.page.keyboard.type(' and answered')
    await ada.page.locator('.ProseMirror', { hasText: 'typed over long-polling and answered' }).waitFor({ timeout: 10_000 })
    await ada.page.locator('.remote-cursor-label', { hasText: 'Bob' }).waitFor({ timeout: 10_000 })
    await ada.page.locator('#save-status[data-saved="true"]').waitFor({ timeout: 10_000 })
  })

  it('a WebSocket user and a long-polling user edit the same document, and closing the long-polling tab removes its cursor', async () => {
    const { docId } = await server.directory.create()
    const direct = await openAs(browser, `${server.url}/d/${docId}`, { name: 'Wendy WebSocket', color: '#43a047' })
    const polled = await openAs(browser, `${proxy.url}/d/${docId}`, { name: 'Paul Polling', color: '#fb8c00' })
    contexts.push(direct.context, polled.context)
    await direct.page.locator('#status[data-transport="websocket"]').waitFor({ timeout: 10_000 })
    await polled.page.locator('#status[data-transport="long-poll"]').waitFor({ timeout: 20_000 })
    await direct.page.locator('.ProseMirror').click()
    await direct.page.keyboard.type('from the socket')
    await polled.page.locator('.ProseMirror', { hasText: 'from the socket' }).waitFor({ timeout: 10_000 })
    await polled.page.locator('.ProseMirror').click()
    await polled.page.keyboard.press('End')
    await polled.page.keyboard.type(', from the poll')
    await direct.page.locator('.ProseMirror', { hasText: 'from the socket, from the poll' }).waitFor({ timeout: 10_000 })
    await direct.page.locator('.remote-cursor-label', { hasText: 'Paul Polling' }).waitFor({ timeout: 10_000 })
    await polled.context.close()
    await direct.page.locator('.remote-cursor-label', { hasText: 'Paul Polling' }).waitFor({ state: 'detached', timeout: 10_000 })
    await direct.page.locator('#presence .presence-user[data-name="Paul Polling"]').waitFor({ state: 'detached', timeout: 10_000 })
  })

  it('behind a proxy that refuses WebSocket but passes streams, uses HTTP streaming and says so', async () => {
    const streamingProxy = await startFaultProxy(Number(new URL(server.url).port), { refuseWebSocket: true })
    try {
      const { docId } = await server.directory.create()
      const link = `${streamingProxy.url}/d/${docId}`
      const sam = await openAs(browser, link, { name: 'Sam Stream', color: '#8e24aa' })
      const direct = await openAs(browser, `${server.url}/d/${docId}`, { name: 'Dora Direct', color: '#00897b' })
      contexts.push(sam.context, direct.context)
      await sam.page.locator('#status[data-transport="stream"]').waitFor({ timeout: 20_000 })
      assert.match((await sam.page.locator('#status').textContent()) ?? '', /Streaming/)
      await sam.page.locator('.ProseMirror').click()
      await sam.page.keyboard.type('streamed words')
      await direct.page.locator('.ProseMirror', { hasText: 'streamed words' }).waitFor({ timeout: 10_000 })
      await direct.page.locator('.ProseMirror').click()
      await direct.page.keyboard.press('End')
      await direct.page.keyboard.type(' and a reply')
      await sam.page.locator('.ProseMirror', { hasText: 'streamed words and a reply' }).waitFor({ timeout: 10_000 })
      await sam.page.locator('.remote-cursor-label', { hasText: 'Dora Direct' }).waitFor({ timeout: 10_000 })
    } finally {
      await streamingProxy.close()
    }
  })
})
