/**
 * The WebSocket transport: one binary WebSocket message per batch.
 */
import { WebSocket, type RawData } from 'ws'
import type { Logger } from 'pino'
import { CloseCode } from '../../../common/close-codes'
import type { ServerTransport, TransportReceiver } from '../transport'
import { wsBytes } from '../../util/ws-bytes'

/**
 * The sockets the Comet endpoint's WebSocketServer makes (its `WebSocket`
 * option): a ws WebSocket that knows its transport, so that one set of
 * module-level listeners serves every socket. Listeners closing over each
 * transport cost three closures and a context per connected client.
 */
export class CometSocket extends WebSocket {
  transport: WebSocketTransport | null = null
}

// ws calls its listeners on the socket, which the endpoint made a CometSocket.
function onSocketMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  ;(this as CometSocket).transport?.handleMessage(data, isBinary)
}

// Without an 'error' listener a bad frame from one client would throw and
// take the whole process down; ws follows every error with 'close'.
function onSocketError(this: WebSocket, error: Error): void {
  ;(this as CometSocket).transport?.handleError(error)
}

function onSocketClose(this: WebSocket, code: number, reason: Buffer): void {
  ;(this as CometSocket).transport?.handleClose(code, reason)
}

/** A {@link ServerTransport} over a `ws` WebSocket. */
export class WebSocketTransport implements ServerTransport {
  readonly name = 'websocket' as const
  receiver: TransportReceiver | null = null
  /** The session carried, for the close log line; set by the endpoint. */
  sessionId: string | null = null
  private isClosed = false
  /** The socket's error, if it had one: it becomes the close reason the session logs. */
  private lastError: Error | null = null

  constructor(
    private readonly socket: CometSocket,
    /** Where the connection's close is logged, at debug (sessions log theirs at info). */
    private readonly logger: Logger,
  ) {
    socket.binaryType = 'nodebuffer'
    socket.transport = this
    socket.on('message', onSocketMessage)
    socket.on('error', onSocketError)
    socket.on('close', onSocketClose)
  }

  get bufferedBytes(): number {
    return this.socket.bufferedAmount
  }

  send(batch: Uint8Array): void {
    if (this.isClosed || this.socket.readyState !== WebSocket.OPEN) return
    this.socket.send(batch, { binary: true })
  }

  close(code: number, reason: string): void {
    if (this.isClosed) return
    this.isClosed = true
    // A WebSocket close reason is limited to 123 bytes.
    const shortReason = Buffer.from(reason).subarray(0, 123).toString('utf8').replace(/\uFFFD$/, '')
    try {
      this.socket.close(code, shortReason)
    } catch {
      this.socket.terminate()
    }
    // Don't wait for the peer's close frame: a dead peer never sends one.
    const socket = this.socket
    const timer = setTimeout(() => socket.terminate(), 2_000)
    timer.unref()
    this.closed(code, reason, code === CloseCode.Normal || code === CloseCode.GoingAway)
  }

  abort(): void {
    this.isClosed = true
    this.socket.terminate()
  }

  /** A message from the socket (its shared listener calls this). */
  handleMessage(data: RawData, isBinary: boolean): void {
    if (this.isClosed) return
    if (!isBinary) {
      this.close(CloseCode.BadFrame, 'text frames are not part of the protocol; send binary')
      return
    }
    this.receiver?.receiveBatch(wsBytes(data))
  }

  /** An error on the socket (its shared listener calls this); the close that follows reports it. */
  handleError(error: Error): void {
    this.lastError = error
  }

  /** The socket closed (its shared listener calls this). */
  handleClose(code: number, reason: Buffer): void {
    this.socket.transport = null
    if (this.isClosed) return
    this.isClosed = true
    const lastError = this.lastError
    const isClean = lastError === null && (code === CloseCode.Normal || code === CloseCode.GoingAway)
    const text = reason.toString('utf8') || (lastError ? `socket error: ${lastError.message}` : '')
    this.closed(code, text, isClean)
  }

  private closed(code: number, reason: string, isClean: boolean): void {
    this.logger.debug({ sid: this.sessionId, code, reason, transport: 'websocket' }, 'comet connection closed')
    this.receiver?.transportClosed(code, reason, isClean)
  }
}
