import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CloseCode } from '../../../../common/close-codes'
import { decodeBatch, encodeBatch, FrameKind, type Frame } from '../../../../common/comet/frame'
import { parseHandshake, type Handshake } from '../../../../common/comet/handshake'
import type { SessionId } from '../../../../common/ids'
import { Session, type SessionOptions } from '../../../../server/comet/session'
import type { ServerTransport, TransportReceiver } from '../../../../server/comet/transport'

/** A transport driven by hand: records what the session sends, reports what the test feeds it. */
class FakeTransport implements ServerTransport {
  readonly name = 'websocket' as const
  receiver: TransportReceiver | null = null
  readonly bufferedBytes = 0
  readonly sent: Uint8Array[] = []
  readonly closes: { code: number; reason: string }[] = []
  private isClosed = false

  send(batch: Uint8Array): void {
    this.sent.push(batch)
  }

  close(code: number, reason: string): void {
    this.closes.push({ code, reason })
    if (this.isClosed) return
    this.isClosed = true
    this.receiver?.transportClosed(code, reason, code === CloseCode.Normal)
  }

  /** The client sends `frames` in one batch. */
  deliver(...frames: Frame[]): void {
    this.receiver?.receiveBatch(encodeBatch(frames))
  }

  /** The connection drops without a goodbye. */
  drop(): void {
    this.isClosed = true
    this.receiver?.transportClosed(1006, 'connection lost', false)
  }

  /** Every batch sent so far, decoded. */
  batches(): Frame[][] {
    return this.sent.map((bytes) => decodeBatch(bytes, Number.MAX_SAFE_INTEGER))
  }

  /** Every frame sent so far, in order. */
  frames(): Frame[] {
    return this.batches().flat()
  }
}

class FakeClock {
  ms = 1_000_000
  readonly now = (): number => this.ms
  advance(ms: number): void {
    this.ms += ms
  }
}

const pingIntervalMs = 1_000
const pingTimeoutMs = 500
const sessionGraceMs = 2_000

function setup(overrides: Partial<SessionOptions> = {}) {
  const clock = new FakeClock()
  const session = new Session('session-under-test' as SessionId, {
    pingIntervalMs,
    pingTimeoutMs,
    sessionGraceMs,
    maxFrameBytes: 64,
    maxUnackedFrames: 8,
    transports: ['websocket', 'long-poll'],
    now: clock.now,
    ...overrides,
  })
  const messages: number[][] = []
  const closes: { code: number; reason: string }[] = []
  session.on('message', (payload) => messages.push([...payload]))
  session.on('close', (code, reason) => closes.push({ code, reason }))
  return { session, clock, messages, closes }
}

function attached(overrides: Partial<SessionOptions> = {}) {
  const context = setup(overrides)
  const transport = new FakeTransport()
  context.session.attach(transport, 0, false)
  return { ...context, transport }
}

