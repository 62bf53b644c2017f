import { afterEach, beforeEach, describe, it, mock } from 'node:test'
import assert from 'node:assert/strict'
import { Observable } from '../../../../common/observable'
import { CloseCode } from '../../../../common/close-codes'
import * as limits from '../../../../common/limits'
import { decodeBatch, encodeBatch, FrameKind, type Frame } from '../../../../common/comet/frame'
import type { Handshake } from '../../../../common/comet/handshake'
import { Channel, transportMemoryKey, type ChannelOptions, type ChannelState, type ChannelTransportName, type TransportMemory } from '../../../../client/comet/channel'
import type { ClientTransport, ClientTransportEvents } from '../../../../client/comet/transport'

type Resume = { sid: string; ack: number } | null

/** A transport driven by hand: records what the channel sends, emits what the test feeds it. */
class FakeTransport extends Observable<ClientTransportEvents> implements ClientTransport {
  readonly sent: Uint8Array[] = []
  readonly closes: { code: number; reason: string }[] = []
  isClosed = false
  acksEveryRequest = false

  constructor(
    readonly resume: Resume,
    readonly name: ChannelTransportName = 'websocket',
  ) {
    super()
  }

  send(batch: Uint8Array): void {
    this.sent.push(batch)
  }

  close(code: number, reason: string): void {
    if (this.isClosed) return
    this.isClosed = true
    this.closes.push({ code, reason })
    this.emit('close', [code, reason, true])
  }

  /** The server sends `frames` in one batch. */
  deliver(...frames: Frame[]): void {
    this.emit('batch', [encodeBatch(frames)])
  }

  /** The transport opens and the server sends its handshake. */
  handshake(overrides: Partial<Handshake> = {}): void {
    this.emit('open', [])
    this.deliver({ kind: FrameKind.Hello, json: JSON.stringify({ ...baseHandshake, ...overrides }) })
  }

  /** The connection drops. */
  drop(): void {
    this.isClosed = true
    this.emit('close', [1006, 'connection lost', true])
  }

  /** The connection fails before it carried anything (refused, blocked by a proxy). */
  fail(code = 1006): void {
    this.isClosed = true
    this.emit('close', [code, 'connection failed', false])
  }

  frames(): Frame[] {
    return this.sent.flatMap((bytes) => decodeBatch(bytes, Number.MAX_SAFE_INTEGER))
  }

  batches(): Frame[][] {
    return this.sent.map((bytes) => decodeBatch(bytes, Number.MAX_SAFE_INTEGER))
  }
}

const baseHandshake: Handshake = {
  v: 1,
  sid: 'sid-1',
  resumed: false,
  ack: 0,
  transports: ['websocket'],
  pingIntervalMs: 60_000,
  pingTimeoutMs: 60_000,
  advice: { reconnect: 'retry', retryAfterMs: 0 },
}

const bytes = (...values: number[]) => new Uint8Array(values)
const data = (seq: number, ...payload: number[]): Frame => ({ kind: FrameKind.Data, seq, payload: bytes(...payload) })
const dataSeqs = (frames: Frame[]) => frames.flatMap((frame) => (frame.kind === FrameKind.Data ? [frame.seq] : []))

/** Let queued microtasks (the channel's flush) run. setImmediate is not mocked. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Longer than any reconnect delay with backoff { baseMs: 1, maxMs: 5 } and random () => 0. */
const reconnectDelayMs = 5

const channels: Channel[] = []

/** What kind of transport the fakes pretend to be. */
interface FakeKind {
  name?: ChannelTransportName
  acksEveryRequest?: boolean
}

