/**
 * A Comet session: an ordered, acknowledged, resumable stream of binary
 * messages between the server and one browser, carried by whichever
 * transport is attached (PROTOCOL.md §4). Knows nothing of Yjs or documents.
 *
 * Downstream, every message becomes a Data frame with the next sequence
 * number and stays in the outbox until the client acknowledges it, so a
 * dropped transport loses nothing: when the client resumes, everything past
 * its acknowledgement is sent again. Upstream, Data frames are applied once,
 * in order; a repeated seq (a retried send) is dropped.
 */
import { atTurnEnd, type TurnEndTask } from '../util/turn-end'
import { Observable } from '../../common/observable'
import { CloseCode, closeCodeName } from '../../common/close-codes'
import { decodeBatch, encodeBatch, FrameError, FrameKind, type Frame } from '../../common/comet/frame'
import type { Advice, Handshake, TransportName } from '../../common/comet/handshake'
import type { SessionId } from '../../common/ids'
import type { ServerTransport, TransportReceiver } from './transport'
import { RateLimiter } from './rate-limiter'
import type { LimitName, OnLimitExceeded } from '../util/limit-names'

/**
 * The longest wait a rate-limited client is advised: a byte bucket deep in
 * debt after one huge message could otherwise advise minutes.
 */
const maxRetryAfterMs = 60_000

/** Session timing and limits. */
export interface SessionOptions {
  /** Ping an idle client this often, in ms. */
  pingIntervalMs: number
  /** Drop a client silent for `pingIntervalMs + pingTimeoutMs`. */
  pingTimeoutMs: number
  /** Keep a dropped (not cleanly closed) session this long for the client to resume, in ms. */
  sessionGraceMs: number
  /** Largest Data payload accepted from the client, in bytes. */
  maxFrameBytes: number
  /** Close the session when more downstream frames than this await acknowledgement. */
  maxUnackedFrames: number
  /** Transports the server accepts, best first (sent in the handshake). */
  transports: TransportName[]
  /** How long a long-poll request is held, in ms (sent in the handshake). */
  pollHoldMs?: number
  /** A clock, in ms (tests pass a fake one). @default Date.now */
  now?: () => number
  /** Counts of Data frames in and out, shared by every session of a server (metrics). */
  frameCounts?: FrameCounts
  /** Upstream batches (WebSocket messages, POST bodies) per second; 0 = no limit. @default 0 */
  maxMessagesPerSecond?: number
  /** Upstream bytes per second; 0 = no limit. @default 0 */
  maxBytesPerSecond?: number
  /**
   * Polls per second that acknowledge nothing new (see {@link Session.admitPoll}),
   * bursts of twice as many; 0 = no limit. @default 0
   */
  maxPollsPerSecond?: number
  /**
   * Close the session when a push transport (WebSocket, stream) holds more
   * than this many bytes its client has not read; 0 = no limit. @default 0
   */
  slowReaderBytes?: number
  /** Called when the session is closed for exceeding a limit (metrics). */
  onLimitExceeded?: OnLimitExceeded
}

/**
 * Running totals of application frames, plain numbers so that counting
 * costs an increment on the hot path (metrics read them at scrape time).
 */
export interface FrameCounts {
  /** Frames received from clients. */
  in: number
  /** Frames queued for clients (each once, however often it is resent). */
  out: number
}

/** A session is attached (a transport is carrying it), detached (waiting for a resume) or closed. */
export type SessionState = 'attached' | 'detached' | 'closed'

/**
 * Events of a {@link Session}. Each carries the session, so that whoever
 * listens to every session (the router, the registry) can register one
 * listener for all of them rather than a closure per session.
 */
export type SessionEvents = {
  /** An application message from the client, in order, exactly once. */
  message: (payload: Uint8Array, session: Session) => void
  /** The session ended; it will not resume. */
  close: (code: number, reason: string, session: Session) => void
  /** A transport attached (on open and on every resume). */
  attach: (transport: ServerTransport) => void
}

/** Every session's advice until it is given its own: one frozen object, not one per session. */
const defaultAdvice: Advice = Object.freeze({ reconnect: 'retry', retryAfterMs: 0 })

