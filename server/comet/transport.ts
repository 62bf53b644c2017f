/**
 * How a Session gets batches of frames on and off the wire. One
 * implementation per transport (WebSocket now; long-poll and streaming later).
 * A transport knows bytes, not frames: the Session owns the codec.
 */
import type { Observable } from '../../common/observable'
import type { TransportName } from '../../common/comet/handshake'

/** Events every server transport emits. */
export type ServerTransportEvents = {
  /** One inbound batch (one WebSocket message, one POST body). */
  batch: (bytes: Uint8Array) => void
  /**
   * The transport is gone. `isClean` is true when the client said goodbye
   * (a Close frame or a normal WebSocket close), false for a drop, after
   * which the session waits for the client to resume.
   */
  close: (code: number, reason: string, isClean: boolean) => void
}

/** A server-side transport carrying one session. */
export interface ServerTransport extends Observable<ServerTransportEvents> {
  readonly name: TransportName
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
