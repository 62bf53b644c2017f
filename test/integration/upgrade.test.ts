/**
 * Engine.IO's key test, for Cometpad: numbered messages flow both ways
 * while the channel upgrades from long-polling to WebSocket, and every one
 * arrives once, in order.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { Channel } from '../../client/comet/channel'
import type { WebSocketConstructor } from '../../client/comet/transports/websocket'
import { startCometEchoServer, type CometEchoServer } from '../helpers/comet-echo-server'
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy'
import { waitFor } from '../helpers/wait-for'
import type { Session } from '../../server/comet/session'

const count = 600

function numbered(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])
}
function numberOf(bytes: Uint8Array): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0
}

describe('upgrade from long-polling to WebSocket', () => {
  let server: CometEchoServer | null = null
  let proxy: FaultProxy | null = null
  let channel: Channel | null = null
  after(async () => {
    channel?.close()
    await proxy?.close()
    await server?.close()
  })

  it(`delivers ${count} numbered messages each way once, in order, while upgrading`, async () => {
    const atServer: number[] = []
    let session: Session | null = null
    server = await startCometEchoServer({
      pollHoldMs: 1_000,
      onMessage: (s, payload) => {
        session = s
        atServer.push(numberOf(payload))
      },
    })
    // WebSocket is blocked at first, so the channel falls back to long-polling.
    proxy = await startFaultProxy(Number(new URL(server.url).port), { refuseWebSocket: true })
    const atClient: number[] = []
    const transports = new Set<string>()
    channel = new Channel({
      url: `${proxy.url.replace('http', 'ws')}/comet/ws`,
      baseUrl: proxy.url,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      transports: ['websocket', 'long-poll'],
      memory: null,
      connectTimeoutMs: 1_000,
      backoff: { baseMs: 10, maxMs: 50 },
      upgradeProbeDelayMs: 200,
    })
    channel.on('message', (payload) => atClient.push(numberOf(payload)))
    channel.on('status', (status) => {
      if (status.transport) transports.add(status.transport)
    })
    await waitFor(() => channel!.status.state === 'open' && channel!.status.transport === 'long-poll', 'long-polling to open')
    const sid = channel.sessionId

    // Both sides send a steady stream; half-way, the network lets WebSocket through.
    channel.send(numbered(1))
    const serverSession = await waitFor(() => session, 'the server to see the session')
    serverSession.send(numbered(1))
    // A steady stream both ways: a third on long-polling, then WebSocket is
    // let through and the stream goes on until the channel has upgraded,
    // then a few hundred more. Bounded by count and time.
    let n = 1
    const step = async () => {
      n++
      channel!.send(numbered(n))
      serverSession.send(numbered(n))
      if (n % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 2))
    }
    while (n < count / 3) await step()
    proxy.options.refuseWebSocket = false
    const deadline = Date.now() + 20_000
    while (channel.status.transport !== 'websocket' && Date.now() < deadline) await step()
    const upgradedAt = n
    while (n < Math.max(count, upgradedAt + 200)) await step()
    const total = n
    assert.ok(total >= count)
    await waitFor(() => atServer.length >= total && atClient.length >= total, `all ${total} messages both ways`, 30_000).catch((error: Error) => {
      throw new Error(`${error.message}: server got ${atServer.length}, client got ${atClient.length}, transport ${channel?.status.transport}`)
    })
    assert.equal(channel.status.transport, 'websocket', 'the channel upgraded')
    assert.equal(channel.sessionId, sid, 'the same session moved to WebSocket')
    assert.ok(transports.has('long-poll') && transports.has('websocket'))
    assert.ok(upgradedAt > count / 3 && upgradedAt < total, 'the upgrade happened while messages were flowing')
    assert.deepEqual(atServer, Array.from({ length: total }, (_, i) => i + 1), 'client → server: once, in order')
    assert.deepEqual(atClient, Array.from({ length: total }, (_, i) => i + 1), 'server → client: once, in order')
  })
})
