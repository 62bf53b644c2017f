/**
 * The Comet transport conformance suite: the same tests run against a real
 * server for every client transport — WebSocket, HTTP streaming and HTTP
 * long-polling (STYLE §G, like Hono's `runTest({ newRouter })`). Each
 * channel is pinned to one transport, so a fallback cannot hide a failure.
 *
 * Messages are numbered: a payload is a 4-byte big-endian counter, and the
 * server's echo is that counter behind a two-byte prefix. The server's
 * ChannelRouter also sees every payload and answers each with a document
 * Error (409, "join first"); those replies never start with the prefix (a
 * document message starts with its address length, here 0) and are ignored.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Channel } from '../../client/comet/channel'
import { startServer, type TestServer } from '../helpers/start-server'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy'
import { waitFor } from '../helpers/wait-for'

/** Where and how a channel connects; all optional. */
export interface ConnectOptions {
  /** `http://host:port` to connect through instead of the server's own url (a proxy). */
  httpUrl?: string
  /** fetch for the HTTP transports (tests count requests with it). */
  fetch?: typeof fetch
}

/** One transport under test. */
export interface TransportSuiteOptions {
  name: 'websocket' | 'stream' | 'long-poll'
  /** A new channel to `server` using exactly the transport `name`. */
  connect: (server: TestServer, options?: ConnectOptions) => Channel
}

/** Server timings short enough for tests to see pings, drops and expiry. */
export const shortTimings = { pingIntervalMs: 1_000, pingTimeoutMs: 1_000, sessionGraceMs: 3_000, pollHoldMs: 2_000 }

/** First bytes of every numbered message the server sends (echoes included). */
export const serverPrefix = Uint8Array.of(0xec, 0x40)

/** The payload of message `n`: `n` as 4 bytes, big-endian. */
export function numbered(n: number): Uint8Array {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setUint32(0, n)
  return bytes
}

/** Message `n` from the server: the prefix, then the counter. */
export function serverNumbered(n: number): Uint8Array {
  const bytes = new Uint8Array(serverPrefix.length + 4)
  bytes.set(serverPrefix, 0)
  bytes.set(numbered(n), serverPrefix.length)
  return bytes
}

/** The counter of a client payload, or null when it is not a numbered message. */
export function readNumbered(payload: Uint8Array): number | null {
  if (payload.length !== 4) return null
  return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0)
}

/** The counter of a server message, or null when it is not one of ours. */
export function readServerNumbered(payload: Uint8Array): number | null {
  if (payload.length !== serverPrefix.length + 4 || payload[0] !== serverPrefix[0] || payload[1] !== serverPrefix[1]) return null
  return readNumbered(payload.subarray(serverPrefix.length))
}

/** `[from, from + 1, …, to]`. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}

/**
 * Records, per session id, every numbered message each server session
 * received, in order, and (when `echo`) sends each straight back with the
 * server prefix. Counts the sessions created.
 */
export function recordNumbered(server: TestServer, { echo }: { echo: boolean }): { receivedBy(sid: string | null): number[]; readonly created: number } {
  const received = new Map<string, number[]>()
  let created = 0
  server.sessions.on('session', (session) => {
    created++
    const list: number[] = []
    received.set(session.id, list)
    session.on('message', (payload) => {
      const n = readNumbered(payload)
      if (n === null) return
      list.push(n)
      if (echo) session.send(serverNumbered(n))
    })
  })
  return {
    receivedBy: (sid) => (sid === null ? [] : (received.get(sid) ?? [])),
    get created() {
      return created
    },
  }
}

/** Every numbered server message a channel receives from now on, in order. */
export function collectServerNumbered(channel: Channel): number[] {
  const got: number[] = []
  channel.on('message', (payload) => {
    const n = readServerNumbered(payload)
    if (n !== null) got.push(n)
  })
  return got
}

/**
 * Send messages `from`..`to` in chunks of `chunk`, one chunk per task,
 * keeping at most `window` messages ahead of `progress()` (what the other
 * side has received), so that traffic flows both ways while it runs.
 * `onChunk(last)` runs after each chunk left (faults are injected there).
 */