function setup(options: Partial<ChannelOptions> = {}, kind: FakeKind = {}) {
  const transports: FakeTransport[] = []
  const channel = new Channel({
    url: 'ws://127.0.0.1:1/comet/ws',
    transport: ({ resume }) => {
      const transport = new FakeTransport(resume, kind.name)
      transport.acksEveryRequest = kind.acksEveryRequest ?? false
      transports.push(transport)
      return transport
    },
    backoff: { baseMs: 1, maxMs: 5 },
    random: () => 0,
    ...options,
  })
  channels.push(channel)
  const messages: number[][] = []
  const opens: { resumed: boolean; sid: string }[] = []
  const statuses: ChannelState[] = []
  const closes: { code: number; reason: string }[] = []
  channel.on('message', (payload) => messages.push([...payload]))
  channel.on('open', (info) => opens.push(info))
  channel.on('status', (status) => statuses.push(status.state))
  channel.on('close', (code, reason) => closes.push({ code, reason }))
  const current = (): FakeTransport => {
    const transport = transports.at(-1)
    assert.ok(transport, 'the channel opened a transport')
    return transport
  }
  return { channel, transports, current, messages, opens, statuses, closes }
}

function openChannel(options: Partial<ChannelOptions> = {}, handshake: Partial<Handshake> = {}, kind: FakeKind = {}) {
  const context = setup(options, kind)
  context.current().handshake(handshake)
  return context
}

beforeEach(() => {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 })
})

afterEach(() => {
  for (const channel of channels.splice(0)) channel.close('test over')
  mock.timers.reset()
})

describe('Channel opening', () => {
  it('opens one transport without a resume and starts in the connecting state', () => {
    const { channel, transports } = setup()
    assert.equal(transports.length, 1)
    assert.equal(transports[0]?.resume, null)
    assert.equal(channel.status.state, 'connecting')
    assert.equal(channel.sessionId, null)
  })

  it('emits open with resumed false and the session id on the first Hello', () => {
    const { channel, opens } = openChannel({}, { sid: 'first' })
    assert.deepEqual(opens, [{ resumed: false, sid: 'first' }])
    assert.deepEqual(channel.status, { state: 'open', transport: 'websocket' })
    assert.equal(channel.sessionId, 'first')
  })

  it('does not count the transport open event as the channel opening', () => {
    const { channel, current, opens } = setup()
    current().emit('open', [])
    assert.equal(channel.status.state, 'connecting')
    assert.deepEqual(opens, [])
  })

  it('drops a transport whose Hello is unreadable and connects again', () => {
    const { current, transports, opens } = setup()
    current().deliver({ kind: FrameKind.Hello, json: '{"v":2}' })
    assert.deepEqual(
      transports[0]?.closes.map((c) => c.code),
      [CloseCode.BadFrame],
    )
    assert.deepEqual(opens, [])
    mock.timers.tick(reconnectDelayMs)
    assert.equal(transports.length, 2)
  })

  it('gives up on a transport that sends no Hello within connectTimeoutMs and connects again', () => {
    const { transports } = setup({ connectTimeoutMs: 100 })
    mock.timers.tick(99)
    assert.equal(transports[0]?.closes.length, 0)
    mock.timers.tick(1)
    assert.deepEqual(
      transports[0]?.closes.map((c) => c.code),
      [CloseCode.Timeout],
    )
    mock.timers.tick(reconnectDelayMs)
    assert.equal(transports.length, 2)
  })
})

describe('Channel.send', () => {
  it('sends messages as Data frames numbered from 1, one batch per task', async () => {
    const { channel, current } = openChannel()
    channel.send(bytes(1))
    channel.send(bytes(2))
    assert.equal(current().sent.length, 0, 'nothing leaves before the microtask flush')
    await turn()
    channel.send(bytes(3))
    await turn()
    assert.deepEqual(current().batches(), [[data(1, 1), data(2, 2)], [data(3, 3)]])
    assert.equal(channel.unackedCount, 3)
  })

  it('queues messages sent before the Hello and sends them once the channel opens', async () => {
    const { channel, current } = setup()
    channel.send(bytes(1))
    channel.send(bytes(2))
    await turn()
    assert.equal(current().sent.length, 0, 'nothing is sent before the Hello')
    current().handshake()
    await turn()
    assert.deepEqual(current().frames(), [data(1, 1), data(2, 2)])
  })

  it('forgets messages the server acknowledged', async () => {
    const { channel, current } = openChannel()
    for (let i = 1; i <= 3; i++) channel.send(bytes(i))
    await turn()
    current().deliver({ kind: FrameKind.Ack, seq: 2 })
    assert.equal(channel.unackedCount, 1)
  })
})

