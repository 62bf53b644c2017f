/**
 * The server side of the upgrade probe (PROTOCOL.md §5), with raw frames:
 * a long-polling session moves to a WebSocket and loses nothing.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { decodeBatch, encodeBatch, FrameKind, type Frame } from '../../common/comet/frame'
import { parseHandshake } from '../../common/comet/handshake'
import { startServer, type TestServer } from '../helpers/start-server'

const max = 1 << 24

async function poll(server: TestServer, query: string): Promise<Frame[]> {
  const response = await fetch(`${server.url}/comet/poll${query}`)
  const bytes = new Uint8Array(await response.arrayBuffer())
  return bytes.length > 0 ? decodeBatch(bytes, max) : []
}

function nextFrames(socket: WebSocket): Promise<Frame[]> {
  return new Promise((resolve, reject) => {
    socket.once('message', (data: Buffer) => resolve(decodeBatch(new Uint8Array(data), max)))
    socket.once('close', (code, reason) => reject(new Error(`closed ${code} ${reason.toString()}`)))
  })
}

describe('upgrade probe', () => {
  let server: TestServer
  before(async () => {
    server = await startServer({ pollHoldMs: 5_000 })
  })
  after(async () => {
    await server.stop()
  })

  it('answers Ping on a probing WebSocket, then moves the session on Upgrade and resends what was not acknowledged', async () => {
    const hello = await poll(server, '')
    const sid = parseHandshake((hello[0] as { json: string }).json)!.sid
    const session = server.sessions.get(sid)!
    // Three messages for the client; it has seen none of them.
    session.send(new Uint8Array([1]))
    session.send(new Uint8Array([2]))
    session.send(new Uint8Array([3]))
    const held = poll(server, `?sid=${sid}&ack=0`)
    const got = await held
    assert.deepEqual(got.map((f) => (f.kind === FrameKind.Data ? f.seq : -1)), [1, 2, 3])
    // The client applied 1 and 2 when it decided to upgrade.
    const socket = new WebSocket(`${server.wsUrl}/comet/ws?sid=${sid}&probe=1`)
    await new Promise((resolve) => socket.once('open', resolve))
    socket.send(encodeBatch([{ kind: FrameKind.Ping, nonce: 0 }]))
    const pong = await nextFrames(socket)
    assert.deepEqual(pong, [{ kind: FrameKind.Pong, nonce: 0 }])
    assert.equal(session.transportName, 'long-poll', 'the probe alone does not move the session')
    socket.send(encodeBatch([{ kind: FrameKind.Upgrade, ack: 2 }]))
    const switched = await nextFrames(socket)
    assert.equal(switched[0]?.kind, FrameKind.Hello)
    const handshake = parseHandshake((switched[0] as { json: string }).json)!
    assert.equal(handshake.sid, sid)
    assert.equal(handshake.resumed, true)
    assert.deepEqual(switched.slice(1), [{ kind: FrameKind.Data, seq: 3, payload: new Uint8Array([3]) }])
    assert.equal(session.transportName, 'websocket')
    socket.close(1000)
  })

  it('closes a probe for an unknown session with 4002', async () => {
    const socket = new WebSocket(`${server.wsUrl}/comet/ws?sid=unknown&probe=1`)
    const code = await new Promise<number>((resolve) => socket.on('close', (c) => resolve(c)))
    assert.equal(code, 4002)
  })
})