/** See the module comment. */
export class Session extends Observable<SessionEvents> implements TransportReceiver, TurnEndTask {
  private transport: ServerTransport | null = null
  private stateValue: SessionState = 'detached'
  /**
   * Payloads of the Data frames the client has not acknowledged, oldest
   * first; the last has seq `nextSeq - 1`. Payloads only, no object per
   * frame: under load they live until the client's next ack, through
   * young-generation collections, and each surviving object makes those
   * pauses longer (a broadcast's payload is shared by every session).
   */
  private readonly outbox: Uint8Array[] = []
  /**
   * Frames to flush at the end of this event-loop turn (control frames and
   * new Data); null while empty, as it is most of the time for most
   * sessions (an empty array per session costs 32 bytes).
   */
  private pending: Frame[] | null = null
  private isFlushScheduled = false
  private nextSeq = 1
  /** Highest upstream Data seq applied. */
  private lastInSeq = 0
  private isAckDue = false
  private lastHeardAt: number
  private lastPingAt = 0
  private detachedAt: number
  private pingNonce = 0
  private readonly now: () => number
  private readonly frameCounts: FrameCounts
  private readonly rateLimiter: RateLimiter | null
  /** Made on the first poll: most sessions never poll. */
  private pollLimiter: RateLimiter | null | undefined = undefined
  /** The highest `ack` a poll carried (see {@link admitPoll}). */
  private lastPollAck = 0
  private lastTransportNameValue: TransportName | null = null
  /** Advice sent with the next handshake (the shared default until {@link setAdvice}). */
  advice: Advice = defaultAdvice
  /** When the session started, on its clock. */
  readonly openedAt: number
  /** The client address the session is counted against (SessionRegistry), if any. */
  ip: string | null = null

  constructor(
    readonly id: SessionId,
    private readonly options: SessionOptions,
  ) {
    super()
    this.now = options.now ?? Date.now
    this.frameCounts = options.frameCounts ?? { in: 0, out: 0 }
    this.openedAt = this.now()
    this.lastHeardAt = this.openedAt
    this.detachedAt = this.openedAt
    const limiter = new RateLimiter({ messagesPerSecond: options.maxMessagesPerSecond ?? 0, bytesPerSecond: options.maxBytesPerSecond ?? 0 }, this.now)
    this.rateLimiter = limiter.isEnabled ? limiter : null
  }

  /** The current state. */
  get state(): SessionState {
    return this.stateValue
  }

  /** The transport currently carrying the session, if any. */
  get transportName(): TransportName | null {
    return this.transport?.name ?? null
  }

  /** The transport that carried the session last (the current one while attached); null before the first. */
  get lastTransportName(): TransportName | null {
    return this.lastTransportNameValue
  }

  /** How many downstream frames await acknowledgement. */
  get unackedCount(): number {
    return this.outbox.length
  }

  /**
   * Attach a transport: send the handshake, then every frame past the
   * client's acknowledgement `clientAck`. A transport already attached is
   * replaced (closed with Replaced).
   */
  attach(transport: ServerTransport, clientAck: number, resumed: boolean): void {
    if (this.stateValue === 'closed') throw new Error(`session ${this.id} is closed`)
    if (clientAck >= this.nextSeq) throw new RangeError(`client acknowledged frame ${clientAck}, but the last sent is ${this.nextSeq - 1}`)
    if (this.transport) {
      const previous = this.transport
      this.clearTransport()
      previous.close(CloseCode.Replaced, 'a newer connection took over this session')
    }
    this.acknowledge(clientAck)
    this.transport = transport
    this.lastTransportNameValue = transport.name
    this.stateValue = 'attached'
    this.lastHeardAt = this.now()
    transport.receiver = this
    const handshake: Handshake = {
      v: 1,
      sid: this.id,
      resumed,
      ack: this.lastInSeq,
      transports: this.options.transports,
      pingIntervalMs: this.options.pingIntervalMs,
      pingTimeoutMs: this.options.pingTimeoutMs,
      ...(this.options.pollHoldMs !== undefined ? { pollHoldMs: this.options.pollHoldMs } : {}),
      advice: this.advice,
    }
    const frames: Frame[] = [{ kind: FrameKind.Hello, json: JSON.stringify(handshake) }]
    this.outboxFrames(frames)
    // Data frames already in `pending` are in the outbox and were just queued above.
    this.pending = this.pending?.filter((frame) => frame.kind !== FrameKind.Data) ?? null
    transport.send(encodeBatch(frames))
    this.emit('attach', [transport])
    this.checkSlowReader(transport)
  }

