/**
 * The client end of the Comet channel: an ordered, reliable stream of
 * binary messages to the server, over whichever transport works, that
 * survives drops and reconnects by itself (PROTOCOL.md §3–§5).
 *
 * Upstream messages are numbered and kept until the server acknowledges
 * them; after a drop the channel resumes its session and resends what the
 * server did not get. If the server no longer knows the session (it
 * restarted), the channel starts a new one and says so with
 * `open { resumed: false }`, so the layer above can resynchronise.
 */
import { ObservableV2 } from 'lib0/observable'
import { CloseCode, isRetryable } from '../../common/close-codes'
import { decodeBatch, encodeBatch, FrameKind, type Frame } from '../../common/comet/frame'
import { parseAdvice, parseHandshake, type Advice, type Handshake, type TransportName } from '../../common/comet/handshake'
import * as limits from '../../common/limits'
import { nextDelay, type BackoffOptions } from './backoff'
import type { ClientTransport, TransportFactory } from './transport'
import { WebSocketTransport, type WebSocketConstructor } from './transports/websocket'

/** Channel states; see {@link ChannelStatus}. */
export type ChannelState = 'connecting' | 'open' | 'reconnecting' | 'offline' | 'closed'

/** What the status indicator shows. */
export interface ChannelStatus {
  state: ChannelState
  /** The transport carrying the channel while open. */
  transport: TransportName | null
}

/** Events of a {@link Channel}. */
export type ChannelEvents = {
  /** A message from the server, in order, exactly once per session. */
  message: (payload: Uint8Array) => void
  /** Connected. `resumed: false` means a new session: resynchronise everything. */
  open: (info: { resumed: boolean; sid: string }) => void
  status: (status: ChannelStatus) => void
  /** The channel closed for good (refused, or `close()` was called). */
  close: (code: number, reason: string) => void
}

/** Channel options. */
export interface ChannelOptions {
  /** The WebSocket endpoint, e.g. `wss://host/comet/ws`. */
  url: string
  /** How to open a transport. @default WebSocket to `url` */
  transport?: TransportFactory
  /** WebSocket implementation for the default transport. @default globalThis.WebSocket */
  WebSocket?: WebSocketConstructor
  /** Give up on a connection attempt that has not completed its handshake after this long, in ms. @default 5000 */
  connectTimeoutMs?: number
  /** Reconnect backoff, in ms. @default { baseMs: 250, maxMs: 10000 } */
  backoff?: BackoffOptions
  /** Random source for jitter (tests pass a seeded one). @default Math.random */
  random?: () => number
  /** Show "offline" after this many failed attempts in a row. @default 3 */
  offlineAfterAttempts?: number
}

interface OutboxEntry {
  seq: number
  payload: Uint8Array
}

/** See the module comment. */
export class Channel extends ObservableV2<ChannelEvents> {
  private readonly openTransport: TransportFactory
  private readonly connectTimeoutMs: number
  private readonly backoff: BackoffOptions
  private readonly random: () => number
  private readonly offlineAfterAttempts: number
  private transport: ClientTransport | null = null
  private handshake: Handshake | null = null
  private sid: string | null = null
  private advice: Advice = { reconnect: 'retry', retryAfterMs: 0 }
  private statusValue: ChannelStatus = { state: 'connecting', transport: null }
  private readonly outbox: OutboxEntry[] = []
  private pending: Frame[] = []
  private isFlushScheduled = false
  private nextSeq = 1
  private lastInSeq = 0
  private isAckDue = false
  private attempt = 0
  /** Whether a handshake ever completed (the outbox then belongs to that session). */
  private hasHadSession = false
  private lastHeardAt = 0
  private connectTimer: ReturnType<typeof setTimeout> | null = null
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  private watchdogTimer: ReturnType<typeof setInterval> | null = null
  private readonly cleanups: (() => void)[] = []

