/**
 * The HTTP streaming transport end to end over real HTTP: a Koa server on
 * 127.0.0.1:0 built from the real SessionRegistry, the streaming middleware
 * and the long-poll endpoint (for POST /comet/send), read by the client
 * StreamTransport with Node's fetch. Handshake, records, heartbeats, the
 * bounded stream lifetime and resume with resending, unknown sessions, a
 * buffering proxy, a dead stream.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Koa from 'koa'
import { pino } from 'pino'
import { CloseCode } from '../../common/close-codes'
import { decodeBatch, encodeBatch, FrameKind, type Frame } from '../../common/comet/frame'
import { parseHandshake } from '../../common/comet/handshake'
import { RecordReader, StreamTransport as ClientStreamTransport } from '../../client/comet/transports/stream'
import type { TransportContext } from '../../client/comet/transport'
import { cometHttp } from '../../server/comet/http-endpoint'
import { cometStream } from '../../server/comet/stream-endpoint'
import { SessionRegistry } from '../../server/comet/session-registry'
import type { Session } from '../../server/comet/session'
import { StreamTransport as ServerStreamTransport } from '../../server/comet/transports/stream'
import { waitFor } from '../helpers/wait-for'

const timeoutMs = 5_000
const maxBytes = 16 * 1024 * 1024

interface StreamServer {
  url: string
  sessions: SessionRegistry
  /** Sessions in the order they were created. */
  created: Session[]
  stop(): Promise<void>
}

