import { afterEach, beforeEach, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { CloseCode } from '../../../../common/close-codes'
import { decodeBatch, encodeBatch, FrameKind, type Frame } from '../../../../common/comet/frame'
import type { ClientTransportEvents, TransportContext } from '../../../../client/comet/transport'
import { AbnormalClosure, ackAfter, helloParam, LongPollTransport, type LongPollTransportOptions } from '../../../../client/comet/transports/long-poll'
import { endpointUrl } from '../../../../client/comet/transports/uploader'

/** One request the fake server received; the test decides when and how it is answered. */
interface Exchange {
  /** Order of arrival among all requests. */
  index: number
  kind: 'poll' | 'send'
  method: string
  query: URLSearchParams
  headers: http.IncomingHttpHeaders
  body: Uint8Array
  /** Resolves when the client goes away before an answer (an aborted fetch). */
  aborted: Promise<void>
  reply(status: number, body?: Uint8Array): void
  /** Cut the connection without an answer: a network error for the client. */
  cut(): void
}

/**
 * A tiny Comet long-poll server on 127.0.0.1:0: records every request and
 * hands it to the test, which answers (or holds) it by hand.
 */
class FakeServer {
  readonly exchanges: Exchange[] = []
  private readonly waiting: Exchange[] = []
  /** Pending `next` calls; each takes a matching request and says whether it did. */
  private readonly takers: ((exchange: Exchange) => boolean)[] = []
  private openSends = 0
  /** Most POSTs open at the same time. */
  maxConcurrentSends = 0
  private readonly server = http.createServer((req, res) => void this.onRequest(req, res))
  baseUrl = ''

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  /** The next request not yet taken, waiting for it if need be. */
  next(kind?: 'poll' | 'send'): Promise<Exchange> {
    const found = this.waiting.findIndex((exchange) => !kind || exchange.kind === kind)
    if (found >= 0) return Promise.resolve(this.waiting.splice(found, 1)[0]!)
    return new Promise((resolve) => {
      this.takers.push((exchange) => {
        if (kind && exchange.kind !== kind) return false
        resolve(exchange)
        return true
      })
    })
  }

  count(kind: 'poll' | 'send'): number {
    return this.exchanges.filter((exchange) => exchange.kind === kind).length
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x')
    const kind = url.pathname === '/comet/poll' ? 'poll' : 'send'
    if (kind === 'send') {
      this.openSends++
      this.maxConcurrentSends = Math.max(this.maxConcurrentSends, this.openSends)
    }
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    let isDone = false
    const done = () => {
      if (isDone) return
      isDone = true
      if (kind === 'send') this.openSends--
    }
    const aborted = new Promise<void>((resolve) =>
      res.on('close', () => {
        if (!res.writableFinished) resolve()
        done()
      }),
    )
    const exchange: Exchange = {
      index: this.exchanges.length,
      kind,
      method: req.method ?? '',
      query: url.searchParams,
      headers: req.headers,
      body: new Uint8Array(Buffer.concat(chunks)),
      aborted,
      reply(status, body = new Uint8Array()) {
        done()
        res.writeHead(status, { 'Content-Type': 'application/octet-stream', 'Cache-Control': 'no-store' })
        res.end(body)
      },
      cut() {
        done()
        res.socket?.destroy()
      },
    }
    this.exchanges.push(exchange)
    for (let i = 0; i < this.takers.length; i++) {
      if (this.takers[i]!(exchange)) {
        this.takers.splice(i, 1)
        return
      }
    }
    this.waiting.push(exchange)
  }
}

const hello = (sid: string, resumed = false): Frame => ({
  kind: FrameKind.Hello,
  json: JSON.stringify({ v: 1, sid, resumed, ack: 0, transports: ['long-poll'], pingIntervalMs: 15_000, pingTimeoutMs: 10_000, advice: { reconnect: 'retry', retryAfterMs: 0 } }),
})
const data = (seq: number, ...payload: number[]): Frame => ({ kind: FrameKind.Data, seq, payload: new Uint8Array(payload) })
const batch = (...frames: Frame[]) => encodeBatch(frames)

type Event = { type: 'open' } | { type: 'batch'; frames: Frame[] } | { type: 'alive' } | { type: 'close'; code: number; reason: string; wasOpen: boolean }

let server: FakeServer
const transports: LongPollTransport[] = []

beforeEach(async () => {
  server = new FakeServer()
  await server.start()
})

afterEach(async () => {
  for (const transport of transports.splice(0)) transport.close(CloseCode.GoingAway, 'test over')
  await server.stop()
})

/**
 * A transport with a stand-in for the channel: like the channel it takes
 * the sid from the Hello and the ack from the Data frames synchronously,
 * while the transport emits the batch.
 */
function connect(options: Partial<LongPollTransportOptions> & { resume?: TransportContext['resume'] } = {}) {
  const session = { sid: null as string | null, ack: 0 }
  const context: TransportContext = {
    resume: options.resume ?? null,
    sessionId: () => session.sid,
    lastReceivedSeq: () => session.ack,
  }
  const transport = new LongPollTransport({ baseUrl: server.baseUrl, context, sendRetryDelayMs: 1, ...options })
  transports.push(transport)
  const events: Event[] = []
  transport.on('open', () => events.push({ type: 'open' }))
  transport.on('alive', () => events.push({ type: 'alive' }))
  transport.on('close', (code, reason, wasOpen) => events.push({ type: 'close', code, reason, wasOpen }))
  transport.on('batch', (bytes) => {
    const frames = decodeBatch(bytes, Number.MAX_SAFE_INTEGER)
    events.push({ type: 'batch', frames })
    for (const frame of frames) {
      if (frame.kind === FrameKind.Hello) session.sid = (JSON.parse(frame.json) as { sid: string }).sid
      if (frame.kind === FrameKind.Data) session.ack = frame.seq
    }
  })
  const types = () => events.map((event) => event.type)
  return { transport, events, types, session }
}

/** Resolve with the arguments of the transport's next `event`. */
function next<K extends keyof ClientTransportEvents>(transport: LongPollTransport, event: K): Promise<Parameters<ClientTransportEvents[K]>> {
  return new Promise((resolve) => transport.once(event, ((...args: Parameters<ClientTransportEvents[K]>) => resolve(args)) as ClientTransportEvents[K]))
}

/** Open a session S1: answer the first poll with its Hello; returns the held second poll. */
async function openSession(options: Parameters<typeof connect>[0] = {}) {
  const client = connect(options)
  const first = await server.next('poll')
  first.reply(200, batch(hello('S1')))
  const held = await server.next('poll')
  return { ...client, first, held }
}

describe('LongPollTransport polling', () => {
  it('starts a session with a bare poll, then polls with the sid of the Hello and the ack of the Data received', async () => {
    const { transport, events, types } = connect()
    const first = await server.next('poll')
    assert.equal(first.method, 'GET')
    assert.equal(first.query.toString(), '', 'a new session names no sid')
    first.reply(200, batch(hello('S1')))

    const second = await server.next('poll')
    assert.deepEqual(types(), ['open', 'batch'])
    assert.equal(second.query.get('sid'), 'S1')
    assert.equal(second.query.get('ack'), '0')
    second.reply(200, batch(data(1, 7), data(2, 8)))

    const third = await server.next('poll')
    assert.deepEqual(events.at(-1), { type: 'batch', frames: [data(1, 7), data(2, 8)] })
    assert.equal(third.query.get('ack'), '2')
    // A held poll that times out is answered empty: proof of life, no batch.
    third.reply(200)

    const fourth = await server.next('poll')
    assert.deepEqual(types(), ['open', 'batch', 'batch', 'alive'])
    assert.equal(fourth.query.get('sid'), 'S1')
    assert.equal(fourth.query.get('ack'), '2')
    assert.equal(transport.name, 'long-poll')
  })

  it('sends the next poll before handing a batch on, acknowledging the Data in it', async () => {
    const log: string[] = []
    const loggingFetch: typeof fetch = (input, init) => {
      if ((init?.method ?? 'GET') === 'GET') log.push(`poll ack=${new URL(String(input)).searchParams.get('ack')}`)
      return globalThis.fetch(input, init)
    }
    const { transport } = connect({ fetch: loggingFetch })
    transport.on('batch', () => log.push('batch'))
    ;(await server.next('poll')).reply(200, batch(hello('S1')))
    ;(await server.next('poll')).reply(200, batch(data(1, 7), data(2, 8)))
    await server.next('poll')
    // The Hello is read before the next poll (it names the session); after
    // that each poll leaves first, while the application takes the batch.
    assert.deepEqual(log, ['poll ack=null', 'batch', 'poll ack=0', 'poll ack=2', 'batch'])
  })

  it('resumes with the sid and ack the channel asks for, asking for a Hello on the first poll only', async () => {
    connect({ resume: { sid: 'S0', ack: 5 } })
    const first = await server.next('poll')
    assert.equal(first.query.get('sid'), 'S0')
    assert.equal(first.query.get('ack'), '5')
    assert.equal(first.query.get(helloParam), '1')
    first.reply(200, batch(hello('S0', true), data(6, 6)))
    const second = await server.next('poll')
    assert.equal(second.query.get('sid'), 'S0')
    assert.equal(second.query.get('ack'), '6')
    assert.equal(second.query.get(helloParam), null)
  })

  it('gives the session up when a resume is answered without a Hello, instead of polling in a hot loop', async () => {
    const { transport, events } = connect({ resume: { sid: 'S0', ack: 1 } })
    const closed = next(transport, 'close')
    ;(await server.next('poll')).reply(200, batch(data(2, 2)))
    const [code, , wasOpen] = await closed
    assert.equal(code, CloseCode.SessionUnknown)
    assert.equal(wasOpen, false)
    assert.deepEqual(
      events.map((event) => event.type),
      ['close'],
    )
    assert.equal(server.count('poll'), 1)
  })

  it('close() aborts the held poll at once and emits close once', async () => {
    const { transport, events, held } = await openSession()
    const closed = next(transport, 'close')
    transport.close(CloseCode.Timeout, 'server silent')
    transport.close(CloseCode.Normal, 'again')
    assert.deepEqual(await closed, [CloseCode.Timeout, 'server silent', true])
    await held.aborted
    assert.equal(events.filter((event) => event.type === 'close').length, 1)
    assert.equal(server.count('poll'), 2, 'no poll after close')
  })

  it('on a 404 emits the Close 4002 batch for the channel, then stops polling', async () => {
    const { transport, events } = connect({ resume: { sid: 'gone', ack: 3 } })
    const closed = next(transport, 'close')
    const first = await server.next('poll')
    first.reply(404, batch({ kind: FrameKind.Close, code: CloseCode.SessionUnknown, reason: 'unknown session' }))
    const [code, , wasOpen] = await closed
    assert.deepEqual(events[0], { type: 'batch', frames: [{ kind: FrameKind.Close, code: CloseCode.SessionUnknown, reason: 'unknown session' }] })
    assert.equal(code, CloseCode.SessionUnknown)
    assert.equal(wasOpen, false)
    assert.equal(server.count('poll'), 1)
  })

  it('closes when a poll answers 500', async () => {
    const { transport, held } = await openSession()
    const closed = next(transport, 'close')
    held.reply(500)
    const [code, reason, wasOpen] = await closed
    assert.equal(code, CloseCode.InternalError)
    assert.match(reason, /HTTP 500/)
    assert.equal(wasOpen, true)
  })

  it('closes with 1006 when a poll fails on the network', async () => {
    const { transport, held } = await openSession()
    const closed = next(transport, 'close')
    held.cut()
    const [code, reason] = await closed
    assert.equal(code, AbnormalClosure)
    assert.match(reason, /poll failed/)
  })

  it('closes when the first answer carries no Hello', async () => {
    const { transport } = connect()
    const closed = next(transport, 'close')
    ;(await server.next('poll')).reply(200)
    const [code] = await closed
    assert.equal(code, CloseCode.BadFrame)
  })
})

describe('LongPollTransport sending', () => {
  it('waits for the Hello before sending, then POSTs to /comet/send with the sid', async () => {
    const { transport } = connect()
    transport.send(batch(data(1, 1)))
    const first = await server.next('poll')
    first.reply(200, batch(hello('S1')))
    const post = await server.next('send')
    assert.ok(post.index > first.index, 'the POST left after the Hello arrived')
    assert.equal(post.method, 'POST')
    assert.equal(post.query.get('sid'), 'S1')
    assert.equal(post.headers['content-type'], 'application/octet-stream')
    assert.deepEqual(post.body, batch(data(1, 1)))
  })

  it('sends one POST at a time, in order, concatenating what was sent meanwhile', async () => {
    const { transport, events, types } = await openSession()
    transport.send(batch(data(1, 1)))
    const first = await server.next('send')
    transport.send(batch(data(2, 2)))
    transport.send(batch({ kind: FrameKind.Ack, seq: 4 }, data(3, 3)))
    // The piggybacked answer is a batch for the channel.
    first.reply(200, batch({ kind: FrameKind.Ack, seq: 1 }))
    const second = await server.next('send')
    assert.deepEqual(decodeBatch(second.body, Number.MAX_SAFE_INTEGER), [data(2, 2), { kind: FrameKind.Ack, seq: 4 }, data(3, 3)])
    assert.deepEqual(events.at(-1), { type: 'batch', frames: [{ kind: FrameKind.Ack, seq: 1 }] })
    const alive = next(transport, 'alive')
    second.reply(204)
    await alive
    assert.deepEqual(types(), ['open', 'batch', 'batch', 'alive'])
    assert.equal(server.maxConcurrentSends, 1)
    assert.equal(server.count('send'), 2)
  })

  it('retries a POST that failed on the network with the same bytes, and then carries on', async () => {
    const { transport, events } = await openSession()
    transport.send(batch(data(1, 1)))
    const first = await server.next('send')
    first.cut()
    const retry = await server.next('send')
    assert.deepEqual(retry.body, first.body)
    transport.send(batch(data(2, 2)))
    retry.reply(204)
    const after = await server.next('send')
    assert.deepEqual(after.body, batch(data(2, 2)))
    assert.ok(!events.some((event) => event.type === 'close'))
  })

  it('retries a POST answered 503', async () => {
    const { transport } = await openSession()
    transport.send(batch(data(1, 1)))
    ;(await server.next('send')).reply(503)
    const retry = await server.next('send')
    assert.deepEqual(retry.body, batch(data(1, 1)))
  })

  it('closes with 1006 once the retries are spent, so the channel reconnects and resends', async () => {
    const { transport, held } = await openSession({ sendRetries: 2 })
    const closed = next(transport, 'close')
    transport.send(batch(data(1, 1)))
    for (let i = 0; i < 3; i++) (await server.next('send')).cut()
    const [code, reason, wasOpen] = await closed
    assert.equal(code, AbnormalClosure)
    assert.match(reason, /send failed 3 times/)
    assert.equal(wasOpen, true)
    await held.aborted
    assert.equal(server.count('send'), 3)
  })

  it('on a 404 answer to a POST emits the Close frame and closes', async () => {
    const { transport, events } = await openSession()
    const closed = next(transport, 'close')
    transport.send(batch(data(1, 1)))
    ;(await server.next('send')).reply(404, batch({ kind: FrameKind.Close, code: CloseCode.SessionUnknown, reason: 'unknown session' }))
    const [code] = await closed
    assert.equal(code, CloseCode.SessionUnknown)
    assert.deepEqual(events.at(-2), { type: 'batch', frames: [{ kind: FrameKind.Close, code: CloseCode.SessionUnknown, reason: 'unknown session' }] })
  })

  it('on a 409 (the session is not on long-polling right now) closes without handing the Close frame to the channel', async () => {
    const { transport, events } = await openSession()
    const closed = next(transport, 'close')
    transport.send(batch(data(1, 1)))
    ;(await server.next('send')).reply(409, batch({ kind: FrameKind.Close, code: CloseCode.Replaced, reason: 'poll to resume' }))
    const [code] = await closed
    assert.equal(code, CloseCode.Replaced)
    assert.deepEqual(
      events.map((event) => event.type),
      ['open', 'batch', 'close'],
    )
  })

  it('a normal close still delivers the goodbye queued behind the POST in flight, silently', async () => {
    const { transport, types, held } = await openSession()
    transport.send(batch(data(1, 1)))
    const first = await server.next('send')
    const goodbye = batch({ kind: FrameKind.Close, code: CloseCode.Normal, reason: 'bye' })
    transport.send(goodbye)
    transport.close(CloseCode.Normal, 'bye')
    await held.aborted
    first.reply(200, batch({ kind: FrameKind.Ack, seq: 1 }))
    const last = await server.next('send')
    assert.deepEqual(last.body, goodbye)
    last.reply(204)
    assert.deepEqual(types(), ['open', 'batch', 'close'], 'nothing is emitted after close')
  })

  it('an abnormal close aborts the POST in flight and drops what is queued', async () => {
    const { transport } = await openSession()
    transport.send(batch(data(1, 1)))
    const first = await server.next('send')
    transport.send(batch(data(2, 2)))
    transport.close(CloseCode.Timeout, 'server silent')
    await first.aborted
    transport.send(batch(data(3, 3)))
    assert.equal(server.count('send'), 1)
  })
})

describe('ackAfter', () => {
  it('advances the ack over the Data frames that continue it', () => {
    assert.equal(ackAfter(batch(data(4, 1), data(5, 2)), 3), 5)
    assert.equal(ackAfter(batch({ kind: FrameKind.Ack, seq: 9 }, data(4, 1), { kind: FrameKind.Pong, nonce: 1 }), 3), 4)
  })

  it('skips Data it already has and stops at a gap', () => {
    assert.equal(ackAfter(batch(data(2, 1), data(3, 1), data(4, 1)), 3), 4)
    assert.equal(ackAfter(batch(data(4, 1), data(6, 1), data(7, 1)), 3), 4)
  })

  it('leaves the ack as it is for an empty or undecodable batch', () => {
    assert.equal(ackAfter(new Uint8Array(), 3), 3)
    assert.equal(ackAfter(new Uint8Array([FrameKind.Data, 4, 9]), 3), 3)
  })
})

describe('endpointUrl', () => {
  it('appends the parameters as an encoded query string', () => {
    const url = endpointUrl('https://pad.example/base', '/comet/poll', { sid: 'a b&c=d', ack: '12', [helloParam]: '1' })
    assert.equal(url, 'https://pad.example/base/comet/poll?sid=a+b%26c%3Dd&ack=12&hello=1')
    const parsed = new URL(url)
    assert.equal(parsed.searchParams.get('sid'), 'a b&c=d')
    assert.equal(parsed.searchParams.get('ack'), '12')
  })

  it('leaves out the query when there are no parameters', () => {
    assert.equal(endpointUrl('http://127.0.0.1:3000', '/comet/poll', {}), 'http://127.0.0.1:3000/comet/poll')
  })
})