describe('Channel inbound Data', () => {
  it('emits each message once, in order, and ignores repeated seqs', () => {
    const { current, messages } = openChannel()
    current().deliver(data(1, 1), data(2, 2))
    current().deliver(data(2, 2), data(1, 1), data(3, 3))
    assert.deepEqual(messages, [[1], [2], [3]])
  })

  it('acknowledges the highest seq received on its own only after ackDelayMs', async () => {
    const { current } = openChannel()
    current().deliver(data(1, 1), data(2, 2))
    await turn()
    assert.equal(current().sent.length, 0, 'no ack at once')
    mock.timers.tick(limits.ackDelayMs - 1)
    assert.equal(current().sent.length, 0)
    mock.timers.tick(1)
    assert.deepEqual(current().batches(), [[{ kind: FrameKind.Ack, seq: 2 }]])
  })

  it('acknowledges at once when ackEveryFrames frames wait', async () => {
    const { current } = openChannel()
    const frames = Array.from({ length: limits.ackEveryFrames }, (_, i) => data(i + 1, i))
    current().deliver(...frames)
    await turn()
    assert.deepEqual(current().batches(), [[{ kind: FrameKind.Ack, seq: limits.ackEveryFrames }]])
    mock.timers.tick(limits.ackDelayMs)
    assert.equal(current().sent.length, 1, 'the delayed ack was cancelled')
  })

  it('acks alone after a count of frames it draws between half of ackEveryFrames and all of it, anew after each ack', async () => {
    const draws = [0, 0.999999, 0.5]
    const { current } = openChannel({ random: () => draws.shift() ?? 0 })
    const firstAckAfter = async (): Promise<number> => {
      const before = current().sent.length
      for (let frames = 1; frames <= limits.ackEveryFrames; frames++) {
        const seq = received + 1
        received = seq
        current().deliver(data(seq, seq % 256))
        await turn()
        if (current().sent.length > before) return frames
      }
      return -1
    }
    let received = 0
    const half = limits.ackEveryFrames / 2
    assert.equal(await firstAckAfter(), half, 'the lowest draw: half of ackEveryFrames')
    assert.equal(await firstAckAfter(), limits.ackEveryFrames, 'the highest draw: all of it')
    assert.equal(await firstAckAfter(), half + Math.floor(0.5 * (half + 1)))
    assert.deepEqual(current().batches().at(-1), [{ kind: FrameKind.Ack, seq: received }])
  })

  it('sends no ack alone on a transport whose every request carries it, but still piggybacks one', async () => {
    const { channel, current } = openChannel({}, {}, { name: 'long-poll', acksEveryRequest: true })
    current().deliver(data(1, 1))
    mock.timers.tick(limits.ackDelayMs)
    await turn()
    assert.equal(current().sent.length, 0)
    current().deliver(data(2, 2))
    channel.send(bytes(7))
    await turn()
    assert.deepEqual(current().batches(), [[{ kind: FrameKind.Ack, seq: 2 }, data(1, 7)]])
  })

  it('over HTTP, keeps a frame that overtook an earlier one and applies both in order', () => {
    const { current, messages } = openChannel({}, {}, { name: 'long-poll' })
    current().deliver(data(1, 1))
    current().deliver(data(3, 3))
    assert.deepEqual(messages, [[1]], 'frame 3 waits for frame 2')
    current().deliver(data(2, 2), data(3, 3))
    assert.deepEqual(messages, [[1], [2], [3]])
    assert.equal(current().closes.length, 0, 'the session lives on')
  })

  it('piggybacks the Ack on Data sent in the same task', async () => {
    const { channel, current } = openChannel()
    current().deliver(data(1, 1))
    channel.send(bytes(7))
    await turn()
    assert.deepEqual(current().batches(), [[{ kind: FrameKind.Ack, seq: 1 }, data(1, 7)]])
  })

  it('ignores Data that arrives before the Hello', () => {
    const { current, messages } = setup()
    current().deliver(data(1, 1))
    assert.deepEqual(messages, [])
  })

  it('drops the session on a seq gap and reconnects without resuming', () => {
    const { current, transports, messages } = openChannel()
    current().deliver(data(1, 1), data(3, 3))
    assert.deepEqual(messages, [[1]])
    assert.deepEqual(
      transports[0]?.closes.map((c) => c.code),
      [CloseCode.BadFrame],
    )
    mock.timers.tick(reconnectDelayMs)
    assert.equal(transports.length, 2)
    assert.equal(transports[1]?.resume, null)
  })

  it('answers a Ping with a Pong carrying the same nonce', async () => {
    const { current } = openChannel()
    current().deliver({ kind: FrameKind.Ping, nonce: 99 })
    await turn()
    assert.deepEqual(current().frames(), [{ kind: FrameKind.Pong, nonce: 99 }])
  })
})

