/**
 * The browser's provider (in Node) against a real server that may hold one
 * document open: a document refused with Error 503 is shown as busy, its
 * edits wait, and the provider joins by itself, with backoff, once the
 * server has room; then the edits are saved.
 */
import { after, afterEach, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { startServer, type TestServer } from '../helpers/start-server'
import { connectClient, type TestClient } from '../helpers/comet-client'
import { waitFor } from '../helpers/wait-for'

async function limitCount(server: TestServer, limit: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const match = new RegExp(`^cometpad_limit_exceeded_total\\{limit="${limit}"\\} (\\d+)$`, 'm').exec(text)
  assert.ok(match, `no cometpad_limit_exceeded_total{limit="${limit}"} in /metrics`)
  return Number(match[1])
}

describe('a busy server (MAX_OPEN_ROOMS=1)', () => {
  let server: TestServer
  const clients: TestClient[] = []

  before(async () => {
    server = await startServer({ maxOpenRooms: 1 })
  })
  afterEach(() => {
    for (const client of clients.splice(0)) client.close()
  })
  after(async () => {
    await server.stop()
  })

  it('says the server is busy, retries joining with backoff, and saves the waiting edits once a document closes', async () => {
    const [first, second] = await Promise.all([server.directory.create(), server.directory.create()])
    const before = await limitCount(server, 'open_rooms')
    const ada = connectClient(server.url)
    const bob = connectClient(server.url)
    clients.push(ada, bob)
    const adaDoc = ada.open(first.docId)
    await waitFor(() => adaDoc.status.synced, 'the first document to open')

    const bobDoc = bob.open(second.docId, { busyBackoff: { baseMs: 200, maxMs: 800 } })
    await waitFor(() => bobDoc.status.serverBusy, 'the second document to be refused as busy')
    assert.equal(bobDoc.status.synced, false)
    bobDoc.doc.getText('t').insert(0, 'written while the server was busy')
    assert.equal(bobDoc.isSaved, false)
    // It keeps trying: every attempt is refused and counted while the first document is open.
    await waitFor(async () => (await limitCount(server, 'open_rooms')) - before >= 3, 'two more attempts to join', 10_000)
    assert.equal(bobDoc.status.serverBusy, true)
    assert.equal(bob.channel.status.state, 'open', 'the channel is unaffected')

    ada.close()
    await waitFor(() => bobDoc.status.synced && !bobDoc.status.serverBusy, 'the retry to open the second document', 10_000)
    await waitFor(() => bobDoc.isSaved, 'the waiting edit to be saved', 10_000)
    const stored = new Y.Doc()
    Y.applyUpdate(stored, (await server.store.load(second.docId))!)
    assert.equal(stored.getText('t').toString(), 'written while the server was busy')
  })
})
