/**
 * Warm-up before the server takes traffic.
 *
 * V8 compiles a function the first time it runs, and Node loads some of its
 * own modules (WebCrypto, for instance) on first use. A server that has
 * just started pays for all of it on its first clients, which after a
 * deploy are every client reconnecting at once. Measured with the editing
 * trace (`npm run bench -- --only=cold-load`), the first load after a
 * restart took twice as long as the next one (48 against 24 ms).
 *
 * So before listening, the server runs its own hot paths on throwaway
 * data: a private copy of the Comet stack (sessions, channel router,
 * directory, rooms) over an in-memory store, behind a throwaway WebSocket
 * server on a free loopback port, and two loopback clients that join a
 * stored document, sync, edit and share presence. One read of the real
 * store warms LevelDB's read path. Nothing is written to the real store,
 * nothing is logged, and no client can reach any of it. It adds about
 * 100 ms to startup.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import { WebSocket, WebSocketServer } from 'ws'
import type { Logger } from 'pino'
import { CloseCode } from '../common/close-codes'
import { encodeBatch, FrameKind } from '../common/comet/frame'
import { newDocId } from '../common/ids'
import { encodeEmptyMessage, encodeUpdateMessage, MessageType, startDocMessage } from '../common/messages'
import { ChannelRouter } from './channel-router'
import { SessionRegistry } from './comet/session-registry'
import { WebSocketTransport } from './comet/transports/websocket'
import { DocDirectory } from './docs/doc-directory'
import { RoomRegistry } from './rooms/room-registry'
import type { DocStore } from './storage/doc-store'
import { MemoryDocStore } from './storage/memory-doc-store'

/** How many times the whole exchange runs: enough for V8 to compile every path and feed its inline caches. */
const rounds = 3
/** Give up on a round that has not finished in this long (it is only a warm-up). */
const roundTimeoutMs = 2_000

/** Warm the hot paths. `store` is only read. */
export async function warmUp(store: DocStore, logger: Logger): Promise<void> {
  const started = performance.now()
  const quiet = logger.child({}, { level: 'silent' })
  for (let round = 0; round < rounds; round++) {
    try {
      await warmChannel(quiet)
    } catch (error) {
      logger.warn({ err: error }, "warm-up round failed; starting anyway")
    }
    // One read of a document that does not exist: LevelDB's read path, no write.
    await store.loadState(newDocId())
  }
  logger.debug({ ms: Math.round(performance.now() - started) }, 'warmed up')
}

/** A document with the kinds of content the editor makes: elements, text, marks and attributes. */
function sampleDocument(): Y.Doc {
  const doc = new Y.Doc()
  const fragment = doc.getXmlFragment('prosemirror')
  const paragraph = new Y.XmlElement('paragraph')
  const text = new Y.XmlText()
  paragraph.insert(0, [text])
  fragment.insert(0, [paragraph, new Y.XmlElement('heading')])
  text.insert(0, "warm-up ")
  text.format(0, 4, { strong: true })
  text.insert(text.length, 'more text', { em: true })
  text.delete(0, 2)
  paragraph.setAttribute('align', 'left')
  return doc
}

/** Resolves once `done()` holds, checking after every event-loop turn; rejects after {@link roundTimeoutMs}. */
async function until(done: () => boolean): Promise<void> {
  const deadline = performance.now() + roundTimeoutMs
  while (!done()) {
    if (performance.now() > deadline) throw new Error('the warm-up exchange did not finish in time')
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** A loopback client that speaks the Comet frames and counts the batches it receives. */
class LoopbackClient {
  received = 0
  private nextSeq = 1
  private readonly socket: WebSocket
  readonly open: Promise<void>

  constructor(url: string) {
    this.socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: roundTimeoutMs })
    this.socket.binaryType = 'nodebuffer'
    this.socket.on('message', () => this.received++)
    this.open = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve())
      this.socket.once('error', reject)
    })
  }

  send(...payloads: Uint8Array[]): void {
    this.socket.send(encodeBatch(payloads.map((payload) => ({ kind: FrameKind.Data, seq: this.nextSeq++, payload }))))
  }

  /** Close, and resolve once the socket is gone. */
  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve()
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()))
    this.socket.close(CloseCode.Normal)
    return closed
  }
}

async function warmChannel(logger: Logger): Promise<void> {
  const memory = new MemoryDocStore()
  const directory = new DocDirectory(memory)
  const rooms = new RoomRegistry({ store: memory, logger })
  const sessions = new SessionRegistry({
    pingIntervalMs: 60_000,
    pingTimeoutMs: 60_000,
    sessionGraceMs: 0,
    maxFrameBytes: 1 << 20,
    maxUnackedFrames: 4096,
    transports: ['websocket'],
  })
  new ChannelRouter({ sessions, rooms, directory, logger })
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false })
  const server = http.createServer((_req, res) => res.writeHead(404).end())
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => sessions.create(undefined, 'websocket').attach(new WebSocketTransport(ws), 0, false))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const clients: LoopbackClient[] = []
  try {
    const { docId } = await directory.create()
    const source = sampleDocument()
    await memory.append(docId, Y.encodeStateAsUpdate(source))
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`
    const syncStep1 = (doc: Y.Doc) => {
      const encoder = startDocMessage(docId, MessageType.Sync)
      syncProtocol.writeSyncStep1(encoder, doc)
      return encoding.toUint8Array(encoder)
    }

    // A new client of a stored document: the room answers from the stored bytes.
    const reader = new LoopbackClient(url)
    clients.push(reader)
    await reader.open
    reader.send(encodeEmptyMessage(docId, MessageType.Join), syncStep1(new Y.Doc()))
    await until(() => reader.received >= 2 && rooms.peek(docId)?.peerCount === 1)

    // A writer: an edit the room builds its Y.Doc for, validates, applies, stores and broadcasts; then presence.
    const writer = new LoopbackClient(url)
    clients.push(writer)
    await writer.open
    const edited = new Y.Doc()
    Y.applyUpdate(edited, Y.encodeStateAsUpdate(source))
    const before = Y.encodeStateVector(edited)
    edited.getXmlFragment('prosemirror').insert(0, [new Y.XmlText('typed')])
    const awareness = new awarenessProtocol.Awareness(edited)
    awareness.setLocalState({ user: { name: 'warm-up', color: '#000000' }, cursor: null })
    const presence = startDocMessage(docId, MessageType.Awareness)
    encoding.writeVarUint8Array(presence, awarenessProtocol.encodeAwarenessUpdate(awareness, [edited.clientID]))
    const seen = reader.received
    writer.send(encodeEmptyMessage(docId, MessageType.Join), syncStep1(edited), encodeUpdateMessage(docId, 1, Y.encodeStateAsUpdate(edited, before)), encoding.toUint8Array(presence))
    await until(() => reader.received > seen && writer.received >= 2)
    awareness.destroy()
    edited.destroy()
    source.destroy()
  } finally {
    await Promise.all(clients.map((client) => client.close()))
    sessions.closeAll(CloseCode.Normal, 'warm-up done')
    await rooms.closeAll()
    await memory.close()
    for (const ws of wss.clients) ws.terminate()
    wss.close()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