describe('Channel reconnection', () => {
  it('reconnects through the factory with a resume of its sid and last received seq', async () => {
    const { current, transports } = openChannel({}, { sid: 'keep-me' })
    current().deliver(data(1, 1), data(2, 2))
    await turn()
    current().drop()
    assert.equal(transports.length, 1, 'the reconnect waits for the backoff delay')
    mock.timers.tick(reconnectDelayMs)
    assert.equal(transports.length, 2)
    assert.deepEqual(transports[1]?.resume, { sid: 'keep-me', ack: 2 })
  })

  it('on a resumed Hello resends only the frames past the server acknowledgement', async () => {
    const { channel, current, transports, opens } = openChannel({}, { sid: 's' })
    for (let i = 1; i <= 3; i++) channel.send(bytes(i))
    await turn()
    current().drop()
    channel.send(bytes(4))
    mock.timers.tick(reconnectDelayMs)
    const next = transports[1]
    assert.ok(next)
    next.handshake({ sid: 's', resumed: true, ack: 1 })
    assert.deepEqual(opens.at(-1), { resumed: true, sid: 's' })
    await turn()
    assert.deepEqual(next.frames(), [data(2, 2), data(3, 3), data(4, 4)])
    assert.equal(channel.unackedCount, 3)
  })

  it('keeps receiving in order across a resume and ignores the server resending what it already has', async () => {
    const { current, transports, messages } = openChannel({}, { sid: 's' })
    current().deliver(data(1, 1))
    current().drop()
    mock.timers.tick(reconnectDelayMs)
    const next = transports[1]
    assert.ok(next)
    next.handshake({ sid: 's', resumed: true, ack: 0 })
    next.deliver(data(1, 1), data(2, 2))
    assert.deepEqual(messages, [[1], [2]])
  })

  it('on a Hello of a new session clears the outbox, restarts numbering and emits open with resumed false', async () => {
    const { channel, current, transports, opens, messages } = openChannel({}, { sid: 'old' })
    channel.send(bytes(1))
    channel.send(bytes(2))
    current().deliver(data(1, 1))
    await turn()
    current().drop()
    mock.timers.tick(reconnectDelayMs)
    const next = transports[1]
    assert.ok(next)
    next.handshake({ sid: 'new', resumed: false })
    assert.deepEqual(opens.at(-1), { resumed: false, sid: 'new' })
    assert.equal(channel.unackedCount, 0)
    assert.equal(channel.sessionId, 'new')
    await turn()
    assert.deepEqual(next.frames(), [], 'nothing of the old session is resent')
    channel.send(bytes(9))
    next.deliver(data(1, 5))
    assert.deepEqual(messages, [[1], [5]], 'the new session numbers server frames from 1 again')
    await turn()
    assert.deepEqual(next.frames(), [{ kind: FrameKind.Ack, seq: 1 }, data(1, 9)])
  })

  it('treats a Hello that claims resumed for another sid as a new session', async () => {
    const { channel, current, transports, opens } = openChannel({}, { sid: 'a' })
    channel.send(bytes(1))
    await turn()
    current().drop()
    mock.timers.tick(reconnectDelayMs)
    transports[1]?.handshake({ sid: 'b', resumed: true, ack: 0 })
    assert.deepEqual(opens.at(-1), { resumed: false, sid: 'b' })
    assert.equal(channel.unackedCount, 0)
  })

  it('goes connecting → open → reconnecting → open', () => {
    const { channel, current, transports, statuses } = setup()
    assert.equal(channel.status.state, 'connecting')
    current().handshake()
    current().drop()
    assert.equal(channel.status.state, 'reconnecting')
    mock.timers.tick(reconnectDelayMs)
    transports[1]?.handshake({ resumed: true })
    assert.deepEqual(statuses, ['open', 'reconnecting', 'open'])
  })

  it('drops a silent server after pingIntervalMs + pingTimeoutMs and reconnects', () => {
    const { transports } = openChannel({}, { pingIntervalMs: 1_000, pingTimeoutMs: 1_000 })
    mock.timers.tick(2_000)
    assert.equal(transports[0]?.closes.length, 0, 'not yet past the limit')
    mock.timers.tick(250)
    assert.deepEqual(
      transports[0]?.closes.map((c) => c.code),
      [CloseCode.Timeout],
    )
    mock.timers.tick(reconnectDelayMs)
    assert.equal(transports.length, 2)
  })

  it('starts a new session after a retryable Close frame from the server', () => {
    const { current, transports, closes } = openChannel({}, { sid: 's' })
    current().deliver({ kind: FrameKind.Close, code: CloseCode.ShuttingDown, reason: 'restart' })
    assert.deepEqual(closes, [])
    mock.timers.tick(reconnectDelayMs)
    assert.equal(transports.length, 2)
    assert.equal(transports[1]?.resume, null)
  })
})