/** Let the session flush: it sends at most once per event-loop turn, from setImmediate. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

const bytes = (...values: number[]) => new Uint8Array(values)
const data = (seq: number, ...payload: number[]): Frame => ({ kind: FrameKind.Data, seq, payload: bytes(...payload) })

function helloOf(frame: Frame | undefined): Handshake {
  assert.equal(frame?.kind, FrameKind.Hello, `expected a Hello frame, got ${JSON.stringify(frame)}`)
  const handshake = parseHandshake(frame.kind === FrameKind.Hello ? frame.json : '')
  assert.ok(handshake, 'the Hello frame holds a readable handshake')
  return handshake
}

function dataSeqs(frames: Frame[]): number[] {
  return frames.flatMap((frame) => (frame.kind === FrameKind.Data ? [frame.seq] : []))
}

describe('Session.attach', () => {
  it('sends the Hello handshake as the first and only frame of a fresh session', () => {
    const { session, transport } = attached()
    assert.equal(session.state, 'attached')
    assert.equal(transport.sent.length, 1)
    const batch = transport.batches()[0]
    assert.equal(batch?.length, 1)
    const hello = helloOf(batch?.[0])
    assert.equal(hello.sid, 'session-under-test')
    assert.equal(hello.resumed, false)
    assert.equal(hello.ack, 0)
    assert.deepEqual(hello.transports, ['websocket', 'long-poll'])
    assert.equal(hello.pingIntervalMs, pingIntervalMs)
    assert.equal(hello.pingTimeoutMs, pingTimeoutMs)
    assert.deepEqual(hello.advice, { reconnect: 'retry', retryAfterMs: 0 })
  })

  it('emits attach with the transport and reports its name', () => {
    const { session } = setup()
    const transport = new FakeTransport()
    const attachedTransports: ServerTransport[] = []
    session.on('attach', (t) => attachedTransports.push(t))
    assert.equal(session.transportName, null)
    session.attach(transport, 0, false)
    assert.deepEqual(attachedTransports, [transport])
    assert.equal(session.transportName, 'websocket')
  })

  it('says resumed and acknowledges the client data received so far in the Hello of a resume', async () => {
    const { session, transport } = attached()
    transport.deliver(data(1, 10), data(2, 20))
    transport.drop()
    const next = new FakeTransport()
    session.attach(next, 0, true)
    const hello = helloOf(next.frames()[0])
    assert.equal(hello.resumed, true)
    assert.equal(hello.ack, 2)
    await turn()
  })

  it('throws a RangeError when the client acknowledges a frame that was never sent', () => {
    const { session } = setup()
    assert.throws(() => session.attach(new FakeTransport(), 1, true), RangeError)
    assert.equal(session.state, 'detached')
  })

  it('throws a RangeError when the acknowledgement passes the last sent frame of a live session', async () => {
    const { session, transport } = attached()
    session.send(bytes(1))
    session.send(bytes(2))
    transport.drop()
    assert.throws(() => session.attach(new FakeTransport(), 3, true), RangeError)
    const next = new FakeTransport()
    session.attach(next, 2, true)
    assert.equal(session.state, 'attached')
    await turn()
  })

  it('closes the previous transport with Replaced when a second transport attaches', async () => {
    const { session, transport, messages, closes } = attached()
    const next = new FakeTransport()
    session.attach(next, 0, true)
    assert.deepEqual(
      transport.closes.map((c) => c.code),
      [CloseCode.Replaced],
    )
    assert.equal(session.state, 'attached')
    assert.deepEqual(closes, [], 'replacing a transport does not end the session')
    // The replaced transport no longer feeds the session.
    transport.deliver(data(1, 9))
    assert.deepEqual(messages, [])
    next.deliver(data(1, 7))
    assert.deepEqual(messages, [[7]])
    await turn()
  })

  it('refuses to attach to a closed session', () => {
    const { session } = attached()
    session.close(CloseCode.Normal, 'done')
    assert.throws(() => session.attach(new FakeTransport(), 0, true), /closed/)
  })
})

describe('Session.send', () => {
  it('sends nothing until the end of the event-loop turn', async () => {
    const { session, transport } = attached()
    session.send(bytes(1))
    assert.equal(transport.sent.length, 1, 'only the Hello so far')
    await turn()
    assert.equal(transport.sent.length, 2)
  })

  it('sends the messages of one turn as Data frames numbered from 1 in one batch', async () => {
    const { session, transport } = attached()
    session.send(bytes(1))
    session.send(bytes(2))
    session.send(bytes(3))
    await turn()
    assert.deepEqual(transport.batches().slice(1), [[data(1, 1), data(2, 2), data(3, 3)]])
  })

  it('sends a later turn in its own batch, continuing the numbering', async () => {
    const { session, transport } = attached()
    session.send(bytes(1))
    await turn()
    session.send(bytes(2))
    session.send(bytes(3))
    await turn()
    assert.deepEqual(transport.batches().slice(1), [[data(1, 1)], [data(2, 2), data(3, 3)]])
  })

  it('keeps every sent frame as unacknowledged until the client acknowledges it', async () => {
    const { session } = attached()
    session.send(bytes(1))
    session.send(bytes(2))
    assert.equal(session.unackedCount, 2)
    await turn()
  })

  it('keeps messages sent while detached and sends them after the Hello of the next attach', async () => {
    const { session, transport } = attached()
    transport.drop()
    session.send(bytes(5))
    await turn()
    assert.equal(transport.sent.length, 1, 'nothing goes to a dropped transport')
    const next = new FakeTransport()
    session.attach(next, 0, true)
    assert.deepEqual(next.batches()[0]?.slice(1), [data(1, 5)])
  })

  it('does nothing once the session is closed', async () => {
    const { session, transport } = attached()
    session.close(CloseCode.Normal, 'bye')
    const sentBefore = transport.sent.length
    session.send(bytes(1))
    await turn()
    assert.equal(transport.sent.length, sentBefore)
    assert.equal(session.unackedCount, 0)
  })
})

describe('Session inbound Data', () => {
  it('emits each Data payload once, in order', () => {
    const { transport, messages } = attached()
    transport.deliver(data(1, 1), data(2, 2))
    transport.deliver(data(3, 3))
    assert.deepEqual(messages, [[1], [2], [3]])
  })

  it('ignores a Data frame whose seq was already applied (a retried send)', async () => {
    const { session, transport, messages } = attached()
    transport.deliver(data(1, 1), data(2, 2))
    transport.deliver(data(2, 2), data(1, 1))
    transport.deliver(data(2, 2), data(3, 3))
    assert.deepEqual(messages, [[1], [2], [3]])
    assert.equal(session.state, 'attached')
    await turn()
  })

  it('closes with BadFrame when a Data frame skips a seq', async () => {
    const { session, transport, messages, closes } = attached()
    transport.deliver(data(1, 1), data(3, 3))
    assert.deepEqual(messages, [[1]])
    assert.equal(session.state, 'closed')
    assert.deepEqual(
      closes.map((c) => c.code),
      [CloseCode.BadFrame],
    )
    assert.deepEqual(
      transport.closes.map((c) => c.code),
      [CloseCode.BadFrame],
    )
    const last = transport.frames().at(-1)
    assert.equal(last?.kind, FrameKind.Close)
    assert.equal(last.kind === FrameKind.Close && last.code, CloseCode.BadFrame)
    await turn()
  })

  it('acknowledges received Data alone only on the next liveness tick, not at once', async () => {
    const { session, transport } = attached()
    transport.deliver(data(1, 1), data(2, 2))
    await turn()
    assert.equal(transport.sent.length, 1, 'only the Hello: a lone Ack waits')
    session.tick()
    assert.deepEqual(transport.batches()[1], [{ kind: FrameKind.Ack, seq: 2 }])
  })

  it('piggybacks the Ack on the Data going out in the same turn', async () => {
    const { session, transport } = attached()
    transport.deliver(data(1, 1))
    session.send(bytes(9))
    await turn()
    assert.deepEqual(transport.batches().slice(1), [[{ kind: FrameKind.Ack, seq: 1 }, data(1, 9)]])
  })

  it('sends no Ack when nothing new arrived', async () => {
    const { session, transport } = attached()
    transport.deliver(data(1, 1))
    await turn()
    session.tick()
    transport.deliver(data(1, 1))
    await turn()
    session.tick()
    assert.equal(transport.sent.length, 2, 'the Hello and one Ack')
  })

  it('stops reading a batch after the frame that closed the session', () => {
    const { transport, messages } = attached()
    transport.deliver({ kind: FrameKind.Close, code: CloseCode.Normal, reason: 'bye' }, data(1, 1))
    assert.deepEqual(messages, [])
  })
})

describe('Session inbound control frames', () => {
  it('drops acknowledged frames from the outbox', async () => {
    const { session, transport } = attached()
    for (let i = 1; i <= 4; i++) session.send(bytes(i))
    await turn()
    transport.deliver({ kind: FrameKind.Ack, seq: 3 })
    assert.equal(session.unackedCount, 1)
    transport.deliver({ kind: FrameKind.Ack, seq: 4 })
    assert.equal(session.unackedCount, 0)
  })

  it('ignores an acknowledgement older than one already received', async () => {
    const { session, transport } = attached()
    for (let i = 1; i <= 3; i++) session.send(bytes(i))
    await turn()
    transport.deliver({ kind: FrameKind.Ack, seq: 2 })
    transport.deliver({ kind: FrameKind.Ack, seq: 1 })
    assert.equal(session.unackedCount, 1)
    assert.equal(session.state, 'attached')
  })

  it('closes with BadFrame when the client acknowledges a frame never sent', async () => {
    const { session, transport, closes } = attached()
    session.send(bytes(1))
    await turn()
    transport.deliver({ kind: FrameKind.Ack, seq: 2 })
    assert.equal(session.state, 'closed')
    assert.deepEqual(
      closes.map((c) => c.code),
      [CloseCode.BadFrame],
    )
  })

  it('answers a Ping with a Pong carrying the same nonce', async () => {
    const { transport } = attached()
    transport.deliver({ kind: FrameKind.Ping, nonce: 4242 })
    await turn()
    assert.deepEqual(transport.batches()[1], [{ kind: FrameKind.Pong, nonce: 4242 }])
  })

  it('closes the session normally, with the client reason, on a Close frame', () => {
    const { session, transport, closes } = attached()
    transport.deliver({ kind: FrameKind.Close, code: CloseCode.Normal, reason: 'tab closed' })
    assert.equal(session.state, 'closed')
    assert.deepEqual(closes, [{ code: CloseCode.Normal, reason: 'tab closed' }])
  })

  for (const frame of [
    { kind: FrameKind.Hello, json: '{}' },
    { kind: FrameKind.Advice, json: '{"reconnect":"none"}' },
  ] satisfies Frame[]) {
    it(`closes with BadFrame when the client sends a server-only frame (kind ${frame.kind})`, () => {
      const { session, transport, closes } = attached()
      transport.deliver(frame)
      assert.equal(session.state, 'closed')
      assert.deepEqual(
        closes.map((c) => c.code),
        [CloseCode.BadFrame],
      )
      assert.deepEqual(
        transport.closes.map((c) => c.code),
        [CloseCode.BadFrame],
      )
    })
  }
})

describe('Session on malformed or oversized batches', () => {
  it('closes with BadFrame on a batch that does not decode', () => {
    const { session, transport, closes, messages } = attached()
    // A good Data frame followed by garbage: the batch is refused whole.
    transport.receiver?.receiveBatch(new Uint8Array([...encodeBatch([data(1, 1)]), 99]))
    assert.equal(session.state, 'closed')
    assert.deepEqual(messages, [])
    assert.deepEqual(
      closes.map((c) => c.code),
      [CloseCode.BadFrame],
    )
    const last = transport.frames().at(-1)
    assert.equal(last?.kind === FrameKind.Close && last.code, CloseCode.BadFrame)
  })

  it('closes with BadFrame on an empty batch', () => {
    const { session, transport, closes } = attached()
    transport.receiver?.receiveBatch(new Uint8Array())
    assert.equal(session.state, 'closed')
    assert.deepEqual(
      closes.map((c) => c.code),
      [CloseCode.BadFrame],
    )
  })

  it('closes with TooLarge on a Data payload over maxFrameBytes', () => {
    const { session, transport, closes, messages } = attached({ maxFrameBytes: 4 })
    transport.deliver(data(1, 1, 2, 3, 4, 5))
    assert.equal(session.state, 'closed')
    assert.deepEqual(messages, [])
    assert.deepEqual(
      closes.map((c) => c.code),
      [CloseCode.TooLarge],
    )
    assert.deepEqual(
      transport.closes.map((c) => c.code),
      [CloseCode.TooLarge],
    )
  })

  it('accepts a Data payload of exactly maxFrameBytes', async () => {
    const { session, transport, messages } = attached({ maxFrameBytes: 4 })
    transport.deliver(data(1, 1, 2, 3, 4))
    assert.deepEqual(messages, [[1, 2, 3, 4]])
    assert.equal(session.state, 'attached')
    await turn()
  })
})

describe('Session after a transport ends', () => {
  it('becomes detached, not closed, when the transport drops', () => {
    const { session, transport, closes } = attached()
    transport.drop()
    assert.equal(session.state, 'detached')
    assert.equal(session.transportName, null)
    assert.deepEqual(closes, [])
  })

  it('resends exactly the unacknowledged frames right after the Hello of a resume', async () => {
    const { session, transport } = attached()
    for (let i = 1; i <= 3; i++) session.send(bytes(i))
    await turn()
    transport.drop()
    session.send(bytes(4))
    session.send(bytes(5))
    const next = new FakeTransport()
    session.attach(next, 2, true)
    const [first] = next.batches()
    assert.equal(first?.[0]?.kind, FrameKind.Hello)
    assert.deepEqual(first?.slice(1), [data(3, 3), data(4, 4), data(5, 5)])
    assert.equal(session.unackedCount, 3)
    await turn()
    assert.deepEqual(dataSeqs(next.frames()), [3, 4, 5], 'no frame is sent twice')
  })

  it('does not send Data queued for a replaced transport a second time', async () => {
    const { session, transport } = attached()
    session.send(bytes(1))
    const next = new FakeTransport()
    session.attach(next, 0, true)
    session.send(bytes(2))
    await turn()
    assert.deepEqual(dataSeqs(transport.frames()), [])
    assert.deepEqual(dataSeqs(next.frames()), [1, 2])
  })

  it('ignores batches from a transport that dropped', async () => {
    const { transport, messages } = attached()
    transport.drop()
    transport.deliver(data(1, 1))
    assert.deepEqual(messages, [])
  })

  it('closes the session and emits close on a clean transport close', async () => {
    const { session, transport, closes } = attached()
    session.send(bytes(1))
    transport.receiver?.transportClosed(CloseCode.Normal, 'bye', true)
    assert.equal(session.state, 'closed')
    assert.deepEqual(closes, [{ code: CloseCode.Normal, reason: 'bye' }])
    assert.equal(session.unackedCount, 0)
    await turn()
    assert.deepEqual(dataSeqs(transport.frames()), [], 'nothing is sent after the close')
  })

  it('names the close code as the reason when a clean close gives none', () => {
    const { transport, closes } = attached()
    transport.receiver?.transportClosed(CloseCode.GoingAway, '', true)
    assert.deepEqual(closes, [{ code: CloseCode.GoingAway, reason: 'GoingAway' }])
  })
})

describe('Session.close', () => {
  it('sends pending frames and then the Close frame in one batch, and closes the transport', () => {
    const { session, transport, closes } = attached()
    session.send(bytes(1))
    session.close(CloseCode.ShuttingDown, 'restarting')
    assert.deepEqual(transport.batches().slice(1), [[data(1, 1), { kind: FrameKind.Close, code: CloseCode.ShuttingDown, reason: 'restarting' }]])
    assert.deepEqual(transport.closes, [{ code: CloseCode.ShuttingDown, reason: 'restarting' }])
    assert.deepEqual(closes, [{ code: CloseCode.ShuttingDown, reason: 'restarting' }])
  })

  it('emits close only once when called twice', () => {
    const { session, closes } = attached()
    session.close(CloseCode.Normal, 'a')
    session.close(CloseCode.Normal, 'b')
    assert.equal(closes.length, 1)
  })

  it('closes a detached session without a transport', () => {
    const { session, closes } = setup()
    session.close(CloseCode.Normal, 'bye')
    assert.equal(session.state, 'closed')
    assert.deepEqual(closes, [{ code: CloseCode.Normal, reason: 'bye' }])
  })
})

describe('Session.setAdvice', () => {
  it('sends an Advice frame now and puts the advice in later handshakes', async () => {
    const { session, transport } = attached()
    session.setAdvice({ reconnect: 'handshake', retryAfterMs: 3000 })
    await turn()
    assert.deepEqual(transport.batches()[1], [{ kind: FrameKind.Advice, json: JSON.stringify({ reconnect: 'handshake', retryAfterMs: 3000 }) }])
    const next = new FakeTransport()
    session.attach(next, 0, true)
    assert.deepEqual(helloOf(next.frames()[0]).advice, { reconnect: 'handshake', retryAfterMs: 3000 })
  })
})

describe('Session.tick', () => {
  it('does nothing while the client was heard from within pingIntervalMs', async () => {
    const { session, transport, clock } = attached()
    clock.advance(pingIntervalMs - 1)
    session.tick()
    await turn()
    assert.equal(transport.sent.length, 1)
  })

  it('sends a Ping after pingIntervalMs of silence, and not again within the next interval', async () => {
    const { session, transport, clock } = attached()
    clock.advance(pingIntervalMs)
    session.tick()
    await turn()
    assert.deepEqual(transport.batches()[1], [{ kind: FrameKind.Ping, nonce: 1 }])
    clock.advance(pingTimeoutMs - 1)
    session.tick()
    await turn()
    assert.equal(transport.sent.length, 2, 'no second Ping yet')
    assert.equal(session.state, 'attached')
  })

  it('counts any inbound batch as a sign of life', async () => {
    const { session, transport, clock } = attached()
    clock.advance(pingIntervalMs + pingTimeoutMs - 1)
    transport.deliver({ kind: FrameKind.Pong, nonce: 0 })
    clock.advance(pingIntervalMs - 1)
    session.tick()
    await turn()
    assert.equal(session.state, 'attached')
    assert.equal(transport.sent.length, 1, 'no Ping to a client heard from recently')
  })

  it('drops the transport with Timeout after pingIntervalMs + pingTimeoutMs of silence and detaches', async () => {
    const { session, transport, clock, closes } = attached()
    clock.advance(pingIntervalMs)
    session.tick()
    await turn()
    clock.advance(pingTimeoutMs)
    session.tick()
    assert.equal(session.state, 'detached')
    assert.deepEqual(
      transport.closes.map((c) => c.code),
      [CloseCode.Timeout],
    )
    assert.deepEqual(closes, [], 'the session waits for a resume')
  })

  it('keeps a detached session until sessionGraceMs has passed, then closes it with Timeout', () => {
    const { session, transport, clock, closes } = attached()
    transport.drop()
    clock.advance(sessionGraceMs - 1)
    session.tick()
    assert.equal(session.state, 'detached')
    clock.advance(1)
    session.tick()
    assert.equal(session.state, 'closed')
    assert.deepEqual(
      closes.map((c) => c.code),
      [CloseCode.Timeout],
    )
  })

  it('counts the grace period of a timed-out session from the timeout', async () => {
    const { session, clock, closes } = attached()
    clock.advance(pingIntervalMs + pingTimeoutMs)
    session.tick()
    assert.equal(session.state, 'detached')
    clock.advance(sessionGraceMs - 1)
    session.tick()
    assert.equal(session.state, 'detached')
    clock.advance(1)
    session.tick()
    assert.deepEqual(
      closes.map((c) => c.code),
      [CloseCode.Timeout],
    )
  })

  it('lets a client resume within the grace period', () => {
    const { session, transport, clock } = attached()
    transport.drop()
    clock.advance(sessionGraceMs - 1)
    session.attach(new FakeTransport(), 0, true)
    clock.advance(1)
    session.tick()
    assert.equal(session.state, 'attached')
  })
})

describe('Session resend window', () => {
  it('closes with ResendWindowExceeded when more than maxUnackedFrames await acknowledgement', async () => {
    const { session, transport, closes } = attached({ maxUnackedFrames: 3 })
    for (let i = 1; i <= 3; i++) session.send(bytes(i))
    assert.equal(session.state, 'attached')
    session.send(bytes(4))
    assert.equal(session.state, 'closed')
    assert.deepEqual(
      closes.map((c) => c.code),
      [CloseCode.ResendWindowExceeded],
    )
    const frames = transport.frames()
    assert.deepEqual(dataSeqs(frames), [1, 2, 3])
    const last = frames.at(-1)
    assert.equal(last?.kind === FrameKind.Close && last.code, CloseCode.ResendWindowExceeded)
  })

  it('lets acknowledgements make room in the window', async () => {
    const { session, transport } = attached({ maxUnackedFrames: 3 })
    for (let i = 1; i <= 3; i++) session.send(bytes(i))
    await turn()
    transport.deliver({ kind: FrameKind.Ack, seq: 3 })
    for (let i = 4; i <= 6; i++) session.send(bytes(i))
    assert.equal(session.state, 'attached')
    await turn()
  })
})
