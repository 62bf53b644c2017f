/**
 * The HTTP streaming transport (the modern "forever frame"), between
 * WebSocket and long-polling: downstream batches travel over ONE
 * long-lived `GET /comet/stream` response as length-prefixed records,
 *
 *   stream := (varUint(length) • batch)*
 *
 * (proxies do not preserve chunk boundaries, hence the length prefix);
 * upstream batches arrive in `POST /comet/send` bodies exactly as with
 * long-polling, whose responses piggyback whatever is queued while no
 * stream is open. A zero-length record is a heartbeat.
 *
 * One object per session; it outlives the individual responses. A stream
 * ends after `maxStreamMs` (so a buffering proxy eventually delivers) or
 * when the client goes away, and the client reopens it with `?sid=&ack=`;
 * meanwhile batches queue here and are written when the next stream opens.
 * Heartbeats and stream lifetimes are driven by one shared
 * {@link StreamTicker}, not by a timer per stream.
 */
import type { ServerResponse } from 'node:http'
import { CloseCode } from '../../../common/close-codes'
import type { ServerTransport, TransportReceiver } from '../transport'

/** Default: write a heartbeat after this long without output, in ms. */
export const defaultHeartbeatMs = 10_000
/** Default: end a stream after this long so buffering proxies deliver it, in ms. */
export const defaultMaxStreamMs = 60_000

/** The zero-length record: a heartbeat. */
const heartbeatRecord = new Uint8Array([0])

/**
 * Encode one batch as a stream record: `varUint(batch.length) • batch`.
 * A zero-length batch encodes the heartbeat.
 */
export function encodeRecord(batch: Uint8Array): Uint8Array {
  let prefixLength = 1
  for (let n = batch.length; n >= 0x80; n = Math.floor(n / 0x80)) prefixLength++
  const record = new Uint8Array(prefixLength + batch.length)
  let n = batch.length
  let offset = 0
  // LEB128, as lib0's writeVarUint; division rather than >>> so lengths past 2^31 stay right.
  while (n >= 0x80) {
    record[offset++] = 0x80 | (n % 0x80)
    n = Math.floor(n / 0x80)
  }
  record[offset++] = n
  record.set(batch, offset)
  return record
}

/** Something the {@link StreamTicker} drives. */
export interface Tickable {
  /** Called on every tick with the current time, in ms. */
  tick(now: number): void
}

/** Options of a {@link StreamTicker}. */
export interface StreamTickerOptions {
  /** How often the ticker runs while any stream is open, in ms. @default 1000 */
  intervalMs?: number
  /** A clock, in ms (tests pass a fake one). @default Date.now */
  now?: () => number
}

/**
 * One timer for every open stream (heartbeats, lifetimes): thousands of
 * idle streams cost a set walk per interval, not thousands of timers. The
 * timer runs only while at least one stream is registered, and never
 * keeps the process alive on its own.
 */
export class StreamTicker {
  private readonly members = new Set<Tickable>()
  private timer: NodeJS.Timeout | null = null
  readonly intervalMs: number
  readonly now: () => number

  constructor(options: StreamTickerOptions = {}) {
    this.intervalMs = options.intervalMs ?? 1_000
    this.now = options.now ?? Date.now
  }

  /** How many streams are registered. */
  get size(): number {
    return this.members.size
  }

  /** Whether the shared timer is running. */
  get isRunning(): boolean {
    return this.timer !== null
  }

  /** Start ticking `member` (idempotent). */
  add(member: Tickable): void {
    this.members.add(member)
    if (this.timer) return
    this.timer = setInterval(() => this.tick(), this.intervalMs)
    this.timer.unref()
  }

  /** Stop ticking `member`; the timer stops with the last one. */
  remove(member: Tickable): void {
    this.members.delete(member)
    if (this.members.size === 0 && this.timer) {
      clearInterval(this.timer)
      this.timer = null
    }
  }

  /** Tick every member once now (the timer calls this; tests call it by hand). */
  tick(): void {
    const now = this.now()
    // A copy: a member may remove itself (its stream ends) while ticking.
    for (const member of [...this.members]) member.tick(now)
  }
}

/** Options of a {@link StreamTransport}. */
export interface StreamTransportOptions {
  /** The shared ticker driving heartbeats and stream lifetimes. */
  ticker: StreamTicker
  /** Write a heartbeat after this long with no other output, in ms. @default 10000 */
  heartbeatMs?: number
  /** End each stream this long after it opened, in ms; the client reopens it. @default 60000 */
  maxStreamMs?: number
}

/** The response of the stream currently open. */
interface OpenStream {
  res: ServerResponse
  openedAt: number
  lastWriteAt: number
}

/** A {@link ServerTransport} over HTTP streaming; see the module comment. */
export class StreamTransport implements ServerTransport, Tickable {
  readonly name = 'stream' as const
  receiver: TransportReceiver | null = null
  private readonly ticker: StreamTicker
  private readonly heartbeatMs: number
  private readonly maxStreamMs: number
  private stream: OpenStream | null = null
  private queue: Uint8Array[] = []
  private queuedBytes = 0
  private isClosed = false

