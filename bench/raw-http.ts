/**
 * A minimal HTTP/1.1 keep-alive client, shaped as the `fetch` the Comet
 * long-polling transport calls, for the benchmark's long-polling clients.
 *
 * Why not undici, which the benchmark's HTTP clients used before:
 * a long-polling client makes one request per batch it receives, so at 50
 * clients a load generator makes thousands of requests a second. Profiled
 * at 50 long-polling clients (2026-11-27), undici's request and response
 * machinery took about 60 % of each client worker's busy time and the
 * workers a whole core, on the same two cores as the server: the figure
 * then measured the load generator's queue more than the server. A
 * browser's fetch is native code off the page's thread. This client does
 * what load generators such as autocannon do: it writes each request as
 * one prebuilt string and reads the response with a small parser. It
 * covers only what the server's Comet answers use: a status, a few
 * headers, and a body with Content-Length (read whole before the response
 * resolves, as `arrayBuffer()` would) or chunked (a stream, for the
 * streaming transport, resolved at its head and fed as chunks arrive).
 */
import net from 'node:net'

/** A request that failed below HTTP, like fetch's "fetch failed" TypeError. */
function networkError(cause: unknown): TypeError {
  return new TypeError('fetch failed', { cause })
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

interface ParsedResponse {
  status: number
  headers: Map<string, string>
  body: Buffer
  keepAlive: boolean
}

/** One request's wait for its response on a connection. */
interface Exchange {
  /** The response: at its end, or at its head for a chunked (streamed) one. */
  resolve(response: RawResponse): void
  /** The request failed before its response began. */
  reject(error: unknown): void
  /** The response is over (its body read to the end, or failed): the request no longer needs its abort signal. */
  finished(): void
}

const headEnd = Buffer.from('\r\n\r\n')
const crlf = Buffer.from('\r\n')

/** A response's status line and headers, and how its body is framed. */
interface ResponseHead {
  status: number
  headers: Map<string, string>
  keepAlive: boolean
  /** Where the body starts in the bytes parsed. */
  bodyStart: number
  /** The body's length, or 'chunked' for a body read as a stream (ChunkedDecoder). */
  bodyLength: number | 'chunked'
}

/** Parse the head at the start of `data`, or null while it is incomplete. Throws on what it cannot read. */
function parseHead(data: Buffer): ResponseHead | null {
  const end = data.indexOf(headEnd)
  if (end < 0) return null
  const lines = data.toString('latin1', 0, end).split('\r\n')
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)
  if (!status) throw new Error(`malformed status line: ${JSON.stringify(lines[0])}`)
  const headers = new Map<string, string>()
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i]!.indexOf(':')
    if (colon <= 0) throw new Error(`malformed header line: ${JSON.stringify(lines[i])}`)
    headers.set(lines[i]!.slice(0, colon).trim().toLowerCase(), lines[i]!.slice(colon + 1).trim())
  }
  const code = Number(status[1])
  const head = { status: code, headers, keepAlive: headers.get('connection')?.toLowerCase() !== 'close' && lines[0]!.startsWith('HTTP/1.1'), bodyStart: end + headEnd.length }
  if (code === 204 || code === 304 || (code >= 100 && code < 200)) return { ...head, bodyLength: 0 }
  if (headers.get('transfer-encoding')?.toLowerCase() === 'chunked') return { ...head, bodyLength: 'chunked' }
  const lengthHeader = headers.get('content-length')
  if (lengthHeader === undefined) throw new Error('a response with neither Content-Length nor chunked encoding')
  const length = Number(lengthHeader)
  if (!Number.isSafeInteger(length) || length < 0) throw new Error(`bad Content-Length ${JSON.stringify(lengthHeader)}`)
  return { ...head, bodyLength: length }
}

/**
 * Parse a response whose body has a known length from the start of `data`:
 * the parsed response and the bytes it took, or null while it is
 * incomplete. Throws on what it cannot read, and on a chunked response
 * (read those as a stream).
 */
