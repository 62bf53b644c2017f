/**
 * The HTTP long-polling transport (PROTOCOL.md §1 "HTTP long-polling"), for
 * networks that block WebSocket. The same batches travel in HTTP bodies:
 *
 *   GET  /comet/poll[?sid=&ack=]   downstream: held until the server has frames
 *   POST /comet/send?sid=          upstream: one batch; the response piggybacks a downstream batch
 *
 * One poll is outstanding at a time and the next one leaves as soon as the
 * previous one is answered, carrying the channel's current `sid` and `ack`
 * (read at request time: the channel updates them synchronously while it
 * handles the batch this transport emits). One POST is in flight at a
 * time; batches sent meanwhile are concatenated into the next POST, which
 * is still a valid batch since frames are self-delimiting.
 *
 * Like the WebSocket transport this one only moves bytes: the channel owns
 * ordering, acknowledgement and resending, so a POST that keeps failing
 * just closes the transport and the channel resumes the session.
 */
import { ObservableV2 } from 'lib0/observable'
import { CloseCode } from '../../../common/close-codes'
import { FrameKind } from '../../../common/comet/frame'
import type { ClientTransport, ClientTransportEvents, TransportContext } from '../transport'

/**
 * The close code this transport reports when the network failed (a
 * request rejected, retries exhausted), as a browser WebSocket reports an
 * abnormal closure. Never sent on the wire.
 */
export const AbnormalClosure = 1006

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

const batchType = 'application/octet-stream'

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
// Browsers refuse `keepalive` requests whose bodies together pass 64 KiB.
const keepaliveMaxBytes = 60 * 1024

/** A {@link ClientTransport} over HTTP long-polling. */
export class LongPollTransport extends ObservableV2<ClientTransportEvents> implements ClientTransport {
  readonly name = 'long-poll' as const
  private readonly baseUrl: string
  private readonly context: TransportContext
  private readonly fetchImpl: typeof fetch
  private readonly sendRetries: number
  private readonly sendRetryDelayMs: number
  private readonly pollAbort = new AbortController()
  private readonly sendAbort = new AbortController()
  private isOpen = false
  private isClosed = false
  /**
   * Set by a normal close (the channel said goodbye): the batches already
   * handed to `send` — the last Data and the Close frame — still go out,
   * once each and silently, then the transport is done.
   */
  private isDraining = false
  /** Batches waiting for the POST in flight to finish. */
  private readonly outbox: Uint8Array[] = []
  private isSending = false
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  private endRetryWait: (() => void) | null = null

  constructor(options: LongPollTransportOptions) {
    super()
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.context = options.context
    // Called through a closure: a browser's fetch throws "Illegal invocation" when called as another object's method.
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
    this.sendRetries = options.sendRetries ?? 3
    this.sendRetryDelayMs = options.sendRetryDelayMs ?? 250
    // The first event is emitted only after fetch resolves, so the caller
    // has attached its listeners by then.
    void this.pollLoop()
  }

  send(batch: Uint8Array): void {
    if (this.isClosed) return
    this.outbox.push(batch)
    void this.sendLoop()
  }

  close(code: number, reason: string): void {
    if (this.isClosed) return
    this.isClosed = true
    // A held poll must not keep the connection (and the server's proof of
    // life for this session) around after the channel moved on.
    this.pollAbort.abort()
    if (code === CloseCode.Normal && this.outbox.length + (this.isSending ? 1 : 0) > 0) {
      this.isDraining = true
      this.endRetryWait?.()
    } else {
      this.sendAbort.abort()
      this.outbox.length = 0
      if (this.retryTimer) clearTimeout(this.retryTimer)
      this.retryTimer = null
    }
    this.emit('close', [code, reason, this.isOpen])
  }

