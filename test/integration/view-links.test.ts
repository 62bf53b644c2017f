/**
 * View-only links against a real server: the HTTP routes that hand them out,
 * and the rights they carry on every transport. A reader gets the document
 * and shares its presence, but its changes are refused with an explicit
 * reply and never stored or passed on.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { MessageType, splitDocMessage } from '../../common/messages'
import { newDocId, type DocId } from '../../common/ids'
import { startServer, type TestServer } from '../helpers/start-server'
import { connectClient, type TestClient } from '../helpers/comet-client'
import { waitFor } from '../helpers/wait-for'

async function storedText(server: TestServer, docId: DocId): Promise<string> {
  const doc = new Y.Doc()
  const stored = await server.store.load(docId)
  if (stored) Y.applyUpdate(doc, stored)
  return doc.getText('t').toString()
}

describe('view-only links', () => {
  let server: TestServer
  const clients: TestClient[] = []
  const providers: WebsocketProvider[] = []
  const client = () => {
    const c = connectClient(server.url)
    clients.push(c)
    return c
  }
  const yjsClient = (address: string) => {
    const provider = new WebsocketProvider(`${server.wsUrl}/yjs`, address, new Y.Doc(), {
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
    })
    providers.push(provider)
    return provider
  }

  before(async () => {
    server = await startServer()
  })
  after(async () => {
    for (const c of clients) c.close()
    for (const provider of providers) {
      provider.destroy()
      provider.awareness.destroy()
    }
    await server.stop()
  })

  describe('HTTP', () => {
    it('POST /api/docs answers the id, the edit link and a different view link', async () => {
      const response = await fetch(`${server.url}/api/docs`, { method: 'POST' })
      assert.equal(response.status, 201)
      const body = (await response.json()) as { id: string; editUrl: string; viewUrl: string }
      assert.equal(body.editUrl, `${server.url}/d/${body.id}`)
      const viewId = new URL(body.viewUrl).pathname.replace(/^\/v\//, '')
      assert.match(viewId, /^[A-Za-z0-9_-]{22}$/)
      assert.notEqual(viewId, body.id)
      assert.equal(body.viewUrl, `${server.url}/v/${viewId}`)
      assert.deepEqual(await server.directory.resolve(viewId), { docId: body.id, canWrite: false })
    })

    it('GET /v/<viewId> serves the editor page; unknown ids get the 404 page', async () => {
      const { viewId } = await server.directory.create()
      const page = await fetch(`${server.url}/v/${viewId}`)
      assert.equal(page.status, 200)
      assert.match(await page.text(), /<div id="editor"/)
      const unknown = await fetch(`${server.url}/v/${newDocId()}`)
      assert.equal(unknown.status, 404)
      assert.match(await unknown.text(), /Document not found/)
      assert.equal((await fetch(`${server.url}/v/not-an-id`)).status, 404)
    })

    it('never opens a view id as /d/, nor shows an edit id as /v/', async () => {
      const { docId, viewId } = await server.directory.create()
      const asEdit = await fetch(`${server.url}/d/${viewId}`, { redirect: 'manual' })
      assert.equal(asEdit.status, 302)
      assert.equal(asEdit.headers.get('location'), `/v/${viewId}`)
      const asView = await fetch(`${server.url}/v/${docId}`, { redirect: 'manual' })
      assert.equal(asView.status, 302)
      assert.equal(asView.headers.get('location'), `/v/${viewId}`)
    })

    it('GET /api/docs/<id>/links answers the links for an edit id only', async () => {
      const { docId, viewId } = await server.directory.create()
      const ok = await fetch(`${server.url}/api/docs/${docId}/links`)
      assert.equal(ok.status, 200)
      assert.equal(ok.headers.get('cache-control'), 'no-store')
      assert.deepEqual(await ok.json(), { editUrl: `${server.url}/d/${docId}`, viewUrl: `${server.url}/v/${viewId}` })
      const fromView = await fetch(`${server.url}/api/docs/${viewId}/links`)
      assert.equal(fromView.status, 403)
      assert.doesNotMatch(await fromView.text(), new RegExp(docId), 'a reader never learns the edit id')
      assert.equal((await fetch(`${server.url}/api/docs/${newDocId()}/links`)).status, 404)
      assert.equal((await fetch(`${server.url}/api/docs/..%2F..%2Fx/links`)).status, 404)
    })
  })

  it('y-websocket: a reader gets the document, but its insert reaches no editor and no store', async () => {
    const { docId, viewId } = await server.directory.create()
    const editor = client().open(docId)
    await waitFor(() => editor.status.synced, 'editor synced')
    editor.doc.getText('t').insert(0, 'written by the editor')
    await waitFor(() => editor.isSaved, 'the editor’s text saved')

    const reader = yjsClient(viewId)
    await waitFor(() => reader.synced && reader.doc.getText('t').toString() === 'written by the editor', 'the reader to get the document')
    reader.doc.getText('t').insert(0, 'READER WAS HERE ')
    // Sent on the same socket after the insert: once the editor sees it, the
    // server has handled (and refused) the insert.
    reader.awareness.setLocalStateField('user', { name: 'Reader', color: '#00897b' })
    await waitFor(() => editor.awareness.getStates().get(reader.awareness.clientID)?.['user']?.name === 'Reader', 'the editor to see the reader’s presence')

    assert.equal(editor.doc.getText('t').toString(), 'written by the editor')
    const room = server.rooms.peek(docId)
    assert.ok(room)
    assert.equal(room.doc.getText('t').toString(), 'written by the editor')
    await room.durable()
    assert.equal(await storedText(server, docId), 'written by the editor')
  })

  it('y-websocket: an update on a view link gets an explicit permission-denied reply', async () => {
    const { viewId } = await server.directory.create()
    const socket = new WebSocket(`${server.wsUrl}/yjs/${viewId}`)
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject))
    const source = new Y.Doc()
    source.getText('t').insert(0, 'nope')
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    encoding.writeVarUint(encoder, 2) // sync update
    encoding.writeVarUint8Array(encoder, Y.encodeStateAsUpdate(source))
    const denied = new Promise<string>((resolve) => {
      socket.on('message', (data: Buffer) => {
        const decoder = decoding.createDecoder(new Uint8Array(data))
        if (decoding.readVarUint(decoder) !== MessageType.Auth) return
        assert.equal(decoding.readVarUint(decoder), 0, 'permission denied')
        resolve(decoding.readVarString(decoder))
      })
    })
    socket.send(encoding.toUint8Array(encoder))
    assert.match(await denied, /view-only/)
    assert.equal(socket.readyState, WebSocket.OPEN, 'a refused update does not close the socket')
    socket.close()
  })

  it('Comet: a reader gets readOnly status, its edit is not stored, and it stops sending changes', async () => {
    const { docId, viewId } = await server.directory.create()
    const editor = client().open(docId)
    await waitFor(() => editor.status.synced, 'editor synced')
    editor.doc.getText('t').insert(0, 'hello')
    await waitFor(() => editor.isSaved, 'the editor’s text saved')

    const readerClient = client()
    const sent: number[] = []
    const send = readerClient.channel.send.bind(readerClient.channel)
    readerClient.channel.send = (payload: Uint8Array) => {
      sent.push(splitDocMessage(payload).type)
      send(payload)
    }
    const reader = readerClient.open(viewId)
    await waitFor(() => reader.status.synced && reader.doc.getText('t').toString() === 'hello', 'the reader to get the document')
    assert.equal(reader.status.readOnly, false, 'the provider learns its rights from the server')

    reader.doc.getText('t').insert(0, 'EVIL ')
    await waitFor(() => reader.status.readOnly, 'the server to refuse the reader’s change')
    assert.equal(reader.status.unsavedCount, 0, 'the refused change is not left waiting to be saved')
    const updatesSent = sent.filter((type) => type === MessageType.Update).length
    assert.equal(updatesSent, 1)

    // Later changes are not sent at all; presence still is.
    reader.doc.getText('t').insert(0, 'MORE ')
    reader.awareness.setLocalStateField('user', { name: 'Quiet reader', color: '#8e24aa' })
    await waitFor(() => editor.awareness.getStates().get(reader.doc.clientID)?.['user']?.name === 'Quiet reader', 'the editor to see the reader')
    assert.equal(sent.filter((type) => type === MessageType.Update).length, updatesSent, 'no change sent once read-only')

    assert.equal(editor.doc.getText('t').toString(), 'hello')
    const room = server.rooms.peek(docId)
    assert.ok(room)
    assert.equal(room.doc.getText('t').toString(), 'hello')
    await room.durable()
    assert.equal(await storedText(server, docId), 'hello')
  })

  it('Comet: a provider opened read-only sends no change at all', async () => {
    const { docId, viewId } = await server.directory.create()
    const editor = client().open(docId)
    await waitFor(() => editor.status.synced, 'editor synced')
    const readerClient = client()
    const sent: number[] = []
    const send = readerClient.channel.send.bind(readerClient.channel)
    readerClient.channel.send = (payload: Uint8Array) => {
      sent.push(splitDocMessage(payload).type)
      send(payload)
    }
    const { CometProvider } = await import('../../client/sync/provider')
    const { Awareness } = await import('y-protocols/awareness')
    const doc = new Y.Doc()
    const awareness = new Awareness(doc)
    const reader = new CometProvider({ channel: readerClient.channel, docId: viewId, doc, awareness, readOnly: true })
    try {
      await waitFor(() => reader.status.synced, 'reader synced')
      doc.getText('t').insert(0, 'typed offline')
      awareness.setLocalStateField('user', { name: 'R', color: '#000000' })
      await waitFor(() => editor.awareness.getStates().get(doc.clientID)?.['user']?.name === 'R', 'the editor to see the reader')
      assert.deepEqual(sent.filter((type) => type === MessageType.Update), [])
      assert.equal(reader.status.unsavedCount, 0)
      assert.equal(editor.doc.getText('t').toString(), '')
    } finally {
      reader.destroy()
      awareness.destroy()
    }
  })
})
