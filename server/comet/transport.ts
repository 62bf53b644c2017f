/**
 * How a Session gets batches of frames on and off the wire. One
 * implementation per transport (WebSocket now; long-poll and streaming later).
 * A transport knows bytes, not frames: the Session owns the codec.
 */
import type { TransportName } from '../../common/comet/handshake'

/**
 * What a transport reports to: the session it carries, or an upgrade probe.
 * One object set on the transport rather than event listeners: a server
 * holds a transport per connected client, and listeners would cost each
 * of them closures, their contexts and a listener table (heap snapshot,
 * `npm run bench -- --only=memory`).
 */
export interface TransportReceiver {
  /** One inbound batch (one WebSocket message, one POST body). */
  receiveBatch(bytes: Uint8Array): void
  /**
   * The transport is gone. `isClean` is true when the client said goodbye
   * (a Close frame or a normal WebSocket close), false for a drop, after
   * which the session waits for the client to resume.
   */
  transportClosed(code: number, reason: string, isClean: boolean): void
}

/** A server-side transport carrying one session. */
export interface ServerTransport {
  readonly name: TransportName
  /** Who gets this transport's batches and its close; null drops them. */
  receiver: TransportReceiver | null
  /** Send one encoded batch. Must not throw; a dead transport drops it (the session resends). */
  send(batch: Uint8Array): void
  /** Bytes accepted by `send` and not yet handed to the kernel (slow-reader detection). */
  readonly bufferedBytes: number
  /**
   * True while the client holds a request open on this transport (a held
   * long poll): the client is alive even though it sends nothing.
   */
  readonly isWaiting?: boolean
  /**
   * Drop batches accepted by `send` and not yet written (the session is
   * about to send their frames again). Transports that write at once have
   * nothing to drop.
   */
  clearQueued?(): void
  /** Close with a code and a human-readable reason. Idempotent. */
  close(code: number, reason: string): void
  /** Drop the connection now, without waiting for unsent bytes or a close handshake (a slow reader). */
  abort?(): void
}
