/**
 * The abuse limits against a real server: each exceeded limit is refused
 * or closed with its code, counted in `cometpad_limit_exceeded_total`, and
 * leaves every other client alone.
 */
import { after, afterEach, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { decodeBatch, encodeBatch, FrameKind, type Frame } from '../../common/comet/frame'
import { parseAdvice, parseHandshake } from '../../common/comet/handshake'
import { WebSocketTransport, type WebSocketConstructor } from '../../client/comet/transports/websocket'
import type { TransportFactory } from '../../client/comet/transport'
import { CloseCode } from '../../common/close-codes'
import { DocErrorCode, MessageType, encodeEmptyMessage, encodeUpdateMessage, splitDocMessage } from '../../common/messages'
import { startServer, type TestServer } from '../helpers/start-server'
import { connectClient, type TestClient } from '../helpers/comet-client'
import { nextEvent, waitFor } from '../helpers/wait-for'

const max = 1 << 26

/** A Comet client speaking raw frames over a `ws` WebSocket. */
class RawComet {
  readonly ws: WebSocket
  sid = ''
  private seq = 0
  /** Every Data payload received. */
  readonly payloads: Uint8Array[] = []
  readonly hello: Promise<void>
  readonly closed: Promise<{ code: number; reason: string }>

  constructor(server: TestServer) {
    this.ws = new WebSocket(`${server.wsUrl}/comet/ws`)
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
    this.ws.on('error', () => {})
    this.hello = new Promise((resolve, reject) => {
      this.ws.on('message', (data: Buffer) => {
        for (const frame of decodeBatch(new Uint8Array(data), max)) this.onFrame(frame, resolve)
      })
      void this.closed.then(({ code, reason }) => reject(new Error(`closed before the Hello: ${code} ${reason}`)))
    })
  }

  private onFrame(frame: Frame, onHello: () => void): void {
    if (frame.kind === FrameKind.Hello) {
      this.sid = parseHandshake(frame.json)!.sid
      onHello()
    } else if (frame.kind === FrameKind.Data) {
      this.payloads.push(frame.payload)
    }
  }

  /** Send each payload in its own WebSocket message (one batch each). */
  send(...payloads: Uint8Array[]): void {
    for (const payload of payloads) this.ws.send(encodeBatch([{ kind: FrameKind.Data, seq: ++this.seq, payload }]))
  }

  /** The Error messages received for `docId`: [code, message]. */
  errorsFor(docId: string): [number, string][] {
    return this.payloads.flatMap((payload) => {
      const split = splitDocMessage(payload)
      if (split.docId !== docId || split.type !== MessageType.Error) return []
      const decoder = decoding.createDecoder(split.message)
      decoding.readVarUint(decoder)
      return [[decoding.readVarUint(decoder), decoding.readVarString(decoder)] as [number, string]]
    })
  }

  /** Whether a Saved for `docId` with id ≥ `updateId` arrived. */
  hasSaved(docId: string, updateId: number): boolean {
    return this.payloads.some((payload) => {
      const split = splitDocMessage(payload)
      if (split.docId !== docId || split.type !== MessageType.Saved) return false
      const decoder = decoding.createDecoder(split.message)
      decoding.readVarUint(decoder)
      return decoding.readVarUint(decoder) >= updateId
    })
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate()
  }
}

/** `cometpad_limit_exceeded_total{limit=...}` as scraped now. */
async function limitCount(server: TestServer, limit: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const match = new RegExp(`^cometpad_limit_exceeded_total\\{limit="${limit}"\\} (\\d+)$`, 'm').exec(text)
  assert.ok(match, `no cometpad_limit_exceeded_total{limit="${limit}"} in /metrics`)
  return Number(match[1])
}

/** The status of a refused WebSocket upgrade (rejects if it opens). */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
      res.resume()
      ws.terminate()
    })
    ws.once('open', () => {
      ws.terminate()
      reject(new Error(`the upgrade to ${url} was accepted`))
    })
    ws.once('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error)
    })
  })
}

