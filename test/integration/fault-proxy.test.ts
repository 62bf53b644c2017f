/**
 * The Comet channel through a proxy that misbehaves on purpose
 * (test/helpers/fault-proxy.ts): lost poll responses, random cuts while
 * two users edit one document, and a buffering proxy that holds a stream
 * back until the client falls back to long-polling.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { Channel, type ChannelTransportName } from '../../client/comet/channel'
import type { WebSocketConstructor } from '../../client/comet/transports/websocket'
import { CometProvider } from '../../client/sync/provider'
import {
  collectServerNumbered,
  numbered,
  range,
  recordNumbered,
  sendPaced,
  serverNumbered,
  shortTimings,
  whenOpen,
} from '../conformance/transport.suite'
import { startFaultProxy, type FaultOptions, type FaultProxy } from '../helpers/fault-proxy'
import { startServer, type TestServer } from '../helpers/start-server'
import { waitFor } from '../helpers/wait-for'
import { seededRandom } from '../helpers/seeded-random'

/** A channel to `httpUrl` (a proxy) over `transports`, as the browser would open it, remembering nothing. */
function channelTo(httpUrl: string, transports: ChannelTransportName[], connectTimeoutMs = 5_000): Channel {
  return new Channel({
    url: `${httpUrl.replace(/^http/, 'ws')}/comet/ws`,
    baseUrl: httpUrl,
    transports,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    memory: null,
    backoff: { baseMs: 20, maxMs: 200 },
    connectTimeoutMs,
  })
}

/** Everything a test started, stopped in `after` whatever happened. */
function resources() {
  const channels: Channel[] = []
  const providers: CometProvider[] = []
  const proxies: FaultProxy[] = []
  const servers: TestServer[] = []
  return {
    channels,
    providers,
    proxies,
    servers,
    async stop() {
      for (const provider of providers) {
        provider.destroy()
        provider.awareness.destroy()
      }
      for (const channel of channels) channel.close()
      await Promise.all(proxies.map((proxy) => proxy.close()))
      await Promise.all(servers.map((server) => server.stop()))
    },
  }
}

describe('long-polling through a proxy that loses poll responses', () => {
  const running = resources()
  after(() => running.stop())

  it('delivers 200 numbered messages each way once and in order when 3 poll responses are lost', async () => {
    const server = await startServer(shortTimings)
    running.servers.push(server)
    const recorder = recordNumbered(server, { echo: false })
    const proxy = await startFaultProxy(Number(new URL(server.url).port))
    running.proxies.push(proxy)
    const channel = channelTo(proxy.url, ['long-poll'])
    running.channels.push(channel)
    await whenOpen(channel)
    assert.equal(channel.status.transport, 'long-poll')
    const sid = channel.sessionId
    assert.ok(sid)
    const session = server.sessions.get(sid)
    assert.ok(session)
    const downstream = collectServerNumbered(channel)
    const dropAt = [40, 100, 160]
    await sendPaced(
      (n) => {
        channel.send(numbered(n))
        session.send(serverNumbered(n))
      },
      1,
      200,
      () => Math.min(recorder.receivedBy(sid).length, downstream.length),
      {
        onChunk: async (last) => {
          const k = dropAt.indexOf(last)
          if (k < 0) return
          // One drop per moment: the previous one happened before this one is armed.
          await waitFor(() => proxy.droppedPolls === k, `poll response ${k} to be dropped`, 10_000)
          proxy.dropPollResponses(1)
        },
      },
    )
    await waitFor(() => proxy.droppedPolls === 3, 'the third poll response to be dropped', 10_000)
    await waitFor(() => recorder.receivedBy(sid).length >= 200 && downstream.length >= 200, 'all 200 messages each way', 15_000)
    assert.equal(proxy.droppedPolls, 3)
    assert.deepEqual(recorder.receivedBy(sid), range(1, 200), 'the server got 1..200 once each, in order')
    assert.deepEqual(downstream, range(1, 200), 'the client got 1..200 once each, in order')
    assert.equal(channel.sessionId, sid, 'every lost response was recovered within the session')
    assert.equal(server.sessions.get(sid), session)
  })
})

/**
 * Two users type numbered markers into one document while the proxy cuts
 * connections at random. The fault proxy rolls its die once per HTTP
 * request but only once per WebSocket (at the upgrade, then cuts it within
 * 500 ms), so WebSocket needs a higher probability to see more than a cut
 * or two.
 */
const cutRuns: { transport: ChannelTransportName; seed: number; cutProbability: number }[] = [
  { transport: 'websocket', seed: 13, cutProbability: 0.5 },
  { transport: 'long-poll', seed: 13, cutProbability: 0.1 },
]