  /** The transport carrying the session, if any (the long-poll endpoint checks it is its own). */
  get currentTransport(): ServerTransport | null {
    return this.transport
  }

  /**
   * The client's next request on the attached transport says it has every
   * frame up to `clientAck` (a long-poll GET): drop those, and send again
   * every frame still unacknowledged, since a response that carried them
   * may have been lost. The client drops any it already has.
   */
  resume(clientAck: number): void {
    if (this.stateValue !== 'attached' || !this.transport) return
    this.lastHeardAt = this.now()
    if (clientAck >= this.nextSeq) {
      this.close(CloseCode.BadFrame, `acknowledged frame ${clientAck} that was never sent`)
      return
    }
    this.acknowledge(clientAck)
    if (this.outbox.length === 0) return
    // Whatever the transport still holds unsent is about to be sent again.
    this.transport.clearQueued?.()
    const kept = this.pending?.filter((frame) => frame.kind !== FrameKind.Data) ?? []
    this.outboxFrames(kept)
    this.pending = kept
    if (this.lastInSeq > 0) this.isAckDue = true
    this.scheduleFlush()
  }

  /**
   * Count a long-poll GET (or a stream reopen) carrying `clientAck` against
   * the poll rate. A poll is free when it acknowledges Data frames no
   * earlier poll acknowledged, or when `isPaced` (the previous poll was held
   * and then answered with frames the session produced): either way its
   * pace is the server's output, which the other limits bound. Every other
   * poll (one superseding a held poll, a repeated ack answered with a
   * resend, a reconnect) costs a token: that is what a client hammering
   * polls sends. Past the limit the session is closed with RateLimited,
   * after an Advice saying when to come back; returns false.
   */
  admitPoll(clientAck: number, isPaced = false): boolean {
    if (this.stateValue === 'closed') return false
    if (clientAck > this.lastPollAck) {
      this.lastPollAck = clientAck
      return true
    }
    if (isPaced) return true
    if (this.pollLimiter === undefined) {
      const limiter = new RateLimiter({ messagesPerSecond: this.options.maxPollsPerSecond ?? 0, bytesPerSecond: 0 }, this.now)
      this.pollLimiter = limiter.isEnabled ? limiter : null
    }
    const limiter = this.pollLimiter
    if (!limiter || limiter.take(1, 0) === null) return true
    this.closeRateLimited('polls_per_second', `more than ${this.options.maxPollsPerSecond} polls per second`, limiter.msUntilFull('messages_per_second'))
    return false
  }

  /** Queue an application message for the client. Sent at the end of this event-loop turn, batched. */
  send(payload: Uint8Array): void {
    if (this.stateValue === 'closed') return
    if (this.outbox.length >= this.options.maxUnackedFrames) {
      this.close(CloseCode.ResendWindowExceeded, `more than ${this.options.maxUnackedFrames} frames unacknowledged`)
      return
    }
    const seq = this.nextSeq++
    this.frameCounts.out++
    this.outbox.push(payload)
    if (this.transport) this.queue({ kind: FrameKind.Data, seq, payload })
  }

  /** Tell the client how to reconnect from now on (e.g. before a shutdown). */
  setAdvice(advice: Advice): void {
    this.advice = advice
    if (this.transport) this.queue({ kind: FrameKind.Advice, json: JSON.stringify(advice) })
  }

