/**
 * Timeouts and size limits both sides agree on. One source of truth: the
 * server may override the timing values in its handshake; the client then
 * follows the handshake, never these defaults.
 */

/** How often the server sends a Ping frame on an idle channel. @default 15000 */
export const pingIntervalMs = 15_000

/**
 * How long either side waits past a missed ping before it declares the other
 * side dead. A silent peer is therefore dropped within
 * `pingIntervalMs + pingTimeoutMs` (25 s by default). @default 10000
 */
export const pingTimeoutMs = 10_000

/**
 * How long the server keeps a session whose transport dropped without a
 * clean close, so that a client that reconnects in time resumes it without
 * loss. A client that closed cleanly (tab closed) is dropped at once.
 * @default 10000
 */
export const sessionGraceMs = 10_000

/**
 * How long the server holds a long-poll request when nothing is waiting.
 * Below the 30–60 s idle timeouts common in proxies, so a held poll is
 * answered before a middlebox gives up on it. @default 25000
 */
export const pollHoldMs = 25_000

/** How long a client waits for a WebSocket to open before it counts as failed. @default 5000 */
export const connectTimeoutMs = 5_000

/** Largest frame payload either side accepts, in bytes. @default 16 MiB */
export const maxFrameBytes = 16 * 1024 * 1024

/**
 * How many unacknowledged downstream frames a session keeps for resending.
 * Past this the session cannot guarantee delivery and is closed; the client
 * starts a fresh session and resynchronises its documents. @default 4096
 */
export const maxUnackedFrames = 4096

/**
 * Delayed acknowledgement: a receiver acks Data frames on its next upstream
 * batch, or alone after this long, in ms. An ack only lets the sender drop
 * frames it keeps for a resume, so it can wait: a client that only reads a
 * busy document sends one message every few seconds instead of one a
 * second, which at 1 s was nearly as many messages as the writers' updates
 * reaching the server (100 documents × 10 clients, `npm run bench`). Short
 * against the ping timeout (a reader's acks are also its sign of life) and
 * the sender's outbox limits. @default 5000
 */
export const ackDelayMs = 5_000

/**
 * ... or alone at once when this many Data frames wait for an ack (a
 * client draws its count between half of this and all of it, anew after
 * each ack, so that the clients of one document do not all ack together),
 * which bounds what the sender keeps per session (frames share their payload
 * bytes with the other sessions of a room, so a kept frame costs tens of
 * bytes) well under `maxUnackedFrames`. @default 256
 */
export const ackEveryFrames = 256

/** Reconnect backoff: first delay, cap, and jitter share. */
export const reconnectBaseMs = 250
/** @default 10000 */
export const reconnectMaxMs = 10_000

/**
 * Server-side abuse limits (server/config.ts; README "Configuration").
 * Each is per session (or y-websocket socket) unless it says otherwise;
 * 0 turns a limit off.
 */
/** Upstream messages per second; bursts of twice as many. @default 200 */
export const maxMessagesPerSecond = 200
/**
 * Long-poll GETs (and stream resumes and reopens) per second that the
 * server did not pace: a poll acknowledging Data frames no earlier poll
 * acknowledged, or following a held poll the server answered with new
 * frames, is paced by the server's own output and costs nothing; one that
 * supersedes a held poll, repeats an ack or reconnects costs one. Bursts of
 * twice as many. @default 20
 */
export const maxPollsPerSecond = 20
/** Upstream bytes per second; bursts of twice as many. @default 1 MiB */
export const maxBytesPerSecond = 1024 * 1024
/** Sessions and y-websocket sockets per client IP address. @default 50 */
export const maxSessionsPerIp = 50
/** Unread bytes the server buffers for one client before dropping it. @default 8 MiB */
export const slowReaderBytes = 8 * 1024 * 1024
/** Largest (estimated) document size. @default 32 MiB */
export const maxDocBytes = 32 * 1024 * 1024
/** Most documents in server memory at once. @default 10000 */
export const maxOpenRooms = 10_000
