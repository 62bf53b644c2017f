/**
 * The HTTP long-polling transport (PROTOCOL.md §1 "HTTP long-polling"), for
 * networks that block WebSocket. The same batches travel in HTTP bodies:
 *
 *   GET  /comet/poll[?sid=&ack=]   downstream: held until the server has frames
 *   POST /comet/send?sid=          upstream: one batch; the response piggybacks a downstream batch
 *
 * One poll is outstanding at a time and the next one leaves as soon as the
 * previous one is answered, before its batch is handed to the channel,
 * carrying the session's `sid` and the `ack` the channel reaches with that
 * batch (see pollLoop). One POST is in flight at a
 * time; batches sent meanwhile are concatenated into the next POST, which
 * is still a valid batch since frames are self-delimiting.
 *
 * Like the WebSocket transport this one only moves bytes: the channel owns
 * ordering, acknowledgement and resending, so a POST that keeps failing
 * just closes the transport and the channel resumes the session.
 */
import { Observable } from '../../../common/observable'
import { CloseCode } from '../../../common/close-codes'
import { decodeBatch, FrameKind } from '../../../common/comet/frame'
import type { ClientTransport, ClientTransportEvents, TransportContext } from '../transport'
import { AbnormalClosure, Uploader, closeCodeForStatus, describeError, endpointUrl, isBatchResponse } from './uploader'

/**
 * The close code this transport reports when the network failed (a
 * request rejected, retries exhausted), as a browser WebSocket reports an
 * abnormal closure. Never sent on the wire.
 */
export { AbnormalClosure } from './uploader'

/** Options of a {@link LongPollTransport}. */
export interface LongPollTransportOptions {
  /** The server's http(s) origin, e.g. `https://pad.example.com`. */
  baseUrl: string
  /** The session this transport carries (resume, current sid and ack). */
  context: TransportContext
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch
  /** How many times a POST that failed on the network (or with a 5xx) is retried before the transport closes. @default 3 */
  sendRetries?: number
  /** Delay before the first retry of a POST, doubled on each further retry, in ms. @default 250 */
  sendRetryDelayMs?: number
}


/**
 * Query parameter on the first poll of a resuming connection: "this is a
 * new connection, answer with a Hello". Without it a server whose
 * long-poll transport for the session is still attached (the client's
 * connection died but the server has not noticed yet) takes the poll as
 * the next one of the old connection and answers with Data but no Hello,
 * which the channel cannot use. NOT YET IN PROTOCOL.md: proposed to the
 * server side; a server that ignores it is handled below (see pollLoop).
 */
export const helloParam = 'hello'

/** What a poll brought: its response, or why it failed. */
type PollResult = { ok: true; response: Response; body: Uint8Array } | { ok: false; error: unknown }

/**
 * The channel's acknowledgement once it has taken `batch`: `ack` advanced
 * over the Data frames that continue it without a gap. The channel may get
 * further (frames it kept from a POST answer fill a gap), never less far;
 * an ack that falls short only brings those frames again, which the
 * channel drops. A batch that does not decode leaves `ack` as it is (the
 * channel closes the session over it).
 */
export function ackAfter(batch: Uint8Array, ack: number): number {
  if (batch.byteLength === 0) return ack
  let frames
  try {
    frames = decodeBatch(batch, Number.MAX_SAFE_INTEGER)
  } catch {
    return ack
  }
  let next = ack
  for (const frame of frames) {
    if (frame.kind !== FrameKind.Data || frame.seq <= next) continue
    if (frame.seq !== next + 1) break
    next = frame.seq
  }
  return next
}

/** A {@link ClientTransport} over HTTP long-polling. */
export class LongPollTransport extends Observable<ClientTransportEvents> implements ClientTransport {
  readonly name = 'long-poll' as const
  readonly acksEveryRequest = true
  private readonly baseUrl: string
  private readonly context: TransportContext
  private readonly fetchImpl: typeof fetch
  private readonly pollAbort = new AbortController()
  private isOpen = false
  private closed = false
  private readonly uploader: Uploader

  constructor(options: LongPollTransportOptions) {
    super()
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.context = options.context
    // Called through a closure: a browser's fetch throws "Illegal invocation" when called as another object's method.
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
    this.uploader = new Uploader({
      baseUrl: this.baseUrl,
      context: this.context,
      fetch: this.fetchImpl,
      host: this,
      ...(options.sendRetries !== undefined ? { retries: options.sendRetries } : {}),
      ...(options.sendRetryDelayMs !== undefined ? { retryDelayMs: options.sendRetryDelayMs } : {}),
    })
    // The first event is emitted only after fetch resolves, so the caller
    // has attached its listeners by then.
    void this.pollLoop()
  }

  send(batch: Uint8Array): void {
    if (!this.isClosed) this.uploader.send(batch)
  }

  /** For the uploader: upstream may go once the transport is open. */
  get isReady(): boolean {
    return this.isOpen
  }

  /** Whether the transport is closed. */
  get isClosed(): boolean {
    return this.closed
  }

  /** For the uploader: a POST's answer piggybacks downstream frames. */
  onReply(body: Uint8Array): void {
    this.deliver(body)
  }

