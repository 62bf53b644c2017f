/**
 * Close codes, one table for both sides (see PROTOCOL.md §7). Codes 4xxx
 * follow the Hocuspocus convention of 4000 + the nearest HTTP status, so a
 * code reads like the HTTP error it stands for.
 */
export const CloseCode = {
  /** Normal closure: the client is leaving (tab closed). */
  Normal: 1000,
  /** The endpoint is going away (server shutdown, page unload). */
  GoingAway: 1001,
  /** A frame or message could not be decoded. */
  BadFrame: 4400,
  /** The client is not allowed to do what it asked. */
  Forbidden: 4403,
  /** The document or session does not exist. */
  NotFound: 4404,
  /** The other side missed its pings. */
  Timeout: 4408,
  /** A frame or message was larger than the limit. */
  TooLarge: 4413,
  /** Too many messages or bytes per second. */
  RateLimited: 4429,
  /** The server failed while handling this client; reconnecting may work. */
  InternalError: 4500,
  /** The server is shutting down; follow the advice and reconnect. */
  ShuttingDown: 4503,
  /** A newer transport took over this session. */
  Replaced: 4001,
  /** The session no longer exists on the server; handshake again. */
  SessionUnknown: 4002,
  /** Unacknowledged frames exceeded the resend window. */
  ResendWindowExceeded: 4003,
  /** The client did not read what the server sent; its buffer passed the limit. */
  SlowReader: 4004,
} as const

/** One of the codes in {@link CloseCode}. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode]

const names = new Map<number, string>(Object.entries(CloseCode).map(([name, code]) => [code, name]))

/** The name of a close code for logs, or `"Unknown(<code>)"`. */
export function closeCodeName(code: number): string {
  return names.get(code) ?? `Unknown(${code})`
}

/**
 * Whether a client should try again after this close. A Forbidden or
 * NotFound close will not get better by retrying.
 */
export function isRetryable(code: number): boolean {
  return code !== CloseCode.Forbidden && code !== CloseCode.NotFound
}
