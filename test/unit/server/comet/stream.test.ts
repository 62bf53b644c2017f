/**
 * The server's HTTP streaming transport with a fake response and a fake
 * clock driving its shared ticker by hand: records, queueing while no
 * stream is open, heartbeats, lifetimes, supersession, close, and a real
 * Session resending over a reopened stream.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type { ServerResponse } from 'node:http'
import { CloseCode } from '../../../../common/close-codes'
import { decodeBatch, encodeBatch, FrameKind, type Frame } from '../../../../common/comet/frame'
import { parseHandshake } from '../../../../common/comet/handshake'
import type { SessionId } from '../../../../common/ids'
import { RecordReader } from '../../../../client/comet/transports/stream'
import { Session } from '../../../../server/comet/session'
import { StreamTicker, StreamTransport } from '../../../../server/comet/transports/stream'

/** The parts of a ServerResponse the transport uses, recording what it writes. */
class FakeResponse extends EventEmitter {
  readonly written: Uint8Array[] = []
  writableEnded = false
  destroyed = false
  writableLength = 0

  write(chunk: Uint8Array): boolean {
    assert.equal(this.writableEnded, false, 'write after end')
    this.written.push(chunk)
    return true
  }

  end(): void {
    this.writableEnded = true
    // Node emits 'close' after 'finish', asynchronously; at once is the harder case.
    this.emit('close')
  }

  /** The client went away. */
  abort(): void {
    this.destroyed = true
    this.emit('close')
  }

  /** Every record written so far (zero-length ones are heartbeats). */
  records(): Uint8Array[] {
    const reader = new RecordReader()
    const records = this.written.flatMap((chunk) => reader.push(chunk))
    assert.equal(reader.isMidRecord, false)
    return records
  }

  /** Every frame written so far, in order. */
  frames(): Frame[] {
    return this.records().flatMap((record) => (record.length > 0 ? decodeBatch(record, Number.MAX_SAFE_INTEGER) : []))
  }

  get asResponse(): ServerResponse {
    return this as unknown as ServerResponse
  }
}

class FakeClock {
  ms = 1_000_000
  readonly now = (): number => this.ms
}

const heartbeatMs = 100
const maxStreamMs = 1_000

function setup() {
  const clock = new FakeClock()
  const ticker = new StreamTicker({ now: clock.now, intervalMs: 60_000 })
  const transport = new StreamTransport({ ticker, heartbeatMs, maxStreamMs })
  /** Advance the clock and run the shared ticker once, as its timer would. */
  const advance = (ms: number) => {
    clock.ms += ms
    ticker.tick()
  }
  return { clock, ticker, transport, advance }
}

const ping = (nonce: number) => encodeBatch([{ kind: FrameKind.Ping, nonce }])

