/**
 * The y-websocket compatibility endpoint: `ws://host/yjs/<address>`, one
 * WebSocket per document speaking the y-websocket wire protocol unchanged
 * (sync, awareness, auth, query-awareness), so a stock `WebsocketProvider`
 * syncs with Cometpad. Each socket becomes one Peer of the room.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import type { Logger } from 'pino'
import { CloseCode, closeCodeName } from '../../common/close-codes'
import type { DocId } from '../../common/ids'
import type { DocDirectory } from '../docs/doc-directory'
import type { Peer } from '../rooms/peer'
import { RoomsFullError, type RoomRegistry } from '../rooms/room-registry'
import type { Room } from '../rooms/room'
import { handleMessage, type RefusalReason } from '../rooms/messages'
import type { FrameCounts } from '../comet/session'
import { wsBytes } from '../util/ws-bytes'
import { RateLimiter } from '../comet/rate-limiter'
import { peerAddress, type IpCounter } from '../util/ip-counter'
import type { OnLimitExceeded } from '../util/limit-names'
import { ThrottledLog } from '../util/throttled-log'

/** What the endpoint needs. */
export interface YWebSocketEndpointOptions {
  rooms: RoomRegistry
  directory: DocDirectory
  logger: Logger
  /** Largest message accepted, in bytes. */
  maxMessageBytes: number
  /** Ping each socket this often and drop one that missed the previous pong, in ms. */
  pingIntervalMs: number
  /** Counts messages in and out, as the Comet sessions count Data frames (metrics). */
  frameCounts?: FrameCounts
  /** Called for every refused message (metrics); rooms stay free of metrics. */
  onRefused?: (reason: RefusalReason) => void
  /** Messages per second per socket; 0 = no limit. @default 0 */
  maxMessagesPerSecond?: number
  /** Bytes per second per socket; 0 = no limit. @default 0 */
  maxBytesPerSecond?: number
  /** Sockets per client address, shared with the Comet sessions; none: no limit. */
  perIp?: IpCounter
  /** Drop a socket holding more unread bytes than this; 0 = no limit. @default 0 */
  slowReaderBytes?: number
  /** Called each time a socket exceeds a limit (metrics). */
  onLimitExceeded?: OnLimitExceeded
}

class YWebSocketPeer implements Peer {
  readonly speaksCometpad = false
  isAlive = true

  constructor(
    readonly id: string,
    private readonly socket: WebSocket,
    readonly canWrite: boolean,
    private readonly frameCounts: FrameCounts,
    private readonly slowReaderBytes: number,
    private readonly onLimitExceeded: OnLimitExceeded | undefined,
  ) {}

  send(message: Uint8Array): void {
    if (this.socket.readyState !== this.socket.OPEN) return
    this.frameCounts.out++
    this.socket.send(message, { binary: true })
    const buffered = this.socket.bufferedAmount
    if (this.slowReaderBytes > 0 && buffered > this.slowReaderBytes) {
      // A client that does not read: drop it now, its buffer with it (a
      // close handshake would queue behind the bytes it is not reading).
      this.onLimitExceeded?.('slow_reader')
      this.socket.close(CloseCode.SlowReader, `the client did not read ${buffered} bytes`)
      this.socket.terminate()
    }
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason.slice(0, 123))
  }
}

/** See the module comment. */
export class YWebSocketEndpoint {
  private readonly wss: WebSocketServer
  private readonly peers = new Map<YWebSocketPeer, WebSocket>()
  private readonly pingTimer: NodeJS.Timeout
  private readonly frameCounts: FrameCounts