  /** For the uploader: a POST refused with a 4xx. */
  onRefused(response: Response, body: Uint8Array): void {
    this.onErrorResponse('send', response, body)
  }

  /** For the uploader: every retry of a POST failed. */
  onFailed(reason: string): void {
    this.close(AbnormalClosure, reason)
  }

  close(code: number, reason: string): void {
    if (this.closed) return
    this.closed = true
    // A held poll must not keep the connection (and the server's proof of
    // life for this session) around after the channel moved on.
    this.pollAbort.abort()
    this.uploader.finish(code === CloseCode.Normal)
    this.emit('close', [code, reason, this.isOpen])
  }

  private async pollLoop(): Promise<void> {
    let isFirst = true
    /** The next poll, when it left before the batch before it was handed on. */
    let early: Promise<PollResult> | null = null
    while (!this.isClosed) {
      let result: PollResult
      if (early) {
        result = await early
        early = null
      } else {
        // The first poll starts (or resumes) the session as the channel asked;
        // later ones name the session the Hello gave and what arrived since.
        const session = isFirst ? this.context.resume : this.currentSession()
        if (!isFirst && !session) {
          this.close(CloseCode.BadFrame, 'the channel took no session from the handshake')
          return
        }
        result = await this.poll(session, isFirst)
      }
      if (this.isClosed) return
      if (!result.ok) {
        this.close(AbnormalClosure, `poll failed: ${describeError(result.error)}`)
        return
      }
      const { response, body } = result
      if (!response.ok) {
        this.onErrorResponse('poll', response, body)
        return
      }
      // Every connection starts with a Hello (PROTOCOL.md §3); the channel
      // ignores Data before one, and the server would resend that Data to
      // every poll at once: a hot loop. Only the first byte is looked at
      // (the frame kind), the channel decodes the rest. A server that
      // resumed without a Hello (it did not take the `hello` parameter)
      // leaves no way to learn its ack, so give up the session: the channel
      // starts a new one and the app layer resynchronises.
      if (isFirst && body[0] !== FrameKind.Hello) {
        this.close(this.context.resume ? CloseCode.SessionUnknown : CloseCode.BadFrame, 'the first poll response carried no handshake')
        return
      }
      if (!this.isOpen) {
        this.isOpen = true
        this.emit('open', [])
      }
      // Once the session is known, the next poll leaves before this batch
      // is handed on, acknowledging the Data in it that the channel is
      // about to take: the application's work on the batch (applying it to
      // the document, rendering) then happens while a poll is out, not in
      // a window where the server has no poll to answer with what comes
      // next. The first response carries the Hello, which the channel must
      // read before a poll can name the session.
      const session = isFirst ? null : this.currentSession()
      if (session) early = this.poll({ sid: session.sid, ack: ackAfter(body, session.ack) }, false)
      isFirst = false
      this.deliver(body)
      // Sends queued before the session id was known can leave now.
      this.uploader.kick()
    }
    // A poll still out when the transport closed was aborted with it (see close).
  }

  /** One poll; never rejects (a failure is a result, so a poll abandoned by a close is no unhandled rejection). */
  private async poll(session: { sid: string; ack: number } | null, isFirst: boolean): Promise<PollResult> {
    const params: Record<string, string> = {}
    if (session) {
      params.sid = session.sid
      params.ack = String(session.ack)
      if (isFirst) params[helloParam] = '1'
    }
    const url = endpointUrl(this.baseUrl, '/comet/poll', params)
    try {
      const response = await this.fetchImpl(url, { method: 'GET', cache: 'no-store', credentials: 'same-origin', signal: this.pollAbort.signal })
      const body = new Uint8Array(await response.arrayBuffer())
      return { ok: true, response, body }
    } catch (error) {
      return { ok: false, error }
    }
  }

  private deliver(body: Uint8Array): void {
    if (body.byteLength > 0) this.emit('batch', [body])
    else this.emit('alive', [])
  }

  /**
   * A 4xx (or a 5xx on a poll). When the answer ended the session (404:
   * Close 4002, session unknown; 400: Close 4400; 413: Close 4413; 429:
   * Advice then Close 4429, too many polls or sessions) the
   * server explains itself with a Close frame in the body, which the
   * channel acts on. Any other status closes only this transport and the
   * channel resumes the session: notably the server's 409 for a POST to a
   * session that is not on long-polling right now, whose Close{4001} body
   * must not reach the channel, since a Close frame ends the session there.
   * The close code covers a body that says nothing, e.g. a proxy's error page.
   */
  private onErrorResponse(what: 'poll' | 'send', response: Response, body: Uint8Array): void {
    const { status } = response
    const isBatch = isBatchResponse(response)
    const endsSession = status === 400 || status === 404 || status === 413 || status === 429
    if (endsSession && isBatch && body.byteLength > 0) this.emit('batch', [body])
    if (this.isClosed) return
    this.close(closeCodeForStatus(status), `${what} answered HTTP ${status}`)
  }

  private currentSession(): { sid: string; ack: number } | null {
    const sid = this.context.sessionId()
    return sid === null ? null : { sid, ack: this.context.lastReceivedSeq() }
  }
}
