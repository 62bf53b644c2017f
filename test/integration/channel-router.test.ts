/**
 * The router's bookkeeping of the documents one session has joined, driven
 * by a careless or hostile client over a real channel: joining past the
 * per-connection limit, joining an unknown address, sending to a document
 * it never joined, leaving and joining again. Each gets an Error for its
 * address, the session stays open, and a slot given back can be used again.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { DocErrorCode, MessageType, encodeEmptyMessage, splitDocMessage, startDocMessage } from '../../common/messages'
import { newDocId, type DocId } from '../../common/ids'
import { defaultMaxDocsPerSession } from '../../server/channel-router'
import { startServer, type TestServer } from '../helpers/start-server'
import { connectClient, type TestClient } from '../helpers/comet-client'
import { waitFor } from '../helpers/wait-for'

/** Every document message the client received, split, with Errors decoded. */
interface Received {
  docId: string
  type: number
  error?: { code: number; reason: string }
}

const limit = defaultMaxDocsPerSession

describe('a session joining documents', () => {
  let server: TestServer
  let client: TestClient
  const received: Received[] = []
  /** The sessions the channel opened: one, if no refusal cost the client its session. */
  const sessionIds: string[] = []
  const assertSameSession = (): void => {
    assert.equal(sessionIds.length, 1)
    assert.equal(server.sessions.get(sessionIds[0]!)?.state, 'attached')
  }
  const docs: DocId[] = []

  before(async () => {
    server = await startServer()
    for (let i = 0; i < limit + 1; i++) docs.push((await server.directory.create()).docId)
    client = connectClient(server.url)
    client.channel.on('message', (payload) => {
      const { docId, type, message } = splitDocMessage(payload)
      const entry: Received = { docId, type }
      if (type === MessageType.Error) {
        const decoder = decoding.createDecoder(message)
        decoding.readVarUint(decoder)
        entry.error = { code: decoding.readVarUint(decoder), reason: decoding.readVarString(decoder) }
      }
      received.push(entry)
    })
    client.channel.on('open', ({ sid }) => sessionIds.push(sid))
    await waitFor(() => sessionIds.length > 0, 'the channel to open')
  })

  after(async () => {
    client.close()
    await server.stop()
  })

  const errorsFor = (docId: string) => received.filter((entry) => entry.docId === docId && entry.error).map((entry) => entry.error!)
  const syncedWith = (docId: string) => received.some((entry) => entry.docId === docId && entry.type === MessageType.Sync)

  it('answers a message for a document it has not joined with NotJoined, and keeps the session', async () => {
    const encoder = startDocMessage(docs[0]!, MessageType.Sync)
    syncProtocol.writeSyncStep1(encoder, new Y.Doc())
    client.channel.send(encoding.toUint8Array(encoder))
    const [error] = await waitFor(() => (errorsFor(docs[0]!).length > 0 ? errorsFor(docs[0]!) : null), 'the NotJoined error')
    assert.equal(error!.code, DocErrorCode.NotJoined)
    assertSameSession()
  })

  it('refuses an unknown address with NotFound, without using up a slot', async () => {
    const unknown = newDocId()
    client.channel.send(encodeEmptyMessage(unknown, MessageType.Join))
    const [error] = await waitFor(() => (errorsFor(unknown).length > 0 ? errorsFor(unknown) : null), 'the NotFound error')
    assert.equal(error!.code, DocErrorCode.NotFound)
    // All `limit` slots are still free: the documents below all join.
    for (const docId of docs.slice(0, limit)) client.channel.send(encodeEmptyMessage(docId, MessageType.Join))
    await waitFor(() => docs.slice(0, limit).every(syncedWith), `${limit} documents to be joined`)
    for (const docId of docs.slice(0, limit)) assert.deepEqual(errorsFor(docId).filter((e) => e.code !== DocErrorCode.NotJoined), [])
  })

  it('refuses a join past the per-connection limit with Forbidden, and takes it once a document is left', async () => {
    const extra = docs[limit]!
    client.channel.send(encodeEmptyMessage(extra, MessageType.Join))
    const [error] = await waitFor(() => (errorsFor(extra).length > 0 ? errorsFor(extra) : null), 'the Forbidden error')
    assert.equal(error!.code, DocErrorCode.Forbidden)
    assert.match(error!.reason, new RegExp(`at most ${limit} documents per connection`))
    assert.equal(syncedWith(extra), false)

    client.channel.send(encodeEmptyMessage(docs[1]!, MessageType.Leave))
    client.channel.send(encodeEmptyMessage(extra, MessageType.Join))
    await waitFor(() => syncedWith(extra), 'the extra document to be joined after a leave')
    assert.equal(errorsFor(extra).length, 1, 'no second refusal')
    await waitFor(() => server.rooms.peek(docs[1]!)?.peerCount !== 1, 'the left document to lose its peer')
    assertSameSession()
  })

  it('ignores a second join of a document already joined', async () => {
    const before = received.length
    client.channel.send(encodeEmptyMessage(docs[0]!, MessageType.Join))
    // The session's messages are handled in order: once this one is
    // answered (NotJoined), the second join has been handled too.
    const barrier = newDocId()
    client.channel.send(encodeEmptyMessage(barrier, MessageType.QueryAwareness))
    await waitFor(() => errorsFor(barrier).length > 0, 'the answer to the message after the second join')
    assert.deepEqual(received.slice(before).filter((entry) => entry.docId === docs[0]), [])
    assert.equal(server.rooms.peek(docs[0]!)?.peerCount, 1)
  })
})