  /**
   * End the session for good: tell the client why, close the transport and
   * emit `close`. Idempotent.
   */
  close(code: number, reason: string): void {
    if (this.stateValue === 'closed') return
    this.stateValue = 'closed'
    const transport = this.transport
    this.clearTransport()
    if (transport) {
      // The Close rides in one batch with whatever was pending (an Advice
      // above all): over HTTP, two batches could leave in two responses and
      // arrive in either order.
      ;(this.pending ??= []).push({ kind: FrameKind.Close, code, reason })
      this.flushNow(transport)
      transport.close(code, reason)
    }
    this.outbox.length = 0
    this.pending = null
    this.emit('close', [code, reason, this])
  }

  /**
   * Liveness check, called by the registry's one shared timer (no timer per
   * session): ping a quiet client, drop a silent one, expire a detached
   * session past its grace period.
   */
  tick(): void {
    const now = this.now()
    if (this.stateValue === 'detached') {
      if (now - this.detachedAt >= this.options.sessionGraceMs) {
        this.close(CloseCode.Timeout, `not resumed within ${this.options.sessionGraceMs} ms`)
      }
      return
    }
    if (this.stateValue !== 'attached' || !this.transport) return
    // A request the client holds open (a long poll) is proof of life.
    if (this.transport.isWaiting) this.lastHeardAt = now
    const silentMs = now - this.lastHeardAt
    if (silentMs >= this.options.pingIntervalMs + this.options.pingTimeoutMs) {
      const transport = this.transport
      this.clearTransport()
      transport.close(CloseCode.Timeout, `no answer for ${silentMs} ms`)
      this.onDetached()
      return
    }
    if (silentMs >= this.options.pingIntervalMs && now - this.lastPingAt >= this.options.pingIntervalMs) {
      this.lastPingAt = now
      this.queue({ kind: FrameKind.Ping, nonce: ++this.pingNonce })
    }
    // A delayed Ack that found nothing to ride on (see runAtTurnEnd).
    if (this.isAckDue && !this.isFlushScheduled) this.flushNow(this.transport)
  }

  /** A batch from the attached transport (see {@link TransportReceiver}). */
  receiveBatch(bytes: Uint8Array): void {
    this.lastHeardAt = this.now()
    const limiter = this.rateLimiter
    const exceeded = limiter?.take(1, bytes.length) ?? null
    if (limiter && exceeded) {
      const reason =
        exceeded === 'messages_per_second'
          ? `more than ${this.options.maxMessagesPerSecond} messages per second`
          : `more than ${this.options.maxBytesPerSecond} bytes per second`
      this.closeRateLimited(exceeded, reason, limiter.msUntilFull(exceeded))
      return
    }
    let frames: Frame[]
    try {
      frames = decodeBatch(bytes, this.options.maxFrameBytes)
    } catch (error) {
      const tooLarge = error instanceof FrameError && error.reason === 'too-large'
      this.close(tooLarge ? CloseCode.TooLarge : CloseCode.BadFrame, (error as Error).message)
      return
    }
    for (const frame of frames) {
      if (this.stateValue === 'closed') return
      switch (frame.kind) {
        case FrameKind.Data:
          if (frame.seq <= this.lastInSeq) break // a resend we already applied
          if (frame.seq !== this.lastInSeq + 1) {
            this.close(CloseCode.BadFrame, `data frame ${frame.seq} arrived after ${this.lastInSeq}; frames must be in order`)
            return
          }
          this.lastInSeq = frame.seq
          this.frameCounts.in++
          this.isAckDue = true
          this.scheduleFlush()
          this.emit('message', [frame.payload, this])
          break
        case FrameKind.Ack:
          this.acknowledge(frame.seq)
          break
        case FrameKind.Ping:
          this.queue({ kind: FrameKind.Pong, nonce: frame.nonce })
          break
        case FrameKind.Pong:
          break
        case FrameKind.Close:
          this.close(CloseCode.Normal, frame.reason || 'client closed the session')
          return
        case FrameKind.Hello:
        case FrameKind.Advice:
          this.close(CloseCode.BadFrame, `frame kind ${frame.kind} is server-to-client only`)
          return
        case FrameKind.Upgrade:
          break // only meaningful on a probing WebSocket, which handles it before attaching
        default:
          unexpectedFrame(frame)
      }
    }
  }