async function startStreamServer(options: { heartbeatMs: number; maxStreamMs: number }): Promise<StreamServer> {
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' })
  const sessions = new SessionRegistry({
    pingIntervalMs: 10_000,
    pingTimeoutMs: 10_000,
    sessionGraceMs: 10_000,
    maxFrameBytes: maxBytes,
    maxUnackedFrames: 4096,
    pollHoldMs: 1_000,
    transports: ['websocket', 'stream', 'long-poll'],
    sweepIntervalMs: 50,
  })
  const created: Session[] = []
  sessions.on('session', (session) => created.push(session))
  const app = new Koa({ proxy: false })
  app.silent = true
  app.use(cometHttp({ sessions, pollHoldMs: 1_000, maxBodyBytes: maxBytes, logger }))
  app.use(cometStream({ sessions, heartbeatMs: options.heartbeatMs, maxStreamMs: options.maxStreamMs, logger }))
  const server = http.createServer(app.callback())
  sessions.start()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    sessions,
    created,
    async stop() {
      sessions.closeAll(CloseCode.GoingAway, 'test over')
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/**
 * The channel's side of the context, minimal: learns the sid from the
 * Hello and the last Data seq, acknowledges nothing upstream (so the
 * server keeps every frame for resending), and can pretend to have lost
 * frames by reporting a lower ack.
 */
class Receiver {
  sid: string | null = null
  lastSeq = 0
  ackOverride: number | null = null
  readonly frames: Frame[] = []
  readonly events: string[] = []
  readonly closes: { code: number; reason: string; wasOpen: boolean }[] = []
  readonly requests: string[] = []
  readonly context: TransportContext = {
    resume: null,
    sessionId: () => this.sid,
    lastReceivedSeq: () => this.ackOverride ?? this.lastSeq,
  }
  readonly fetch: typeof fetch = (input, init) => {
    this.requests.push(`${init?.method ?? 'GET'} ${String(input)}`)
    return globalThis.fetch(input, init)
  }

  attach(transport: ClientStreamTransport): ClientStreamTransport {
    transport.on('open', () => this.events.push('open'))
    transport.on('alive', () => this.events.push('alive'))
    transport.on('close', (code, reason, wasOpen) => this.closes.push({ code, reason, wasOpen }))
    transport.on('batch', (bytes) => {
      this.events.push('batch')
      for (const frame of decodeBatch(bytes, maxBytes)) {
        this.frames.push(frame)
        if (frame.kind === FrameKind.Hello) this.sid = parseHandshake(frame.json)?.sid ?? null
        if (frame.kind === FrameKind.Data && frame.seq > this.lastSeq) this.lastSeq = frame.seq
      }
    })
    return transport
  }

  dataSeqs(): number[] {
    return this.frames.flatMap((frame) => (frame.kind === FrameKind.Data ? [frame.seq] : []))
  }

  streamRequests(): string[] {
    return this.requests.filter((request) => request.startsWith('GET ') && request.includes('/comet/stream'))
  }
}

function open(server: { url: string }, receiver: Receiver, options: { firstByteTimeoutMs?: number; heartbeatMs?: number } = {}): ClientStreamTransport {
  return receiver.attach(new ClientStreamTransport({ baseUrl: server.url, context: receiver.context, fetch: receiver.fetch, ...options }))
}

describe('HTTP streaming transport', () => {
  let server: StreamServer
  const transports: ClientStreamTransport[] = []

  before(async () => {
    server = await startStreamServer({ heartbeatMs: 60, maxStreamMs: 600 })
  })
  after(async () => {
    for (const transport of transports) transport.close(CloseCode.Normal, 'test over')
    await server.stop()
  })

  it('answers with unbuffered, uncached octet-stream headers and the Hello as the first record', async () => {
    const abort = new AbortController()
    const response = await fetch(`${server.url}/comet/stream`, { signal: abort.signal })
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('content-type'), 'application/octet-stream')
    assert.equal(response.headers.get('cache-control'), 'no-store')
    assert.equal(response.headers.get('x-accel-buffering'), 'no')
    assert.equal(response.headers.get('transfer-encoding'), 'chunked')
    const reader = response.body!.getReader()
    const records = new RecordReader()
    const got: Uint8Array[] = []
    while (got.length === 0) {
      const { value, done } = await reader.read()
      assert.equal(done, false)
      got.push(...records.push(value!))
    }
    const frames = decodeBatch(got[0]!, maxBytes)
    assert.equal(frames[0]?.kind, FrameKind.Hello)
    const handshake = parseHandshake((frames[0] as { json: string }).json)
    assert.equal(handshake?.resumed, false)
    assert.ok(handshake?.transports.includes('stream'))
    abort.abort()
    // The server notices the client leaving: the stream is no longer open, the session stays.
    const session = server.sessions.get(handshake!.sid)!
    await waitFor(() => !(session.currentTransport as ServerStreamTransport).isWaiting, 'the server to see the stream closed', timeoutMs)
    assert.equal(session.state, 'attached')
  })

  it('opens on the Hello and delivers each server batch as it is written', async () => {
    const receiver = new Receiver()
    transports.push(open(server, receiver))
    await waitFor(() => receiver.sid, 'the Hello', timeoutMs)
    assert.deepEqual(receiver.events.slice(0, 2), ['open', 'batch'])
    const session = server.sessions.get(receiver.sid!)!
    assert.equal(session.transportName, 'stream')
    session.send(new Uint8Array([1, 2, 3]))
    await waitFor(() => receiver.dataSeqs().includes(1), 'Data 1', timeoutMs)
    session.send(new Uint8Array(70_000).fill(7)) // larger than any one chunk
    await waitFor(() => receiver.dataSeqs().includes(2), 'Data 2', timeoutMs)
    const big = receiver.frames.find((frame) => frame.kind === FrameKind.Data && frame.seq === 2)
    assert.equal(big?.kind === FrameKind.Data && big.payload.length, 70_000)
    assert.deepEqual(receiver.closes, [])
  })

  it('heartbeats an idle stream, reported as alive and never as a batch', async () => {
    const receiver = new Receiver()
    transports.push(open(server, receiver))
    await waitFor(() => receiver.sid, 'the Hello', timeoutMs)
    const batches = receiver.events.filter((event) => event === 'batch').length
    await waitFor(() => receiver.events.filter((event) => event === 'alive').length >= 3, 'three heartbeats', timeoutMs)
    assert.equal(receiver.events.filter((event) => event === 'batch').length, batches)
  })

  it('ends each stream after maxStreamMs and reopens it with sid and ack; the server resends what was not acknowledged', async () => {
    const receiver = new Receiver()
    const transport = open(server, receiver)
    transports.push(transport)
    await waitFor(() => receiver.sid, 'the Hello', timeoutMs)
    const session = server.sessions.get(receiver.sid!)!
    const serverTransport = session.currentTransport
    session.send(new Uint8Array([1]))
    session.send(new Uint8Array([2]))
    session.send(new Uint8Array([3]))
    await waitFor(() => receiver.lastSeq === 3, 'Data 1–3', timeoutMs)
    // Pretend frames 2 and 3 were lost in transit: the reopen acknowledges only 1.
    receiver.ackOverride = 1
    await waitFor(() => receiver.streamRequests().length >= 2, 'the stream to end and reopen', timeoutMs)
    assert.equal(receiver.streamRequests()[1], `GET ${server.url}/comet/stream?sid=${receiver.sid}&ack=1&reopen=1`)
    await waitFor(() => receiver.dataSeqs().length >= 5, 'frames 2 and 3 again', timeoutMs)
    assert.deepEqual(receiver.dataSeqs(), [1, 2, 3, 2, 3])
    // The same transport carries on: no new Hello, no new session, the channel saw one open.
    assert.equal(session.currentTransport, serverTransport)
    assert.equal(receiver.frames.filter((frame) => frame.kind === FrameKind.Hello).length, 1)
    assert.equal(receiver.events.filter((event) => event === 'open').length, 1)
    assert.equal(session.unackedCount, 2)
    // And it keeps delivering over the reopened stream.
    receiver.ackOverride = null
    session.send(new Uint8Array([4]))
    await waitFor(() => receiver.dataSeqs().includes(4), 'Data 4 on the new stream', timeoutMs)
    // Another lifetime later the reopen acknowledges everything: nothing is resent.
    const reopens = receiver.streamRequests().length
    await waitFor(() => receiver.streamRequests().length > reopens, 'another reopen', timeoutMs)
    assert.match(receiver.streamRequests().at(-1)!, /ack=4&reopen=1$/)
    // (The request is recorded as it leaves; the server acts on it a moment later.)
    await waitFor(() => session.unackedCount === 0, 'the server to drop what the reopen acknowledged', timeoutMs)
    assert.equal(session.currentTransport, serverTransport)
    assert.deepEqual(receiver.closes, [])
  })

  it('gives a new client transport resuming the session a Hello and every frame past ack, replacing the old server transport', async () => {
    const first = new Receiver()
    const transport = open(server, first)
    await waitFor(() => first.sid, 'the Hello', timeoutMs)
    const session = server.sessions.get(first.sid!)!
    const oldServerTransport = session.currentTransport as ServerStreamTransport
    session.send(new Uint8Array([1]))
    session.send(new Uint8Array([2]))
    await waitFor(() => first.lastSeq === 2, 'Data 1–2', timeoutMs)
    // Drop without a goodbye (no POST Close): the server transport stays
    // current, waiting for a reopen. Then the channel resumes on a new transport.
    transport.close(CloseCode.GoingAway, 'test drops it')
    const second = new Receiver()
    second.sid = first.sid
    const resumed = second.attach(
      new ClientStreamTransport({ baseUrl: server.url, context: { ...second.context, resume: { sid: first.sid!, ack: 1 } }, fetch: second.fetch }),
    )
    transports.push(resumed)
    await waitFor(() => second.dataSeqs().includes(2), 'Data 2 again', timeoutMs)
    const hello = second.frames[0]
    assert.equal(hello?.kind, FrameKind.Hello)
    assert.equal(parseHandshake((hello as { json: string }).json)?.resumed, true)
    assert.deepEqual(second.dataSeqs(), [2])
    assert.equal(oldServerTransport.closed, true)
    assert.notEqual(session.currentTransport, oldServerTransport)
    assert.equal(session.transportName, 'stream')
  })

  it('answers an unknown session with 404 and one record holding Close 4002', async () => {
    const response = await fetch(`${server.url}/comet/stream?sid=nope&ack=0`)
    assert.equal(response.status, 404)
    assert.equal(response.headers.get('cache-control'), 'no-store')
    const [record, ...rest] = new RecordReader().push(new Uint8Array(await response.arrayBuffer()))
    assert.deepEqual(rest, [])
    const frames = decodeBatch(record!, maxBytes)
    assert.equal(frames[0]?.kind, FrameKind.Close)
    assert.equal((frames[0] as { code: number }).code, CloseCode.SessionUnknown)
    // The client transport hands the Close to the channel and closes.
    const receiver = new Receiver()
    receiver.attach(new ClientStreamTransport({ baseUrl: server.url, context: { ...receiver.context, resume: { sid: 'nope', ack: 0 } }, fetch: receiver.fetch }))
    await waitFor(() => receiver.closes.length > 0, 'the close', timeoutMs)
    assert.equal(receiver.frames[0]?.kind, FrameKind.Close)
    assert.deepEqual(receiver.closes, [{ code: CloseCode.SessionUnknown, reason: 'stream answered HTTP 404', wasOpen: false }])
  })

  it('answers a malformed ack with 400', async () => {
    const response = await fetch(`${server.url}/comet/stream?sid=x&ack=-1`)
    assert.equal(response.status, 400)
    await response.arrayBuffer()
  })

  it(
    'carries upstream batches in POSTs and emits their piggybacked responses',
    async () => {
      const receiver = new Receiver()
      const transport = open(server, receiver)
      transports.push(transport)
      await waitFor(() => receiver.sid, 'the Hello', timeoutMs)
      const session = server.sessions.get(receiver.sid!)!
      const messages: Uint8Array[] = []
      session.on('message', (payload) => messages.push(payload))
      transport.send(encodeBatch([{ kind: FrameKind.Data, seq: 1, payload: new Uint8Array([42]) }]))
      transport.send(encodeBatch([{ kind: FrameKind.Data, seq: 2, payload: new Uint8Array([43]) }]))
      await waitFor(() => messages.length === 2 || receiver.closes.length > 0, 'both messages on the server', timeoutMs)
      assert.deepEqual(receiver.closes, [])
      assert.deepEqual(messages, [new Uint8Array([42]), new Uint8Array([43])])
      // The Ack comes back downstream (on the stream, or piggybacked).
      await waitFor(() => receiver.frames.some((frame) => frame.kind === FrameKind.Ack && frame.seq === 2), 'the Ack', timeoutMs)
      assert.deepEqual(receiver.closes, [])
    },
  )
})

describe('HTTP streaming transport behind a buffering proxy, or silent', () => {
  let server: StreamServer
  let proxy: http.Server
  let proxyUrl: string

  before(async () => {
    server = await startStreamServer({ heartbeatMs: 10_000, maxStreamMs: 60_000 })
    // A reverse proxy that buffers whole responses, as a misconfigured
    // nginx or a corporate proxy does: nothing reaches the client until the
    // upstream response ends.
    proxy = http.createServer((req, res) => {
      const upstream = http.request(`${server.url}${req.url}`, { method: req.method, headers: req.headers }, (upstreamRes) => {
        const chunks: Buffer[] = []
        upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk))
        upstreamRes.on('end', () => {
          res.writeHead(upstreamRes.statusCode ?? 502, { 'content-type': upstreamRes.headers['content-type'] ?? 'application/octet-stream' })
          res.end(Buffer.concat(chunks))
        })
        upstreamRes.on('error', () => res.destroy())
      })
      upstream.on('error', () => res.destroy())
      res.on('close', () => upstream.destroy())
      req.pipe(upstream)
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
  })
  after(async () => {
    proxy.closeAllConnections()
    await new Promise((resolve) => proxy.close(resolve))
    await server.stop()
  })

  it('closes with a "buffered" reason when not even the Hello gets through in time', async () => {
    const receiver = new Receiver()
    const started = Date.now()
    open({ url: proxyUrl }, receiver, { firstByteTimeoutMs: 300 })
    await waitFor(() => receiver.closes.length > 0, 'the buffered-stream close', timeoutMs)
    assert.equal(receiver.closes.length, 1)
    const [close] = receiver.closes
    assert.match(close!.reason, /buffered/)
    assert.equal(close!.code, CloseCode.Timeout)
    assert.equal(close!.wasOpen, false)
    assert.ok(Date.now() - started >= 290, 'not before firstByteTimeoutMs')
    assert.deepEqual(receiver.events, [])
    // The aborted request releases the server's stream too.
    await waitFor(() => server.created.length === 1 && !(server.created[0]!.currentTransport as ServerStreamTransport | null)?.isWaiting, 'the server stream closed', timeoutMs)
  })

  it('closes a stream that goes silent for three heartbeat periods as dead', async () => {
    const receiver = new Receiver()
    // The client expects heartbeats every 50 ms; this server sends them every 10 s.
    open(server, receiver, { heartbeatMs: 50 })
    await waitFor(() => receiver.sid, 'the Hello', timeoutMs)
    await waitFor(() => receiver.closes.length > 0, 'the dead-stream close', timeoutMs)
    const [close] = receiver.closes
    assert.equal(close!.code, CloseCode.Timeout)
    assert.match(close!.reason, /150 ms/)
    assert.doesNotMatch(close!.reason, /buffered/)
    assert.equal(close!.wasOpen, true)
  })
})
