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
import { Observable } from '../../common/observable'
import { CloseCode, isRetryable } from '../../common/close-codes'
import { decodeBatch, encodeBatch, FrameKind, type Frame } from '../../common/comet/frame'
import { parseAdvice, parseHandshake, type Advice, type Handshake, type TransportName } from '../../common/comet/handshake'
import * as limits from '../../common/limits'
import { nextDelay, type BackoffOptions } from './backoff'
import type { ClientTransport, TransportFactory } from './transport'
import { LongPollTransport } from './transports/long-poll'
import { StreamTransport } from './transports/stream'
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

/** The transports a channel can choose between, in the order it tries them. */
export type ChannelTransportName = 'websocket' | 'stream' | 'long-poll'

/**
 * Where a channel remembers, per server, that WebSocket failed there (the
 * parts of the Web Storage API it uses).
 */
export interface TransportMemory {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
}

/** Channel options. */
export interface ChannelOptions {
  /** The WebSocket endpoint, e.g. `wss://host/comet/ws`. */
  url: string
  /**
   * The server's http(s) origin for long-polling, e.g. `https://host`.
   * @default `url` with ws(s) made http(s) and the path dropped
   */
  baseUrl?: string
  /**
   * Transports to use. WebSocket first; when it fails before its first
   * handshake the channel falls back to long-polling (PROTOCOL.md §1).
   * @default ['websocket', 'long-poll']
   */
  transports?: ChannelTransportName[]
  /** How to open a transport; when given it is the only one (no fallback). Tests use it. */
  transport?: TransportFactory
  /** Open the named transports with these factories instead of the real ones (tests). */
  transportFactories?: Partial<Record<ChannelTransportName, TransportFactory>>
  /** WebSocket implementation for the default transport. @default globalThis.WebSocket */
  WebSocket?: WebSocketConstructor
  /** fetch for the long-poll transport. @default globalThis.fetch */
  fetch?: typeof fetch
  /**
   * Where to remember that WebSocket failed on this server, so that the
   * next page load starts with long-polling. `null` remembers nothing.
   * @default globalThis.localStorage when there is one
   */
  memory?: TransportMemory | null
  /** Give up on a connection attempt that has not completed its handshake after this long, in ms. @default 5000 */
  connectTimeoutMs?: number
  /** Reconnect backoff, in ms. @default { baseMs: 250, maxMs: 10000 } */
  backoff?: BackoffOptions
  /** Random source for jitter (tests pass a seeded one). @default Math.random */
  random?: () => number
  /**
   * While on streaming or long-polling, probe WebSocket in the background
   * this long after connecting (then with backoff up to a minute), and move
   * the session there when it works (PROTOCOL.md §5). @default 3000
   */
  upgradeProbeDelayMs?: number
  /** Show "offline" after this many failed attempts in a row. @default 3 */
  offlineAfterAttempts?: number
}

/** A Data frame kept until acknowledged; the same object is queued for sending. */
type OutboxEntry = Extract<Frame, { kind: typeof FrameKind.Data }>

/** Key under which a channel remembers the transport that works with `host`. */
export function transportMemoryKey(host: string): string {
  return `cometpad:transport:${host}`
}

