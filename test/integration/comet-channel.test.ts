/**
 * The browser's Channel and CometProvider against a real server over real
 * WebSockets: convergence, presence, durable "saved", reconnects.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { restartServer, startServer, type TestServer } from '../helpers/start-server'
import { connectClient, type TestClient } from '../helpers/comet-client'
import { waitFor } from '../helpers/wait-for'
import { startTcpProxy } from '../helpers/tcp-proxy'
import type { DocId } from '../../common/ids'

describe('Comet channel with CometProvider', () => {
  let server: TestServer
  const clients: TestClient[] = []
  const client = () => {
    const c = connectClient(server.url)
    clients.push(c)
    return c
  }

  before(async () => {
    server = await startServer({ pingIntervalMs: 300, pingTimeoutMs: 300, sessionGraceMs: 2_000 })
  })
  after(async () => {
    for (const c of clients) c.close()
    await server.stop()
  })

  it('converges two users and confirms every change as saved', async () => {
    const { docId } = await server.directory.create()
    const a = client().open(docId)
    const b = client().open(docId)
    await waitFor(() => a.status.synced && b.status.synced, 'both synced')
    const textA = a.doc.getText('t')
    const textB = b.doc.getText('t')
    for (let i = 0; i < 30; i++) {
      textA.insert(textA.length, `a${i} `)
      textB.insert(0, `b${i} `)
    }
    await waitFor(() => textA.toString() === textB.toString() && textA.toString().includes('a29') && textA.toString().includes('b29'), 'convergence')
    await waitFor(() => a.isSaved && b.isSaved, 'all changes saved')
    assert.equal(a.status.unsavedCount, 0)
    // Saved means stored: the store alone holds the same text.
    const stored = await server.store.load(docId)
    assert.ok(stored)
    const { applyUpdate, Doc } = await import('yjs')
    const check = new Doc()
    applyUpdate(check, stored)
    assert.equal(check.getText('t').toString(), textA.toString())
  })

  it('multiplexes several documents over one channel', async () => {
    const docIds = (await Promise.all([server.directory.create(), server.directory.create(), server.directory.create()])).map((created) => created.docId)
    const one = client()
    const two = client()
    const mine = docIds.map((id) => one.open(id))
    const theirs = docIds.map((id) => two.open(id))
    await waitFor(() => [...mine, ...theirs].every((p) => p.status.synced), 'all synced')
    mine.forEach((p, i) => p.doc.getText('t').insert(0, `doc ${i}`))
    await waitFor(() => theirs.every((p, i) => p.doc.getText('t').toString() === `doc ${i}`), 'each document to arrive in its own doc')
    assert.equal(server.sessions.size >= 2, true)
  })

  it('shares presence and removes it when the other user leaves', async () => {
    const { docId } = await server.directory.create()
    const ca = client()
    const a = ca.open(docId)
    const b = client().open(docId)
    a.awareness.setLocalStateField('user', { name: 'Grace', color: '#00aa00' })
    await waitFor(() => b.awareness.getStates().get(a.awareness.clientID)?.user?.name === 'Grace', 'B to see Grace')
    const id = a.awareness.clientID
    ca.close()
    await waitFor(() => !b.awareness.getStates().has(id), "Grace's presence to disappear")
  })

  it('removes the presence of a client whose connection dies silently', async () => {
    const { docId } = await server.directory.create()
    const proxy = await startTcpProxy(Number(new URL(server.url).port))
    const ca = connectClient(proxy.url)
    clients.push(ca)
    const a = ca.open(docId)
    const b = client().open(docId)
    a.awareness.setLocalStateField('user', { name: 'Ghost', color: '#0000aa' })
    await waitFor(() => b.awareness.getStates().get(a.awareness.clientID)?.user?.name === 'Ghost', 'B to see Ghost')
    const id = a.awareness.clientID
    // The network goes silent: no bytes, no FIN, no RST. The server must
    // notice by itself (ping timeout, then the resume grace period).
    proxy.freeze()
    await waitFor(() => !b.awareness.getStates().has(id), 'the silent client to be dropped', 8_000)
    ca.close()
    await proxy.close()
  })

  it('resumes its session after a dropped connection without losing or repeating messages', async () => {
    const { docId } = await server.directory.create()
    const proxy = await startTcpProxy(Number(new URL(server.url).port))
    const ca = connectClient(proxy.url)
    clients.push(ca)
    const a = ca.open(docId)
    const b = client().open(docId)
    await waitFor(() => a.status.synced && b.status.synced, 'synced')
    const sid = ca.channel.sessionId
    const textA = a.doc.getText('t')
    textA.insert(0, 'before ')
    await waitFor(() => b.doc.getText('t').toString() === 'before ', 'first edit')
    // The connection is cut abruptly (RST, no close frame), as a network drop would.
    proxy.cutAll()
    textA.insert(textA.length, 'during ')
    await waitFor(() => ca.channel.status.state === 'open' && ca.channel.unackedCount === 0, 'the channel to reconnect and deliver')
    assert.equal(ca.channel.sessionId, sid, 'the same session resumed')
    textA.insert(textA.length, 'after')
    await waitFor(() => b.doc.getText('t').toString() === 'before during after', 'all edits exactly once')
    await waitFor(() => a.isSaved, 'saved')
    await proxy.close()
  })

  it('rejoins and resends unsaved changes after a server restart', async () => {
    const { docId } = await server.directory.create()
    const ca = client()
    const a = ca.open(docId)
    await waitFor(() => a.status.synced, 'synced')
    a.doc.getText('t').insert(0, 'kept ')
    await waitFor(() => a.isSaved, 'first edit saved')
    await server.close()
    // Offline edits while the server is down.
    a.doc.getText('t').insert(5, 'while down')
    assert.equal(a.isSaved, false)
    await waitFor(() => ca.channel.status.state !== 'open', 'the channel to notice')
    // Same port, same data folder: what an operator's restart looks like.
    server = await restartServer(server, { pingIntervalMs: 300, pingTimeoutMs: 300 })
    await waitFor(() => a.isSaved, 'the offline edit to be saved after the restart', 10_000)
    const stored = await server.store.load(docId as DocId)
    const { applyUpdate, Doc } = await import('yjs')
    const check = new Doc()
    applyUpdate(check, stored!)
    assert.equal(check.getText('t').toString(), 'kept while down')
  })
})
