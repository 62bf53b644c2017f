/**
 * The browser's Channel and CometProvider against a real server over HTTP
 * long-polling (Node's fetch): convergence with long-polling and WebSocket
 * clients side by side, fallback from a blocked WebSocket, an idle channel
 * outliving several held polls, and a resume after a cut connection.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { ChannelOptions } from '../../client/comet/channel'
import { startServer, type TestServer } from '../helpers/start-server'
import { connectClient, type TestClient } from '../helpers/comet-client'
import { startTcpProxy } from '../helpers/tcp-proxy'
import { waitFor } from '../helpers/wait-for'

interface LongPollClient extends TestClient {
  /** Requests made so far, by path. */
  requests: { poll: number; send: number }
}

/** `connectClient` over long-polling (or with `options` choosing the transports), counting requests. */
function connectLongPollClient(httpUrl: string, options: Partial<ChannelOptions> = {}): LongPollClient {
  const requests = { poll: 0, send: 0 }
  const client = connectClient(httpUrl, {
    transports: ['long-poll'],
    fetch: (input, init) => {
      const path = new URL(input instanceof Request ? input.url : input).pathname
      if (path === '/comet/poll') requests.poll++
      else if (path === '/comet/send') requests.send++
      return fetch(input, init)
    },
    ...options,
  })
  return { ...client, requests }
}

describe('Comet channel over long-polling', () => {
  let server: TestServer
  const clients: TestClient[] = []
  const track = <C extends TestClient>(client: C): C => {
    clients.push(client)
    return client
  }

  before(async () => {
    server = await startServer({ pingIntervalMs: 300, pingTimeoutMs: 300, sessionGraceMs: 2_000, pollHoldMs: 400 })
  })
  after(async () => {
    for (const client of clients) client.close()
    await server.stop()
  })

  it('converges a long-polling user with a WebSocket user and confirms every change as saved', async () => {
    const { docId } = await server.directory.create()
    const lp = track(connectLongPollClient(server.url))
    const a = lp.open(docId)
    const b = track(connectClient(server.url)).open(docId)
    await waitFor(() => a.status.synced && b.status.synced, 'both synced')
    assert.deepEqual(lp.channel.status, { state: 'open', transport: 'long-poll' })
    const textA = a.doc.getText('t')
    const textB = b.doc.getText('t')
    for (let i = 0; i < 30; i++) {
      textA.insert(textA.length, `a${i} `)
      textB.insert(0, `b${i} `)
    }
    await waitFor(() => textA.toString() === textB.toString() && textA.toString().includes('a29') && textA.toString().includes('b29'), 'convergence')
    await waitFor(() => a.isSaved && b.isSaved, 'all changes saved')
  })

  it('converges two long-polling users', async () => {
    const { docId } = await server.directory.create()
    const a = track(connectLongPollClient(server.url)).open(docId)
    const b = track(connectLongPollClient(server.url)).open(docId)
    await waitFor(() => a.status.synced && b.status.synced, 'both synced')
    a.doc.getText('t').insert(0, 'hello ')
    b.doc.getText('t').insert(0, 'world ')
    await waitFor(() => a.doc.getText('t').length === 12 && a.doc.getText('t').toString() === b.doc.getText('t').toString(), 'convergence')
    await waitFor(() => a.isSaved && b.isSaved, 'saved')
  })

  it('falls back to long-polling when the WebSocket endpoint is blocked, and remembers it', async () => {
    const { docId } = await server.directory.create()
    const memory = new Map<string, string>()
    const client = track(
      connectLongPollClient(server.url, {
        // A proxy that refuses the upgrade: the WebSocket fails before any frame.
        url: `${server.wsUrl}/blocked/comet/ws`,
        transports: ['websocket', 'long-poll'],
        memory: { getItem: (key) => memory.get(key) ?? null, setItem: (key, value) => void memory.set(key, value) },
      }),
    )
    const a = client.open(docId)
    await waitFor(() => a.status.synced, 'synced over the fallback')
    assert.equal(client.channel.status.transport, 'long-poll')
    assert.deepEqual([...memory.values()], ['long-poll'])
  })

  it('stays open while idle across several held polls (empty answers count as liveness)', async () => {
    const client = track(connectLongPollClient(server.url))
    let opens = 0
    client.channel.on('open', () => opens++)
    await waitFor(() => client.channel.status.state === 'open', 'open')
    const opensBefore = opens
    const pollsBefore = client.requests.poll
    // pollHoldMs 400 > pingIntervalMs + pingTimeoutMs 600 is false, but the
    // server never pings a client holding a poll: only the empty answers
    // tell the channel the server is alive.
    await waitFor(() => client.requests.poll >= pollsBefore + 6, 'six more polls', 10_000)
    assert.equal(opens, opensBefore, 'no reconnect while idle')
    assert.equal(client.channel.status.state, 'open')
  })

  // TODO: passes once the server answers a poll carrying `hello` with a
  // fresh Hello (see `helloParam` in client/comet/transports/long-poll.ts).
  // Until then the client cannot resume over long-polling while the server
  // still has the old connection attached: it starts a new session instead,
  // which converges (the edits arrive) but fails the same-sid assertion.
  it('resumes its session after the connections are cut, without losing or repeating edits', async () => {
    const { docId } = await server.directory.create()
    const proxy = await startTcpProxy(Number(new URL(server.url).port))
    after(() => proxy.close())
    const lp = track(connectLongPollClient(proxy.url))
    const a = lp.open(docId)
    const b = track(connectClient(server.url)).open(docId)
    await waitFor(() => a.status.synced && b.status.synced, 'synced')
    const sid = lp.channel.sessionId
    const textA = a.doc.getText('t')
    textA.insert(0, 'before ')
    await waitFor(() => b.doc.getText('t').toString() === 'before ', 'first edit')
    proxy.cutAll()
    textA.insert(textA.length, 'during ')
    b.doc.getText('t').insert(0, '> ')
    await waitFor(() => lp.channel.status.state === 'open' && lp.channel.unackedCount === 0 && textA.toString() === '> before during ', 'the channel to reconnect and deliver both ways')
    assert.equal(lp.channel.sessionId, sid, 'the same session resumed')
    textA.insert(textA.length, 'after')
    await waitFor(() => b.doc.getText('t').toString() === '> before during after', 'all edits exactly once')
    await waitFor(() => a.isSaved, 'saved')
  })

  it('ends its session on close(): the server forgets it at once', async () => {
    const client = connectLongPollClient(server.url)
    await waitFor(() => client.channel.status.state === 'open', 'open')
    const sid = client.channel.sessionId
    assert.ok(sid)
    assert.ok(server.sessions.get(sid))
    client.close()
    await waitFor(() => !server.sessions.get(sid) || server.sessions.get(sid)?.state === 'closed', 'the session to end')
  })
})
