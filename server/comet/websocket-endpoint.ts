/**
 * The Comet WebSocket endpoint: `GET /comet/ws[?sid=<id>&ack=<n>]` upgraded
 * to a WebSocket (PROTOCOL.md §1). With a known `sid` the session resumes;
 * otherwise a new one starts and the handshake says so.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer } from 'ws'
import type { Logger } from 'pino'
import type { SessionRegistry } from './session-registry'
import { WebSocketTransport } from './transports/websocket'
import type { Session } from './session'

/** What the endpoint needs. */
export interface CometWebSocketEndpointOptions {
  sessions: SessionRegistry
  /** Largest WebSocket message accepted, in bytes; larger ones close the socket with 1009. */
  maxMessageBytes: number
  logger: Logger
}

/** Handles upgrades for the Comet channel; route `upgrade` events here explicitly. */
export class CometWebSocketEndpoint {
  private readonly wss: WebSocketServer

  constructor(private readonly options: CometWebSocketEndpointOptions) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes, perMessageDeflate: false })
  }

  /** Upgrade `req` and attach the socket to a new or resumed session. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const transport = new WebSocketTransport(ws)
      const sid = url.searchParams.get('sid')
      const ack = Number(url.searchParams.get('ack') ?? '0')
      const clientAck = Number.isSafeInteger(ack) && ack >= 0 ? ack : 0
      let session: Session | undefined = sid ? this.options.sessions.get(sid) : undefined
      const resumed = session !== undefined && session.state !== 'closed'
      if (!session || !resumed) session = this.options.sessions.create()
      try {
        session.attach(transport, resumed ? clientAck : 0, resumed)
      } catch (error) {
        // A client that acknowledges frames it never got is broken; start afresh.
        this.options.logger.warn({ err: error, sid }, 'could not resume session')
        session = this.options.sessions.create()
        session.attach(transport, 0, false)
      }
      this.options.logger.debug({ sid: session.id, resumed, transport: 'websocket' }, 'comet connection open')
      transport.on('close', (code, reason) => {
        this.options.logger.debug({ sid: session.id, code, reason }, 'comet connection closed')
      })
    })
  }

  /** Stop accepting and close the server side. Sessions are closed by the registry. */
  close(): void {
    this.wss.close()
  }
}