describe('limits', () => {
  const raws: RawComet[] = []
  const clients: TestClient[] = []
  const raw = (server: TestServer) => {
    const r = new RawComet(server)
    raws.push(r)
    return r
  }
  const client = (server: TestServer) => {
    const c = connectClient(server.url)
    clients.push(c)
    return c
  }
  afterEach(() => {
    for (const r of raws.splice(0)) r.close()
    for (const c of clients.splice(0)) c.close()
  })

  describe('messages per second', () => {
    let server: TestServer
    before(async () => {
      server = await startServer({ maxMessagesPerSecond: 20, maxBytesPerSecond: 1 << 20 })
    })
    after(async () => {
      await server.stop()
    })

    it('closes a flooding session with 4429 while an honest client in the same document keeps editing', async () => {
      const { docId } = await server.directory.create()
      const clientA = client(server)
      const a = clientA.open(docId)
      const b = client(server).open(docId)
      await waitFor(() => a.status.synced && b.status.synced, 'honest clients synced')
      const before = await limitCount(server, 'messages_per_second')

      const flooder = raw(server)
      await flooder.hello
      flooder.send(encodeEmptyMessage(docId, MessageType.Join))
      await waitFor(() => server.rooms.peek(docId as never)?.peerCount === 3, 'the flooder joined')
      // Harmless messages (a Leave of a document it never joined), far past the burst of 40.
      for (let i = 0; i < 300; i++) flooder.send(encodeEmptyMessage('not-joined', MessageType.Leave))
      const { code, reason } = await flooder.closed
      assert.equal(code, CloseCode.RateLimited)
      assert.match(reason, /messages per second/)
      await waitFor(() => server.sessions.get(flooder.sid) === undefined, 'the flooding session ended')
      assert.equal(server.sessions.endOf(flooder.sid)?.code, CloseCode.RateLimited)
      assert.equal((await limitCount(server, 'messages_per_second')) - before, 1)

      // The honest clients kept their sessions and still converge.
      assert.equal(clientA.channel.status.state, 'open')
      a.doc.getText('t').insert(0, 'still here')
      await waitFor(() => b.doc.getText('t').toString() === 'still here', 'the honest edit arrived')
      await waitFor(() => a.isSaved, 'the honest edit saved')
      assert.equal(server.sessions.size, 2)
    })

    it('sends the flooder an Advice with retryAfterMs just before the 4429, and its Channel waits that long before reconnecting', async () => {
      const before = await limitCount(server, 'messages_per_second')
      // The real WebSocket transport, with every batch it receives and every connection attempt timed.
      const batches: { at: number; frames: Frame[] }[] = []
      const attempts: number[] = []
      const websocket: TransportFactory = ({ resume }) => {
        attempts.push(Date.now())
        const url = new URL(`${server.wsUrl}/comet/ws`)
        if (resume) {
          url.searchParams.set('sid', resume.sid)
          url.searchParams.set('ack', String(resume.ack))
        }
        const transport = new WebSocketTransport(url.toString(), WebSocket as unknown as WebSocketConstructor)
        // Registered before the channel's own listener: stamped before the channel acts on the batch.
        transport.on('batch', (bytes) => batches.push({ at: Date.now(), frames: decodeBatch(bytes, max) }))
        return transport
      }
      const flooder = connectClient(server.url, { transports: ['websocket'], transportFactories: { websocket } })
      clients.push(flooder)
      await waitFor(() => flooder.channel.status.state === 'open', 'the flooder connected')
      const firstSid = flooder.channel.sessionId
      const closeBatch = () => batches.find((batch) => batch.frames.some((frame) => frame.kind === FrameKind.Close))
      // One WebSocket message per task, far past the burst of 40.
      for (let i = 0; i < 200 && !closeBatch(); i++) {
        flooder.channel.send(encodeEmptyMessage('not-joined', MessageType.Leave))
        await new Promise((resolve) => setImmediate(resolve))
      }
      const closing = await waitFor(closeBatch, 'the Close frame')
      const [advice, close] = closing.frames.slice(-2)
      assert.equal(close?.kind, FrameKind.Close)
      assert.equal((close as { code: number }).code, CloseCode.RateLimited)
      assert.equal(advice?.kind, FrameKind.Advice, 'the Advice comes right before the Close, in the same batch')
      const parsed = parseAdvice(advice.kind === FrameKind.Advice ? advice.json : '')
      assert.equal(parsed?.reconnect, 'retry')
      // 40 tokens at 20/s: about 2 s until the bucket is full again.
      const retryAfterMs = parsed?.retryAfterMs ?? 0
      assert.ok(retryAfterMs > 1_000 && retryAfterMs <= 2_000, `retryAfterMs ${retryAfterMs}`)
      assert.equal((await limitCount(server, 'messages_per_second')) - before, 1)

      // The channel comes back, with a new session, but not sooner than advised
      // (its own backoff alone would have it back within 20 ms).
      await waitFor(() => flooder.channel.status.state === 'open' && flooder.channel.sessionId !== firstSid, 'the flooder to reconnect', 10_000)
      assert.equal(attempts.length, 2, 'one reconnect')
      const waitedMs = attempts[1]! - closing.at
      assert.ok(waitedMs >= retryAfterMs, `reconnected after ${waitedMs} ms, advised ${retryAfterMs} ms`)
    })
  })

  describe('sessions per IP', () => {
    let server: TestServer
    before(async () => {
      server = await startServer({ maxSessionsPerIp: 2 })
    })
    after(async () => {
      await server.stop()
    })

    it('refuses new sessions past the limit on every transport with 429, and admits again once one ends', async () => {
      const { docId } = await server.directory.create()
      const before = await limitCount(server, 'sessions_per_ip')
      const first = raw(server)
      const second = raw(server)
      await Promise.all([first.hello, second.hello])
      assert.equal(server.sessions.size, 2)

      assert.equal(await upgradeStatus(`${server.wsUrl}/comet/ws`), 429)
      assert.equal(await upgradeStatus(`${server.wsUrl}/yjs/${docId}`), 429)
      for (const path of ['/comet/poll', '/comet/stream']) {
        const response = await fetch(`${server.url}${path}`)
        assert.equal(response.status, 429, path)
        const body = new Uint8Array(await response.arrayBuffer())
        // The stream answers one length-prefixed record; the poll a bare batch.
        const batch = path === '/comet/stream' ? body.subarray(varUintLength(body)) : body
        const frames = decodeBatch(batch, max)
        assert.equal(frames[0]?.kind, FrameKind.Close, path)
        assert.equal((frames[0] as { code: number }).code, CloseCode.RateLimited, path)
      }
      assert.equal(server.sessions.size, 2, 'no session was created for a refused client')
      assert.equal((await limitCount(server, 'sessions_per_ip')) - before, 4)

      // Resuming a session it has is not a new session.
      first.ws.close(1000)
      await waitFor(() => server.sessions.size === 1, 'the first session ended')
      const third = raw(server)
      await third.hello
      assert.equal(server.sessions.size, 2)
    })
  })

  describe('slow reader', () => {
    let server: TestServer
    before(async () => {
      server = await startServer({ slowReaderBytes: 256 * 1024, maxBytesPerSecond: 0, maxMessagesPerSecond: 0, maxDocBytes: 0 })
    })
    after(async () => {
      await server.stop()
    })

    it('drops a client that does not read its socket once the server buffers past the limit, and ends its session', async () => {
      const { docId } = await server.directory.create()
      const before = await limitCount(server, 'slow_reader')
      const writerClient = client(server)
      const writer = writerClient.open(docId)
      await waitFor(() => writer.status.synced, 'writer synced')
      const reader = raw(server)
      await reader.hello
      reader.send(encodeEmptyMessage(docId, MessageType.Join))
      await waitFor(() => server.rooms.peek(docId as never)?.peerCount === 2, 'the reader joined')
      assert.equal(server.sessions.size, 2)
      // Stop reading: the kernel buffers fill, then the server's.
      ;(reader.ws as unknown as { _socket: { pause(): void } })._socket.pause()

      const text = writer.doc.getText('t')
      const chunk = 'x'.repeat(256 * 1024)
      await waitFor(
        async () => {
          if (server.sessions.get(reader.sid) === undefined) return true
          text.insert(text.length, chunk)
          await new Promise((resolve) => setImmediate(resolve))
          return false
        },
        'the slow reader to be dropped',
        30_000,
      )
      assert.equal(server.sessions.endOf(reader.sid)?.code, CloseCode.SlowReader)
      assert.match(server.sessions.endOf(reader.sid)?.reason ?? '', /did not read/)
      assert.equal(server.sessions.size, 1, 'only the writer is left')
      await waitFor(() => server.rooms.peek(docId as never)?.peerCount === 1, 'the reader left the room')
      assert.equal((await limitCount(server, 'slow_reader')) - before, 1)
      // The writer was not touched.
      await waitFor(() => writer.isSaved, 'the writer saved everything')
      assert.equal(writerClient.channel.status.state, 'open')
    })
  })

  describe('document size and open rooms', () => {
    let server: TestServer
    before(async () => {
      server = await startServer({ maxDocBytes: 64 * 1024, maxOpenRooms: 2, sessionGraceMs: 200 })
    })
    after(async () => {
      await server.stop()
    })

    it('refuses an update that would grow the document past maxDocBytes with Error 413, and accepts small ones', async () => {
      const { docId } = await server.directory.create()
      const before = await limitCount(server, 'doc_bytes')
      const editor = raw(server)
      await editor.hello
      editor.send(encodeEmptyMessage(docId, MessageType.Join))
      await waitFor(() => server.rooms.peek(docId as never)?.peerCount === 1, 'joined')

      const big = new Y.Doc()
      big.getText('t').insert(0, 'y'.repeat(100 * 1024))
      editor.send(encodeUpdateMessage(docId, 1, Y.encodeStateAsUpdate(big)))
      const [code, message] = (await waitFor(() => editor.errorsFor(docId)[0], 'the refusal'))
      assert.equal(code, DocErrorCode.TooLarge)
      assert.match(message, /would grow past 65536 bytes/)
      assert.equal(server.rooms.peek(docId as never)?.doc.getText('t').length, 0, 'nothing of it was applied')

      const small = new Y.Doc()
      small.getText('t').insert(0, 'fits')
      editor.send(encodeUpdateMessage(docId, 2, Y.encodeStateAsUpdate(small)))
      await waitFor(() => editor.hasSaved(docId, 2), 'the small update saved')
      assert.equal(server.rooms.peek(docId as never)?.doc.getText('t').toString(), 'fits')
      assert.equal((await limitCount(server, 'doc_bytes')) - before, 1)
      assert.equal(editor.ws.readyState, WebSocket.OPEN, 'the session lives on')
    })

    it('refuses a stock y-websocket update past maxDocBytes by closing its socket with 4413', async () => {
      const { docId } = await server.directory.create()
      const ws = new WebSocket(`${server.wsUrl}/yjs/${docId}`)
      await nextEvent(ws, 'open')
      const big = new Y.Doc()
      big.getText('t').insert(0, 'z'.repeat(100 * 1024))
      const update = Y.encodeStateAsUpdate(big)
      // y-websocket framing: Sync(0) • update(2) • varByteArray(update)
      const { createEncoder, writeVarUint, writeVarUint8Array, toUint8Array } = await import('lib0/encoding')
      const encoder = createEncoder()
      writeVarUint(encoder, 0)
      writeVarUint(encoder, 2)
      writeVarUint8Array(encoder, update)
      const closed = nextEvent<[number, Buffer]>(ws, 'close')
      ws.send(toUint8Array(encoder))
      const [code] = await closed
      assert.equal(code, CloseCode.TooLarge)
    })

    it('refuses to open a document past maxOpenRooms with Error 503 and leaves the open ones working', async () => {
      await waitFor(() => server.rooms.size === 0, 'earlier rooms unloaded')
      const before = await limitCount(server, 'open_rooms')
      const ids = await Promise.all([1, 2, 3].map(() => server.directory.create().then((d) => d.docId)))
      const [one, two, three] = [ids[0]!, ids[1]!, ids[2]!]
      const user = raw(server)
      await user.hello
      user.send(encodeEmptyMessage(one, MessageType.Join), encodeEmptyMessage(two, MessageType.Join))
      await waitFor(() => server.rooms.openRooms().length === 2, 'two rooms open')
      user.send(encodeEmptyMessage(three, MessageType.Join))
      const [code, message] = await waitFor(() => user.errorsFor(three)[0], 'the refusal')
      assert.equal(code, DocErrorCode.Busy)
      assert.match(message, /documents open/)
      assert.equal((await limitCount(server, 'open_rooms')) - before, 1)
      // The open documents still work on the same session.
      const edit = new Y.Doc()
      edit.getText('t').insert(0, 'ok')
      user.send(encodeUpdateMessage(one, 1, Y.encodeStateAsUpdate(edit)))
      await waitFor(() => user.hasSaved(one, 1), 'an edit to an open document saved')
    })
  })
})

/** Bytes taken by the varUint at the start of `bytes`. */
function varUintLength(bytes: Uint8Array): number {
  let length = 0
  while (length < bytes.length && (bytes[length]! & 0x80) !== 0) length++
  return length + 1
}
