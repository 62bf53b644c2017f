/**
 * The Comet HTTP endpoints for long-polling (PROTOCOL.md §1), as Koa
 * middleware:
 *
 *   GET  /comet/poll[?sid&ack]   handshake, or the next downstream batch (held)
 *   POST /comet/send?sid         one upstream batch; the response piggybacks downstream frames
 */
import type { Middleware, Context } from 'koa'
import type { Logger } from 'pino'
import { CloseCode } from '../../common/close-codes'
import { encodeBatch, FrameKind } from '../../common/comet/frame'
import type { SessionRegistry } from './session-registry'
import type { Session } from './session'
import { LongPollTransport } from './transports/long-poll'
import { StreamTransport } from './transports/stream'
import { peerAddress } from '../util/ip-counter'

/** What the endpoint needs. */
export interface CometHttpEndpointOptions {
  sessions: SessionRegistry
  /** How long a poll is held when nothing is waiting, in ms. */
  pollHoldMs: number
  /** Largest POST body accepted, in bytes. */
  maxBodyBytes: number
  logger: Logger
}

function noStore(ctx: Context): void {
  // Never cached, never buffered by a proxy: a buffered poll is a dead poll.
  ctx.set('Cache-Control', 'no-store')
  ctx.set('X-Accel-Buffering', 'no')
}

function closeBody(ctx: Context, status: number, code: number, reason: string): void {
  ctx.status = status
  ctx.type = 'application/octet-stream'
  ctx.body = Buffer.from(encodeBatch([{ kind: FrameKind.Close, code, reason }]))
}

/**
 * 429 for a poll past the session's poll rate, which closed the session:
 * the Advice saying when to come back, then the Close (as the session sent
 * them to its transport, which may hold no poll to carry them).
 */
export function refusedPoll(session: Session, sessions: SessionRegistry): Uint8Array {
  const end = sessions.endOf(session.id)
  return encodeBatch([
    { kind: FrameKind.Advice, json: JSON.stringify(session.advice) },
    { kind: FrameKind.Close, code: end?.code ?? CloseCode.RateLimited, reason: end?.reason ?? 'too many polls' },
  ])
}

/** 404 for a session that is gone: with the code it ended with, if it ended recently. */
function unknownSession(ctx: Context, sessions: SessionRegistry, sid: string): void {
  const end = sessions.endOf(sid)
  if (end) closeBody(ctx, 404, end.code, end.reason)
  else closeBody(ctx, 404, CloseCode.SessionUnknown, 'no such session; start a new one')
}

function sendBatch(ctx: Context, body: Uint8Array | null): void {
  if (!body || body.length === 0) {
    ctx.status = 200
    ctx.body = ''
    return
  }
  ctx.status = 200
  ctx.type = 'application/octet-stream'
  ctx.body = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
}

/** The session's long-poll transport, attaching a fresh one (with a Hello) when it has none. */
function longPollOf(session: Session, ack: number, isNewTransport: boolean): LongPollTransport {
  const current = session.currentTransport
  // `hello=1` marks the first poll of a new client transport (a reconnect):
  // it needs a Hello even if the server still holds the old transport.
  if (!isNewTransport && current instanceof LongPollTransport && !current.closed) {
    session.resume(ack)
    return current
  }
  const transport = new LongPollTransport()
  session.attach(transport, ack, true)
  return transport
}

async function readBody(ctx: Context, maxBytes: number): Promise<Uint8Array | null> {
  const declared = Number(ctx.get('Content-Length') || '0')
  if (declared > maxBytes) return null
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    total += chunk.length
    if (total > maxBytes) return null
    chunks.push(chunk)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

/** Koa middleware for the long-poll endpoints. */
export function cometHttp(options: CometHttpEndpointOptions): Middleware {
  const { sessions, pollHoldMs, maxBodyBytes, logger } = options
  return async (ctx, next) => {
    if (ctx.path === '/comet/poll' && ctx.method === 'GET') {
      noStore(ctx)
      const sid = ctx.query.sid
      if (sid === undefined) {
        const ip = peerAddress(ctx.req.socket)
        if (!sessions.admit(ip)) {
          closeBody(ctx, 429, CloseCode.RateLimited, 'too many sessions from this address')
          return
        }
        const session = sessions.create(ip, 'long-poll')
        const transport = new LongPollTransport()
        session.attach(transport, 0, false)
        sendBatch(ctx, transport.takeQueued())
        return
      }
      const ack = Number(ctx.query.ack ?? '0')
      if (typeof sid !== 'string' || !Number.isSafeInteger(ack) || ack < 0) {
        closeBody(ctx, 400, CloseCode.BadFrame, 'sid must be one string and ack a whole number')
        return
      }
      const session = sessions.get(sid)
      if (!session || session.state === 'closed') {
        unknownSession(ctx, sessions, sid)
        return
      }
      const isNewTransport = ctx.query.hello === '1'
      const current = session.currentTransport
      const isPaced = !isNewTransport && current instanceof LongPollTransport && current.takePacedAnswer()
      // Before anything else: a refused poll must cost the server nothing more.
      if (!session.admitPoll(ack, isPaced)) {
        ctx.status = 429
        ctx.type = 'application/octet-stream'
        ctx.body = Buffer.from(refusedPoll(session, sessions))
        return
      }
      let transport: LongPollTransport
      try {
        transport = longPollOf(session, ack, isNewTransport)
      } catch (error) {
        closeBody(ctx, 400, CloseCode.BadFrame, (error as Error).message)
        return
      }
      if (isNewTransport) logger.debug({ sid: session.id, ack, transport: 'long-poll' }, 'comet connection resumed')
      const body = await transport.poll(pollHoldMs, (cancel) => ctx.req.once('close', cancel))
      sendBatch(ctx, body)
      return
    }
    if (ctx.path === '/comet/send' && ctx.method === 'POST') {
      noStore(ctx)
      const sid = ctx.query.sid
      const session = typeof sid === 'string' ? sessions.get(sid) : undefined
      if (!session || session.state === 'closed') {
        unknownSession(ctx, sessions, typeof sid === 'string' ? sid : '')
        return
      }
      const transport = session.currentTransport
      if (!(transport instanceof LongPollTransport || transport instanceof StreamTransport) || transport.closed) {
        // The session moved to another transport or is waiting for a resume: poll first.
        // Not a Close: the session lives on; the client resumes it by polling.
        ctx.status = 409
        ctx.body = ''
        return
      }
      const body = await readBody(ctx, maxBodyBytes)
      if (!body) {
        session.close(CloseCode.TooLarge, `a request body may hold at most ${maxBodyBytes} bytes`)
        closeBody(ctx, 413, CloseCode.TooLarge, `a request body may hold at most ${maxBodyBytes} bytes`)
        return
      }
      if (body.length > 0) transport.receive(body)
      // Let the session flush what this batch produced (replies, the Ack),
      // then piggyback it on this response unless a held poll took it.
      await new Promise((resolve) => setImmediate(resolve))
      const reply = transport.takeQueued()
      if (reply) sendBatch(ctx, reply)
      else ctx.status = 204
      return
    }
    await next()
  }
}