  constructor(options: ChannelOptions) {
    super()
    const WebSocketImpl = options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketConstructor | undefined)
    this.openTransport =
      options.transport ??
      (({ resume }) => {
        if (!WebSocketImpl) throw new Error('no WebSocket implementation available')
        const url = new URL(options.url)
        if (resume) {
          url.searchParams.set('sid', resume.sid)
          url.searchParams.set('ack', String(resume.ack))
        }
        return new WebSocketTransport(url.toString(), WebSocketImpl)
      })
    this.connectTimeoutMs = options.connectTimeoutMs ?? limits.connectTimeoutMs
    this.backoff = options.backoff ?? { baseMs: limits.reconnectBaseMs, maxMs: limits.reconnectMaxMs }
    this.random = options.random ?? Math.random
    this.offlineAfterAttempts = options.offlineAfterAttempts ?? 3
    this.listenToNetwork()
    this.connect()
  }

  /** The current status. */
  get status(): ChannelStatus {
    return this.statusValue
  }

  /** The session id, once the server has given one. */
  get sessionId(): string | null {
    return this.sid
  }

  /** Upstream messages the server has not acknowledged yet. */
  get unackedCount(): number {
    return this.outbox.length
  }

  /**
   * Send a message. Delivered once, in order, as long as the session
   * lives; kept and resent across drops.
   */
  send(payload: Uint8Array): void {
    if (this.statusValue.state === 'closed') return
    const seq = this.nextSeq++
    this.outbox.push({ seq, payload })
    if (this.statusValue.state === 'open') this.queue({ kind: FrameKind.Data, seq, payload })
  }

  /** Close for good: say goodbye to the server and stop reconnecting. */
  close(reason = 'client closed the channel'): void {
    if (this.statusValue.state === 'closed') return
    const transport = this.transport
    if (transport && this.statusValue.state === 'open') {
      this.flush()
      transport.send(encodeBatch([{ kind: FrameKind.Close, code: CloseCode.Normal, reason }]))
    }
    this.finish(CloseCode.Normal, reason)
  }

  /** Drop the current connection and reconnect now (e.g. the network came back). */
  reconnectNow(): void {
    if (this.statusValue.state === 'closed') return
    this.attempt = 0
    if (this.retryTimer) {
      clearTimeout(this.retryTimer)
      this.retryTimer = null
      this.connect()
    } else if (this.statusValue.state !== 'open') {
      this.dropTransport(CloseCode.GoingAway, 'reconnecting')
      this.connect()
    }
  }

  private connect(): void {
    if (this.statusValue.state === 'closed') return
    this.retryTimer = null
    this.handshake = null
    const resume = this.sid && this.advice.reconnect === 'retry' ? { sid: this.sid, ack: this.lastInSeq } : null
    let transport: ClientTransport
    try {
      transport = this.openTransport({ resume, sessionId: () => this.sid, lastReceivedSeq: () => this.lastInSeq })
    } catch (error) {
      this.scheduleReconnect(`could not open a transport: ${(error as Error).message}`)
      return
    }
    this.transport = transport
    transport.on('batch', (bytes) => this.onBatch(transport, bytes))
    transport.on('close', (code, reason) => this.onTransportClose(transport, code, reason))
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null
      if (this.transport === transport && !this.handshake) {
        this.dropTransport(CloseCode.Timeout, `no handshake within ${this.connectTimeoutMs} ms`)
        this.scheduleReconnect('connect timeout')
      }
    }, this.connectTimeoutMs)
  }

  private onBatch(transport: ClientTransport, bytes: Uint8Array): void {
    if (transport !== this.transport) return
    this.lastHeardAt = Date.now()
    let frames: Frame[]
    try {
      frames = decodeBatch(bytes, limits.maxFrameBytes)
    } catch (error) {
      this.dropTransport(CloseCode.BadFrame, (error as Error).message)
      this.scheduleReconnect('malformed batch from the server')
      return
    }
    for (const frame of frames) {
      if (transport !== this.transport) return
      this.onFrame(frame)
    }
  }

  private onFrame(frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.Hello:
        this.onHello(frame.json)
        return
      case FrameKind.Data:
        if (!this.handshake || frame.seq <= this.lastInSeq) return // a resend we already have
        if (frame.seq !== this.lastInSeq + 1) {
          // A gap cannot be repaired inside this session: start a new one.
          this.sid = null
          this.dropTransport(CloseCode.BadFrame, `frame ${frame.seq} arrived after ${this.lastInSeq}`)
          this.scheduleReconnect('sequence gap')
          return
        }
        this.lastInSeq = frame.seq
        this.isAckDue = true
        this.scheduleFlush()
        this.emit('message', [frame.payload])
        return
      case FrameKind.Ack: {
        let drop = 0
        while (drop < this.outbox.length && this.outbox[drop]!.seq <= frame.seq) drop++
        if (drop > 0) this.outbox.splice(0, drop)
        return
      }
      case FrameKind.Ping:
        this.queue({ kind: FrameKind.Pong, nonce: frame.nonce })
        return
      case FrameKind.Pong:
        return
      case FrameKind.Advice: {
        const advice = parseAdvice(frame.json)
        if (advice) this.advice = advice
        return
      }
      case FrameKind.Close:
        this.onServerClose(frame.code, frame.reason)
        return
      default:
        unexpectedFrame(frame)
    }
  }

  private onHello(json: string): void {
    const handshake = parseHandshake(json)
    if (!handshake) {
      this.dropTransport(CloseCode.BadFrame, 'unreadable handshake')
      this.scheduleReconnect('unreadable handshake')
      return
    }
    if (this.connectTimer) clearTimeout(this.connectTimer)
    this.connectTimer = null
    this.handshake = handshake
    this.advice = handshake.advice
    this.attempt = 0
    const resumed = handshake.resumed && handshake.sid === this.sid
    if (!resumed && this.hasHadSession) {
      // A new session replacing an old one: nothing of the old one carries
      // over (the layer above resynchronises on `open`). Messages sent
      // before the very first session keep their seqs from 1 and go out.
      this.outbox.length = 0
      this.nextSeq = 1
      this.lastInSeq = 0
    } else {
      let drop = 0
      while (drop < this.outbox.length && this.outbox[drop]!.seq <= handshake.ack) drop++
      this.outbox.splice(0, drop)
    }
    this.sid = handshake.sid
    this.hasHadSession = true
    this.pending = []
    for (const { seq, payload } of this.outbox) this.pending.push({ kind: FrameKind.Data, seq, payload })
    this.startWatchdog(handshake)
    this.setStatus({ state: 'open', transport: this.transport?.name ?? null })
    this.emit('open', [{ resumed, sid: handshake.sid }])
    this.flush()
  }

  private onServerClose(code: number, reason: string): void {
    this.dropTransport(code, reason)
    if (!isRetryable(code) || this.advice.reconnect === 'none') {
      this.finish(code, reason)
      return
    }
    // The server ended the session: the next connection starts a new one.
    this.sid = null
    this.scheduleReconnect(reason)
  }

  private onTransportClose(transport: ClientTransport, code: number, reason: string): void {
    if (transport !== this.transport) return
    this.transport = null
    if (this.advice.reconnect === 'none') {
      this.finish(code, reason)
      return
    }
    this.scheduleReconnect(reason || `closed with ${code}`)
  }

  private scheduleReconnect(_reason: string): void {
    if (this.statusValue.state === 'closed' || this.retryTimer) return
    this.stopWatchdog()
    const isOffline = typeof navigator !== 'undefined' && navigator.onLine === false
    const state: ChannelState = isOffline || this.attempt >= this.offlineAfterAttempts ? 'offline' : 'reconnecting'
    this.setStatus({ state, transport: null })
    const delayMs = nextDelay(this.attempt++, this.advice.retryAfterMs, this.backoff, this.random)
    this.retryTimer = setTimeout(() => this.connect(), delayMs)
  }

  private dropTransport(code: number, reason: string): void {
    const transport = this.transport
    this.transport = null
    this.handshake = null
    if (this.connectTimer) clearTimeout(this.connectTimer)
    this.connectTimer = null
    transport?.close(code, reason)
  }

  private startWatchdog(handshake: Handshake): void {
    this.stopWatchdog()
    const silentLimitMs = handshake.pingIntervalMs + handshake.pingTimeoutMs
    this.lastHeardAt = Date.now()
    this.watchdogTimer = setInterval(() => {
      if (Date.now() - this.lastHeardAt > silentLimitMs) {
        this.dropTransport(CloseCode.Timeout, `nothing from the server for ${silentLimitMs} ms`)
        this.scheduleReconnect('server silent')
      }
    }, Math.max(250, Math.min(1_000, handshake.pingTimeoutMs / 4)))
  }

  private stopWatchdog(): void {
    if (this.watchdogTimer) clearInterval(this.watchdogTimer)
    this.watchdogTimer = null
  }

  private queue(frame: Frame): void {
    this.pending.push(frame)
    this.scheduleFlush()
  }

  // Everything one task produces leaves in one batch.
  private scheduleFlush(): void {
    if (this.isFlushScheduled) return
    this.isFlushScheduled = true
    queueMicrotask(() => {
      this.isFlushScheduled = false
      this.flush()
    })
  }

  private flush(): void {
    const transport = this.transport
    if (!transport || !this.handshake) return
    if (this.pending.length === 0 && !this.isAckDue) return
    const frames = this.pending
    this.pending = []
    if (this.isAckDue) {
      frames.unshift({ kind: FrameKind.Ack, seq: this.lastInSeq })
      this.isAckDue = false
    }
    transport.send(encodeBatch(frames))
  }

  private setStatus(status: ChannelStatus): void {
    if (status.state === this.statusValue.state && status.transport === this.statusValue.transport) return
    this.statusValue = status
    this.emit('status', [status])
  }

  private finish(code: number, reason: string): void {
    if (this.statusValue.state === 'closed') return
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = null
    this.stopWatchdog()
    this.dropTransport(code === CloseCode.Normal ? CloseCode.Normal : CloseCode.GoingAway, reason)
    for (const cleanup of this.cleanups.splice(0)) cleanup()
    this.setStatus({ state: 'closed', transport: null })
    this.emit('close', [code, reason])
  }

  private listenToNetwork(): void {
    if (typeof window === 'undefined' || typeof window.addEventListener !== 'function') return
    const onOnline = () => this.reconnectNow()
    const onOffline = () => {
      if (this.statusValue.state !== 'open') this.setStatus({ state: 'offline', transport: null })
    }
    window.addEventListener('online', onOnline)
    window.addEventListener('offline', onOffline)
    this.cleanups.push(() => {
      window.removeEventListener('online', onOnline)
      window.removeEventListener('offline', onOffline)
    })
  }
}

function unexpectedFrame(frame: never): never {
  throw new TypeError(`unexpected frame ${JSON.stringify(frame)}`)
}
