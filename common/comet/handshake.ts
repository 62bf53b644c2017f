/**
 * The handshake a server sends as the first frame of every connection, and
 * the reconnect advice it may send at any time (PROTOCOL.md §3). Modelled on
 * Bayeux's "advice": the server, not the client, decides how clients come back.
 */

/** Names of the transports a channel can ride on. */
export type TransportName = 'websocket' | 'long-poll' | 'stream'

/** How a client should reconnect after its connection ends. */
export interface Advice {
  /**
   * `"retry"`: reconnect and resume the same session;
   * `"handshake"`: reconnect with a fresh session (the old one is gone);
   * `"none"`: do not reconnect (the client is refused for good).
   */
  reconnect: 'retry' | 'handshake' | 'none'
  /** Wait at least this long before reconnecting, in ms; the client adds backoff and jitter on top. */
  retryAfterMs: number
}

/** The server's handshake, JSON in a Hello frame. */
export interface Handshake {
  /** Protocol version; see PROTOCOL.md §8. */
  v: 1
  /** The session id; pass it back as `sid` to resume after a drop. */
  sid: string
  /** Whether this connection resumed an existing session (false: a fresh one). */
  resumed: boolean
  /** The highest Data seq the server has received from this client (0: none). */
  ack: number
  /** Transports this server accepts, best first. */
  transports: TransportName[]
  /** Ping interval and timeout the server uses, in ms. */
  pingIntervalMs: number
  pingTimeoutMs: number
  /** How long the server holds a long-poll request, in ms (long-polling only). */
  pollHoldMs?: number
  /** Advice in force until a newer Advice frame. */
  advice: Advice
}

/** Parse a Hello frame's JSON; returns null when it is not a handshake this client understands. */
export function parseHandshake(json: string): Handshake | null {
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const h = value as Partial<Handshake>
  if (h.v !== 1 || typeof h.sid !== 'string' || !isCount(h.ack)) return null
  if (!isCount(h.pingIntervalMs) || !isCount(h.pingTimeoutMs)) return null
  const advice = parseAdvice(h.advice)
  if (!advice) return null
  return {
    v: 1,
    sid: h.sid,
    resumed: h.resumed === true,
    ack: h.ack,
    transports: Array.isArray(h.transports) ? h.transports.filter(isTransportName) : ['websocket'],
    pingIntervalMs: h.pingIntervalMs,
    pingTimeoutMs: h.pingTimeoutMs,
    ...(isCount(h.pollHoldMs) ? { pollHoldMs: h.pollHoldMs } : {}),
    advice,
  }
}

/** Validate advice from JSON (a Hello field or an Advice frame). */
export function parseAdvice(value: unknown): Advice | null {
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value)
    } catch {
      return null
    }
  }
  if (typeof value !== 'object' || value === null) return null
  const a = value as Partial<Advice>
  if (a.reconnect !== 'retry' && a.reconnect !== 'handshake' && a.reconnect !== 'none') return null
  const retryAfterMs = typeof a.retryAfterMs === 'number' && a.retryAfterMs >= 0 ? a.retryAfterMs : 0
  return { reconnect: a.reconnect, retryAfterMs }
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
}

function isTransportName(value: unknown): value is TransportName {
  return value === 'websocket' || value === 'long-poll' || value === 'stream'
}