for (const { transport, seed, cutProbability } of cutRuns) {
  describe(`two editors over ${transport} through a proxy cutting connections at random`, () => {
    const running = resources()
    after(() => running.stop())

    it(`converge with every marker once and match the store (seed ${seed}, cut probability ${cutProbability})`, async (t) => {
      const server = await startServer(shortTimings)
      running.servers.push(server)
      const faults: Partial<FaultOptions> = { cutProbability }
      const proxy = await startFaultProxy(Number(new URL(server.url).port), faults, seed)
      running.proxies.push(proxy)
      const { docId } = await server.directory.create()
      const editors = ['a', 'b'].map((name) => {
        const channel = channelTo(proxy.url, [transport])
        running.channels.push(channel)
        const doc = new Y.Doc()
        const provider = new CometProvider({ channel, docId, doc, awareness: new Awareness(doc) })
        running.providers.push(provider)
        return { name, channel, provider, text: doc.getText('t') }
      })
      const random = seededRandom(seed)
      const markersEach = 40
      const expected: string[] = []
      // Type at once, while the first connections are being cut: changes
      // made before the first sync wait in the provider and go out on join.
      for (let i = 1; i <= markersEach; i++) {
        for (const { name, text } of editors) {
          const marker = `<${name}${i}>`
          expected.push(marker)
          // Insert only between markers (or at either end), never inside one.
          const content = text.toString()
          const boundaries = [0]
          for (let at = content.indexOf('>'); at >= 0; at = content.indexOf('>', at + 1)) boundaries.push(at + 1)
          text.insert(boundaries[Math.floor(random() * boundaries.length)]!, marker)
        }
        // A typist's rhythm, not a wait for an event: keystrokes keep coming while connections drop.
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      proxy.options.cutProbability = 0
      const cuts = proxy.cuts
      const [a, b] = editors as [(typeof editors)[0], (typeof editors)[0]]
      await waitFor(
        () => a.provider.status.synced && b.provider.status.synced && a.text.toString() === b.text.toString() && a.text.length === b.text.length && a.text.toString().length === expected.join('').length,
        `both editors to converge on all ${expected.length} markers (seed ${seed})`,
        30_000,
      )
      await waitFor(() => a.provider.isSaved && b.provider.isSaved, `every change to be confirmed saved (seed ${seed})`, 15_000)
      const finalText = a.text.toString()
      assert.equal(b.text.toString(), finalText)
      const found = finalText.match(/<[ab]\d+>/g) ?? []
      assert.equal(found.join(''), finalText, 'the text is made of markers only')
      assert.deepEqual([...found].sort(), [...expected].sort(), `every marker exactly once (seed ${seed})`)
      t.diagnostic(`the proxy cut ${cuts} connections while the editors typed (seed ${seed})`)
      assert.ok(cuts >= 1, `the proxy cut at least one connection (cut ${cuts}, seed ${seed})`)
      const stored = await server.store.load(docId)
      assert.ok(stored, 'the document was stored')
      const check = new Y.Doc()
      Y.applyUpdate(check, stored)
      assert.equal(check.getText('t').toString(), finalText, 'the store holds what the editors see')
      for (const { channel } of editors) assert.equal(channel.status.transport, transport)
    })
  })
}

describe('HTTP streaming through a buffering proxy', () => {
  const running = resources()
  after(() => running.stop())

  it('falls back to long-polling by itself, and messages flow', async () => {
    const server = await startServer(shortTimings)
    running.servers.push(server)
    const recorder = recordNumbered(server, { echo: true })
    const proxy = await startFaultProxy(Number(new URL(server.url).port), { bufferStreams: true })
    running.proxies.push(proxy)
    // The connect timeout is longer than the stream's 4 s wait for its first
    // record, so it is the buffering detection that moves the channel down.
    const channel = channelTo(proxy.url, ['stream', 'long-poll'], 8_000)
    running.channels.push(channel)
    const openedOver: (string | null)[] = []
    channel.on('open', () => openedOver.push(channel.status.transport))
    await waitFor(() => channel.status.state === 'open', 'the channel to open over long-polling', 15_000)
    assert.equal(channel.status.transport, 'long-poll')
    assert.deepEqual(openedOver, ['long-poll'], 'it never opened over the buffered stream')
    const sid = channel.sessionId
    const echoes = collectServerNumbered(channel)
    await sendPaced((n) => channel.send(numbered(n)), 1, 50, () => recorder.receivedBy(sid).length)
    await waitFor(() => recorder.receivedBy(sid).length >= 50 && echoes.length >= 50, 'all 50 messages and echoes', 10_000)
    assert.deepEqual(recorder.receivedBy(sid), range(1, 50))
    assert.deepEqual(echoes, range(1, 50))
    assert.equal(channel.status.transport, 'long-poll')
  })
})
