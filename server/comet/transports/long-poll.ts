/**
 * The HTTP long-polling transport (PROTOCOL.md §1): downstream batches wait
 * here until a held GET (or a POST's response) takes them; upstream batches
 * arrive in POST bodies. One object per session for as long as the client
 * keeps polling; the HTTP endpoint hands it requests.
 */
import { CloseCode } from '../../../common/close-codes'
import type { ServerTransport, TransportReceiver } from '../transport'

interface HeldPoll {
  /** Answer the poll; `isPaced`: with frames the session produced while it was held. */
  respond(body: Uint8Array | null, isPaced?: boolean): void
}

/** A {@link ServerTransport} over HTTP long-polling. */
export class LongPollTransport implements ServerTransport {
  readonly name = 'long-poll' as const
  receiver: TransportReceiver | null = null
  private queue: Uint8Array[] = []
  private queuedBytes = 0
  private held: HeldPoll | null = null
  private isClosed = false
  /** Whether the last poll was held and then answered with new frames (see {@link takePacedAnswer}). */
  private wasLastPollPaced = false
  /** POSTs received and not yet answered (see {@link receive}). */
  private uploads = 0

  /** Whether a poll is held right now. */
  get isWaiting(): boolean {
    return this.held !== null
  }

  get bufferedBytes(): number {
    return this.queuedBytes
  }

  /** Whether the transport was closed (a new poll then needs a new transport). */
  get closed(): boolean {
    return this.isClosed
  }

  send(batch: Uint8Array): void {
    if (this.isClosed) return
    this.queue.push(batch)
    this.queuedBytes += batch.length
    // The session flushes once per event-loop turn, so answering at once
    // still sends everything of this turn in one response. While a POST
    // awaits its answer, that answer carries it instead (see receive).
    if (this.held && this.uploads === 0) this.answer(this.held, true)
  }

  /**
   * Whether the previous poll was held and then answered with frames the
   * session produced meanwhile, so the poll that follows it is paced by the
   * server, not the client (the poll rate lets it through; see
   * `Session.admitPoll`). Reading it spends it: one paced answer, one free poll.
   */
  takePacedAnswer(): boolean {
    const was = this.wasLastPollPaced
    this.wasLastPollPaced = false
    return was
  }

  clearQueued(): void {
    this.queue = []
    this.queuedBytes = 0
  }

  /**
   * A poll: `respond` gets the queued batches at once, or the next one
   * within `holdMs` (null when nothing came). `onAbandoned` registers a
   * callback for the client going away mid-hold. A callback rather than a
   * promise: a thousand idle clients each hold a poll, and a held promise
   * chain (the async handler's frame, its promises and closures) was a
   * tenth of the heap each of them cost.
   */
  poll(holdMs: number, respond: (body: Uint8Array | null) => void, onAbandoned: (cancel: () => void) => void): void {
    if (this.isClosed) {
      respond(null)
      return
    }
    // A newer poll supersedes the held one, which is answered empty.
    if (this.held) this.held.respond(null)
    this.held = null
    // Answered at once (a backlog, or a resend of what the client did not acknowledge): not paced.
    this.wasLastPollPaced = false
    if (this.queue.length > 0) {
      respond(this.take())
      return
    }
    // One timer per held poll, in Node's shared list for this duration:
    // no per-second work while thousands of clients wait.
    const timer = setTimeout(() => poll.respond(null), holdMs)
    let isAnswered = false
    const poll: HeldPoll = {
      respond: (body, isPaced = false) => {
        // Once only: the request's `close` (onAbandoned) also fires after a normal answer.
        if (isAnswered) return
        isAnswered = true
        clearTimeout(timer)
        if (this.held === poll) this.held = null
        this.wasLastPollPaced = isPaced
        respond(body)
      },
    }
    this.held = poll
    onAbandoned(() => poll.respond(null))
  }

  /** Batches queued right now (the handshake's answer); null when none. */
  takeQueued(): Uint8Array | null {
    return this.queue.length > 0 ? this.take() : null
  }

  /**
   * A POST's body (possibly empty); answer the POST with {@link answerUpload}.
   * Until then, what the session sends waits for that answer instead of
   * answering the held poll: the POST's answer carries the session's reply
   * to the batch (its Ack at least) anyway, so taking it on the poll cost
   * the writer a second response and a new poll for every batch it sent,
   * and the other clients their answer while that one was written.
   */
  receive(batch: Uint8Array): void {
    this.uploads++
    if (this.isClosed || batch.length === 0) return
    try {
      this.receiver?.receiveBatch(batch)
    } catch (error) {
      // The POST fails (the endpoint answers 500) and is never answered
      // with the queue: what the batch produced goes to the held poll, and
      // later sends must not wait for an answer that will not come.
      this.uploads--
      if (this.held && this.uploads === 0 && this.queue.length > 0) this.answer(this.held, true)
      throw error
    }
  }

  /** The answer to a POST passed to {@link receive}: everything queued (piggybacking); null when nothing is. */
  answerUpload(): Uint8Array | null {
    if (this.uploads > 0) this.uploads--
    return this.takeQueued()
  }

  close(code: number, reason: string): void {
    if (this.isClosed) return
    this.isClosed = true
    // A held poll learns of the close from the Close frame the session
    // queued just before; answer it with whatever is queued.
    if (this.held) this.answer(this.held)
    this.receiver?.transportClosed(code, reason, code === CloseCode.Normal || code === CloseCode.GoingAway)
  }

  private answer(poll: HeldPoll, isPaced = false): void {
    if (this.queue.length > 0) poll.respond(this.take(), isPaced)
    else poll.respond(null)
  }

  private take(): Uint8Array {
    const queue = this.queue
    this.queue = []
    this.queuedBytes = 0
    return queue.length === 1 ? queue[0]! : Buffer.concat(queue)
  }
}