export function parseResponse(data: Buffer): { response: ParsedResponse; length: number } | null {
  const head = parseHead(data)
  return head && bufferedResponse(data, head)
}

function bufferedResponse(data: Buffer, head: ResponseHead): { response: ParsedResponse; length: number } | null {
  if (head.bodyLength === 'chunked') throw new Error('a chunked response is read as a stream')
  const end = head.bodyStart + head.bodyLength
  if (data.length < end) return null
  return { response: { status: head.status, headers: head.headers, body: data.subarray(head.bodyStart, end), keepAlive: head.keepAlive }, length: end }
}

/**
 * Decodes a chunked body as its bytes arrive (RFC 9112 §7.1), for streamed
 * responses. Chunk extensions and trailers are skipped.
 */
export class ChunkedDecoder {
  private pending: Buffer | null = null
  /** Data bytes left in the current chunk. */
  private remaining = 0
  private state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size'

  get isDone(): boolean {
    return this.state === 'done'
  }

  /** The body bytes in `bytes` (views into it), in order. Throws on a malformed body or on bytes after its end. */
  push(bytes: Buffer): Buffer[] {
    const data = this.pending ? Buffer.concat([this.pending, bytes]) : bytes
    this.pending = null
    const out: Buffer[] = []
    let offset = 0
    while (offset < data.length) {
      if (this.state === 'done') throw new Error('bytes after the end of a chunked body')
      if (this.state === 'data') {
        const take = Math.min(this.remaining, data.length - offset)
        out.push(data.subarray(offset, offset + take))
        offset += take
        this.remaining -= take
        if (this.remaining === 0) this.state = 'data-end'
        continue
      }
      const lineEnd = data.indexOf(crlf, offset)
      if (lineEnd < 0) {
        this.pending = data.subarray(offset)
        break
      }
      const line = data.toString('latin1', offset, lineEnd)
      offset = lineEnd + 2
      if (this.state === 'data-end') {
        if (line !== '') throw new Error('a chunk longer than its size')
        this.state = 'size'
      } else if (this.state === 'trailer') {
        if (line === '') this.state = 'done'
      } else {
        const size = /^[0-9a-fA-F]+/.exec(line)
        if (!size) throw new Error(`malformed chunk size ${JSON.stringify(line)}`)
        this.remaining = parseInt(size[0], 16)
        this.state = this.remaining === 0 ? 'trailer' : 'data'
      }
    }
    return out
  }
}

/** A streamed body under way on a connection. */
interface Streaming {
  decoder: ChunkedDecoder
  controller: ReadableStreamDefaultController<Uint8Array>
  keepAlive: boolean
}

/** One keep-alive connection: at most one request on it at a time. */
class Connection {
  private data: Buffer | null = null
  private exchange: Exchange | null = null
  private streaming: Streaming | null = null
  /** Whether a response byte arrived for the current request (a reused connection that fails before that may be retried). */
  heardBack = false
  isClosed = false

