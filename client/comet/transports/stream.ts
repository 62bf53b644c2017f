/**
 * The HTTP streaming transport (the modern "forever frame"), between
 * WebSocket and long-polling:
 *
 *   GET  /comet/stream[?sid=&ack=]   downstream: one long response of records, starting with a Hello
 *   GET  /comet/stream?sid=&ack=&reopen=1   the same, continued after the previous response ended (no Hello)
 *   POST /comet/send?sid=            upstream: one batch; the response piggybacks a downstream batch
 *
 * The response body is a sequence of length-prefixed records,
 * `(varUint(length) • batch)*`; a zero-length record is a heartbeat.
 * Proxies re-chunk bodies at will, so {@link RecordReader} reassembles
 * records across arbitrary chunk boundaries. The server ends each stream
 * after a while (so a buffering proxy eventually delivers it); this
 * transport then reopens it at once with the channel's current `sid` and
 * `ack`, and the server resends every Data frame past that `ack`.
 *
 * Buffering-proxy detection: the server writes a record the moment a
 * stream opens (the Hello, or a heartbeat on a reopen). When none arrives
 * within `firstByteTimeoutMs`, something between us buffers the response,
 * and the transport closes with a reason containing "buffered" so the
 * channel falls back to long-polling. A stream silent for three
 * heartbeat periods is dead and closes too.
 *
 * Upstream is long-polling's: one POST at a time, in order; batches sent
 * meanwhile are concatenated into the next POST (still a valid batch, as
 * frames are self-delimiting); failures are retried a few times.
 *
 * Like the other transports this one only moves bytes: the channel owns
 * ordering, acknowledgement and resending.
 */
import { Observable } from '../../../common/observable'
import { CloseCode } from '../../../common/close-codes'
import type { ClientTransport, ClientTransportEvents, TransportContext } from '../transport'
import { AbnormalClosure, Uploader, closeCodeForStatus, describeError, isBatchResponse } from './uploader'

/**
 * The close code this transport reports when the network failed, as a
 * browser WebSocket reports an abnormal closure. Never sent on the wire.
 */
export { AbnormalClosure } from './uploader'

/** The word every close reason for a buffered stream contains (the channel falls back to long-polling on it). */
export const bufferedReason = 'buffered'

/** Whether a close reason says the stream was buffered by something on the way. */
export function isBufferedClose(reason: string): boolean {
  return reason.includes(bufferedReason)
}

/** Thrown by {@link RecordReader} for bytes that are not a record stream. */
export class RecordError extends Error {
  override readonly name = 'RecordError'
}

/**
 * Splits a byte stream into length-prefixed records,
 * `(varUint(length) • bytes)*`, whatever its chunking. Pure: no I/O, no
 * timers. Records wholly inside one chunk are returned as views of it
 * (no copy); records spanning chunks are assembled into a new array.
 */
export class RecordReader {
  // Length prefix being read.
  private length = 0
  private lengthScale = 1
  private lengthBytes = 0
  // Body being assembled (null: reading a length prefix).
  private body: Uint8Array | null = null
  private bodyOffset = 0

  /** @param maxRecordBytes refuse records longer than this (a garbage length would otherwise allocate gigabytes) */
  constructor(readonly maxRecordBytes = 256 * 1024 * 1024) {}

  /** Whether a record has begun and not ended (a stream ending now was cut short). */
  get isMidRecord(): boolean {
    return this.body !== null || this.lengthBytes > 0
  }

