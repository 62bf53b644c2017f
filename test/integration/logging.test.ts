/**
 * What a real server logs, captured from a real pino logger: one info line
 * when a Comet session opens and one when it closes (with code, reason and
 * transport), however many requests a long-polling client makes; refused
 * messages at warn, at most one line per client per second, counting the
 * rest; storage failures at error.
 */
import { after, afterEach, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { pino, type Logger } from 'pino'
import { WebsocketProvider } from 'y-websocket'
import { encodeBatch, FrameKind } from '../../common/comet/frame'
import type { DocId } from '../../common/ids'
import { MessageType, encodeEmptyMessage, startDocMessage } from '../../common/messages'
import { MemoryDocStore } from '../../server/storage/memory-doc-store'
import { startServer, type TestServer } from '../helpers/start-server'
import { connectClient, connectPollCountingClient, type TestClient } from '../helpers/comet-client'
import { nextEvent, waitFor } from '../helpers/wait-for'

interface LogLine {
  level: number
  msg: string
  [field: string]: unknown
}

const info = 30
const warn = 40
const error = 50

/** A real pino logger at the default level (info) writing parsed lines into `lines`. */
function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = []
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) })
  return { logger, lines }
}

/** A memory store whose appends fail while `isFailing`. */
class FailingStore extends MemoryDocStore {
  isFailing = false
  override async append(docId: DocId, update: Uint8Array): Promise<void> {
    if (this.isFailing) throw new Error('disk full (test)')
    return super.append(docId, update)
  }
}