export async function sendPaced(
  send: (n: number) => void,
  from: number,
  to: number,
  progress: () => number,
  { chunk = 10, window = 30, timeoutMs = 15_000, onChunk }: { chunk?: number; window?: number; timeoutMs?: number; onChunk?: (last: number) => void | Promise<void> } = {},
): Promise<void> {
  for (let n = from; n <= to; ) {
    const last = Math.min(to, n + chunk - 1)
    for (; n <= last; n++) send(n)
    // Let the batch leave before a fault is injected or the next chunk goes.
    await new Promise((resolve) => setImmediate(resolve))
    await onChunk?.(last)
    const target = last - window
    if (target > 0) await waitFor(() => progress() >= target, `the other side to receive message ${target}`, timeoutMs)
  }
}

/** Resolve once `channel` is open; fail after `timeoutMs`. */
export async function whenOpen(channel: Channel, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => channel.status.state === 'open', 'the channel to open', timeoutMs)
}

/** Registers the transport conformance tests for one transport. */
export function runTransportSuite({ name, connect }: TransportSuiteOptions): void {
  describe(`Comet transport conformance: ${name}`, () => {
    let server: TestServer
    let recorder: ReturnType<typeof recordNumbered>
    const channels: Channel[] = []
    const proxies: TcpProxy[] = []

    /** A channel over exactly this transport, closed after the suite. */
    const open = async (options?: ConnectOptions): Promise<Channel> => {
      const channel = connect(server, options)
      channels.push(channel)
      await whenOpen(channel)
      assert.equal(channel.status.transport, name, `the channel runs over ${name}`)
      assert.ok(channel.sessionId, 'the handshake gave a session id')
      return channel
    }

    before(async () => {
      server = await startServer(shortTimings)
      recorder = recordNumbered(server, { echo: true })
    })
    after(async () => {
      for (const channel of channels) channel.close()
      await Promise.all(proxies.map((proxy) => proxy.close()))
      await server?.stop()
    })

    describe('ordered delivery', () => {
      it('delivers 300 numbered messages each way exactly once, in order', async () => {
        const channel = await open()
        const sid = channel.sessionId
        const echoes = collectServerNumbered(channel)
        await sendPaced((n) => channel.send(numbered(n)), 1, 300, () => recorder.receivedBy(sid).length)
        await waitFor(() => recorder.receivedBy(sid).length >= 300 && echoes.length >= 300, 'all 300 messages and their echoes', 15_000)
        assert.deepEqual(recorder.receivedBy(sid), range(1, 300), 'the server got 1..300 once each, in order')
        assert.deepEqual(echoes, range(1, 300), 'the client got every echo once, in order')
        assert.equal(channel.sessionId, sid, 'one session throughout')
        await waitFor(() => channel.unackedCount === 0, 'the server to acknowledge everything', 5_000)
      })
    })

    describe('batching', () => {
      it(`delivers a burst of 100 messages sent in one synchronous loop${name === 'websocket' ? '' : ' in far fewer than 100 HTTP requests'}`, async (t) => {
        const requests = { post: 0, get: 0 }
        const countingFetch: typeof fetch = (input, init) => {
          if ((init?.method ?? 'GET').toUpperCase() === 'POST') requests.post++
          else requests.get++
          return globalThis.fetch(input, init)
        }
        const channel = await open({ fetch: countingFetch })
        const sid = channel.sessionId
        const echoes = collectServerNumbered(channel)
        const before = { ...requests }
        for (let n = 1; n <= 100; n++) channel.send(numbered(n))
        await waitFor(() => recorder.receivedBy(sid).length >= 100 && echoes.length >= 100, 'the burst and its echoes', 10_000)
        assert.deepEqual(recorder.receivedBy(sid), range(1, 100))
        assert.deepEqual(echoes, range(1, 100))
        if (name !== 'websocket') {
          const posts = requests.post - before.post
          const gets = requests.get - before.get
          t.diagnostic(`the burst and its echoes took ${posts} POSTs and ${gets} GETs`)
          // One POST carries the burst; a few more carry acknowledgements.
          assert.ok(posts >= 1 && posts <= 10, `the burst went up in ${posts} POSTs`)
          if (name === 'long-poll') assert.ok(gets <= 10, `the echoes came down in ${gets} polls`)
        }
      })
    })

    describe('reconnect', () => {
      it('resumes the same session after the connection is cut mid-stream, losing and repeating nothing', async () => {
        const proxy = await startTcpProxy(Number(new URL(server.url).port))
        proxies.push(proxy)
        const channel = await open({ httpUrl: proxy.url })
        const sid = channel.sessionId
        const echoes = collectServerNumbered(channel)
        const opens: { resumed: boolean; sid: string }[] = []
        channel.on('open', (info) => opens.push(info))
        let cuts = 0
        await sendPaced((n) => channel.send(numbered(n)), 1, 300, () => recorder.receivedBy(sid).length, {
          onChunk: async (last) => {
            if (last !== 100 && last !== 220) return
            proxy.cutAll()
            cuts++
            // Keep sending while the channel is down; wait for it to come back before the next cut.
            if (last === 100) await waitFor(() => opens.length >= 1, 'the channel to reconnect after the first cut', 10_000)
          },
        })
        await waitFor(() => recorder.receivedBy(sid).length >= 300 && echoes.length >= 300, 'all 300 messages and echoes after the cuts', 20_000)
        assert.equal(cuts, 2)
        assert.ok(opens.length >= 2, `the channel reconnected after each cut (opened ${opens.length} times)`)
        assert.ok(
          opens.every((info) => info.resumed && info.sid === sid),
          `every reconnect resumed session ${sid}: ${JSON.stringify(opens)}`,
        )
        assert.equal(channel.sessionId, sid, 'the same session id')
        assert.equal(channel.status.transport, name)
        assert.deepEqual(recorder.receivedBy(sid), range(1, 300), 'the server got 1..300 once each, in order')
        assert.deepEqual(echoes, range(1, 300), 'the client got every echo once, in order')
      })
    })

    describe('close', () => {
      it('emits the code and reason the server closed the session with, and does not reconnect after Forbidden', async () => {
        const channel = await open()
        const sid = channel.sessionId
        assert.ok(sid)
        const closes: [number, string][] = []
        channel.on('close', (code, reason) => closes.push([code, reason]))
        const session = server.sessions.get(sid)
        assert.ok(session, 'the server has the session')
        // Close at rest: over HTTP the Close frame can only ride a request the client holds open.
        await waitFor(() => name === 'websocket' || session.currentTransport?.isWaiting, 'the transport to be at rest', 5_000)
        const createdBefore = recorder.created
        session.close(4403, 'forbidden here')
        await waitFor(() => closes.length > 0, 'the channel to close', 5_000)
        assert.deepEqual(closes, [[4403, 'forbidden here']])
        assert.equal(channel.status.state, 'closed')
        // A round trip on a fresh channel lets any reconnect of the closed one happen first.
        const probe = await open()
        const echoes = collectServerNumbered(probe)
        probe.send(numbered(1))
        await waitFor(() => echoes.length === 1, 'the probe channel echo', 5_000)
        assert.equal(recorder.created, createdBefore + 1, 'only the probe started a session: the closed channel did not reconnect')
        assert.equal(channel.status.state, 'closed')
        assert.deepEqual(closes, [[4403, 'forbidden here']], 'close is emitted once')
      })

      it(
        'emits the close code even when the server closes the session between two requests',
        async () => {
          const channel = await open()
          const sid = channel.sessionId
          assert.ok(sid)
          const closes: [number, string][] = []
          const newSessions: string[] = []
          channel.on('close', (code, reason) => closes.push([code, reason]))
          channel.on('open', (info) => void (info.resumed ? null : newSessions.push(info.sid)))
          const session = server.sessions.get(sid)
          assert.ok(session)
          // Right after the handshake: over long-polling the next poll has not reached the server yet
          // (a stream is already held open then; its gap, a reopen, is not reached here).
          session.close(4403, 'forbidden here')
          await waitFor(() => closes.length > 0 || newSessions.length > 0, 'the channel to close or start over', 5_000)
          assert.deepEqual(newSessions, [], 'the channel started a new session after Forbidden')
          assert.deepEqual(closes, [[4403, 'forbidden here']])
        },
      )

      it('ends the server session when the client closes the channel', async () => {
        const channel = await open()
        const sid = channel.sessionId
        assert.ok(sid)
        assert.ok(server.sessions.get(sid), 'the server has the session')
        const closes: [number, string][] = []
        channel.on('close', (code, reason) => closes.push([code, reason]))
        channel.close()
        assert.equal(channel.status.state, 'closed')
        assert.equal(closes[0]?.[0], 1000, 'the channel closed normally')
        await waitFor(() => server.sessions.get(sid) === undefined, 'the server to end the session', 5_000)
      })
    })
  })
}
