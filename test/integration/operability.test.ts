/**
 * Operability against a real server: Prometheus metrics at /metrics that
 * move with traffic, one registry per server, and the origin checks on the
 * WebSocket upgrades and Comet HTTP endpoints (with CORS for allow-listed
 * origins only).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { startServer, type TestServer } from '../helpers/start-server'
import { waitFor } from '../helpers/wait-for'

const allowedOrigin = 'https://app.example'

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** An HTTP request with exactly the headers given (fetch would add or refuse some). */
function request(server: TestServer, method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** The value of a sample line `name{labels} value` in Prometheus text, or NaN. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1))
}

async function scrape(server: TestServer): Promise<string> {
  const answer = await request(server, 'GET', '/metrics')
  assert.equal(answer.status, 200)
  assert.match(String(answer.headers['content-type']), /^text\/plain/)
  return answer.body
}

type Attempt = { opened: true; socket: WebSocket; firstMessage: Promise<unknown> } | { opened: false; status: number }

/** Open a WebSocket and resolve once open, or with the HTTP status it was refused with. */
function tryWebSocket(url: string, headers: Record<string, string>): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers })
    // Listening from the start: the first message may arrive with the 101, in the same turn as 'open'.
    const firstMessage = new Promise((resolveMessage) => socket.once('message', resolveMessage))
    socket.once('open', () => resolve({ opened: true, socket, firstMessage }))
    socket.once('unexpected-response', (_req, res) => {
      resolve({ opened: false, status: res.statusCode ?? 0 })
      res.resume()
      socket.terminate()
    })
    socket.once('error', reject)
  })
}

