/**
 * Long-poll requests against a real server: a session holds at most one
 * poll, a client hammering polls is closed with 429 / 4429 after an Advice
 * and counted in `cometpad_limit_exceeded_total{limit="polls_per_second"}`,
 * and an honest long-polling client, whose polls the server paces, never
 * pays for them.
 */
import { after, afterEach, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { decodeBatch, FrameKind, type Frame } from '../../common/comet/frame'
import { parseAdvice, parseHandshake } from '../../common/comet/handshake'
import { CloseCode } from '../../common/close-codes'
import { startServer, type TestServer } from '../helpers/start-server'
import { connectPollCountingClient, type TestClient } from '../helpers/comet-client'
import { waitFor } from '../helpers/wait-for'

const max = 1 << 26

interface Answer {
  status: number
  frames: Frame[]
  /** When the answer arrived, in ms since the epoch. */
  at: number
}

async function get(server: TestServer, query = ''): Promise<Answer> {
  const response = await fetch(`${server.url}/comet/poll${query}`, { cache: 'no-store' })
  const bytes = new Uint8Array(await response.arrayBuffer())
  return { status: response.status, frames: bytes.length > 0 ? decodeBatch(bytes, max) : [], at: Date.now() }
}

async function handshake(server: TestServer): Promise<string> {
  const { status, frames } = await get(server)
  assert.equal(status, 200)
  const hello = frames[0]
  assert.equal(hello?.kind, FrameKind.Hello)
  const sid = parseHandshake(hello.kind === FrameKind.Hello ? hello.json : '')?.sid
  assert.ok(sid)
  return sid
}

async function limitCount(server: TestServer, limit: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const match = new RegExp(`^cometpad_limit_exceeded_total\\{limit="${limit}"\\} (\\d+)$`, 'm').exec(text)
  assert.ok(match, `no cometpad_limit_exceeded_total{limit="${limit}"} in /metrics`)
  return Number(match[1])
}

describe('long-poll limits', () => {
  let server: TestServer
  const clients: TestClient[] = []
  const pollHoldMs = 10_000

  before(async () => {
    server = await startServer({ maxPollsPerSecond: 5, pollHoldMs })
  })
  afterEach(() => {
    for (const client of clients.splice(0)) client.close()
  })
  after(async () => {
    await server.stop()
  })

  it('holds at most one poll per session: a newer poll answers the held one at once, empty', async () => {
    const sid = await handshake(server)
    const session = server.sessions.get(sid)
    assert.ok(session)
    const startedAt = Date.now()
    const first = get(server, `?sid=${sid}&ack=0`)
    await waitFor(() => session.currentTransport?.isWaiting, 'the first poll to be held')
    const second = get(server, `?sid=${sid}&ack=0`)
    const answered = await first
    assert.equal(answered.status, 200)
    assert.deepEqual(answered.frames, [], 'the superseded poll is answered empty')
    assert.ok(answered.at - startedAt < pollHoldMs / 2, `answered after ${answered.at - startedAt} ms, not held for pollHoldMs`)
    await waitFor(() => session.currentTransport?.isWaiting, 'the second poll to be held')
    // The one held poll carries what comes next.
    session.send(new Uint8Array([7]))
    const next = await second
    assert.deepEqual(next.frames, [{ kind: FrameKind.Data, seq: 1, payload: new Uint8Array([7]) }])
    assert.equal(session.state, 'attached')
    session.close(CloseCode.Normal, 'test over')
  })

  it('closes a session hammering polls with 429, an Advice and Close 4429, and counts it', async () => {
    const before = await limitCount(server, 'polls_per_second')
    const sid = await handshake(server)
    // Thirty polls at once, each superseding the one before: far past the burst of 10.
    const answers = await Promise.all(Array.from({ length: 30 }, () => get(server, `?sid=${sid}&ack=0`)))
    const refused = answers.filter((answer) => answer.status === 429)
    assert.ok(refused.length >= 1, `statuses: ${answers.map((a) => a.status).join(' ')}`)
    const [advice, close] = refused[0]!.frames
    assert.equal(advice?.kind, FrameKind.Advice)
    const parsed = parseAdvice(advice.kind === FrameKind.Advice ? advice.json : '')
    assert.equal(parsed?.reconnect, 'retry')
    assert.ok((parsed?.retryAfterMs ?? 0) > 0 && (parsed?.retryAfterMs ?? 0) <= 2_000, `retryAfterMs ${parsed?.retryAfterMs}`)
    assert.deepEqual(close, { kind: FrameKind.Close, code: CloseCode.RateLimited, reason: 'more than 5 polls per second' })
    assert.equal(server.sessions.get(sid), undefined, 'the session ended')
    assert.equal(server.sessions.endOf(sid)?.code, CloseCode.RateLimited)
    assert.equal((await limitCount(server, 'polls_per_second')) - before, 1)
    // A late poll learns why the session ended.
    const late = await get(server, `?sid=${sid}&ack=0`)
    assert.equal(late.status, 404)
    assert.equal((late.frames[0] as { code?: number } | undefined)?.code, CloseCode.RateLimited)
  })

  it('never charges an honest long-polling client for polls the server paced', async () => {
    const before = await limitCount(server, 'polls_per_second')
    const { docId } = await server.directory.create()
    const client = connectPollCountingClient(server.url)
    clients.push(client)
    const provider = client.open(docId)
    await waitFor(() => provider.status.synced, 'the provider to sync')
    const sid = client.channel.sessionId
    const text = provider.doc.getText('t')
    // Each edit is a POST (its answer carries the Ack), then a Saved
    // answers the held poll: a poll per edit, far more than the burst of 10.
    for (let i = 0; i < 30; i++) {
      text.insert(text.length, `${i} `)
      await waitFor(() => provider.isSaved, `edit ${i} to be saved`)
    }
    assert.ok(client.polls >= 30, `the client polled ${client.polls} times`)
    assert.equal(client.channel.sessionId, sid, 'one session throughout')
    assert.equal(server.sessions.get(sid ?? '')?.state, 'attached')
    assert.equal((await limitCount(server, 'polls_per_second')) - before, 0)
  })
})