  /**
   * Feed the next chunk; returns every record it completes, in order
   * (zero-length ones included: heartbeats). Throws {@link RecordError}
   * on a length prefix over 7 bytes or past `maxRecordBytes`; the reader
   * is unusable afterwards.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const records: Uint8Array[] = []
    let offset = 0
    while (offset < chunk.length) {
      if (this.body) {
        const take = Math.min(this.body.length - this.bodyOffset, chunk.length - offset)
        this.body.set(chunk.subarray(offset, offset + take), this.bodyOffset)
        this.bodyOffset += take
        offset += take
        if (this.bodyOffset === this.body.length) {
          records.push(this.body)
          this.body = null
        }
        continue
      }
      const byte = chunk[offset++]!
      // LEB128 by multiplication, not shifts: exact up to 2^53.
      this.length += (byte & 0x7f) * this.lengthScale
      this.lengthScale *= 0x80
      this.lengthBytes++
      if (byte & 0x80) {
        if (this.lengthBytes >= 7) throw new RecordError('record length prefix longer than 7 bytes')
        continue
      }
      const length = this.length
      this.length = 0
      this.lengthScale = 1
      this.lengthBytes = 0
      if (length > this.maxRecordBytes) throw new RecordError(`record of ${length} bytes passes the limit of ${this.maxRecordBytes}`)
      if (chunk.length - offset >= length) {
        // The common case: the whole record is in this chunk.
        records.push(chunk.subarray(offset, offset + length))
        offset += length
      } else {
        this.body = new Uint8Array(length)
        this.bodyOffset = 0
      }
    }
    return records
  }
}

/** Options of a {@link StreamTransport}. */
export interface StreamTransportOptions {
  /** The server's http(s) origin, e.g. `https://pad.example.com`. */
  baseUrl: string
  /** The session this transport carries (resume, current sid and ack). */
  context: TransportContext
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch
  /** Close (reason "buffered") when no record arrives this long after a stream request, in ms. @default 4000 */
  firstByteTimeoutMs?: number
  /** The server's heartbeat period; a stream silent for three of them is dead, in ms. @default 10000 */
  heartbeatMs?: number
  /** How many times a POST that failed on the network (or with a 5xx) is retried before the transport closes. @default 3 */
  sendRetries?: number
  /** Delay before the first retry of a POST, doubled on each further retry, in ms. @default 250 */
  sendRetryDelayMs?: number
  /** Refuse records longer than this, in bytes. @default 256 MiB */
  maxRecordBytes?: number
}

// Browsers refuse `keepalive` requests whose bodies together pass 64 KiB.

/** A {@link ClientTransport} over HTTP streaming; see the module comment. */
export class StreamTransport extends Observable<ClientTransportEvents> implements ClientTransport {
  readonly name = 'stream' as const
  private readonly baseUrl: string
  private readonly context: TransportContext
  private readonly fetchImpl: typeof fetch
  private readonly firstByteTimeoutMs: number
  private readonly deadAfterMs: number
  private readonly maxRecordBytes: number
  private readonly streamAbort = new AbortController()
  private isOpen = false
  private closed = false
  private readonly uploader: Uploader
  /** Set by a normal close: batches already handed to `send` (the goodbye) still go out, once each. */
  private firstByteTimer: ReturnType<typeof setTimeout> | null = null
  private deadTimer: ReturnType<typeof setTimeout> | null = null
  private lastRecordAt = 0
  /** Batches waiting for the POST in flight to finish. */

  constructor(options: StreamTransportOptions) {
    super()
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.context = options.context
    // Called through a closure: a browser's fetch throws "Illegal invocation" when called as another object's method.
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
    this.firstByteTimeoutMs = options.firstByteTimeoutMs ?? 4_000
    this.deadAfterMs = (options.heartbeatMs ?? 10_000) * 3
    this.uploader = new Uploader({
      baseUrl: this.baseUrl,
      context: this.context,
      fetch: this.fetchImpl,
      host: this,
      ...(options.sendRetries !== undefined ? { retries: options.sendRetries } : {}),
      ...(options.sendRetryDelayMs !== undefined ? { retryDelayMs: options.sendRetryDelayMs } : {}),
    })
    this.maxRecordBytes = options.maxRecordBytes ?? 256 * 1024 * 1024
    // The first event is emitted only after fetch resolves, so the caller
    // has attached its listeners by then.
    void this.streamLoop()
  }

  send(batch: Uint8Array): void {
    if (!this.isClosed) this.uploader.send(batch)
  }

  /** For the uploader: upstream may go once the stream is open. */
  get isReady(): boolean {
    return this.isOpen
  }

  /** Whether the transport is closed. */
  get isClosed(): boolean {
    return this.closed
  }

  /** For the uploader: a POST's answer piggybacks downstream frames (or is empty: 204). */
  onReply(body: Uint8Array): void {
    if (body.byteLength > 0) this.emit('batch', [body])
    else this.emit('alive', [])
  }

  /**
   * For the uploader: a POST refused with a 4xx. The server explains itself
   * with a plain batch (POST answers are not record-framed): 404 carries
   * Close 4002, which the channel acts on.
   */
  onRefused(response: Response, body: Uint8Array): void {
    if (isBatchResponse(response) && body.byteLength > 0) this.emit('batch', [body])
    if (!this.isClosed) this.close(closeCodeForStatus(response.status), `send answered HTTP ${response.status}`)
  }

  /** For the uploader: every retry of a POST failed. */
  onFailed(reason: string): void {
    this.close(AbnormalClosure, reason)
  }

  close(code: number, reason: string): void {
    if (this.closed) return
    this.closed = true
    this.clearTimers()
    // The stream must not keep the server's proof of life for this session
    // after the channel moved on.
    this.streamAbort.abort()
    this.uploader.finish(code === CloseCode.Normal)
    this.emit('close', [code, reason, this.isOpen])
  }

  private async streamLoop(): Promise<void> {
    let isFirst = true
    while (!this.isClosed) {
      const url = new URL(`${this.baseUrl}/comet/stream`)
      // The first request starts (or resumes) the session as the channel
      // asked; reopens name the session the Hello gave and what arrived since.
      const session = isFirst ? this.context.resume : this.currentSession()
      if (!isFirst && !session) {
        this.close(CloseCode.BadFrame, 'the stream carried no handshake')
        return
      }
      if (session) {
        url.searchParams.set('sid', session.sid)
        url.searchParams.set('ack', String(session.ack))
      }
      // A reopen continues on the server's transport without a new Hello;
      // the first request of a transport always gets one.
      if (!isFirst) url.searchParams.set('reopen', '1')
      this.armFirstByteTimer(isFirst)
      const records = await this.readStream(url)
      if (this.isClosed) return
      if (records === 0) {
        // Never loop on a server that answers empty streams.
        this.close(AbnormalClosure, 'the stream ended before its first record')
        return
      }
      isFirst = false
    }
  }

