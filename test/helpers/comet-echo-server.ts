/**
 * A bare Comet server for transport tests: the real session registry and
 * the real WebSocket, streaming and long-poll endpoints, with no rooms
 * behind them. Every message a session receives goes to `onMessage`.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Koa from 'koa'
import { pino } from 'pino'
import { SessionRegistry } from '../../server/comet/session-registry'
import type { Session } from '../../server/comet/session'
import { CometWebSocketEndpoint } from '../../server/comet/websocket-endpoint'
import { cometHttp } from '../../server/comet/http-endpoint'
import { cometStream } from '../../server/comet/stream-endpoint'

/** A running bare Comet server. */
export interface CometEchoServer {
  url: string
  sessions: SessionRegistry
  close(): Promise<void>
}

/** Timings of the bare server, in ms. */
export interface CometEchoOptions {
  pingIntervalMs?: number
  pingTimeoutMs?: number
  sessionGraceMs?: number
  pollHoldMs?: number
  /** Called with each session and each message it receives, in order. */
  onMessage: (session: Session, payload: Uint8Array) => void
}

/** Start a bare Comet server on 127.0.0.1:0. */
export async function startCometEchoServer(options: CometEchoOptions): Promise<CometEchoServer> {
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' })
  const pollHoldMs = options.pollHoldMs ?? 2_000
  const sessions = new SessionRegistry({
    pingIntervalMs: options.pingIntervalMs ?? 2_000,
    pingTimeoutMs: options.pingTimeoutMs ?? 2_000,
    sessionGraceMs: options.sessionGraceMs ?? 5_000,
    maxFrameBytes: 1 << 24,
    maxUnackedFrames: 100_000,
    pollHoldMs,
    transports: ['websocket', 'stream', 'long-poll'],
  })
  sessions.on('session', (session) => session.on('message', (payload) => options.onMessage(session, payload)))
  sessions.start()
  const websocket = new CometWebSocketEndpoint({ sessions, maxMessageBytes: 1 << 24, logger })
  const app = new Koa()
  app.use(cometHttp({ sessions, pollHoldMs, maxBodyBytes: 1 << 24, logger }))
  app.use(cometStream({ sessions, logger }))
  const server = http.createServer(app.callback())
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === '/comet/ws') websocket.handleUpgrade(req, socket, head, url)
    else socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    sessions,
    async close() {
      sessions.closeAll(1001, 'test over')
      websocket.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