  constructor(private readonly options: YWebSocketEndpointOptions) {
    this.frameCounts = options.frameCounts ?? { in: 0, out: 0 }
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes, perMessageDeflate: false })
    // One timer for every socket (no timer per connection).
    this.pingTimer = setInterval(() => this.pingAll(), options.pingIntervalMs)
    this.pingTimer.unref()
  }

  /** Upgrade a request for `/yjs/<address>`. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, address: string): void {
    const release = this.options.perIp?.acquire(peerAddress(req.socket))
    if (release === null) {
      this.options.onLimitExceeded?.('sessions_per_ip')
      socket.end('HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\ntoo many connections from this address\n')
      return
    }
    // A failed handshake never opens a socket: release its count with the raw socket.
    socket.once('close', () => release?.())
    const ip = peerAddress(req.socket)
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      ws.once('close', () => release?.())
      void this.onConnection(ws, address, ip)
    })
  }

  /** How many sockets are open (including those whose document is still loading). */
  get connectionCount(): number {
    return this.wss.clients.size
  }

  /** Close every socket and stop pinging. */
  close(code: number, reason: string): void {
    clearInterval(this.pingTimer)
    for (const socket of this.peers.values()) socket.close(code, reason)
    this.wss.close()
  }

  private async onConnection(ws: WebSocket, address: string, ip: string): Promise<void> {
    const { logger, rooms, directory } = this.options
    // One open and one close line per socket, at info (as Comet sessions log theirs).
    const openedAt = Date.now()
    logger.info({ address, transport: 'y-websocket', ip }, 'y-websocket connection open')
    const refusals = new ThrottledLog({ logger })
    let lastError: Error | null = null
    ws.on('error', (error) => {
      lastError = error
    })
    // Messages that arrive while the room loads are kept and applied in order.
    const backlog: Uint8Array[] = []
    let room: Room | null = null
    let peer: YWebSocketPeer | null = null
    const limiter = new RateLimiter({ messagesPerSecond: this.options.maxMessagesPerSecond ?? 0, bytesPerSecond: this.options.maxBytesPerSecond ?? 0 })
    const isLimited = limiter.isEnabled
    ws.on('message', (data, isBinary) => {
      if (ws.readyState !== ws.OPEN) return
      if (isLimited) {
        const exceeded = limiter.take(1, Array.isArray(data) ? data.reduce((sum, chunk) => sum + chunk.length, 0) : data.byteLength)
        if (exceeded) {
          this.options.onLimitExceeded?.(exceeded)
          ws.close(CloseCode.RateLimited, exceeded === 'messages_per_second' ? `more than ${this.options.maxMessagesPerSecond} messages per second` : `more than ${this.options.maxBytesPerSecond} bytes per second`)
          return
        }
      }
      if (!isBinary) {
        this.options.onRefused?.('malformed')
        ws.close(CloseCode.BadFrame, 'text frames are not part of the y-websocket protocol')
        return
      }
      const bytes = wsBytes(data)
      this.frameCounts.in++
      if (room && peer) this.dispatch(room, peer, ws, bytes, refusals)
      else backlog.push(bytes)
    })
    ws.on('close', (code, reason) => {
      if (peer) {
        this.peers.delete(peer)
        if (room) rooms.leave(room.docId, peer)
      }
      refusals.flush()
      logger.info(
        { address, code, codeName: closeCodeName(code), reason: reason.toString() || lastError?.message || '', transport: 'y-websocket', durationMs: Date.now() - openedAt },
        'y-websocket connection closed',
      )
    })
    ws.on('pong', () => {
      if (peer) peer.isAlive = true
    })

    let access
    try {
      access = await directory.resolve(address)
    } catch (error) {
      logger.error({ err: error, address }, 'resolving a document failed')
      ws.close(CloseCode.InternalError, 'the document could not be opened')
      return
    }
    if (!access) {
      ws.close(CloseCode.NotFound, 'no document has this address')
      return
    }
    if (ws.readyState !== ws.OPEN) return
    peer = new YWebSocketPeer(`yjs:${address}`, ws, access.canWrite, this.frameCounts, this.options.slowReaderBytes ?? 0, this.options.onLimitExceeded)
    this.peers.set(peer, ws)
    const docId: DocId = access.docId
    try {
      room = await rooms.join(docId, peer)
    } catch (error) {
      if (error instanceof RoomsFullError) {
        logger.warn({ docId }, error.message)
        ws.close(CloseCode.InternalError, 'the server has too many documents open; try again later')
        return
      }
      logger.error({ err: error, docId }, 'loading a document failed')
      ws.close(CloseCode.InternalError, 'the document could not be loaded')
      return
    }
    if (ws.readyState !== ws.OPEN) {
      rooms.leave(docId, peer)
      return
    }
    for (const bytes of backlog.splice(0)) this.dispatch(room, peer, ws, bytes, refusals)
  }

  private dispatch(room: Room, peer: YWebSocketPeer, ws: WebSocket, bytes: Uint8Array, refusals: ThrottledLog): void {
    const result = handleMessage(room, peer, bytes)
    if (!result) return
    refusals.warn({ peer: peer.id, docId: room.docId, ...result }, 'refused a message')
    this.options.onRefused?.(result.refused)
    // A stock client cannot read our error messages: a malformed message closes its socket with the reason.
    // A refused presence entry is dropped, not fatal: stock clients re-send
    // others' states and a reconnecting client may still own its old id.
    if (result.refused === 'too-large') ws.close(CloseCode.TooLarge, result.detail.slice(0, 123))
    else if (result.refused !== 'read-only' && result.refused !== 'awareness') ws.close(CloseCode.BadFrame, result.detail.slice(0, 123))
  }

  private pingAll(): void {
    for (const [peer, socket] of this.peers) {
      if (!peer.isAlive) {
        socket.terminate()
        continue
      }
      peer.isAlive = false
      socket.ping()
    }
  }
}
