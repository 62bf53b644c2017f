/**
 * All a Room may do with a client. The Comet channel (one per browser,
 * many documents) and the y-websocket endpoint (one socket per document)
 * both wrap their clients as Peers, so rooms never learn the transport.
 */

/** A client of one room. */
export interface Peer {
  /** For logs: which connection and document this is. */
  readonly id: string
  /** Whether this client may change the document (an edit link) or only read it (a view link). */
  readonly canWrite: boolean
  /**
   * Whether the client understands Cometpad's own message types (Saved,
   * Error). A stock y-websocket client does not and must not be sent them.
   */
  readonly speaksCometpad: boolean
  /** Send one room message: `varUint(messageType) • body`. */
  send(message: Uint8Array): void
  /** Remove this client from the room, telling it why. */
  close(code: number, reason: string): void
}