describe('Channel ending', () => {
  it('ends for good on a Close frame with NotFound, without reconnecting', () => {
    const { channel, current, transports, closes } = openChannel()
    current().deliver({ kind: FrameKind.Close, code: CloseCode.NotFound, reason: 'no such session' })
    assert.deepEqual(closes, [{ code: CloseCode.NotFound, reason: 'no such session' }])
    assert.equal(channel.status.state, 'closed')
    assert.equal(transports[0]?.isClosed, true)
    mock.timers.runAll()
    assert.equal(transports.length, 1)
  })

  it('ends for good when the transport closes after Advice { reconnect: "none" }', () => {
    const { channel, current, transports, closes } = openChannel()
    current().deliver({ kind: FrameKind.Advice, json: JSON.stringify({ reconnect: 'none', retryAfterMs: 0 }) })
    assert.equal(channel.status.state, 'open', 'advice alone does not close')
    current().drop()
    assert.equal(channel.status.state, 'closed')
    assert.equal(closes.length, 1)
    mock.timers.runAll()
    assert.equal(transports.length, 1)
  })

  it('waits the advised retryAfterMs before reconnecting', () => {
    const { current, transports } = openChannel()
    current().deliver({ kind: FrameKind.Advice, json: JSON.stringify({ reconnect: 'retry', retryAfterMs: 1_000 }) })
    current().drop()
    mock.timers.tick(1_000)
    assert.equal(transports.length, 1)
    mock.timers.tick(reconnectDelayMs)
    assert.equal(transports.length, 2)
  })

  it('after Advice and Close 4429 in one batch, starts a new session no sooner than retryAfterMs', () => {
    const { channel, current, transports, closes } = openChannel({}, { sid: 's' })
    current().deliver(
      { kind: FrameKind.Advice, json: JSON.stringify({ reconnect: 'retry', retryAfterMs: 3_000 }) },
      { kind: FrameKind.Close, code: CloseCode.RateLimited, reason: 'more than 5 messages per second' },
    )
    assert.equal(channel.status.state, 'reconnecting')
    assert.deepEqual(closes, [], 'a rate limit is not the end of the channel')
    mock.timers.tick(2_999)
    assert.equal(transports.length, 1, 'no reconnect before retryAfterMs')
    mock.timers.tick(1 + reconnectDelayMs)
    assert.equal(transports.length, 2)
    assert.equal(transports[1]?.resume, null, 'the closed session is not resumed')
  })

  it('reconnectNow (the network came back) still waits for the advised retryAfterMs', () => {
    const { channel, current, transports } = openChannel()
    current().deliver(
      { kind: FrameKind.Advice, json: JSON.stringify({ reconnect: 'retry', retryAfterMs: 2_000 }) },
      { kind: FrameKind.Close, code: CloseCode.RateLimited, reason: 'too fast' },
    )
    mock.timers.tick(500)
    channel.reconnectNow()
    assert.equal(transports.length, 1, 'not at once')
    mock.timers.tick(1_499)
    assert.equal(transports.length, 1, 'not before retryAfterMs')
    mock.timers.tick(1)
    assert.equal(transports.length, 2, 'at retryAfterMs, without the backoff on top')
  })

  it('reconnectNow reconnects at once when no advice holds it back', () => {
    const { channel, current, transports } = openChannel()
    current().drop()
    assert.equal(transports.length, 1)
    channel.reconnectNow()
    assert.equal(transports.length, 2)
  })

  it('close() flushes, sends a Close frame, closes the transport and stops', async () => {
    const { channel, current, transports, closes, statuses } = openChannel()
    channel.send(bytes(1))
    channel.close('bye now')
    assert.deepEqual(current().batches(), [[data(1, 1)], [{ kind: FrameKind.Close, code: CloseCode.Normal, reason: 'bye now' }]])
    assert.deepEqual(current().closes, [{ code: CloseCode.Normal, reason: 'bye now' }])
    assert.deepEqual(closes, [{ code: CloseCode.Normal, reason: 'bye now' }])
    assert.equal(statuses.at(-1), 'closed')
    mock.timers.runAll()
    assert.equal(transports.length, 1)
    channel.send(bytes(2))
    await turn()
    assert.equal(current().sent.length, 2, 'send after close does nothing')
  })

  it('close() while connecting stops without sending anything', () => {
    const { channel, current, transports, closes } = setup()
    channel.close()
    assert.deepEqual(current().sent, [])
    assert.equal(current().isClosed, true)
    assert.equal(closes.length, 1)
    mock.timers.runAll()
    assert.equal(transports.length, 1)
  })
})