  constructor(
    readonly socket: net.Socket,
    private readonly onIdle: (connection: Connection) => void,
    private readonly onClosed: (connection: Connection) => void,
  ) {
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (error) => this.fail(networkError(error)))
    socket.on('close', () => this.fail(networkError(new Error('the server closed the connection'))))
  }

  request(head: string, body: Uint8Array | null, exchange: Exchange): void {
    this.exchange = exchange
    this.heardBack = false
    if (body && body.length > 0) {
      this.socket.cork()
      this.socket.write(head, 'latin1')
      this.socket.write(body)
      this.socket.uncork()
    } else {
      this.socket.write(head, 'latin1')
    }
  }

  /** Give up the current request (its signal aborted with `reason`): the connection cannot be reused. */
  abort(reason: unknown): void {
    this.exchange = null
    const streaming = this.streaming
    this.streaming = null
    streaming?.controller.error(reason)
    this.socket.destroy()
  }

  private onData(chunk: Buffer): void {
    this.heardBack = true
    if (this.streaming) {
      this.onBodyBytes(this.streaming, chunk)
      return
    }
    this.data = this.data ? Buffer.concat([this.data, chunk]) : chunk
    const exchange = this.exchange
    if (!exchange) {
      this.fail(networkError(new Error('the server sent bytes with no request outstanding')))
      return
    }
    let head: ResponseHead | null
    let parsed: ReturnType<typeof bufferedResponse> = null
    try {
      head = parseHead(this.data)
      if (head && head.bodyLength !== 'chunked') parsed = bufferedResponse(this.data, head)
    } catch (error) {
      this.fail(networkError(error))
      return
    }
    if (head?.bodyLength === 'chunked') {
      // Streamed: the response resolves now, its body follows as it comes.
      const rest = this.data.subarray(head.bodyStart)
      this.data = null
      let controller!: ReadableStreamDefaultController<Uint8Array>
      const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) })
      const streaming: Streaming = { decoder: new ChunkedDecoder(), controller, keepAlive: head.keepAlive }
      this.streaming = streaming
      exchange.resolve(new RawResponse(head.status, head.headers, body))
      if (rest.length > 0) this.onBodyBytes(streaming, rest)
      return
    }
    if (!parsed) return
    this.exchange = null
    // A copy in an ArrayBuffer of its own: the parsed body is a view into a
    // socket read buffer, and arrayBuffer() hands over the whole buffer.
    const body = new Uint8Array(parsed.response.body)
    this.data = parsed.length < this.data.length ? this.data.subarray(parsed.length) : null
    if (this.data) {
      this.fail(networkError(new Error('the server sent more than one response')))
    } else if (parsed.response.keepAlive) {
      this.onIdle(this)
    } else {
      this.socket.destroy()
    }
    exchange.resolve(new RawResponse(parsed.response.status, parsed.response.headers, body))
    exchange.finished()
  }

  private onBodyBytes(streaming: Streaming, bytes: Buffer): void {
    let pieces: Buffer[]
    try {
      pieces = streaming.decoder.push(bytes)
    } catch (error) {
      this.fail(networkError(error))
      return
    }
    if (pieces.length > 0) streaming.controller.enqueue(pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces))
    if (!streaming.decoder.isDone) return
    this.streaming = null
    const exchange = this.exchange
    this.exchange = null
    streaming.controller.close()
    if (streaming.keepAlive) this.onIdle(this)
    else this.socket.destroy()
    exchange?.finished()
  }

  private fail(error: unknown): void {
    if (!this.isClosed) {
      this.isClosed = true
      this.socket.destroy()
      this.onClosed(this)
    }
    const streaming = this.streaming
    this.streaming = null
    const exchange = this.exchange
    this.exchange = null
    if (streaming) {
      // The response had begun: its body fails, as fetch's does.
      streaming.controller.error(error)
      exchange?.finished()
    } else {
      exchange?.reject(error)
    }
  }
}

/**
 * The subset of a fetch Response the Comet transports read. A class, not an
 * object literal of closures: one is made per request. Its body is either
 * all there (Content-Length) or a stream (chunked).
 */
class RawResponse {
  constructor(
    readonly status: number,
    private readonly headerMap: Map<string, string>,
    private readonly content: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>,
  ) {}

  get ok(): boolean {
    return this.status >= 200 && this.status < 300
  }

  get headers(): { get(name: string): string | null } {
    return { get: (name) => this.headerMap.get(name.toLowerCase()) ?? null }
  }

  /** The whole body, read once (a buffered body owns its ArrayBuffer: see Connection.onData). */
  async arrayBuffer(): Promise<ArrayBuffer> {
    if (this.content instanceof Uint8Array) return this.content.buffer
    const chunks: Uint8Array[] = []
    const reader = this.content.getReader()
    for (let next = await reader.read(); !next.done; next = await reader.read()) chunks.push(next.value)
    return new Uint8Array(Buffer.concat(chunks)).buffer
  }

