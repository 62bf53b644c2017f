/**
 * A stock y-websocket WebsocketProvider syncs and shares presence with
 * Cometpad through /yjs/<id>, unchanged.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { restartServer, startServer, type TestServer } from '../helpers/start-server'
import { waitFor } from '../helpers/wait-for'

function connect(server: TestServer, docId: string): WebsocketProvider {
  const doc = new Y.Doc()
  return new WebsocketProvider(`${server.wsUrl}/yjs`, docId, doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  })
}

describe('y-websocket compatibility endpoint', () => {
  let server: TestServer
  const providers: WebsocketProvider[] = []
  const open = (docId: string) => {
    const provider = connect(server, docId)
    providers.push(provider)
    return provider
  }

  before(async () => {
    server = await startServer()
  })
  after(async () => {
    for (const provider of providers) {
      provider.destroy()
      // The provider leaves its Awareness's 3 s check timer running.
      provider.awareness.destroy()
    }
    await server.stop()
  })

  it('converges two clients on concurrent edits', async () => {
    const { docId } = await server.directory.create()
    const a = open(docId)
    const b = open(docId)
    await waitFor(() => a.synced && b.synced, 'both providers synced')
    const textA = a.doc.getText('t')
    const textB = b.doc.getText('t')
    // Concurrent: both edit before either sees the other's change.
    textA.insert(0, 'hello ')
    textB.insert(0, 'world ')
    for (let i = 0; i < 50; i++) {
      textA.insert(textA.length, `a${i}`)
      textB.insert(0, `b${i}`)
    }
    await waitFor(() => textA.toString() === textB.toString() && textA.length > 200, 'texts to converge')
    assert.equal(textA.toString(), textB.toString())
    assert.match(textA.toString(), /a49/)
    assert.match(textA.toString(), /b49/)
    // The server's copy agrees too.
    const room = server.rooms.peek(docId as never)
    assert.ok(room, 'room is open')
    assert.equal(room.doc.getText('t').toString(), textA.toString())
  })

  it('propagates awareness and removes it when a client disconnects', async () => {
    const { docId } = await server.directory.create()
    const a = open(docId)
    const b = open(docId)
    await waitFor(() => a.synced && b.synced, 'both providers synced')
    a.awareness.setLocalStateField('user', { name: 'Ada', color: '#ff0000' })
    await waitFor(() => b.awareness.getStates().get(a.awareness.clientID)?.user?.name === 'Ada', 'B to see Ada')
    const aId = a.awareness.clientID
    // A drops its connection without saying goodbye on the awareness protocol.
    a.disconnect()
    await waitFor(() => !b.awareness.getStates().has(aId), "Ada's presence to disappear for B")
  })

  it('refuses an unknown document with close code 4404', async () => {
    const socket = new WebSocket(`${server.wsUrl}/yjs/AAAAAAAAAAAAAAAAAAAAAA`)
    const [code, reason] = await new Promise<[number, string]>((resolve) => socket.on('close', (c, r) => resolve([c, r.toString()])))
    assert.equal(code, 4404)
    assert.match(reason, /no document/)
  })

  it('keeps every document across a restart', async () => {
    const { docId } = await server.directory.create()
    const a = open(docId)
    await waitFor(() => a.synced, 'synced')
    a.doc.getText('t').insert(0, 'persist me')
    const room = server.rooms.peek(docId as never)
    await waitFor(() => room?.doc.getText('t').toString() === 'persist me', 'server to receive the edit')
    await room!.durable()
    a.destroy()
    server = await restartServer(server)
    const b = open(docId)
    await waitFor(() => b.synced && b.doc.getText('t').toString() === 'persist me', 'the edit after restart')
  })
})
