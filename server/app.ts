/**
 * `createServer(config)`: the whole Cometpad server, built from its parts
 * with no module-level state, and torn down by `close()`.
 *
 *   Koa app ── errors ── /metrics ── origin check (/comet/*) ── Comet HTTP ── routes (pages, API, health)
 *   upgrade ── origin check ── /comet/ws → CometWebSocketEndpoint ── Session ── ChannelRouter ── RoomRegistry ── DocStore
 *                           └─ /yjs/<id> → YWebSocketEndpoint ───────────────────────────────┘
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import Koa from 'koa'
import { pino, type Logger } from 'pino'
import { CloseCode } from '../common/close-codes'
import type { Config } from './config'
import { SessionRegistry } from './comet/session-registry'
import { CometWebSocketEndpoint } from './comet/websocket-endpoint'
import { cometHttpHandler } from './comet/http-endpoint'
import { cometStream } from './comet/stream-endpoint'
import { ChannelRouter } from './channel-router'
import { YWebSocketEndpoint } from './compat/y-websocket'
import { DocDirectory } from './docs/doc-directory'
import { RoomRegistry } from './rooms/room-registry'
import type { DocStore, HealthReporting } from './storage/doc-store'
import { LevelDocStore } from './storage/level-doc-store'
import { errors } from './http/errors'
import { routes } from './http/routes'
import { StaticClient, defaultClientDir } from './http/static-client'
import { ServerMetrics } from './http/metrics'
import { guardUpgrade, originGuard } from './http/origin'
import { IpCounter } from './util/ip-counter'

/** Parts a caller may supply instead of the defaults (tests). */
export interface ServerDeps {
  logger?: Logger
  /** The store; by default LevelDB in `config.dataDir`. */
  store?: DocStore & HealthReporting
  /** Where the built client is. */
  clientDir?: string
}

/** A running server. */
export interface CometpadServer {
  readonly httpServer: http.Server
  /** `http://host:port` once listening. */
  readonly url: string
  readonly store: DocStore & HealthReporting
  readonly rooms: RoomRegistry
  readonly sessions: SessionRegistry
  readonly directory: DocDirectory
  readonly logger: Logger
  /** This server's Prometheus metrics (also at `GET /metrics`). */
  readonly metrics: ServerMetrics
  /**
   * Stop: refuse new connections, advise clients to reconnect later, wait
   * for every pending write, close the store.
   */
  close(): Promise<void>
}

/** The server's structured log, at the configured level. */
export function createLogger(config: Config): Logger {
  return pino({ level: config.logLevel, base: { app: 'cometpad' } })
}