  get body(): ReadableStream<Uint8Array> {
    const content = this.content
    if (!(content instanceof Uint8Array)) return content
    return new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(content)
        controller.close()
      },
    })
  }
}

/** `http://host:port/path?query` split as a request needs it; parsed by hand, since a URL object per request showed in the profile. */
function splitUrl(url: string): { host: string; hostname: string; port: number; target: string } {
  const match = /^http:\/\/(([^/:?#]+)(?::(\d+))?)(\/[^#]*)?/.exec(url)
  if (!match) throw new TypeError(`raw-http speaks plain http only: ${url}`)
  return { host: match[1]!, hostname: match[2]!, port: Number(match[3] ?? 80), target: match[4] ?? '/' }
}

/**
 * Requests under way per AbortSignal. The long-polling transport passes
 * the same signal to every poll until it closes: one abort listener per
 * signal, not an add and a remove per request.
 */
const underWay = new WeakMap<AbortSignal, Set<() => void>>()

function onAbort(signal: AbortSignal, abort: () => void): () => void {
  let aborts = underWay.get(signal)
  if (!aborts) {
    const all = new Set<() => void>()
    aborts = all
    underWay.set(signal, all)
    signal.addEventListener('abort', () => {
      for (const one of [...all]) one()
    }, { once: true })
  }
  aborts.add(abort)
  const registered = aborts
  return () => registered.delete(abort)
}

/** A fetch over a pool of keep-alive connections per origin (see the module comment). */
export function createRawFetch(): typeof fetch {
  const idle = new Map<string, Connection[]>()

  const release = (origin: string) => (connection: Connection) => {
    const list = idle.get(origin) ?? []
    list.push(connection)
    idle.set(origin, list)
  }
  const forget = (origin: string) => (connection: Connection) => {
    const list = idle.get(origin)
    const at = list?.indexOf(connection) ?? -1
    if (list && at >= 0) list.splice(at, 1)
  }

  type Origin = { host: string; hostname: string; port: number }
  const connect = (origin: Origin): Connection => {
    const socket = net.connect({ host: origin.hostname, port: origin.port })
    return new Connection(socket, release(origin.host), forget(origin.host))
  }

  const once = (origin: Origin, head: string, body: Uint8Array | null, signal: AbortSignal | null, canRetry: boolean): Promise<RawResponse> => {
    let connection: Connection | undefined
    const list = idle.get(origin.host)
    while (list && list.length > 0 && !connection) {
      const candidate = list.pop()!
      if (!candidate.isClosed) connection = candidate
    }
    const reused = connection !== undefined
    connection ??= connect(origin)
    const chosen = connection
    return new Promise<RawResponse>((resolve, reject) => {
      // Registered until the response is over: aborting a stream ends its body.
      const done = signal
        ? onAbort(signal, () => {
            chosen.abort(abortError(signal))
            reject(abortError(signal))
          })
        : null
      chosen.request(head, body, {
        resolve,
        finished: () => done?.(),
        reject(error) {
          done?.()
          // The server may close an idle connection just as a request goes out on it.
          if (reused && canRetry && !chosen.heardBack && !signal?.aborted) once(origin, head, body, signal, false).then(resolve, reject)
          else reject(error)
        },
      })
    })
  }

  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = splitUrl(input instanceof Request ? input.url : String(input))
    const signal = init?.signal ?? null
    if (signal?.aborted) throw abortError(signal)
    const method = init?.method ?? 'GET'
    const body = init?.body ?? null
    if (body !== null && !(body instanceof Uint8Array)) throw new TypeError('raw-http sends Uint8Array bodies only')
    let head = `${method} ${url.target} HTTP/1.1\r\nHost: ${url.host}\r\n`
    for (const [name, value] of Object.entries((init?.headers ?? {}) as Record<string, string>)) head += `${name}: ${value}\r\n`
    if (body !== null || method === 'POST') head += `Content-Length: ${body?.length ?? 0}\r\n`
    head += '\r\n'
    return (await once(url, head, body, signal, method === 'GET')) as unknown as Response
  }) as typeof fetch
}
