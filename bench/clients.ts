/**
 * Headless sync clients for the benchmark, one per wire protocol: the
 * y-websocket protocol (the reference server), Hocuspocus's (the same
 * messages behind a document name and an auth handshake), and Cometpad's
 * Comet channel (the real browser Channel over WebSocket, streaming or
 * long-polling).
 *
 * They are load generators, not editors: a client keeps no Y.Doc of the
 * shared document. It completes the sync handshake like a real client and
 * hands every update it receives to `onUpdate` undecoded. A writer sends
 * the updates of a Typist (keystrokes.ts), the same bytes a full client
 * typing at its own position would send.
 */
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { Channel, type ChannelTransportName } from '../client/comet/channel'
import type { WebSocketConstructor } from '../client/comet/transports/websocket'
import { createRawFetch } from './raw-http'
import { MessageType, encodeEmptyMessage, encodeUpdateMessage, splitDocMessage } from '../common/messages'

/** The servers the benchmark can drive. */
export type ServerKind = 'cometpad' | 'y-websocket' | 'hocuspocus'

/** One server and the transport its clients use: one row of every table. */
export interface Target {
  server: ServerKind
  transport: ChannelTransportName
  /** The server's http://host:port. */
  url: string
}

/** The row label of a target, e.g. `cometpad/long-poll`. */
export function targetName(target: Pick<Target, 'server' | 'transport'>): string {
  return target.server === 'cometpad' ? `cometpad/${target.transport}` : target.server
}

export interface ClientHandlers {
  /** A Yjs update from another client (or the server), as received. */
  onUpdate(update: Uint8Array): void
  /** Cometpad only: every tracked update up to `updateId` is durably stored. */
  onSaved?(updateId: number): void
}

/** A connected client of one document. */
export interface BenchClient {
  /** Resolves with the document state (sync step 2) once the initial sync is done. */
  readonly synced: Promise<Uint8Array>
  /** Send a Yjs update; returns its id when the server confirms durability (Cometpad), else 0. */
  send(update: Uint8Array): number
  close(): void
}

// y-protocols sync message subtypes.
const SyncStep1 = 0
const SyncStep2 = 1
const SyncUpdate = 2
// Hocuspocus: the reply to a client's step 1 travels as its own type; auth subtype "token".
const HocuspocusSyncReply = 4
const HocuspocusAuthToken = 0

const emptyStateVector = Y.encodeStateVector(new Y.Doc())
const emptyUpdate = Y.encodeStateAsUpdate(new Y.Doc())

/** `varUint(Sync) • varUint(subtype) • varUint8Array(body)` after an optional prefix. */
function syncMessage(subtype: number, body: Uint8Array, prefix?: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder()
  prefix?.(encoder)
  encoding.writeVarUint(encoder, MessageType.Sync)
  encoding.writeVarUint(encoder, subtype)
  encoding.writeVarUint8Array(encoder, body)
  return encoding.toUint8Array(encoder)
}

/**
 * Handle one y-protocols sync body (after the message type): answer a
 * step 1 with an empty step 2 (a load generator holds nothing the server
 * lacks), resolve on step 2, pass updates on.
 */
function onSyncBody(
  decoder: decoding.Decoder,
  reply: (subtype: number, body: Uint8Array) => void,
  synced: (state: Uint8Array) => void,
  handlers: ClientHandlers,
): void {
  const subtype = decoding.readVarUint(decoder)
  const body = decoding.readVarUint8Array(decoder)
  if (subtype === SyncStep1) reply(SyncStep2, emptyUpdate)
  else if (subtype === SyncStep2) synced(body)
  else if (subtype === SyncUpdate) handlers.onUpdate(body)
}

