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
 * So before the real server starts, `main.ts` runs the hot paths on
 * throwaway data: a throwaway server (the same `createServer`, over a
 * LevelDB store in a temporary folder, on a free loopback port, logging
 * nothing) and two loopback clients that join a stored document, sync,
 * edit and share presence. Nothing of it reaches the real store, and no
 * client can reach it. It adds about 100 ms to startup.
 *
 * The store is a real LevelDB one, deleted afterwards, so that the storage
 * code (classic-level's reads, iterators and batches, and ours) is
 * compiled too: over an in-memory store, the first load after a restart
 * still spent a few milliseconds compiling the read path.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import { WebSocket } from 'ws'
import type { Logger } from 'pino'
import { CloseCode } from '../common/close-codes'
import { encodeBatch, FrameKind } from '../common/comet/frame'
import { encodeEmptyMessage, encodeUpdateMessage, MessageType, startDocMessage } from '../common/messages'
import { createServer, type CometpadServer } from './app'
import type { Config } from './config'
import { LevelDocStore } from './storage/level-doc-store'
import { mergeStoredUpdates } from './storage/merge-updates'

/** The warm-up store's temporary folder is named this plus random characters (and deleted afterwards). */
export const warmUpDirPrefix = 'cometpad-warm-up-store-'

/** How many times the whole exchange runs: enough for V8 to compile every path and feed its inline caches. */
const rounds = 3
/** Give up on a round that has not finished in this long (it is only a warm-up). */
const roundTimeoutMs = 2_000

/**
 * Warm the hot paths with a throwaway server built from `config` (its
 * limits; never its port, address or data). Never throws: a failed round
 * is logged as a warning and startup goes on.
 */
export async function warmUp(config: Config, logger: Logger): Promise<void> {
  const started = performance.now()
  let dir: string | null = null
  let store: LevelDocStore | null = null
  let server: CometpadServer | null = null
  try {
    dir = await mkdtemp(path.join(os.tmpdir(), warmUpDirPrefix))
    // Merged here rather than on a worker thread: the documents are tiny,
    // and starting a thread for them would only slow startup down.
    const merger = { merge: async (updates: Uint8Array[]) => mergeStoredUpdates(updates), close: async () => {} }
    store = await LevelDocStore.open({ dir, merger })
    server = await createServer({ ...config, host: '127.0.0.1', port: 0 }, { store, logger: logger.child({}, { level: 'silent' }) })
    for (let round = 0; round < rounds; round++) {
      try {
        await exchange(server)
      } catch (error) {
        logger.warn({ err: error }, 'warm-up round failed; starting anyway')
      }
    }
  } catch (error) {
    logger.warn({ err: error }, 'warm-up server did not start; starting anyway')
  } finally {
    // Closing the server closes its store; a store whose server never started is closed here.
    if (server) await server.close().catch((error: unknown) => logger.warn({ err: error }, 'warm-up server did not close cleanly'))
    else await store?.close().catch((error: unknown) => logger.warn({ err: error }, 'warm-up store did not close cleanly'))
    if (dir) await rm(dir, { recursive: true, force: true }).catch((error: unknown) => logger.warn({ err: error, dir }, 'could not delete the warm-up data folder'))
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
  text.insert(0, 'warm-up ')
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

/** One round: a reader and a writer of a new stored document, through the whole stack. */
async function exchange(server: CometpadServer): Promise<void> {
  const clients: LoopbackClient[] = []
  const source = sampleDocument()
  const edited = new Y.Doc()
  const awareness = new awarenessProtocol.Awareness(edited)
  try {
    const { docId } = await server.directory.create()
    await server.store.append(docId, Y.encodeStateAsUpdate(source))
    const url = `${server.url.replace(/^http/, 'ws')}/comet/ws`
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
    await until(() => reader.received >= 2 && server.rooms.peek(docId)?.peerCount === 1)

    // A writer: an edit the room builds its Y.Doc for, validates, applies, stores and broadcasts; then presence.
    const writer = new LoopbackClient(url)
    clients.push(writer)
    await writer.open
    Y.applyUpdate(edited, Y.encodeStateAsUpdate(source))
    const before = Y.encodeStateVector(edited)
    edited.getXmlFragment('prosemirror').insert(0, [new Y.XmlText('typed')])
    awareness.setLocalState({ user: { name: 'warm-up', color: '#000000' }, cursor: null })
    const presence = startDocMessage(docId, MessageType.Awareness)
    encoding.writeVarUint8Array(presence, awarenessProtocol.encodeAwarenessUpdate(awareness, [edited.clientID]))
    const seen = reader.received
    writer.send(encodeEmptyMessage(docId, MessageType.Join), syncStep1(edited), encodeUpdateMessage(docId, 1, Y.encodeStateAsUpdate(edited, before)), encoding.toUint8Array(presence))
    await until(() => reader.received > seen && writer.received >= 2)
  } finally {
    await Promise.all(clients.map((client) => client.close()))
    awareness.destroy()
    edited.destroy()
    source.destroy()
  }
}