/** See the module comment. */
export class Channel extends Observable<ChannelEvents> {
  /** The `transport` option: the only transport, no fallback. */
  private readonly fixedTransport: TransportFactory | null
  private readonly factories: Record<ChannelTransportName, TransportFactory>
  /** The transports to try, best first (the fallback ladder). */
  private readonly ladder: ChannelTransportName[]
  /** Whether a failing transport may fall back to the next one. */
  private readonly canFallBack: boolean
  /** Transports that carried a handshake in this channel's life: their later drops never cause a fallback. */
  private readonly worked = new Set<ChannelTransportName>()
  private readonly memory: TransportMemory | null
  private readonly memoryKey: string | null
  /** The transport the next connection attempt uses. */
  private choice: ChannelTransportName
  /** Below the first rung because a better transport failed before its handshake. */
  private isFallingBack = false
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
  /** Data frames received since the last ack went out. */
  private unackedIn = 0
  /** An ack goes alone once this many Data frames wait (see {@link drawAckThreshold}). */
  private ackAfterFrames: number
  /** Data frames that overtook an earlier one (HTTP transports), by seq. */
  private readonly early = new Map<number, Uint8Array>()
  private ackTimer: ReturnType<typeof setTimeout> | null = null
  private attempt = 0
  /** Whether a handshake ever completed (the outbox then belongs to that session). */
  private hasHadSession = false
  private lastHeardAt = 0
  private connectTimer: ReturnType<typeof setTimeout> | null = null
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  /** No reconnect before this time (ms since the epoch): the server's `retryAfterMs` from the last drop. */
  private retryNotBefore = 0
  private watchdogTimer: ReturnType<typeof setInterval> | null = null
  private readonly cleanups: (() => void)[] = []
  private readonly upgradeProbeDelayMs: number
  private probeTimer: ReturnType<typeof setTimeout> | null = null
  private probeAttempt = 0
  private probing: ClientTransport | null = null