/** A Map standing in for localStorage. */
class MemoryStorage implements TransportMemory {
  readonly items = new Map<string, string>()
  getItem(key: string): string | null {
    return this.items.get(key) ?? null
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value)
  }
}

/** A channel with both transports faked: every attempt is recorded with the transport it used. */
function setupFallback(options: Partial<ChannelOptions> = {}) {
  const memory = new MemoryStorage()
  const attempts: FakeTransport[] = []
  const factory = (name: ChannelTransportName) => (context: { resume: Resume }) => {
    const transport = new FakeTransport(context.resume, name)
    attempts.push(transport)
    return transport
  }
  const channel = new Channel({
    url: 'ws://pad.example:8080/comet/ws',
    transportFactories: { websocket: factory('websocket'), stream: factory('stream'), 'long-poll': factory('long-poll') },
    // The WebSocket → long-polling rungs; the three-rung ladder has its own tests below.
    transports: ['websocket', 'long-poll'],
    memory,
    connectTimeoutMs: 100,
    backoff: { baseMs: 1, maxMs: 5 },
    random: () => 0,
    ...options,
  })
  channels.push(channel)
  const current = (): FakeTransport => {
    const transport = attempts.at(-1)
    assert.ok(transport, 'the channel opened a transport')
    return transport
  }
  const names = () => attempts.map((transport) => transport.name)
  return { channel, attempts, current, names, memory }
}

const memoryKey = transportMemoryKey('pad.example:8080')