  /**
   * Close with RateLimited, telling the client first (an Advice in the same
   * batch as the Close) to come back no sooner than the exceeded bucket
   * needs to refill (PROTOCOL.md §3).
   */
  private closeRateLimited(limit: LimitName, reason: string, retryAfterMs: number): void {
    this.options.onLimitExceeded?.(limit)
    this.setAdvice({ reconnect: 'retry', retryAfterMs: Math.min(maxRetryAfterMs, Math.max(0, retryAfterMs)) })
    this.close(CloseCode.RateLimited, reason)
  }

  private acknowledge(seq: number): void {
    if (seq >= this.nextSeq) {
      this.close(CloseCode.BadFrame, `acknowledged frame ${seq} that was never sent`)
      return
    }
    const drop = Math.min(this.outbox.length, seq - (this.nextSeq - this.outbox.length) + 1)
    if (drop > 0) this.outbox.splice(0, drop)
  }

  /** Append the outbox to `frames` as Data frames. */
  private outboxFrames(frames: Frame[]): void {
    const first = this.nextSeq - this.outbox.length
    this.outbox.forEach((payload, i) => frames.push({ kind: FrameKind.Data, seq: first + i, payload }))
  }

  /** The attached transport is gone (see {@link TransportReceiver}); a detached one no longer reports here. */
  transportClosed(code: number, reason: string, isClean: boolean): void {
    if (!this.transport) return
    this.clearTransport()
    if (isClean) this.close(code, reason || closeCodeName(code))
    else this.onDetached()
  }

  private onDetached(): void {
    if (this.stateValue === 'closed') return
    this.stateValue = 'detached'
    this.detachedAt = this.now()
    this.pending = null
  }

  private clearTransport(): void {
    if (this.transport?.receiver === this) this.transport.receiver = null
    this.transport = null
  }

  private queue(frame: Frame): void {
    ;(this.pending ??= []).push(frame)
    this.scheduleFlush()
  }

  // One flush per event-loop turn: every message a turn produces for this
  // client leaves in one batch, and the acknowledgement rides along.
  private scheduleFlush(): void {
    if (this.isFlushScheduled) return
    this.isFlushScheduled = true
    atTurnEnd(this)
  }

  /**
   * The scheduled flush (see {@link TurnEndTask}): the session itself is the
   * task, where a bound callback would cost every session a closure.
   */
  runAtTurnEnd(): void {
    this.isFlushScheduled = false
    const transport = this.transport
    if (!transport) return
    // An Ack alone waits to ride on the next batch, or for the liveness
    // tick within a second (PROTOCOL.md §4): one message per upstream frame
    // would double the writes to a typing client. Over long-polling it goes
    // now, in the answer to the POST that brought the Data.
    if (!this.pending?.length && transport.name !== 'long-poll') return
    this.flushNow(transport)
  }

  private flushNow(transport: ServerTransport): void {
    const frames = this.pending ?? []
    if (frames.length === 0 && !this.isAckDue) return
    this.pending = null
    if (this.isAckDue) {
      frames.unshift({ kind: FrameKind.Ack, seq: this.lastInSeq })
      this.isAckDue = false
    }
    transport.send(encodeBatch(frames))
    this.checkSlowReader(transport)
  }

  /**
   * A client that does not read its socket makes the server buffer without
   * bound: past `slowReaderBytes` the session ends and the socket is
   * dropped at once (a close handshake would wait behind the same buffer).
   * Long-poll queues are bounded by the resend window instead.
   */
  private checkSlowReader(transport: ServerTransport): void {
    const limit = this.options.slowReaderBytes ?? 0
    if (limit <= 0 || transport.name === 'long-poll' || this.stateValue === 'closed') return
    const buffered = transport.bufferedBytes
    if (buffered <= limit) return
    this.options.onLimitExceeded?.('slow_reader')
    const reason = `the client did not read ${buffered} bytes (limit ${limit})`
    this.clearTransport()
    transport.abort?.()
    transport.close(CloseCode.SlowReader, reason)
    this.close(CloseCode.SlowReader, reason)
  }
}

function unexpectedFrame(frame: never): never {
  throw new TypeError(`unexpected frame ${JSON.stringify(frame)}`)
}
