/**
 * The WebSocket transport: one binary WebSocket message per batch.
 */
import { Observable } from '../../../common/observable'
import type { WebSocket } from 'ws'
import { CloseCode } from '../../../common/close-codes'
import type { ServerTransport, ServerTransportEvents } from '../transport'
import { wsBytes } from '../../util/ws-bytes'


/** A {@link ServerTransport} over a `ws` WebSocket. */
export class WebSocketTransport extends Observable<ServerTransportEvents> implements ServerTransport {
  readonly name = 'websocket' as const
  private isClosed = false

  constructor(private readonly socket: WebSocket) {
    super()
    socket.binaryType = 'nodebuffer'
    socket.on('message', (data, isBinary) => {
      if (this.isClosed) return
      if (!isBinary) {
        this.close(CloseCode.BadFrame, 'text frames are not part of the protocol; send binary')
        return
      }
      this.emit('batch', [wsBytes(data)])
    })
    // Without an 'error' listener a bad frame from one client would throw and
    // take the whole process down; ws follows every error with 'close'.
    // The error is not lost: it becomes the close reason the session logs.
    let lastError: Error | null = null
    socket.on('error', (error) => {
      lastError = error
    })
    socket.on('close', (code, reason) => {
      if (this.isClosed) return
      this.isClosed = true
      const isClean = lastError === null && (code === CloseCode.Normal || code === CloseCode.GoingAway)
      const text = reason.toString('utf8') || (lastError ? `socket error: ${lastError.message}` : '')
      this.emit('close', [code, text, isClean])
    })
  }

  get bufferedBytes(): number {
    return this.socket.bufferedAmount
  }

  send(batch: Uint8Array): void {
    if (this.isClosed || this.socket.readyState !== this.socket.OPEN) return
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
    const timer = setTimeout(() => this.socket.terminate(), 2_000)
    timer.unref()
    this.emit('close', [code, reason, code === CloseCode.Normal || code === CloseCode.GoingAway])
  }

  abort(): void {
    this.isClosed = true
    this.socket.terminate()
  }
}