function wsUrl(httpUrl: string): string {
  return httpUrl.replace(/^http/, 'ws')
}

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(error: Error): void } {
  let resolve!: (value: T) => void
  let reject!: (error: Error) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** A client of the y-websocket reference server: one socket per document at `/<doc>`. */
function connectYWebsocket(target: Target, doc: string, handlers: ClientHandlers): BenchClient {
  const socket = new WebSocket(`${wsUrl(target.url)}/${doc}`)
  const sync = deferred<Uint8Array>()
  socket.on('error', (error) => sync.reject(error))
  socket.on('close', (code, reason) => sync.reject(new Error(`y-websocket closed ${code} ${reason.toString()}`)))
  socket.on('open', () => socket.send(syncMessage(SyncStep1, emptyStateVector)))
  socket.on('message', (data: Buffer) => {
    const decoder = decoding.createDecoder(data)
    if (decoding.readVarUint(decoder) !== MessageType.Sync) return
    onSyncBody(decoder, (subtype, body) => socket.send(syncMessage(subtype, body)), sync.resolve, handlers)
  })
  return {
    synced: sync.promise,
    send(update) {
      socket.send(syncMessage(SyncUpdate, update))
      return 0
    },
    close: () => socket.close(),
  }
}

/**
 * A client of Hocuspocus: every message starts with the document name, and
 * the first for a document must be an auth message (an empty token; the
 * benchmark server has no onAuthenticate hook), as @hocuspocus/provider does.
 */
function connectHocuspocus(target: Target, doc: string, handlers: ClientHandlers): BenchClient {
  const socket = new WebSocket(wsUrl(target.url))
  const sync = deferred<Uint8Array>()
  const address = (encoder: encoding.Encoder) => encoding.writeVarString(encoder, doc)
  socket.on('error', (error) => sync.reject(error))
  socket.on('close', (code, reason) => sync.reject(new Error(`hocuspocus closed ${code} ${reason.toString()}`)))
  socket.on('open', () => {
    const auth = encoding.createEncoder()
    address(auth)
    encoding.writeVarUint(auth, MessageType.Auth)
    encoding.writeVarUint(auth, HocuspocusAuthToken)
    encoding.writeVarString(auth, '')
    socket.send(encoding.toUint8Array(auth))
    socket.send(syncMessage(SyncStep1, emptyStateVector, address))
  })
  socket.on('message', (data: Buffer) => {
    const decoder = decoding.createDecoder(data)
    decoding.readVarString(decoder)
    const type = decoding.readVarUint(decoder)
    if (type !== MessageType.Sync && type !== HocuspocusSyncReply) return
    onSyncBody(decoder, (subtype, body) => socket.send(syncMessage(subtype, body, address)), sync.resolve, handlers)
  })
  return {
    synced: sync.promise,
    send(update) {
      socket.send(syncMessage(SyncUpdate, update, address))
      return 0
    },
    close: () => socket.close(),
  }
}

/**
 * The Channel's WebSocket transport asks for `binaryType = 'arraybuffer'`,
 * the browser API, where the browser hands over each message's bytes
 * natively. With ws that setting makes a copy of every message into a new
 * ArrayBuffer, a cost no browser pays and the peers' clients here do not
 * pay either (they take ws's Buffers); so this WebSocket keeps Buffers, which
 * the transport accepts as byte views.
 */
const BufferWebSocket = function (url: string): WebSocket {
  const socket = new WebSocket(url)
  // ws keeps its setting in a private field that stays at 'nodebuffer'.
  Object.defineProperty(socket, 'binaryType', { get: () => 'nodebuffer', set: () => {} })
  return socket
} as unknown as WebSocketConstructor

/** One connection pool per worker process for every HTTP client in it (see raw-http.ts). */
const rawFetch = createRawFetch()

/**
 * A Cometpad client: the browser's Channel (seq/ack, pings, resume) on one
 * forced transport, joined to one document. Writers send tracked Updates,
 * so the server answers each with Saved once it is on disk.
 */
function connectCometpad(target: Target, doc: string, handlers: ClientHandlers): BenchClient {
  const channel = new Channel({
    url: `${wsUrl(target.url)}/comet/ws`,
    baseUrl: target.url,
    transports: [target.transport],
    WebSocket: BufferWebSocket,
    // A lean HTTP client keeps the load generator from being what is measured (see raw-http.ts).
    fetch: rawFetch,
    memory: null,
    connectTimeoutMs: 30_000,
  })
  const sync = deferred<Uint8Array>()
  const address = (encoder: encoding.Encoder) => encoding.writeVarString(encoder, doc)
  let nextUpdateId = 1
  channel.on('status', (status) => {
    if (status.state === 'offline' || status.state === 'closed') sync.reject(new Error(`cometpad channel ${status.state}`))
  })
  channel.on('message', (payload) => {
    const { docId, type, message } = splitDocMessage(payload)
    if (docId !== doc) return
    const decoder = decoding.createDecoder(message)
    decoding.readVarUint(decoder)
    if (type === MessageType.Sync) onSyncBody(decoder, (subtype, body) => channel.send(syncMessage(subtype, body, address)), sync.resolve, handlers)
    else if (type === MessageType.Saved) handlers.onSaved?.(decoding.readVarUint(decoder))
    else if (type === MessageType.Error) sync.reject(new Error(`cometpad error ${decoding.readVarUint(decoder)}: ${decoding.readVarString(decoder)}`))
  })
  channel.send(encodeEmptyMessage(doc, MessageType.Join))
  channel.send(syncMessage(SyncStep1, emptyStateVector, address))
  return {
    synced: sync.promise,
    send(update) {
      const id = nextUpdateId++
      channel.send(encodeUpdateMessage(doc, id, update))
      return id
    },
    close: () => channel.close(),
  }
}

/** Connect one client of `doc` on `target`. */
export function connectBenchClient(target: Target, doc: string, handlers: ClientHandlers): BenchClient {
  switch (target.server) {
    case 'y-websocket':
      return connectYWebsocket(target, doc, handlers)
    case 'hocuspocus':
      return connectHocuspocus(target, doc, handlers)
    case 'cometpad':
      return connectCometpad(target, doc, handlers)
  }
}