/** Create, start and return a server listening on `config.host:config.port`. */
export async function createServer(config: Config, deps: ServerDeps = {}): Promise<CometpadServer> {
  const logger = deps.logger ?? createLogger(config)
  const metrics = new ServerMetrics()
  let rawStore: DocStore & HealthReporting
  try {
    rawStore = deps.store ?? (await LevelDocStore.open({ dir: config.dataDir, logger }))
  } catch (error) {
    metrics.close()
    throw error
  }
  const store = metrics.timeAppends(rawStore)
  const directory = new DocDirectory(store)
  const rooms = new RoomRegistry({ store, logger, maxOpenRooms: config.maxOpenRooms, maxDocBytes: config.maxDocBytes, onRoomsFull: () => metrics.countLimit('open_rooms') })
  // One count per client address across every endpoint (Comet sessions and y-websocket sockets).
  const perIp = new IpCounter(config.maxSessionsPerIp)
  const sessions = new SessionRegistry({
    pingIntervalMs: config.pingIntervalMs,
    pingTimeoutMs: config.pingTimeoutMs,
    sessionGraceMs: config.sessionGraceMs,
    maxFrameBytes: config.maxFrameBytes,
    maxUnackedFrames: 4096,
    pollHoldMs: config.pollHoldMs,
    transports: ['websocket', 'stream', 'long-poll'],
    frameCounts: metrics.frameCounts,
    maxMessagesPerSecond: config.maxMessagesPerSecond,
    maxBytesPerSecond: config.maxBytesPerSecond,
    maxPollsPerSecond: config.maxPollsPerSecond,
    slowReaderBytes: config.slowReaderBytes,
    perIp,
    onLimitExceeded: metrics.countLimit,
    logger,
  })
  new ChannelRouter({ sessions, rooms, directory, logger, onRefused: metrics.countRefusal })
  const comet = new CometWebSocketEndpoint({ sessions, maxMessageBytes: config.maxFrameBytes, logger })
  const yws = new YWebSocketEndpoint({
    rooms,
    directory,
    logger,
    maxMessageBytes: config.maxFrameBytes,
    pingIntervalMs: 30_000,
    frameCounts: metrics.frameCounts,
    onRefused: metrics.countRefusal,
    maxMessagesPerSecond: config.maxMessagesPerSecond,
    maxBytesPerSecond: config.maxBytesPerSecond,
    slowReaderBytes: config.slowReaderBytes,
    perIp,
    onLimitExceeded: metrics.countLimit,
  })
  metrics.watch({ sessions, rooms, yWebSocketConnections: () => yws.connectionCount })
  const client = new StaticClient(deps.clientDir ?? defaultClientDir())
  if (!client.isBuilt) logger.warn({ dir: client.dir }, 'the browser client is not built; run `npm run build`')

  const app = new Koa({ proxy: false })
  app.silent = true
  app.use(errors(logger))
  app.use(metrics.middleware())
  app.use(originGuard({ paths: ['/comet/poll', '/comet/send', '/comet/stream'], allowedOrigins: config.allowedOrigins, logger }))
  app.use(cometStream({ sessions, logger }))
  app.use(routes({ directory, store, client }))
  // Long-poll requests skip Koa (see cometHttpHandler); everything else goes through it.
  const longPoll = cometHttpHandler({ sessions, pollHoldMs: config.pollHoldMs, maxBodyBytes: config.maxFrameBytes, logger, allowedOrigins: config.allowedOrigins })
  const koa = app.callback()
  const httpServer = http.createServer((req, res) => {
    if (!longPoll(req, res)) void koa(req, res)
  })
  // One listener for every upgrading socket, not a closure each (it stays on the socket for its life).
  const onUpgradeSocketError = (error: Error) => logger.debug({ err: error }, 'socket error during upgrade')
  httpServer.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', onUpgradeSocketError)
    const url = new URL(req.url ?? '/', 'http://localhost')
    const isEndpoint = url.pathname === '/comet/ws' || url.pathname.startsWith('/yjs/')
    // Before the upgrade: a refused page never gets a socket, so never a session.
    if (isEndpoint && !guardUpgrade(req, socket, config.allowedOrigins, logger)) return
    if (url.pathname === '/comet/ws') {
      comet.handleUpgrade(req, socket, head, url)
      return
    }
    const match = /^\/yjs\/([^/]*)$/.exec(url.pathname)
    if (match) {
      let address: string
      try {
        address = decodeURIComponent(match[1]!)
      } catch {
        address = ''
      }
      yws.handleUpgrade(req, socket, head, address)
      return
    }
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nno WebSocket endpoint here\n')
  })

  sessions.start()
  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject)
      httpServer.listen(config.port, config.host, () => {
        httpServer.off('error', reject)
        resolve()
      })
    })
  } catch (error) {
    // The event-loop monitor would outlive a server that never started.
    metrics.close()
    throw error
  }
  const address = httpServer.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `http://${host}:${address.port}`

  let closing: Promise<void> | null = null
  const close = (): Promise<void> => {
    closing ??= (async () => {
      httpServer.close()
      for (const session of sessions.all()) session.setAdvice({ reconnect: 'handshake', retryAfterMs: 1_000 })
      sessions.closeAll(CloseCode.ShuttingDown, 'the server is restarting; reconnect shortly')
      yws.close(CloseCode.GoingAway, 'the server is restarting')
      comet.close()
      await rooms.closeAll()
      httpServer.closeAllConnections()
      await store.close()
      metrics.close()
    })()
    return closing
  }

  return { httpServer, url, store, rooms, sessions, directory, logger, metrics, close }
}
