/**
 * The WebSocket transport: one binary message per batch.
 */
import { Observable } from '../../../common/observable'
import type { ClientTransport, ClientTransportEvents } from '../transport'

/** The parts of the WebSocket API this transport uses (the browser's, or `ws` in Node). */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code: number; reason: string }) => void) | null
  onerror: ((event: unknown) => void) | null
}

/** A constructor for WebSockets (the browser's `WebSocket`, or `ws`'s). */
export type WebSocketConstructor = new (url: string) => WebSocketLike

const OPEN = 1

/** A {@link ClientTransport} over a WebSocket. */
export class WebSocketTransport extends Observable<ClientTransportEvents> implements ClientTransport {
  readonly name = 'websocket' as const
  private readonly socket: WebSocketLike
  private isOpen = false
  private isClosed = false

  constructor(url: string, WebSocketImpl: WebSocketConstructor) {
    super()
    this.socket = new WebSocketImpl(url)
    this.socket.binaryType = 'arraybuffer'
    this.socket.onopen = () => {
      if (this.isClosed) return
      this.isOpen = true
      this.emit('open', [])
    }
    this.socket.onmessage = (event) => {
      if (this.isClosed) return
      const { data } = event
      if (data instanceof ArrayBuffer) this.emit('batch', [new Uint8Array(data)])
      else if (ArrayBuffer.isView(data)) this.emit('batch', [new Uint8Array(data.buffer, data.byteOffset, data.byteLength)])
      else this.close(4400, 'the server sent a text frame')
    }
    this.socket.onclose = (event) => this.finish(event.code, event.reason)
    // The browser follows every error with a close event carrying the code.
    this.socket.onerror = () => {}
  }

  send(batch: Uint8Array): void {
    if (!this.isClosed && this.socket.readyState === OPEN) this.socket.send(batch)
  }

  close(code: number, reason: string): void {
    if (this.isClosed) return
    try {
      this.socket.close(code, reason)
    } catch {
      this.socket.close()
    }
    this.finish(code, reason)
  }

  private finish(code: number, reason: string): void {
    if (this.isClosed) return
    this.isClosed = true
    this.socket.onopen = this.socket.onmessage = this.socket.onclose = null
    // Keep an error handler: closing a socket that is still connecting
    // reports an error afterwards, and `ws` in Node throws unhandled ones.
    this.socket.onerror = () => {}
    this.emit('close', [code, reason, this.isOpen])
  }
}
