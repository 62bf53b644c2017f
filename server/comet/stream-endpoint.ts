/**
 * The Comet HTTP streaming endpoint, as Koa middleware:
 *
 *   GET /comet/stream            a new session; the Hello is the first record
 *   GET /comet/stream?sid&ack    resume session <sid> on a new transport: Hello{resumed}, then every frame past ack
 *   GET /comet/stream?sid&ack&reopen=1
 *                                the same client transport reopening its stream (the last one reached
 *                                maxStreamMs or dropped): no Hello, every frame past ack again
 *
 * The response never ends on its own terms until `maxStreamMs`: it is a
 * sequence of length-prefixed records, `(varUint(length) • batch)*`, with
 * zero-length records as heartbeats (see transports/stream.ts). Upstream
 * batches go to `POST /comet/send?sid=` as with long-polling.
 */
import type { Context, Middleware } from 'koa'
import type { Logger } from 'pino'
import { CloseCode } from '../../common/close-codes'
import { encodeBatch, FrameKind } from '../../common/comet/frame'
import type { SessionRegistry } from './session-registry'
import type { Session } from './session'
import { peerAddress } from '../util/ip-counter'
import { refusedPoll } from './http-endpoint'
import { defaultHeartbeatMs, defaultMaxStreamMs, encodeRecord, StreamTicker, StreamTransport } from './transports/stream'

/** What the streaming endpoint needs. */
export interface CometStreamEndpointOptions {
  sessions: SessionRegistry
  /** Write a heartbeat after this long with no other output, in ms. @default 10000 */
  heartbeatMs?: number
  /** End each stream this long after it opened, in ms; the client reopens it. @default 60000 */
  maxStreamMs?: number
  /** The shared ticker. @default one per middleware, ticking at a quarter of the shorter period (at most every second) */
  ticker?: StreamTicker
  logger: Logger
}

/** The path of the streaming endpoint. */
export const streamPath = '/comet/stream'

// Never cached, never buffered: a buffered stream is a dead stream.
const streamHeaders = {
  'Content-Type': 'application/octet-stream',
  'Cache-Control': 'no-store',
  'X-Accel-Buffering': 'no',
}

/** An error answer: one record holding a batch with a Close frame. */
function closeRecord(ctx: Context, status: number, code: number, reason: string): void {
  ctx.status = status
  ctx.set('Cache-Control', 'no-store')
  ctx.set('X-Accel-Buffering', 'no')
  ctx.type = 'application/octet-stream'
  ctx.body = Buffer.from(encodeRecord(encodeBatch([{ kind: FrameKind.Close, code, reason }])))
}

/** Koa middleware for `GET /comet/stream`. */
export function cometStream(options: CometStreamEndpointOptions): Middleware {
  const { sessions, logger } = options
  const heartbeatMs = options.heartbeatMs ?? defaultHeartbeatMs
  const maxStreamMs = options.maxStreamMs ?? defaultMaxStreamMs
  // A quarter period keeps heartbeats and stream ends within 25 % of their
  // nominal time at one timer for the whole server.
  const ticker = options.ticker ?? new StreamTicker({ intervalMs: Math.max(5, Math.min(1_000, Math.floor(Math.min(heartbeatMs, maxStreamMs) / 4))) })
  const newTransport = () => new StreamTransport({ ticker, heartbeatMs, maxStreamMs })

  /** Take over the raw response: Koa would buffer a body, and this one never ends by itself. */
  function startStream(ctx: Context, transport: StreamTransport): void {
    ctx.respond = false
    ctx.res.writeHead(200, streamHeaders)
    ctx.res.flushHeaders()
    transport.openStream(ctx.res)
  }

  return async (ctx, next) => {
    if (ctx.path !== streamPath || ctx.method !== 'GET') {
      await next()
      return
    }
    const sid = ctx.query.sid
    if (sid === undefined) {
      const ip = peerAddress(ctx.req.socket)
      if (!sessions.admit(ip)) {
        closeRecord(ctx, 429, CloseCode.RateLimited, 'too many sessions from this address')
        return
      }
      const session = sessions.create(ip, 'stream')
      const transport = newTransport()
      // Attached first, so the Hello waits in the transport's queue and
      // becomes the stream's first record.
      session.attach(transport, 0, false)
      startStream(ctx, transport)
      return
    }
    const ack = Number(ctx.query.ack ?? '0')
    if (typeof sid !== 'string' || !Number.isSafeInteger(ack) || ack < 0) {
      closeRecord(ctx, 400, CloseCode.BadFrame, 'sid must be one string and ack a whole number')
      return
    }
    const session: Session | undefined = sessions.get(sid)
    if (!session || session.state === 'closed') {
      // With the code it ended with, if it ended recently (see SessionRegistry.endOf).
      const end = sessions.endOf(sid)
      if (end) closeRecord(ctx, 404, end.code, end.reason)
      else closeRecord(ctx, 404, CloseCode.SessionUnknown, 'no such session; start a new one')
      return
    }
    // Reopens and resumes count against the poll rate as long-poll GETs do:
    // each one answers with a resend of everything unacknowledged.
    if (!session.admitPoll(ack)) {
      ctx.status = 429
      ctx.set('Cache-Control', 'no-store')
      ctx.set('X-Accel-Buffering', 'no')
      ctx.type = 'application/octet-stream'
      ctx.body = Buffer.from(encodeRecord(refusedPoll(session, sessions)))
      return
    }
    const current = session.currentTransport
    // Only the client transport that got the Hello may reopen without one:
    // a new client transport resuming the session (the channel reconnecting)
    // waits for a Hello, and would time out without it while the server's
    // transport still looks current.
    const isReopen = ctx.query.reopen === '1'
    if (isReopen && current instanceof StreamTransport && !current.closed) {
      // The previous stream reached maxStreamMs, or dropped: the session
      // resends every frame past `ack` onto the new stream.
      startStream(ctx, current)
      session.resume(ack)
      logger.debug({ sid: session.id, ack }, 'comet stream reopened')
      return
    }
    // A new client transport, or the session is detached or on another
    // transport: a new transport takes it over (the current one, if any, is
    // closed as Replaced), with a Hello and every frame past `ack`.
    const transport = newTransport()
    try {
      // Before the response starts: an impossible ack still gets a 400.
      session.attach(transport, ack, true)
    } catch (error) {
      closeRecord(ctx, 400, CloseCode.BadFrame, (error as Error).message)
      return
    }
    startStream(ctx, transport)
    logger.debug({ sid: session.id, ack, transport: 'stream' }, 'comet connection resumed')
  }
}