describe('operability', () => {
  let server: TestServer
  let host: string

  before(async () => {
    server = await startServer({ allowedOrigins: [allowedOrigin] })
    host = new URL(server.url).host
  })
  after(async () => {
    await server.stop()
  })

  describe('/metrics', () => {
    it('answers Prometheus text with every Cometpad metric', async () => {
      const text = await scrape(server)
      for (const name of [
        'cometpad_connections',
        'cometpad_sessions',
        'cometpad_open_rooms',
        'cometpad_frames_in_total',
        'cometpad_frames_out_total',
        'cometpad_refused_messages_total',
        'cometpad_store_write_seconds',
        'cometpad_event_loop_lag_seconds',
      ]) {
        assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name)
      }
    })

    it('moves with a y-websocket client that syncs an edit', async () => {
      const before = await scrape(server)
      const framesBefore = sample(before, 'cometpad_frames_in_total')
      const writesBefore = sample(before, 'cometpad_store_write_seconds_count')
      assert.equal(sample(before, 'cometpad_connections{transport="y-websocket"}'), 0)

      const { docId } = await server.directory.create()
      const provider = new WebsocketProvider(`${server.wsUrl}/yjs`, docId, new Y.Doc(), {
        WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
        disableBc: true,
      })
      try {
        await waitFor(() => provider.synced, 'the provider to sync')
        provider.doc.getText('t').insert(0, 'measured')
        const room = await waitFor(() => server.rooms.peek(docId as never), 'the room to open')
        await waitFor(() => room.doc.getText('t').toString() === 'measured', 'the edit to reach the server')

        // The edit reached the room; its durable write lands in the histogram soon after.
        const during = await waitFor(async () => {
          const text = await scrape(server)
          return sample(text, 'cometpad_store_write_seconds_count') > writesBefore ? text : null
        }, 'the store write to be timed')
        assert.equal(sample(during, 'cometpad_connections{transport="y-websocket"}'), 1)
        assert.ok(sample(during, 'cometpad_frames_in_total') > framesBefore, 'frames in moved')
        assert.ok(sample(during, 'cometpad_frames_out_total') > 0, 'frames out moved')
        assert.ok(sample(during, 'cometpad_open_rooms') >= 1, 'a room is open')
      } finally {
        provider.destroy()
        // The provider leaves its Awareness's 3 s check timer running.
        provider.awareness.destroy()
      }
      await waitFor(async () => sample(await scrape(server), 'cometpad_connections{transport="y-websocket"}') === 0, 'the connection gauge to fall back')
    })

    it('counts a Comet session by its transport', async () => {
      const result = await tryWebSocket(`${server.wsUrl}/comet/ws`, {})
      assert.ok(result.opened)
      await result.firstMessage // the handshake
      const text = await scrape(server)
      assert.ok(sample(text, 'cometpad_connections{transport="websocket"}') >= 1)
      assert.ok(sample(text, 'cometpad_sessions') >= 1)
      result.socket.close()
    })

    it('is served by two servers in one process, each with its own registry', async () => {
      const second = await startServer()
      try {
        const [a, b] = await Promise.all([scrape(server), scrape(second)])
        assert.match(a, /cometpad_sessions/)
        assert.match(b, /cometpad_sessions/)
        assert.equal(sample(b, 'cometpad_frames_in_total'), 0, 'the second server counts only its own frames')
      } finally {
        await second.stop()
      }
      // Closing one server leaves the other's metrics alone.
      assert.match(await scrape(server), /cometpad_sessions/)
    })
  })

  describe('origin checks', () => {
    it('refuses a WebSocket upgrade from another origin with 403', async () => {
      const sessionsBefore = server.sessions.size
      for (const path of ['/comet/ws', '/yjs/AAAAAAAAAAAAAAAAAAAAAA']) {
        const result = await tryWebSocket(`${server.wsUrl}${path}`, { Origin: 'http://evil.example' })
        assert.deepEqual(result, { opened: false, status: 403 }, path)
      }
      assert.equal(server.sessions.size, sessionsBefore, 'no session was created for the refused upgrade')
    })

    it('accepts a WebSocket upgrade from the same origin, an allow-listed one, or without Origin', async () => {
      for (const headers of [{ Origin: `http://${host}` }, { Origin: allowedOrigin }, {} as Record<string, string>]) {
        const result = await tryWebSocket(`${server.wsUrl}/comet/ws`, headers)
        assert.ok(result.opened, JSON.stringify(headers))
        result.socket.close()
      }
    })

    it('refuses /comet/poll, /comet/stream and /comet/send from another origin with 403 and a text body', async () => {
      for (const [method, path] of [['GET', '/comet/poll'], ['GET', '/comet/stream'], ['POST', '/comet/send?sid=x']] as const) {
        const answer = await request(server, method, path, { Origin: 'http://evil.example' })
        assert.equal(answer.status, 403, path)
        assert.match(answer.body, /origin http:\/\/evil\.example is not allowed/, path)
        assert.equal(answer.headers['access-control-allow-origin'], undefined, path)
      }
    })

    it('serves /comet/poll to the same origin and to clients without Origin, without CORS headers', async () => {
      for (const headers of [{ Origin: `http://${host}` }, {} as Record<string, string>]) {
        const answer = await request(server, 'GET', '/comet/poll', headers)
        assert.equal(answer.status, 200, JSON.stringify(headers))
        assert.equal(answer.headers['access-control-allow-origin'], undefined)
      }
    })

    it('gives an allow-listed origin CORS headers and answers its preflight', async () => {
      const answer = await request(server, 'GET', '/comet/poll', { Origin: allowedOrigin })
      assert.equal(answer.status, 200)
      assert.equal(answer.headers['access-control-allow-origin'], allowedOrigin)
      assert.match(String(answer.headers.vary), /Origin/)

      const preflight = await request(server, 'OPTIONS', '/comet/send?sid=x', {
        Origin: allowedOrigin,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type',
      })
      assert.equal(preflight.status, 204)
      assert.equal(preflight.headers['access-control-allow-origin'], allowedOrigin)
      assert.match(String(preflight.headers['access-control-allow-methods']), /POST/)
      assert.match(String(preflight.headers['access-control-allow-headers']), /Content-Type/i)
    })
  })
})