  constructor(options: ChannelOptions) {
    super()
    const WebSocketImpl = options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketConstructor | undefined)
    this.fixedTransport = options.transport ?? null
    this.factories = {
      websocket:
        options.transportFactories?.websocket ??
        (({ resume, probe }) => {
          if (!WebSocketImpl) throw new Error('no WebSocket implementation available')
          const url = new URL(options.url)
          if (resume) {
            url.searchParams.set('sid', resume.sid)
            url.searchParams.set('ack', String(resume.ack))
          }
          if (probe) url.searchParams.set('probe', '1')
          return new WebSocketTransport(url.toString(), WebSocketImpl)
        }),
      'long-poll':
        options.transportFactories?.['long-poll'] ??
        ((context) =>
          new LongPollTransport({
            baseUrl: options.baseUrl ?? httpOrigin(options.url),
            context,
            ...(options.fetch ? { fetch: options.fetch } : {}),
          })),
      stream:
        options.transportFactories?.stream ??
        ((context) =>
          new StreamTransport({
            baseUrl: options.baseUrl ?? httpOrigin(options.url),
            context,
            ...(options.fetch ? { fetch: options.fetch } : {}),
          })),
    }
    const choices = options.transports ?? ['websocket', 'stream', 'long-poll']
    if (choices.length === 0) throw new TypeError('transports must name at least one transport')
    this.ladder = [...choices]
    this.choice = choices[0]!
    this.canFallBack = !this.fixedTransport && choices.length > 1
    this.memory = options.memory === undefined ? defaultMemory() : options.memory
    const host = hostOf(options.url)
    this.memoryKey = host === null ? null : transportMemoryKey(host)
    const remembered = this.recall()
    if (this.canFallBack && remembered !== null && remembered !== this.ladder[0] && this.ladder.includes(remembered as ChannelTransportName)) {
      // A better transport failed on this server before: do not make every
      // page load wait for it to fail again. (Seam for the upgrade probe:
      // once this transport is open, try a WebSocket with the same sid in
      // the background, switch when it carries the resumed Hello, and
      // forget this note.)
      this.choice = remembered as ChannelTransportName
      this.worked.add(this.choice)
    }
    this.connectTimeoutMs = options.connectTimeoutMs ?? limits.connectTimeoutMs
    this.backoff = options.backoff ?? { baseMs: limits.reconnectBaseMs, maxMs: limits.reconnectMaxMs }
    this.random = options.random ?? Math.random
    this.ackAfterFrames = drawAckThreshold(this.random)
    this.offlineAfterAttempts = options.offlineAfterAttempts ?? 3
    this.upgradeProbeDelayMs = options.upgradeProbeDelayMs ?? 3_000
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
    const frame: OutboxEntry = { kind: FrameKind.Data, seq: this.nextSeq++, payload }
    this.outbox.push(frame)
    if (this.statusValue.state === 'open') this.queue(frame)
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
      // Sooner than usual, but never sooner than the server advised (a
      // rate-limited client coming back at once would only be refused again).
      const waitMs = this.retryNotBefore - Date.now()
      if (waitMs > 0) this.retryTimer = setTimeout(() => this.connect(), waitMs)
      else this.connect()
    } else if (this.statusValue.state !== 'open') {
      this.dropTransport(CloseCode.GoingAway, 'reconnecting')
      this.connect()
    }
  }

  private connect(): void {
    if (this.statusValue.state === 'closed') return
    this.retryTimer = null
    this.handshake = null
    // The session resumes whatever the transport: the server knows it by sid.
    const resume = this.sid && this.advice.reconnect === 'retry' ? { sid: this.sid, ack: this.lastInSeq } : null
    const choice = this.choice
    let transport: ClientTransport
    try {
      const open = this.fixedTransport ?? this.factories[choice]
      transport = open({ resume, sessionId: () => this.sid, lastReceivedSeq: () => this.lastInSeq })
    } catch (error) {
      this.onFailedBeforeHandshake(choice)
      this.scheduleReconnect(`could not open a transport: ${(error as Error).message}`)
      return
    }
    this.transport = transport
    transport.on('batch', (bytes) => this.onBatch(transport, bytes))
    transport.on('alive', () => {
      if (transport === this.transport) this.lastHeardAt = Date.now()
    })
    transport.on('close', (code, reason) => this.onTransportClose(transport, code, reason))
    this.armConnectTimer(() => {
      if (this.transport === transport && !this.handshake) {
        this.onFailedBeforeHandshake(transport.name)
        this.dropTransport(CloseCode.Timeout, `no handshake within ${this.connectTimeoutMs} ms`)
        this.scheduleReconnect('connect timeout')
      }
    })
  }

  /**
   * A connection attempt over `name` ended before its handshake (timed out,
   * closed, held back by a buffering proxy, or could not be opened): the
   * next attempt uses the next transport down the ladder.
   */
  private onFailedBeforeHandshake(name: string): void {
    if (!this.canFallBack) return
    const rung = this.ladder.indexOf(name as ChannelTransportName)
    if (rung < 0 || this.worked.has(name as ChannelTransportName)) return
    if (rung + 1 < this.ladder.length) {
      this.choice = this.ladder[rung + 1]!
      this.isFallingBack = true
    } else if (this.isFallingBack && this.worked.size === 0) {
      // Every transport failed, so the server or the network is down rather
      // than WebSocket blocked: start from the top again, or a server
      // restart would push every client down the ladder for good.
      this.choice = this.ladder[0]!
      this.isFallingBack = false
    }
  }

  /** A handshake arrived over `name`: that transport works here; stay on it. */
  private onHandshakeOver(name: string): void {
    const transport = name as ChannelTransportName
    if (!this.ladder.includes(transport)) return
    // Remember it for the next page load only when it rescued a better transport that failed.
    if (this.isFallingBack && !this.worked.has(transport)) this.remember(transport)
    this.worked.add(transport)
    if (this.canFallBack) this.choice = transport
  }

  private recall(): string | null {
    if (!this.memory || !this.memoryKey) return null
    try {
      return this.memory.getItem(this.memoryKey)
    } catch {
      return null // storage disabled (privacy mode, sandboxed frame)
    }
  }

  private remember(value: ChannelTransportName): void {
    if (!this.memory || !this.memoryKey) return
    try {
      this.memory.setItem(this.memoryKey, value)
    } catch {
      // Full or disabled storage: the next page load simply tries WebSocket again.
    }
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
          // Over HTTP, downstream frames travel two paths (the poll or
          // stream, and POST answers), so a later one may overtake an
          // earlier one. Keep it until the gap fills: the earlier frames are
          // on their way, or come again past our ack (PROTOCOL.md §4).
          if (this.transport?.name !== 'websocket' && this.early.size < limits.maxUnackedFrames) {
            this.early.set(frame.seq, frame.payload)
            return
          }
          // On one WebSocket a gap cannot be repaired inside this session: start a new one.
          this.sid = null
          this.dropTransport(CloseCode.BadFrame, `frame ${frame.seq} arrived after ${this.lastInSeq}`)
          this.scheduleReconnect('sequence gap')
          return
        }
        this.deliver(frame.payload)
        for (let next = this.early.get(this.lastInSeq + 1); next; next = this.early.get(this.lastInSeq + 1)) {
          this.early.delete(this.lastInSeq + 1)
          this.deliver(next)
        }
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
      case FrameKind.Upgrade:
        return // client-to-server only
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
    this.clearConnectTimer()
    this.handshake = handshake
    this.advice = handshake.advice
    this.attempt = 0
    if (this.transport) this.onHandshakeOver(this.transport.name)
    const resumed = handshake.resumed && handshake.sid === this.sid
    if (!resumed && this.hasHadSession) {
      // A new session replacing an old one: nothing of the old one carries
      // over (the layer above resynchronises on `open`). Messages sent
      // before the very first session keep their seqs from 1 and go out.
      this.outbox.length = 0
      this.nextSeq = 1
      this.lastInSeq = 0
      this.early.clear()
      this.clearAck()
    } else {
      let drop = 0
      while (drop < this.outbox.length && this.outbox[drop]!.seq <= handshake.ack) drop++
      this.outbox.splice(0, drop)
    }
    this.sid = handshake.sid
    this.hasHadSession = true
    this.pending = []
    for (const frame of this.outbox) this.pending.push(frame)
    this.startWatchdog(handshake)
    this.setStatus({ state: 'open', transport: this.transport?.name ?? null })
    this.emit('open', [{ resumed, sid: handshake.sid }])
    this.flush()
    this.scheduleUpgradeProbe()
  }

  // --- Upgrade back to WebSocket: probe → pause → switch (PROTOCOL.md §5) ---

  private scheduleUpgradeProbe(): void {
    if (this.probeTimer || this.probing || this.fixedTransport) return
    const current = this.transport?.name
    if (!current || current === 'websocket' || this.ladder[0] !== 'websocket') return
    if (!this.handshake?.transports.includes('websocket')) return
    const delayMs = nextDelay(this.probeAttempt++, this.upgradeProbeDelayMs, { baseMs: this.upgradeProbeDelayMs, maxMs: 60_000 }, this.random)
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null
      this.startUpgradeProbe()
    }, delayMs)
  }

  private startUpgradeProbe(): void {
    if (!this.sid || !this.handshake || this.statusValue.state !== 'open' || this.transport?.name === 'websocket') return
    let probe: ClientTransport
    try {
      probe = this.factories.websocket({ resume: { sid: this.sid, ack: this.lastInSeq }, probe: true, sessionId: () => this.sid, lastReceivedSeq: () => this.lastInSeq })
    } catch {
      this.scheduleUpgradeProbe()
      return
    }
    this.probing = probe
    const giveUp = (why: string) => {
      if (this.probing !== probe) return
      this.probing = null
      clearTimeout(timer)
      probe.close(CloseCode.Normal, why)
      this.scheduleUpgradeProbe()
    }
    const timer = setTimeout(() => giveUp('probe timed out'), this.connectTimeoutMs)
    probe.on('open', () => probe.send(encodeBatch([{ kind: FrameKind.Ping, nonce: 0 }])))
    const onProbeClose = () => giveUp('probe closed')
    probe.on('close', onProbeClose)
    probe.on('batch', (bytes) => {
      if (this.probing !== probe) return
      let frames: Frame[]
      try {
        frames = decodeBatch(bytes, limits.maxFrameBytes)
      } catch {
        giveUp('malformed probe answer')
        return
      }
      if (!frames.some((frame) => frame.kind === FrameKind.Pong && frame.nonce === 0)) {
        giveUp('unexpected probe answer')
        return
      }
      clearTimeout(timer)
      this.probing = null
      probe.off('close', onProbeClose)
      this.probeAttempt = 0
      this.switchTo(probe)
    })
  }

  // Pause: stop using the old transport at once (its held poll and any POST
  // in flight are abandoned; the server ignores a late POST on a replaced
  // transport, and resends every frame we have not acknowledged). Switch:
  // Upgrade{ack} over the WebSocket; its Hello resumes the session there.
  private switchTo(probe: ClientTransport): void {
    const old = this.transport
    this.transport = null
    this.handshake = null
    old?.close(CloseCode.Replaced, 'upgraded to WebSocket')
    this.transport = probe
    probe.on('batch', (bytes) => this.onBatch(probe, bytes))
    probe.on('alive', () => {
      if (probe === this.transport) this.lastHeardAt = Date.now()
    })
    probe.on('close', (code, reason) => this.onTransportClose(probe, code, reason))
    probe.send(encodeBatch([{ kind: FrameKind.Upgrade, ack: this.lastInSeq }]))
    this.armConnectTimer(() => {
      if (this.transport === probe && !this.handshake) {
        this.dropTransport(CloseCode.Timeout, `no handshake within ${this.connectTimeoutMs} ms after the upgrade`)
        this.scheduleReconnect('upgrade timeout')
      }
    })
  }

  /** Start the timer that fails a connection attempt without a handshake, replacing any earlier one. */
  private armConnectTimer(onTimeout: () => void): void {
    this.clearConnectTimer()
    const timer = setTimeout(() => {
      if (this.connectTimer === timer) this.connectTimer = null
      onTimeout()
    }, this.connectTimeoutMs)
    this.connectTimer = timer
  }

  private clearConnectTimer(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer)
    this.connectTimer = null
  }

  private stopUpgradeProbe(): void {
    if (this.probeTimer) clearTimeout(this.probeTimer)
    this.probeTimer = null
    const probe = this.probing
    this.probing = null
    probe?.close(CloseCode.Normal, 'probe cancelled')
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
    this.clearConnectTimer()
    if (!this.handshake) this.onFailedBeforeHandshake(transport.name)
    this.transport = null
    // A transport that learnt the session is gone (long-polling's 404 with
    // no readable Close frame) says so in its code: do not resume it.
    if (code === CloseCode.SessionUnknown || code === CloseCode.ResendWindowExceeded || code === CloseCode.SlowReader) this.sid = null
    if (this.advice.reconnect === 'none') {
      this.finish(code, reason)
      return
    }
    this.scheduleReconnect(reason || `closed with ${code}`)
  }

  private scheduleReconnect(_reason: string): void {
    if (this.statusValue.state === 'closed' || this.retryTimer) return
    this.stopUpgradeProbe()
    this.stopWatchdog()
    const isOffline = typeof navigator !== 'undefined' && navigator.onLine === false
    const state: ChannelState = isOffline || this.attempt >= this.offlineAfterAttempts ? 'offline' : 'reconnecting'
    this.setStatus({ state, transport: null })
    // The server's advice is a floor under the backoff (PROTOCOL.md §3).
    this.retryNotBefore = Date.now() + this.advice.retryAfterMs
    const delayMs = nextDelay(this.attempt++, this.advice.retryAfterMs, this.backoff, this.random)
    this.retryTimer = setTimeout(() => this.connect(), delayMs)
  }

  private dropTransport(code: number, reason: string): void {
    const transport = this.transport
    this.transport = null
    this.handshake = null
    this.clearConnectTimer()
    transport?.close(code, reason)
  }

  private startWatchdog(handshake: Handshake): void {
    this.stopWatchdog()
    let silentLimitMs = handshake.pingIntervalMs + handshake.pingTimeoutMs
    // The server does not ping a client that holds a poll, so a quiet
    // long-polling channel hears only the empty answer to each held poll
    // ('alive'), every pollHoldMs: allow for that plus the usual margin.
    if (this.transport?.name === 'long-poll') {
      silentLimitMs = Math.max(silentLimitMs, (handshake.pollHoldMs ?? limits.pollHoldMs) + handshake.pingTimeoutMs)
    }
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

  /** The next Data frame in order: apply it. */
  private deliver(payload: Uint8Array): void {
    this.lastInSeq++
    this.noteReceived()
    this.emit('message', [payload])
  }

  /**
   * Delayed acknowledgement (PROTOCOL.md §4): an ack rides on the next
   * upstream batch, or goes alone after `ackDelayMs` or once about
   * `ackEveryFrames` frames wait for it. Acking each frame at once would
   * double the messages on the wire and the server's work per delivered
   * update.
   */
  private noteReceived(): void {
    this.unackedIn++
    if (this.unackedIn >= this.ackAfterFrames) {
      this.isAckDue = true
      this.scheduleFlush()
    } else if (!this.ackTimer) {
      this.ackTimer = setTimeout(() => {
        this.ackTimer = null
        this.isAckDue = true
        this.flush()
      }, limits.ackDelayMs)
    }
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
    if (this.pending.length === 0) {
      if (!this.isAckDue) return
      // Every long-poll request carries the ack in its URL already.
      if (transport.acksEveryRequest) {
        this.clearAck()
        return
      }
    }
    const frames = this.pending
    this.pending = []
    if (this.unackedIn > 0 || this.isAckDue) {
      frames.unshift({ kind: FrameKind.Ack, seq: this.lastInSeq })
      this.clearAck()
    }
    transport.send(encodeBatch(frames))
  }

  private clearAck(): void {
    this.isAckDue = false
    this.unackedIn = 0
    this.ackAfterFrames = drawAckThreshold(this.random)
    if (this.ackTimer) clearTimeout(this.ackTimer)
    this.ackTimer = null
  }

  private setStatus(status: ChannelStatus): void {
    if (status.state === this.statusValue.state && status.transport === this.statusValue.transport) return
    this.statusValue = status
    this.emit('status', [status])
  }

  private finish(code: number, reason: string): void {
    if (this.statusValue.state === 'closed') return
    this.stopUpgradeProbe()
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = null
    this.stopWatchdog()
    this.clearAck()
    this.early.clear()
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

/** `ws(s)://host/path` → `http(s)://host`. */
function httpOrigin(wsUrl: string): string {
  const url = new URL(wsUrl)
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:'
  return url.origin
}

function hostOf(url: string): string | null {
  try {
    return new URL(url).host
  } catch {
    return null
  }
}

function defaultMemory(): TransportMemory | null {
  try {
    // Reading `localStorage` itself throws where storage is disabled.
    const storage = (globalThis as { localStorage?: TransportMemory }).localStorage
    return storage ?? null
  } catch {
    return null
  }
}

function unexpectedFrame(frame: never): never {
  throw new TypeError(`unexpected frame ${JSON.stringify(frame)}`)
}

/**
 * How many Data frames wait before an ack goes alone: drawn anew after
 * every ack, between half of `ackEveryFrames` and all of it. Every client
 * of a busy document receives the same frames at the same moments, so with
 * one fixed count they all acked in the same millisecond. Over the
 * streaming transport each of those acks is a POST: at 200 clients
 * (`npm run bench`), 180 of them reached the server at once, and the
 * writers' POSTs queued behind them for up to 200 ms, which was the
 * transport's p99.
 */
function drawAckThreshold(random: () => number): number {
  const half = Math.ceil(limits.ackEveryFrames / 2)
  return Math.min(limits.ackEveryFrames, half + Math.floor(random() * (limits.ackEveryFrames - half + 1)))
}