describe('server StreamTransport', () => {
  it('writes what queued while no stream was open as the first record, then each batch as its own record', () => {
    const { transport } = setup()
    transport.send(ping(1))
    transport.send(ping(2))
    assert.equal(transport.isWaiting, false)
    assert.equal(transport.bufferedBytes, 4)
    const res = new FakeResponse()
    transport.openStream(res.asResponse)
    assert.equal(transport.isWaiting, true)
    transport.send(ping(3))
    assert.deepEqual(res.records(), [new Uint8Array([...ping(1), ...ping(2)]), ping(3)])
    // Nothing left to piggyback: the stream took it all.
    assert.equal(transport.takeQueued(), null)
    transport.close(CloseCode.Normal, 'bye')
  })

  it('writes a heartbeat at once when a stream opens with nothing queued', () => {
    const { transport } = setup()
    const res = new FakeResponse()
    transport.openStream(res.asResponse)
    assert.deepEqual(res.written, [new Uint8Array([0])])
    transport.close(CloseCode.Normal, 'bye')
  })

  it('heartbeats an idle stream every heartbeatMs, and only when nothing else was written', () => {
    const { transport, advance } = setup()
    const res = new FakeResponse()
    transport.openStream(res.asResponse)
    advance(heartbeatMs - 1)
    assert.equal(res.records().length, 1, 'not idle long enough yet')
    advance(1)
    assert.equal(res.records().length, 2)
    advance(heartbeatMs / 2)
    transport.send(ping(1))
    advance(heartbeatMs / 2)
    assert.equal(res.records().length, 3, 'the batch reset the idle time: no heartbeat')
    advance(heartbeatMs / 2)
    assert.deepEqual(
      res.records().map((record) => record.length),
      [0, 0, ping(1).length, 0],
    )
    transport.close(CloseCode.Normal, 'bye')
  })

  it('runs one shared timer for every open stream, and none when no stream is open', () => {
    const clock = new FakeClock()
    const ticker = new StreamTicker({ now: clock.now, intervalMs: 60_000 })
    const transports = Array.from({ length: 3 }, () => new StreamTransport({ ticker, heartbeatMs, maxStreamMs }))
    assert.equal(ticker.isRunning, false)
    const responses = transports.map((transport) => {
      const res = new FakeResponse()
      transport.openStream(res.asResponse)
      return res
    })
    assert.equal(ticker.size, 3)
    assert.equal(ticker.isRunning, true)
    clock.ms += heartbeatMs
    ticker.tick()
    for (const res of responses) assert.equal(res.records().length, 2, 'every stream heartbeats on the one tick')
    responses[0]!.abort()
    transports[1]!.close(CloseCode.Normal, 'bye')
    assert.equal(ticker.size, 1)
    transports[2]!.close(CloseCode.Normal, 'bye')
    assert.equal(ticker.size, 0)
    assert.equal(ticker.isRunning, false)
  })

  it('ends the stream after maxStreamMs and queues for the next one, keeping the transport', () => {
    const { transport, advance } = setup()
    const closes: unknown[] = []
    transport.receiver = { receiveBatch: () => {}, transportClosed: (...args) => closes.push(args) }
    const res = new FakeResponse()
    transport.openStream(res.asResponse)
    for (let t = 0; t < maxStreamMs; t += heartbeatMs) advance(heartbeatMs)
    assert.equal(res.writableEnded, true)
    assert.equal(transport.isWaiting, false)
    assert.equal(transport.closed, false)
    assert.deepEqual(closes, [])
    // Meanwhile batches queue: a POST may piggyback them...
    transport.send(ping(1))
    assert.deepEqual(transport.takeQueued(), ping(1))
    // ...or the next stream takes them.
    transport.send(ping(2))
    const next = new FakeResponse()
    transport.openStream(next.asResponse)
    assert.deepEqual(next.records(), [ping(2)])
    transport.close(CloseCode.Normal, 'bye')
  })

  it('marks the stream closed when the client goes away, and stays attached', () => {
    const { transport, ticker } = setup()
    const res = new FakeResponse()
    transport.openStream(res.asResponse)
    res.abort()
    assert.equal(transport.isWaiting, false)
    assert.equal(transport.closed, false)
    assert.equal(ticker.size, 0)
    transport.send(ping(1))
    assert.equal(res.written.length, 1, 'nothing written to the dropped response')
    assert.equal(transport.bufferedBytes, ping(1).length)
  })

  it('reports the open response\'s writableLength as bufferedBytes', () => {
    const { transport } = setup()
    const res = new FakeResponse()
    transport.openStream(res.asResponse)
    res.writableLength = 12345
    assert.equal(transport.bufferedBytes, 12345)
    transport.close(CloseCode.Normal, 'bye')
  })

  it('lets a newer stream supersede an open one', () => {
    const { transport } = setup()
    const first = new FakeResponse()
    transport.openStream(first.asResponse)
    const second = new FakeResponse()
    transport.openStream(second.asResponse)
    assert.equal(first.writableEnded, true)
    assert.equal(transport.isWaiting, true, "the old response's close does not end the new stream")
    transport.send(ping(1))
    assert.deepEqual(second.records().at(-1), ping(1))
    assert.equal(first.records().length, 1)
    transport.close(CloseCode.Normal, 'bye')
  })

  it('ends the stream on close, after what was written before, and says whether the close was clean', () => {
    for (const [code, isClean] of [
      [CloseCode.Normal, true],
      [CloseCode.GoingAway, true],
      [CloseCode.Timeout, false],
    ] as const) {
      const { transport } = setup()
      const res = new FakeResponse()
      transport.openStream(res.asResponse)
      const closes: unknown[] = []
      transport.receiver = { receiveBatch: () => {}, transportClosed: (...args) => closes.push(args) }
      transport.send(encodeBatch([{ kind: FrameKind.Close, code, reason: 'why' }]))
      transport.close(code, 'why')
      transport.close(code, 'again')
      assert.equal(res.writableEnded, true)
      assert.equal(res.frames().at(-1)?.kind, FrameKind.Close)
      assert.deepEqual(closes, [[code, 'why', isClean]])
      transport.send(ping(9))
      assert.equal(transport.takeQueued(), null, 'a closed transport takes nothing')
    }
  })

  it('reports upstream batches handed to receive, until closed', () => {
    const { transport } = setup()
    const got: Uint8Array[] = []
    transport.receiver = { receiveBatch: (bytes) => got.push(bytes), transportClosed: () => {} }
    transport.receive(ping(1))
    transport.close(CloseCode.Normal, 'bye')
    transport.receive(ping(2))
    assert.deepEqual(got, [ping(1)])
  })

  it('carries a Session: Hello first, and unacknowledged frames again on a reopened stream', async () => {
    const { transport } = setup()
    const session = new Session('s1' as SessionId, {
      pingIntervalMs: 1_000,
      pingTimeoutMs: 1_000,
      sessionGraceMs: 1_000,
      maxFrameBytes: 1024,
      maxUnackedFrames: 100,
      transports: ['websocket', 'stream', 'long-poll'],
    })
    const first = new FakeResponse()
    transport.openStream(first.asResponse)
    session.attach(transport, 0, false)
    session.send(new Uint8Array([1]))
    session.send(new Uint8Array([2]))
    await new Promise((resolve) => setImmediate(resolve))
    const frames = first.frames()
    assert.equal(frames[0]?.kind, FrameKind.Hello)
    const handshake = parseHandshake((frames[0] as { json: string }).json)
    assert.equal(handshake?.sid, 's1')
    assert.deepEqual(
      frames.slice(1).map((frame) => (frame.kind === FrameKind.Data ? frame.seq : -1)),
      [1, 2],
    )
    // The stream ends (lifetime or drop); the client reopens with ack=1.
    first.abort()
    const second = new FakeResponse()
    transport.openStream(second.asResponse)
    session.resume(1)
    await new Promise((resolve) => setImmediate(resolve))
    const resent = second.frames().filter((frame) => frame.kind === FrameKind.Data)
    assert.deepEqual(
      resent.map((frame) => (frame.kind === FrameKind.Data ? frame.seq : -1)),
      [2],
    )
    assert.equal(session.unackedCount, 1)
    session.close(CloseCode.Normal, 'done')
    assert.equal(second.writableEnded, true)
    assert.equal(second.frames().at(-1)?.kind, FrameKind.Close)
  })
})