describe('logging', () => {
  let server: TestServer
  let lines: LogLine[]
  const store = new FailingStore()
  const clients: TestClient[] = []

  before(async () => {
    const captured = capturingLogger()
    lines = captured.lines
    server = await startServer({ pollHoldMs: 300 }, { logger: captured.logger, store })
  })
  afterEach(() => {
    for (const client of clients.splice(0)) client.close()
  })
  after(async () => {
    await server.stop()
  })

  const linesOf = (sid: string) => lines.filter((line) => line.sid === sid)

  it('logs one info line when a WebSocket session opens and one, with its code and reason, when it closes', async () => {
    const { docId } = await server.directory.create()
    const client = connectClient(server.url, { transports: ['websocket'] })
    clients.push(client)
    const provider = client.open(docId)
    await waitFor(() => provider.status.synced, 'the provider to sync')
    provider.doc.getText('t').insert(0, 'logged')
    await waitFor(() => provider.isSaved, 'the edit to be saved')
    const sid = client.channel.sessionId
    assert.ok(sid)
    client.close()
    await waitFor(() => linesOf(sid).some((line) => line.msg === 'comet session closed'), 'the close line')

    const ofSession = linesOf(sid).filter((line) => line.level >= info)
    assert.deepEqual(
      ofSession.map((line) => [line.level, line.msg]),
      [
        [info, 'comet session open'],
        [info, 'comet session closed'],
      ],
    )
    assert.equal(ofSession[0]?.transport, 'websocket')
    assert.equal(ofSession[0]?.ip, '127.0.0.1')
    assert.equal(ofSession[1]?.transport, 'websocket')
    assert.equal(ofSession[1]?.code, 1000)
    assert.equal(ofSession[1]?.codeName, 'Normal')
    assert.equal(ofSession[1]?.reason, 'client closed the channel')
    assert.equal(typeof ofSession[1]?.durationMs, 'number')
  })

  it('logs one open and one close line for a long-polling session, not a line per poll', async () => {
    const { docId } = await server.directory.create()
    const client = connectPollCountingClient(server.url)
    clients.push(client)
    const provider = client.open(docId)
    await waitFor(() => provider.status.synced, 'the provider to sync')
    for (const word of ['one ', 'two ', 'three']) {
      provider.doc.getText('t').insert(provider.doc.getText('t').length, word)
      await waitFor(() => provider.isSaved, `"${word}" to be saved`)
    }
    // Held polls time out every 300 ms: let a few go by idle as well.
    const idleFrom = client.polls
    await waitFor(() => client.polls >= idleFrom + 3, 'three more polls')
    const sid = client.channel.sessionId
    assert.ok(sid)
    assert.equal(client.channel.status.transport, 'long-poll')
    // The handshake, the poll the join's sync answered, and three idle ones at least.
    assert.ok(client.polls >= 5, `the client polled ${client.polls} times`)
    client.close()
    await waitFor(() => linesOf(sid).some((line) => line.msg === 'comet session closed'), 'the close line')

    const ofSession = linesOf(sid).filter((line) => line.level >= info)
    assert.deepEqual(
      ofSession.map((line) => line.msg),
      ['comet session open', 'comet session closed'],
      `${client.polls} polls, two lines`,
    )
    assert.equal(ofSession[0]?.transport, 'long-poll')
    assert.equal(ofSession[1]?.transport, 'long-poll')
    assert.equal(ofSession[1]?.code, 1000)
    assert.equal(ofSession[1]?.reason, 'client closed the channel')
  })

  it('logs a stock y-websocket socket once when it opens and once when it closes', async () => {
    const { docId } = await server.directory.create()
    const provider = new WebsocketProvider(`${server.wsUrl}/yjs`, docId, new Y.Doc(), {
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
    })
    await waitFor(() => provider.synced, 'the provider to sync')
    provider.destroy()
    provider.doc.destroy()
    provider.awareness.destroy()
    const ofSocket = () => lines.filter((line) => line.address === docId && line.level >= info)
    await waitFor(() => ofSocket().some((line) => line.msg === 'y-websocket connection closed'), 'the close line')
    assert.deepEqual(
      ofSocket().map((line) => [line.msg, line.transport]),
      [
        ['y-websocket connection open', 'y-websocket'],
        ['y-websocket connection closed', 'y-websocket'],
      ],
    )
    // The stock provider closes without a status code: 1005, as the close event reports it.
    assert.equal(typeof ofSocket()[1]?.code, 'number')
    assert.equal(typeof ofSocket()[1]?.codeName, 'string')
  })

  it('logs refused messages at warn, one line for a flood, and counts the rest when the session ends', async () => {
    const { docId } = await server.directory.create()
    const ws = new WebSocket(`${server.wsUrl}/comet/ws`)
    ws.on('error', () => {})
    await nextEvent(ws, 'message')
    let seq = 0
    const data = (payload: Uint8Array) => ({ kind: FrameKind.Data, seq: ++seq, payload }) as const
    ws.send(encodeBatch([data(encodeEmptyMessage(docId, MessageType.Join))]))
    await waitFor(() => server.rooms.peek(docId)?.peerCount === 1, 'the join')
    // 50 messages of a type nobody knows, in one batch: 50 refusals within a millisecond.
    const unknownType = () => encoding.toUint8Array(startDocMessage(docId, 99 as MessageType))
    ws.send(encodeBatch(Array.from({ length: 50 }, () => data(unknownType()))))
    const refusals = () => lines.filter((line) => line.msg === 'refused a message' && line.docId === docId)
    await waitFor(() => refusals().length === 1, 'the first refusal line')
    assert.equal(refusals()[0]?.level, warn)
    assert.equal(refusals()[0]?.refused, 'unknown-type')
    assert.equal(refusals()[0]?.suppressed, undefined)
    const closed = nextEvent(ws, 'close')
    ws.close(1000)
    await closed
    await waitFor(() => refusals().length === 2, 'the line counting the rest')
    assert.equal(refusals()[1]?.suppressed, 49)
  })

  it('logs a storage failure at error level', async () => {
    const { docId } = await server.directory.create()
    const client = connectClient(server.url)
    clients.push(client)
    const provider = client.open(docId)
    await waitFor(() => provider.status.synced, 'the provider to sync')
    store.isFailing = true
    try {
      provider.doc.getText('t').insert(0, 'not stored yet')
      const failure = await waitFor(() => lines.find((line) => line.msg.startsWith('storing a document update failed') && line.docId === docId), 'the failure line')
      assert.equal(failure.level, error)
      assert.match(String((failure.err as { message?: string } | undefined)?.message), /disk full/)
      assert.equal(provider.isSaved, false)
    } finally {
      store.isFailing = false
    }
    await waitFor(() => provider.isSaved, 'the retry to store the edit', 15_000)
  })
})