describe('Channel transport fallback', () => {
  it('tries WebSocket first', () => {
    const { names, channel } = setupFallback()
    assert.deepEqual(names(), ['websocket'])
    assert.equal(channel.status.transport, null)
  })

  it('falls back to long-polling when WebSocket sends no handshake within connectTimeoutMs, and remembers it', () => {
    const { channel, current, attempts, names, memory } = setupFallback()
    mock.timers.tick(99)
    assert.deepEqual(names(), ['websocket'])
    mock.timers.tick(1)
    assert.deepEqual(
      attempts[0]?.closes.map((c) => c.code),
      [CloseCode.Timeout],
    )
    mock.timers.tick(reconnectDelayMs)
    assert.deepEqual(names(), ['websocket', 'long-poll'])
    assert.equal(memory.items.size, 0, 'nothing is remembered before long-polling proves itself')
    current().handshake({ sid: 'lp' })
    assert.deepEqual(channel.status, { state: 'open', transport: 'long-poll' })
    assert.equal(memory.getItem(memoryKey), 'long-poll')
  })

  it('falls back to long-polling when WebSocket closes before carrying a frame', () => {
    const { channel, current, names } = setupFallback()
    current().fail()
    mock.timers.tick(reconnectDelayMs)
    assert.deepEqual(names(), ['websocket', 'long-poll'])
    current().handshake()
    assert.equal(channel.status.transport, 'long-poll')
  })

  it('stays on long-polling once it worked: a later drop reconnects over long-polling and resumes', () => {
    const { current, attempts, names } = setupFallback()
    current().fail()
    mock.timers.tick(reconnectDelayMs)
    current().handshake({ sid: 'lp' })
    current().deliver(data(1, 1))
    current().drop()
    mock.timers.tick(reconnectDelayMs)
    current().fail()
    mock.timers.tick(reconnectDelayMs)
    assert.deepEqual(names(), ['websocket', 'long-poll', 'long-poll', 'long-poll'])
    assert.deepEqual(attempts[2]?.resume, { sid: 'lp', ack: 1 })
  })

  it('does not fall back when a WebSocket that worked drops: it reconnects over WebSocket, even if that attempt fails', async () => {
    const { channel, current, attempts, names, memory } = setupFallback()
    current().handshake({ sid: 'ws' })
    current().deliver(data(1, 1))
    await turn()
    current().drop()
    mock.timers.tick(reconnectDelayMs)
    assert.deepEqual(names(), ['websocket', 'websocket'])
    assert.deepEqual(attempts[1]?.resume, { sid: 'ws', ack: 1 })
    current().fail()
    mock.timers.tick(reconnectDelayMs)
    mock.timers.tick(100) // this attempt times out too
    mock.timers.tick(reconnectDelayMs)
    assert.deepEqual(names(), ['websocket', 'websocket', 'websocket', 'websocket'])
    current().handshake({ sid: 'ws', resumed: true, ack: 0 })
    assert.deepEqual(channel.status, { state: 'open', transport: 'websocket' })
    assert.equal(memory.items.size, 0)
  })

  it('tries WebSocket again when long-polling fails as well (the server is down, not WebSocket blocked)', () => {
    const { current, names, memory } = setupFallback()
    current().fail()
    mock.timers.tick(reconnectDelayMs)
    current().fail()
    mock.timers.tick(reconnectDelayMs)
    assert.deepEqual(names(), ['websocket', 'long-poll', 'websocket'])
    current().handshake()
    assert.equal(memory.items.size, 0)
  })

  it('falls back when the WebSocket transport cannot even be created', () => {
    const attempts: ChannelTransportName[] = []
    const channel = new Channel({
      url: 'ws://pad.example:8080/comet/ws',
      transportFactories: {
        websocket: () => {
          attempts.push('websocket')
          throw new Error('no WebSocket here')
        },
        'long-poll': ({ resume }) => {
          attempts.push('long-poll')
          return new FakeTransport(resume, 'long-poll')
        },
      },
      transports: ['websocket', 'long-poll'],
      memory: null,
      backoff: { baseMs: 1, maxMs: 5 },
      random: () => 0,
    })
    channels.push(channel)
    mock.timers.tick(reconnectDelayMs)
    assert.deepEqual(attempts, ['websocket', 'long-poll'])
  })

  it('starts with long-polling when WebSocket failed on this server before', () => {
    const memory = new MemoryStorage()
    memory.setItem(memoryKey, 'long-poll')
    const { names, current } = setupFallback({ memory })
    assert.deepEqual(names(), ['long-poll'])
    current().fail()
    mock.timers.tick(reconnectDelayMs)
    assert.deepEqual(names(), ['long-poll', 'long-poll'])
  })

  it('ignores what another server remembered, and storage that throws', () => {
    const other = new MemoryStorage()
    other.setItem(transportMemoryKey('elsewhere:80'), 'long-poll')
    assert.deepEqual(setupFallback({ memory: other }).names(), ['websocket'])
    const broken: TransportMemory = {
      getItem: () => {
        throw new Error('SecurityError')
      },
      setItem: () => {
        throw new Error('QuotaExceededError')
      },
    }
    const { current } = setupFallback({ memory: broken })
    current().fail()
    mock.timers.tick(reconnectDelayMs)
    assert.doesNotThrow(() => current().handshake())
  })

  it('never falls back with transports: ["websocket"]', () => {
    const { current, names } = setupFallback({ transports: ['websocket'] })
    current().fail()
    mock.timers.tick(reconnectDelayMs)
    assert.deepEqual(names(), ['websocket', 'websocket'])
  })

  it('uses only long-polling with transports: ["long-poll"]', () => {
    const { channel, current, names } = setupFallback({ transports: ['long-poll'] })
    assert.deepEqual(names(), ['long-poll'])
    current().handshake()
    assert.equal(channel.status.transport, 'long-poll')
  })

  it('never falls back with a single transport factory', () => {
    const { current, transports } = setup()
    current().fail()
    mock.timers.tick(reconnectDelayMs)
    assert.equal(transports.length, 2)
  })
})

