/**
 * The long-poll endpoints of PROTOCOL.md §1, black-box over real HTTP:
 * handshake, held polls, piggybacked POST responses, resending after a
 * lost poll response, de-duplication of a retried POST, errors, headers.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { decodeBatch, encodeBatch, FrameKind, type Frame } from '../../common/comet/frame'
import { parseHandshake } from '../../common/comet/handshake'
import { MessageType, encodeEmptyMessage, encodeUpdateMessage, splitDocMessage, startDocMessage } from '../../common/messages'
import type { DocId } from '../../common/ids'
import { startServer, type TestServer } from '../helpers/start-server'
import { waitFor } from '../helpers/wait-for'

const maxBytes = 16 * 1024 * 1024

async function poll(server: TestServer, query: string): Promise<{ status: number; frames: Frame[]; headers: Headers }> {
  const response = await fetch(`${server.url}/comet/poll${query}`, { cache: 'no-store' })
  const bytes = new Uint8Array(await response.arrayBuffer())
  return { status: response.status, frames: bytes.length > 0 ? decodeBatch(bytes, maxBytes) : [], headers: response.headers }
}

async function send(server: TestServer, sid: string, frames: Frame[]): Promise<{ status: number; frames: Frame[] }> {
  const response = await fetch(`${server.url}/comet/send?sid=${sid}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: Buffer.from(encodeBatch(frames)),
  })
  const bytes = new Uint8Array(await response.arrayBuffer())
  return { status: response.status, frames: bytes.length > 0 ? decodeBatch(bytes, maxBytes) : [] }
}

function dataFrames(frames: Frame[]): { seq: number; payload: Uint8Array }[] {
  return frames.flatMap((frame) => (frame.kind === FrameKind.Data ? [{ seq: frame.seq, payload: frame.payload }] : []))
}

function step1(docId: string): Uint8Array {
  const encoder = startDocMessage(docId, MessageType.Sync)
  syncProtocol.writeSyncStep1(encoder, new Y.Doc())
  return encoding.toUint8Array(encoder)
}

describe('long-poll endpoints', () => {
  let server: TestServer

  before(async () => {
    server = await startServer({ pollHoldMs: 400 })
  })
  after(async () => {
    await server.stop()
  })

  it('answers the first poll at once with a Hello, and never lets proxies cache or buffer', async () => {
    const { status, frames, headers } = await poll(server, '')
    assert.equal(status, 200)
    assert.equal(headers.get('cache-control'), 'no-store')
    assert.equal(headers.get('x-accel-buffering'), 'no')
    const hello = frames[0]
    assert.equal(hello?.kind, FrameKind.Hello)
    const handshake = parseHandshake(hello.kind === FrameKind.Hello ? hello.json : '')
    assert.ok(handshake)
    assert.equal(handshake.resumed, false)
    assert.ok(handshake.transports.includes('long-poll'))
    assert.equal(handshake.pollHoldMs, 400)
  })

  it('holds an idle poll for pollHoldMs and answers it empty', async () => {
    const hello = await poll(server, '')
    const sid = parseHandshake((hello.frames[0] as { json: string }).json)!.sid
    const started = Date.now()
    const { status, frames } = await poll(server, `?sid=${sid}&ack=0`)
    assert.equal(status, 200)
    assert.deepEqual(frames, [])
    assert.ok(Date.now() - started >= 350, 'the poll was held')
  })

  it('piggybacks replies on the POST response and resends frames whose poll response was lost', async () => {
    const { docId } = await server.directory.create()
    const hello = await poll(server, '')
    const sid = parseHandshake((hello.frames[0] as { json: string }).json)!.sid
    const reply = await send(server, sid, [
      { kind: FrameKind.Data, seq: 1, payload: encodeEmptyMessage(docId, MessageType.Join) },
      { kind: FrameKind.Data, seq: 2, payload: step1(docId) },
    ])
    // The Join is resolved asynchronously; what it produces comes by poll or piggyback.
    const received: { seq: number; payload: Uint8Array }[] = [...dataFrames(reply.frames)]
    assert.equal(reply.status === 200 || reply.status === 204, true)
    while (received.length < 2) {
      const next = await poll(server, `?sid=${sid}&ack=0`)
      for (const frame of dataFrames(next.frames)) if (!received.some((r) => r.seq === frame.seq)) received.push(frame)
    }
    const types = received.map((frame) => splitDocMessage(frame.payload).type)
    assert.deepEqual(types.slice(0, 2), [MessageType.Sync, MessageType.Sync])
    // Pretend the last poll response was lost: polling again with the old
    // ack gets the same frames again, by seq.
    const again = await poll(server, `?sid=${sid}&ack=0`)
    assert.deepEqual(
      dataFrames(again.frames).map((frame) => frame.seq),
      received.map((frame) => frame.seq),
    )
    // Acknowledging them empties the resend window: the next poll is held and empty.
    const acked = await poll(server, `?sid=${sid}&ack=${received.length}`)
    assert.deepEqual(dataFrames(acked.frames), [])
  })

  it("answers a POST with its own Ack, leaving the writer's held poll for other clients' changes", async () => {
    const { docId } = await server.directory.create()
    const join = async (): Promise<{ sid: string; ack: number }> => {
      const hello = await poll(server, '')
      const sid = parseHandshake((hello.frames[0] as { json: string }).json)!.sid
      await send(server, sid, [
        { kind: FrameKind.Data, seq: 1, payload: encodeEmptyMessage(docId, MessageType.Join) },
        { kind: FrameKind.Data, seq: 2, payload: step1(docId) },
      ])
      // Take what the join produced (the server's step 1 and step 2), then acknowledge it.
      let ack = 0
      while (ack < 2) {
        const next = await poll(server, `?sid=${sid}&ack=${ack}`)
        for (const frame of dataFrames(next.frames)) ack = Math.max(ack, frame.seq)
      }
      return { sid, ack }
    }
    const untrackedUpdate = (text: string): Uint8Array => {
      const doc = new Y.Doc()
      doc.getText('t').insert(0, text)
      const encoder = startDocMessage(docId, MessageType.Sync)
      syncProtocol.writeUpdate(encoder, Y.encodeStateAsUpdate(doc))
      return encoding.toUint8Array(encoder)
    }
    const writer = await join()
    const other = await join()
    const held = poll(server, `?sid=${writer.sid}&ack=${writer.ack}`)
    let isHeldAnswered = false
    void held.then(() => (isHeldAnswered = true))
    await new Promise((resolve) => setTimeout(resolve, 50))

    const reply = await send(server, writer.sid, [{ kind: FrameKind.Data, seq: 3, payload: untrackedUpdate('mine') }])
    assert.equal(reply.status, 200)
    assert.deepEqual(
      reply.frames.filter((frame) => frame.kind === FrameKind.Ack),
      [{ kind: FrameKind.Ack, seq: 3 }],
      'the POST is answered with the Ack of what it carried',
    )
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(isHeldAnswered, false, "the writer's poll stays held: its own Ack did not answer it")

    await send(server, other.sid, [{ kind: FrameKind.Data, seq: 3, payload: untrackedUpdate('theirs') }])
    const { frames } = await held
    const types = dataFrames(frames).map((frame) => splitDocMessage(frame.payload).type)
    assert.deepEqual(types, [MessageType.Sync], "the held poll carries the other client's update")
  })

  it('applies a retried POST once', async () => {
    const { docId } = await server.directory.create()
    const hello = await poll(server, '')
    const sid = parseHandshake((hello.frames[0] as { json: string }).json)!.sid
    await send(server, sid, [{ kind: FrameKind.Data, seq: 1, payload: encodeEmptyMessage(docId, MessageType.Join) }])
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'once')
    const frames: Frame[] = [{ kind: FrameKind.Data, seq: 2, payload: encodeUpdateMessage(docId, 7, Y.encodeStateAsUpdate(doc)) }]
    await send(server, sid, frames)
    await send(server, sid, frames) // the retry of a POST whose response was lost
    await send(server, sid, frames)
    const room = await waitFor(() => server.rooms.peek(docId as DocId), 'the room')
    await room.durable()
    assert.equal(room.doc.getText('t').toString(), 'once')
    // Each applied Update earns one Saved: exactly one means it was applied once.
    // Nothing is acknowledged yet, so one poll returns every frame sent so far.
    const savedCount = async () => {
      const { frames: all } = await poll(server, `?sid=${sid}&ack=0`)
      return dataFrames(all).filter((frame) => splitDocMessage(frame.payload).type === MessageType.Saved).length
    }
    await waitFor(async () => (await savedCount()) >= 1, 'the Saved confirmation')
    assert.equal(await savedCount(), 1)
  })

  it('answers an unknown session with 404 and Close 4002', async () => {
    const { status, frames } = await poll(server, '?sid=nope&ack=0')
    assert.equal(status, 404)
    assert.equal(frames[0]?.kind, FrameKind.Close)
    assert.equal((frames[0] as { code: number }).code, 4002)
    const posted = await send(server, 'nope', [{ kind: FrameKind.Ping, nonce: 1 }])
    assert.equal(posted.status, 404)
  })

  it('ends the session on a malformed body with Close 4400', async () => {
    const hello = await poll(server, '')
    const sid = parseHandshake((hello.frames[0] as { json: string }).json)!.sid
    const held = poll(server, `?sid=${sid}&ack=0`)
    const response = await fetch(`${server.url}/comet/send?sid=${sid}`, { method: 'POST', body: new Uint8Array([0xff, 0xff, 0xff]) })
    await response.arrayBuffer()
    const { frames } = await held
    assert.equal(frames.at(-1)?.kind, FrameKind.Close)
    assert.equal((frames.at(-1) as { code: number }).code, 4400)
    assert.equal(server.sessions.get(sid), undefined)
  })
})