  constructor(options: StreamTransportOptions) {
    this.ticker = options.ticker
    this.heartbeatMs = options.heartbeatMs ?? defaultHeartbeatMs
    this.maxStreamMs = options.maxStreamMs ?? defaultMaxStreamMs
  }

  /** True while a stream is open: the client is connected and reading. */
  get isWaiting(): boolean {
    return this.stream !== null
  }

  /** The open response's unsent bytes, or the bytes queued while no stream is open. */
  get bufferedBytes(): number {
    return this.stream ? this.stream.res.writableLength : this.queuedBytes
  }

  /** Whether the transport was closed (a reopen then needs a new transport). */
  get closed(): boolean {
    return this.isClosed
  }

  /**
   * Make `res` (headers already sent) this transport's stream: write what
   * queued while no stream was open — or a heartbeat, so that the client
   * sees a first record at once and can tell a live stream from a buffered
   * one — then every later batch. A stream still open is ended first (a
   * newer request supersedes it, as a newer poll does). On a closed
   * transport the queue (the final Close frame) is written and `res` ended.
   */
  openStream(res: ServerResponse): void {
    this.endStream()
    const now = this.ticker.now()
    const stream: OpenStream = { res, openedAt: now, lastWriteAt: now }
    this.stream = stream
    // 'close' fires both when we end the response and when the client
    // aborts it; either way this stream is over (a newer one may be open).
    res.once('close', () => {
      if (this.stream === stream) this.detachStream()
    })
    // A write racing the client's disconnect must not crash the process;
    // the 'close' above follows.
    res.on('error', () => {})
    const queue = this.takeQueue()
    this.write(stream, joined(queue))
    if (this.isClosed) {
      this.endStream()
      return
    }
    this.ticker.add(this)
  }

  send(batch: Uint8Array): void {
    if (this.isClosed || batch.length === 0) return
    if (this.stream) {
      this.write(this.stream, batch)
      return
    }
    this.queue.push(batch)
    this.queuedBytes += batch.length
  }

  clearQueued(): void {
    this.queue = []
    this.queuedBytes = 0
  }

  /**
   * Batches queued right now, for a POST's response (piggybacking); null
   * when none — always while a stream is open, since batches are then
   * written to it directly.
   */
  takeQueued(): Uint8Array | null {
    const queue = this.takeQueue()
    return joined(queue)
  }

  /** A POST's body (possibly empty); answer the POST with {@link answerUpload}. */
  receive(batch: Uint8Array): void {
    if (!this.isClosed && batch.length > 0) this.receiver?.receiveBatch(batch)
  }

  /** The answer to a POST passed to {@link receive}: what queued while no stream was open, if anything. */
  answerUpload(): Uint8Array | null {
    return this.takeQueued()
  }

  /** Heartbeat an idle stream; end one past its lifetime. Called by the ticker. */
  tick(now: number): void {
    const stream = this.stream
    if (!stream) return
    if (now - stream.openedAt >= this.maxStreamMs) {
      this.endStream()
      return
    }
    if (now - stream.lastWriteAt >= this.heartbeatMs) this.write(stream, null)
  }

  close(code: number, reason: string): void {
    if (this.isClosed) return
    this.isClosed = true
    // The session wrote its Close frame (if any) just before; ending the
    // response delivers it. With no stream open it waits in the queue for
    // a piggybacking POST.
    this.endStream()
    this.receiver?.transportClosed(code, reason, code === CloseCode.Normal || code === CloseCode.GoingAway)
  }

  /** Drop the open response now, unsent bytes and all (a slow reader). */
  abort(): void {
    const stream = this.stream
    if (!stream) return
    this.detachStream()
    stream.res.destroy()
  }

  /** Write one record (a heartbeat when `batch` is null). */
  private write(stream: OpenStream, batch: Uint8Array | null): void {
    const { res } = stream
    // A response the client already dropped: the session resends its Data
    // frames past the `ack` of the reopening request, so nothing is lost.
    if (res.writableEnded || res.destroyed) return
    stream.lastWriteAt = this.ticker.now()
    res.write(batch ? encodeRecord(batch) : heartbeatRecord)
  }

  /** End the open stream, if any; the transport stays, waiting for a reopen. */
  private endStream(): void {
    const stream = this.stream
    if (!stream) return
    this.detachStream()
    if (!stream.res.writableEnded && !stream.res.destroyed) stream.res.end()
  }

  private detachStream(): void {
    this.stream = null
    this.ticker.remove(this)
  }

  private takeQueue(): Uint8Array[] {
    const queue = this.queue
    this.queue = []
    this.queuedBytes = 0
    return queue
  }
}

/** The queued batches as one body, or null when none. */
function joined(queue: Uint8Array[]): Uint8Array | null {
  if (queue.length === 0) return null
  return queue.length === 1 ? queue[0]! : Buffer.concat(queue)
}