  /** One stream request, read to its end; returns how many records it carried (the transport may be closed after). */
  private async readStream(url: URL): Promise<number> {
    let records = 0
    try {
      const response = await this.fetchImpl(url, { method: 'GET', cache: 'no-store', credentials: 'same-origin', signal: this.streamAbort.signal })
      if (this.isClosed) return records
      if (!response.ok || !response.body) {
        await this.onErrorResponse(response)
        return records
      }
      const reader = response.body.getReader()
      const recordReader = new RecordReader(this.maxRecordBytes)
      for (;;) {
        const { done, value } = await reader.read()
        if (this.isClosed) return records
        if (done) break
        let chunkRecords: Uint8Array[]
        try {
          chunkRecords = recordReader.push(value)
        } catch (error) {
          this.close(CloseCode.BadFrame, `unreadable stream: ${(error as Error).message}`)
          return records
        }
        for (const record of chunkRecords) {
          records++
          this.onRecord(record)
          // The channel may close this transport while handling a batch.
          if (this.isClosed) {
            void reader.cancel().catch(() => {})
            return records
          }
        }
      }
      if (recordReader.isMidRecord) {
        this.close(AbnormalClosure, 'the stream ended in the middle of a record')
      }
      return records
    } catch (error) {
      if (!this.isClosed) this.close(AbnormalClosure, `stream failed: ${describeError(error)}`)
      return records
    }
  }

  private onRecord(record: Uint8Array): void {
    this.lastRecordAt = Date.now()
    if (this.firstByteTimer) clearTimeout(this.firstByteTimer)
    this.firstByteTimer = null
    if (!this.isOpen) {
      this.isOpen = true
      this.armDeadTimer()
      this.emit('open', [])
      if (this.isClosed) return
    }
    // A heartbeat carries no frames, but it is proof of life for the
    // channel's silence watchdog: the server never pings a client whose
    // stream is open (it counts the open stream as proof of life).
    if (record.length === 0) this.emit('alive', [])
    else this.emit('batch', [record])
    // Sends queued before the session id was known can leave now.
    if (!this.isClosed) this.uploader.kick()
  }

  private armFirstByteTimer(isFirst: boolean): void {
    if (this.firstByteTimer) clearTimeout(this.firstByteTimer)
    const ms = this.firstByteTimeoutMs
    this.firstByteTimer = setTimeout(() => {
      this.firstByteTimer = null
      // The server writes a record as soon as a stream opens; only a
      // buffering proxy (or a dead server) holds it back this long. A
      // reopen that stalls after streaming worked is not a proxy's doing.
      this.close(
        CloseCode.Timeout,
        isFirst ? `no record within ${ms} ms: the stream is ${bufferedReason} on the way` : `no record within ${ms} ms of reopening the stream`,
      )
    }, ms)
  }

  // One timer, re-armed for the time left rather than per record.
  private armDeadTimer(): void {
    const left = this.lastRecordAt + this.deadAfterMs - Date.now()
    this.deadTimer = setTimeout(() => {
      this.deadTimer = null
      if (this.isClosed) return
      if (Date.now() - this.lastRecordAt >= this.deadAfterMs) {
        this.close(CloseCode.Timeout, `no record (not even a heartbeat) for ${this.deadAfterMs} ms`)
      } else {
        this.armDeadTimer()
      }
    }, Math.max(0, left))
  }

  private clearTimers(): void {
    if (this.firstByteTimer) clearTimeout(this.firstByteTimer)
    if (this.deadTimer) clearTimeout(this.deadTimer)
    this.firstByteTimer = this.deadTimer = null
  }

  /**
   * A stream request answered with an error. The server's body is one
   * record holding a batch with a Close frame (404: Close 4002), which the
   * channel acts on; the close code here covers a body that says nothing,
   * e.g. a proxy's error page.
   */
  private async onErrorResponse(response: Response): Promise<void> {
    let body = new Uint8Array(0)
    try {
      body = new Uint8Array(await response.arrayBuffer())
    } catch {
      // The status alone says enough.
    }
    if (this.isClosed) return
    if (!response.ok && isBatchResponse(response) && body.byteLength > 0) {
      try {
        for (const record of new RecordReader(this.maxRecordBytes).push(body)) {
          if (record.length > 0) this.emit('batch', [record])
          if (this.isClosed) return
        }
      } catch {
        // Not records: fall through to the status.
      }
    }
    if (this.isClosed) return
    const code = response.ok ? CloseCode.BadFrame : closeCodeForStatus(response.status)
    this.close(code, response.ok ? 'the stream response had no body' : `stream answered HTTP ${response.status}`)
  }

  private currentSession(): { sid: string; ack: number } | null {
    const sid = this.context.sessionId()
    return sid === null ? null : { sid, ack: this.context.lastReceivedSeq() }
  }
}
