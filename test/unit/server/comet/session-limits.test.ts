import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CloseCode } from '../../../../common/close-codes'
import { decodeBatch, encodeBatch, FrameKind, type Frame } from '../../../../common/comet/frame'
import type { SessionId } from '../../../../common/ids'
import { Session, type SessionOptions } from '../../../../server/comet/session'
import type { ServerTransport, TransportReceiver } from '../../../../server/comet/transport'
import type { LimitName } from '../../../../server/util/limit-names'

class FakeTransport implements ServerTransport {
  readonly name = 'websocket' as const
  receiver: TransportReceiver | null = null
  bufferedBytes = 0
  readonly closes: { code: number; reason: string }[] = []
  readonly sent: Frame[][] = []
  aborted = false
  send(batch: Uint8Array): void {
    this.bufferedBytes += batch.length
    this.sent.push(decodeBatch(batch, Number.MAX_SAFE_INTEGER))
  }
  close(code: number, reason: string): void {
    this.closes.push({ code, reason })
  }
  abort(): void {
    this.aborted = true
  }
}

function setup(overrides: Partial<SessionOptions> = {}) {
  let now = 1_000_000
  const exceeded: LimitName[] = []
  const session = new Session('s' as SessionId, {
    pingIntervalMs: 1_000,
    pingTimeoutMs: 1_000,
    sessionGraceMs: 1_000,
    maxFrameBytes: 1 << 20,
    maxUnackedFrames: 100,
    transports: ['websocket'],
    now: () => now,
    onLimitExceeded: (limit) => exceeded.push(limit),
    ...overrides,
  })
  const transport = new FakeTransport()
  session.attach(transport, 0, false)
  const ended: { code: number; reason: string }[] = []
  session.on('close', (code, reason) => ended.push({ code, reason }))
  let seq = 0
  const deliver = () => transport.receiver?.receiveBatch(encodeBatch([{ kind: FrameKind.Data, seq: ++seq, payload: new Uint8Array([1]) }]))
  return { session, transport, ended, exceeded, deliver, advance: (ms: number) => (now += ms) }
}

describe('Session limits', () => {
  it('closes with 4429 past the message burst, refilled lazily from the clock', () => {
    const { transport, ended, exceeded, deliver, advance } = setup({ maxMessagesPerSecond: 5 })
    for (let i = 0; i < 10; i++) deliver()
    assert.equal(ended.length, 0)
    advance(200)
    deliver() // one token refilled after 200 ms at 5/s
    assert.equal(ended.length, 0)
    deliver()
    assert.equal(ended[0]?.code, CloseCode.RateLimited)
    assert.match(ended[0]!.reason, /5 messages per second/)
    assert.equal(transport.closes[0]?.code, CloseCode.RateLimited)
    assert.deepEqual(exceeded, ['messages_per_second'])
  })

  it('sends an Advice with the time the bucket needs to refill, in the same batch as the 4429 Close', () => {
    const { transport, ended, deliver } = setup({ maxMessagesPerSecond: 5 })
    for (let i = 0; i < 11; i++) deliver()
    assert.equal(ended[0]?.code, CloseCode.RateLimited)
    // After the Ack of the 10 accepted messages, which rides along.
    const last = transport.sent.at(-1)
    assert.deepEqual(last?.[0], { kind: FrameKind.Ack, seq: 10 })
    assert.deepEqual(last?.slice(1), [
      { kind: FrameKind.Advice, json: JSON.stringify({ reconnect: 'retry', retryAfterMs: 2_000 }) },
      { kind: FrameKind.Close, code: CloseCode.RateLimited, reason: 'more than 5 messages per second' },
    ])
  })

  it('closes with 4429 past the byte rate', () => {
    const { ended, exceeded, deliver } = setup({ maxBytesPerSecond: 20 })
    for (let i = 0; i < 20 && ended.length === 0; i++) deliver()
    assert.equal(ended[0]?.code, CloseCode.RateLimited)
    assert.deepEqual(exceeded, ['bytes_per_second'])
  })

  it('ends the session and aborts the transport when the client leaves too much unread', async () => {
    const { session, transport, ended, exceeded } = setup({ slowReaderBytes: 1_000 })
    session.send(new Uint8Array(500))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(session.state, 'attached')
    session.send(new Uint8Array(800))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(session.state, 'closed')
    assert.equal(ended[0]?.code, CloseCode.SlowReader)
    assert.equal(transport.aborted, true)
    assert.equal(transport.closes[0]?.code, CloseCode.SlowReader)
    assert.deepEqual(exceeded, ['slow_reader'])
  })

  it('lets polls that acknowledge new frames or follow a paced answer through free, and closes with 4429 and an Advice past the poll burst', async () => {
    const { session, transport, ended, exceeded, advance } = setup({ maxPollsPerSecond: 2 })
    for (let i = 0; i < 10; i++) session.send(new Uint8Array([i]))
    await new Promise((resolve) => setImmediate(resolve))
    for (let ack = 1; ack <= 10; ack++) assert.equal(session.admitPoll(ack), true, `a poll acknowledging frame ${ack} is free`)
    for (let i = 0; i < 4; i++) assert.equal(session.admitPoll(10), true, `repeated poll ${i} is within the burst of 4`)
    advance(500)
    assert.equal(session.admitPoll(10), true, 'one token refilled after 500 ms at 2/s')
    for (let i = 0; i < 5; i++) assert.equal(session.admitPoll(10, true), true, 'a poll after a paced answer is free')
    assert.equal(ended.length, 0)
    assert.equal(session.admitPoll(10), false)
    assert.equal(ended[0]?.code, CloseCode.RateLimited)
    assert.match(ended[0]!.reason, /2 polls per second/)
    assert.deepEqual(exceeded, ['polls_per_second'])
    assert.deepEqual(session.advice, { reconnect: 'retry', retryAfterMs: 2_000 })
    assert.deepEqual(transport.sent.at(-1)?.map((frame) => frame.kind).slice(-2), [FrameKind.Advice, FrameKind.Close])
    assert.equal(session.admitPoll(11), false, 'a closed session admits nothing')
  })

  it('enforces nothing when the limits are off (the default)', async () => {
    const { session, ended, deliver } = setup()
    for (let i = 0; i < 1_000; i++) deliver()
    for (let i = 0; i < 1_000; i++) assert.equal(session.admitPoll(0), true)
    for (let i = 0; i < 50; i++) session.send(new Uint8Array(100_000))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(ended.length, 0)
  })
})
