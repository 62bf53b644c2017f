/**
 * How the client Channel gets batches of frames on and off the wire. One
 * implementation per transport; the Channel owns the codec, ordering and
 * acknowledgement, a transport only moves bytes.
 */
import type { Observable } from '../../common/observable'
import type { TransportName } from '../../common/comet/handshake'

/** Events every client transport emits. */
export type ClientTransportEvents = {
  /** The transport can carry batches. */
  open: () => void
  /** One inbound batch. */
  batch: (bytes: Uint8Array) => void
  /**
   * The server answered without frames (an empty long-poll response, a
   * 204): proof of life for the channel's silence watchdog. A long-polling
   * client with a held poll is never pinged (PROTOCOL.md §1 "Liveness"),
   * so without this an idle long-poll channel would look dead. WebSocket
   * never emits it.
   */
  alive: () => void
  /** The transport is gone; `wasOpen` is false when it never opened. */
  close: (code: number, reason: string, wasOpen: boolean) => void
}

/** A client-side transport. */
export interface ClientTransport extends Observable<ClientTransportEvents> {
  readonly name: TransportName
  /** Whether every request already tells the server the channel's ack (long-polling), so no ack needs sending alone. */
  readonly acksEveryRequest?: boolean
  /** Send one encoded batch. */
  send(batch: Uint8Array): void
  /** Close; emits `close` once. Idempotent. */
  close(code: number, reason: string): void
}

/**
 * What a transport may know of the session it carries. WebSocket needs it
 * only to open (resume); long-polling puts the current `sid` and `ack` on
 * every request.
 */
export interface TransportContext {
  /** The session to resume past `ack`, or null for a new session. */
  resume: { sid: string; ack: number } | null
  /** The session id once a Hello gave one (changes on a new session). */
  sessionId(): string | null
  /** The highest downstream Data seq the channel has applied. */
  lastReceivedSeq(): number
  /**
   * Open an upgrade probe for the session in `resume` (WebSocket only,
   * PROTOCOL.md §5): the server answers Ping and waits for Upgrade.
   */
  probe?: boolean
}

/** Opens a transport to the server. */
export type TransportFactory = (context: TransportContext) => ClientTransport