describe('Channel over long-polling', () => {
  it('counts an empty poll answer (alive) as hearing from the server and allows for pollHoldMs', () => {
    const { current, attempts } = setupFallback({ transports: ['long-poll'] })
    current().handshake({ pingIntervalMs: 1_000, pingTimeoutMs: 1_000, pollHoldMs: 3_000 })
    mock.timers.tick(3_900)
    current().emit('alive', [])
    mock.timers.tick(3_900)
    assert.equal(attempts[0]?.closes.length, 0, 'alive at 3.9 s, then 3.9 s < pollHoldMs + pingTimeoutMs of silence')
    mock.timers.tick(1_100)
    assert.deepEqual(
      attempts[0]?.closes.map((c) => c.code),
      [CloseCode.Timeout],
    )
  })

  it('does not resume a session the transport reported unknown', () => {
    const { current, attempts } = setupFallback({ transports: ['long-poll'] })
    current().handshake({ sid: 'gone' })
    current().fail(CloseCode.SessionUnknown)
    mock.timers.tick(reconnectDelayMs)
    assert.equal(attempts[1]?.resume, null)
  })
})

describe('Channel fallback ladder: WebSocket → streaming → long-polling', () => {
  it('falls from WebSocket to streaming, and from a buffered stream to long-polling, remembering the last', () => {
    const { channel, current, names, memory } = setupFallback({ transports: ['websocket', 'stream', 'long-poll'] })
    current().fail()
    mock.timers.tick(reconnectDelayMs)
    assert.deepEqual(names(), ['websocket', 'stream'])
    current().fail() // a buffering proxy holds the stream back: it closes before its handshake
    mock.timers.tick(reconnectDelayMs)
    assert.deepEqual(names(), ['websocket', 'stream', 'long-poll'])
    current().handshake({ sid: 'lp' })
    assert.deepEqual(channel.status, { state: 'open', transport: 'long-poll' })
    assert.equal(memory.getItem(memoryKey), 'long-poll')
  })

  it('stays on streaming once it worked', () => {
    const { current, names, memory } = setupFallback({ transports: ['websocket', 'stream', 'long-poll'] })
    current().fail()
    mock.timers.tick(reconnectDelayMs)
    current().handshake({ sid: 's' })
    assert.equal(memory.getItem(memoryKey), 'stream')
    current().drop()
    mock.timers.tick(reconnectDelayMs)
    assert.deepEqual(names(), ['websocket', 'stream', 'stream'])
  })

  it('starts from the top again when every transport failed (the server is down)', () => {
    const { current, names } = setupFallback({ transports: ['websocket', 'stream', 'long-poll'] })
    for (let i = 0; i < 3; i++) {
      current().fail()
      mock.timers.tick(reconnectDelayMs * 4)
    }
    assert.deepEqual(names(), ['websocket', 'stream', 'long-poll', 'websocket'])
  })
})
