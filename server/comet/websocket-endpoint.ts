/**
 * The Comet WebSocket endpoint: `GET /comet/ws[?sid=<id>&ack=<n>]` upgraded
 * to a WebSocket (PROTOCOL.md §1). With a known `sid` the session resumes;
 * otherwise a new one starts and the handshake says so.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type Server } from 'ws'
import type { Logger } from 'pino'
import type { SessionRegistry } from './session-registry'
import { CometSocket, WebSocketTransport } from './transports/websocket'
import type { Session } from './session'
import { CloseCode } from '../../common/close-codes'
import { decodeBatch, encodeBatch, FrameKind } from '../../common/comet/frame'
import { peerAddress } from '../util/ip-counter'

/** What the endpoint needs. */
export interface CometWebSocketEndpointOptions {
  sessions: SessionRegistry
  /** Largest WebSocket message accepted, in bytes; larger ones close the socket with 1009. */
  maxMessageBytes: number
  logger: Logger
  /** Close a probing WebSocket that does not upgrade within this long, in ms. @default 10000 */
  probeTimeoutMs?: number
}

/** Handles upgrades for the Comet channel; route `upgrade` events here explicitly. */
export class CometWebSocketEndpoint {
  private readonly wss: Server<typeof CometSocket>

  constructor(private readonly options: CometWebSocketEndpointOptions) {
    // No client tracking: the registry reaches every socket through its
    // session, and ws's set would cost each connection a closure, its
    // context and a set entry.
    this.wss = new WebSocketServer<typeof CometSocket>({
      noServer: true,
      clientTracking: false,
      maxPayload: options.maxMessageBytes,
      perMessageDeflate: false,
      WebSocket: CometSocket,
    })
  }

  /** Upgrade `req` and attach the socket to a new or resumed session. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    const ip = peerAddress(req.socket)
    const sid = url.searchParams.get('sid')
    const isProbe = url.searchParams.get('probe') === '1'
    const known = sid ? this.options.sessions.get(sid) : undefined
    // Only a new session counts against its address: a resume or a probe moves one it has.
    if (!isProbe && (!known || known.state === 'closed') && !this.options.sessions.admit(ip)) {
      socket.end('HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\ntoo many sessions from this address\n')
      return
    }
    const ack = Number(url.searchParams.get('ack') ?? '0')
    const clientAck = Number.isSafeInteger(ack) && ack >= 0 ? ack : 0
    // The callback gets only what it needs: whatever it closes over stays
    // alive as long as the connection (the request and its URL need not).
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onUpgraded(ws, ip, sid, isProbe, clientAck))
  }

  private onUpgraded(ws: CometSocket, ip: string, sid: string | null, isProbe: boolean, clientAck: number): void {
    const transport = new WebSocketTransport(ws, this.options.logger)
    if (isProbe) {
      this.probe(transport, sid)
      return
    }
    let session: Session | undefined = sid ? this.options.sessions.get(sid) : undefined
    const resumed = session !== undefined && session.state !== 'closed'
    if (!session || !resumed) session = this.options.sessions.create(ip, 'websocket')
    try {
      session.attach(transport, resumed ? clientAck : 0, resumed)
    } catch (error) {
      // A client that acknowledges frames it never got is broken; start afresh.
      this.options.logger.warn({ err: error, sid }, 'could not resume session')
      session = this.options.sessions.create(ip, 'websocket')
      session.attach(transport, 0, false)
    }
    // Sessions log their one open and one close line at info (SessionRegistry);
    // the connections that carry them, at debug (the transport logs its close).
    transport.sessionId = session.id
    this.options.logger.debug({ sid: session.id, resumed, transport: 'websocket' }, 'comet connection open')
  }

  /**
   * An upgrade probe (PROTOCOL.md §5): a client on long-polling checks that
   * WebSocket works before it moves its session here. Answer Ping with
   * Pong without touching the session; on Upgrade{ack}, attach.
   */
  private probe(transport: WebSocketTransport, sid: string | null): void {
    const session = sid ? this.options.sessions.get(sid) : undefined
    if (!session || session.state === 'closed') {
      transport.send(encodeBatch([{ kind: FrameKind.Close, code: CloseCode.SessionUnknown, reason: 'no such session to upgrade' }]))
      transport.close(CloseCode.SessionUnknown, 'no such session to upgrade')
      return
    }
    const timer = setTimeout(() => transport.close(CloseCode.Timeout, 'the upgrade did not complete in time'), this.options.probeTimeoutMs ?? 10_000)
    timer.unref()
    const receiveBatch = (bytes: Uint8Array) => {
      let frames
      try {
        frames = decodeBatch(bytes, this.options.maxMessageBytes)
      } catch (error) {
        transport.close(CloseCode.BadFrame, (error as Error).message)
        return
      }
      for (const frame of frames) {
        if (frame.kind === FrameKind.Ping) {
          transport.send(encodeBatch([{ kind: FrameKind.Pong, nonce: frame.nonce }]))
        } else if (frame.kind === FrameKind.Upgrade) {
          clearTimeout(timer)
          transport.receiver = null
          if (session.state === 'closed') {
            transport.close(CloseCode.SessionUnknown, 'the session ended during the upgrade')
            return
          }
          try {
            session.attach(transport, frame.ack, true)
            transport.sessionId = session.id
            this.options.logger.debug({ sid: session.id, transport: 'websocket' }, 'comet session upgraded')
          } catch (error) {
            transport.close(CloseCode.BadFrame, (error as Error).message)
          }
          return
        } else {
          transport.close(CloseCode.BadFrame, 'a probing WebSocket carries only Ping and Upgrade')
          return
        }
      }
    }
    transport.receiver = { receiveBatch, transportClosed: () => clearTimeout(timer) }
  }

  /** Stop accepting and close the server side. Sessions are closed by the registry. */
  close(): void {
    this.wss.close()
  }
}