  private async pollLoop(): Promise<void> {
    let isFirst = true
    while (!this.isClosed) {
      const url = new URL(`${this.baseUrl}/comet/poll`)
      // The first poll starts (or resumes) the session as the channel asked;
      // later ones name the session the Hello gave and what arrived since.
      const session = isFirst ? this.context.resume : this.currentSession()
      if (!isFirst && !session) {
        this.close(CloseCode.BadFrame, 'the channel took no session from the handshake')
        return
      }
      if (session) {
        url.searchParams.set('sid', session.sid)
        url.searchParams.set('ack', String(session.ack))
        if (isFirst) url.searchParams.set(helloParam, '1')
      }
      let response: Response
      let body: Uint8Array
      try {
        response = await this.fetchImpl(url, { method: 'GET', cache: 'no-store', credentials: 'same-origin', signal: this.pollAbort.signal })
        body = new Uint8Array(await response.arrayBuffer())
      } catch (error) {
        this.close(AbnormalClosure, `poll failed: ${describe(error)}`)
        return
      }
      if (this.isClosed) return
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
        this.close(session ? CloseCode.SessionUnknown : CloseCode.BadFrame, 'the first poll response carried no handshake')
        return
      }
      isFirst = false
      if (!this.isOpen) {
        this.isOpen = true
        this.emit('open', [])
      }
      // Emitted before the next poll leaves: the channel reads the Hello and
      // the Data in it now, so the next poll carries the new sid and ack.
      this.deliver(body)
      // Sends queued before the session id was known can leave now.
      void this.sendLoop()
    }
  }

  private async sendLoop(): Promise<void> {
    if (this.isSending) return
    this.isSending = true
    try {
      while (this.outbox.length > 0 && (!this.isClosed || this.isDraining)) {
        const sid = this.context.sessionId()
        // Upstream frames belong to a session: wait for the Hello.
        if (!this.isOpen || sid === null) return
        const body = concat(this.outbox.splice(0))
        if (!(await this.post(sid, body))) return
      }
    } finally {
      this.isSending = false
    }
  }

  /** POST one batch, retrying network failures; false when the transport is done. */
  private async post(sid: string, body: Uint8Array<ArrayBuffer>): Promise<boolean> {
    const url = new URL(`${this.baseUrl}/comet/send`)
    url.searchParams.set('sid', sid)
    for (let attempt = 0; ; attempt++) {
      let failure: string
      try {
        const response = await this.fetchImpl(url, {
          method: 'POST',
          headers: { 'Content-Type': batchType },
          body,
          cache: 'no-store',
          credentials: 'same-origin',
          signal: this.sendAbort.signal,
          // A goodbye sent while the page unloads must outlive the page.
          keepalive: this.isDraining && body.byteLength <= keepaliveMaxBytes,
        })
        const reply = new Uint8Array(await response.arrayBuffer())
        if (this.isClosed) return this.isDraining
        if (response.ok) {
          this.deliver(reply)
          return !this.isClosed
        }
        if (response.status < 500) {
          this.onErrorResponse('send', response, reply)
          return false
        }
        failure = `HTTP ${response.status}`
      } catch (error) {
        failure = describe(error)
      }
      // A normal close sends its goodbye once; nobody waits for a retry.
      if (this.isClosed) return false
      if (attempt >= this.sendRetries) {
        this.close(AbnormalClosure, `send failed ${attempt + 1} times: ${failure}`)
        return false
      }
      // Resending the same bytes is harmless: the server drops Data frames whose seq it already has.
      await this.waitBeforeRetry(this.sendRetryDelayMs * 2 ** attempt)
      if (this.isClosed && !this.isDraining) return false
    }
  }

  private waitBeforeRetry(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const end = () => {
        if (this.retryTimer) clearTimeout(this.retryTimer)
        this.retryTimer = null
        this.endRetryWait = null
        resolve()
      }
      this.endRetryWait = end
      this.retryTimer = setTimeout(end, ms)
    })
  }

  private deliver(body: Uint8Array): void {
    if (body.byteLength > 0) this.emit('batch', [body])
    else this.emit('alive', [])
  }

  /**
   * A 4xx (or a 5xx on a poll). When the answer ended the session (404:
   * Close 4002, session unknown; 400: Close 4400; 413: Close 4413) the
   * server explains itself with a Close frame in the body, which the
   * channel acts on. Any other status closes only this transport and the
   * channel resumes the session: notably the server's 409 for a POST to a
   * session that is not on long-polling right now, whose Close{4001} body
   * must not reach the channel, since a Close frame ends the session there.
   * The close code covers a body that says nothing, e.g. a proxy's error page.
   */
  private onErrorResponse(what: 'poll' | 'send', response: Response, body: Uint8Array): void {
    const { status } = response
    const type = response.headers.get('content-type')
    const isBatch = type === null || type.startsWith(batchType)
    const endsSession = status === 400 || status === 404 || status === 413
    if (endsSession && isBatch && body.byteLength > 0) this.emit('batch', [body])
    if (this.isClosed) return
    const code =
      status === 404
        ? CloseCode.SessionUnknown
        : status === 400
          ? CloseCode.BadFrame
          : status === 413
            ? CloseCode.TooLarge
            : status === 409
              ? CloseCode.Replaced
              : CloseCode.InternalError
    this.close(code, `${what} answered HTTP ${status}`)
  }

  private currentSession(): { sid: string; ack: number } | null {
    const sid = this.context.sessionId()
    return sid === null ? null : { sid, ack: this.context.lastReceivedSeq() }
  }
}

function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let length = 0
  for (const chunk of chunks) length += chunk.byteLength
  const bytes = new Uint8Array(length)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return bytes
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = (error as { cause?: unknown }).cause
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message
}
