/**
 * The Comet HTTP endpoints for long-polling (PROTOCOL.md §1), as a plain
 * Node request handler the server runs before Koa:
 *
 *   GET  /comet/poll[?sid&ack]   handshake, or the next downstream batch (held)
 *   POST /comet/send?sid         one upstream batch; the response piggybacks downstream frames
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Middleware } from 'koa'
import type { Logger } from 'pino'
import { CloseCode } from '../../common/close-codes'
import { encodeBatch, FrameKind } from '../../common/comet/frame'
import type { SessionRegistry } from './session-registry'
import type { Session } from './session'
import { LongPollTransport } from './transports/long-poll'
import { StreamTransport } from './transports/stream'
import { peerAddress } from '../util/ip-counter'
import { checkRequestOrigin } from '../http/origin'

/** What the endpoint needs. */
export interface CometHttpEndpointOptions {
  sessions: SessionRegistry
  /** How long a poll is held when nothing is waiting, in ms. */
  pollHoldMs: number
  /** Largest POST body accepted, in bytes. */
  maxBodyBytes: number
  logger: Logger
  /**
   * Check the Origin of each request against this normalised allow-list
   * (same-origin always passes), as `originGuard` does in the Koa stack.
   * Leave out when an `originGuard` already covers these paths.
   */
  allowedOrigins?: readonly string[]
}

/** A response under way: status, extra headers, and the body (a batch of frames, text, or nothing). */
interface Reply {
  status: number
  body?: Uint8Array | string
  headers?: Record<string, string>
}

// Never cached, never buffered by a proxy: a buffered poll is a dead poll.
const noStoreHeaders: readonly string[] = ['Cache-Control', 'no-store', 'X-Accel-Buffering', 'no']

/**
 * Answer a request. Headers go to Node as one flat [name, value, …] list
 * built in place: every long-polling client gets one answer per batch, and
 * merging header objects by spreading them was most of this function's
 * cost in the server's profile.
 */
function send(res: ServerResponse, reply: Reply, extraHeaders: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return
  const body = reply.body ?? ''
  const headers = noStoreHeaders.slice()
  for (const name in extraHeaders) headers.push(name, extraHeaders[name]!)
  for (const name in reply.headers) headers.push(name, reply.headers[name]!)
  if (typeof body === 'string') {
    if (body.length > 0) headers.push('Content-Type', 'text/plain; charset=utf-8')
    headers.push('Content-Length', String(Buffer.byteLength(body)))
  } else {
    if (body.length > 0) headers.push('Content-Type', 'application/octet-stream')
    headers.push('Content-Length', String(body.length))
  }
  res.writeHead(reply.status, headers)
  res.end(reply.status === 204 ? undefined : body)
}

function closeReply(status: number, code: number, reason: string): Reply {
  return { status, body: encodeBatch([{ kind: FrameKind.Close, code, reason }]) }
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
function unknownSession(sessions: SessionRegistry, sid: string): Reply {
  const end = sessions.endOf(sid)
  return end ? closeReply(404, end.code, end.reason) : closeReply(404, CloseCode.SessionUnknown, 'no such session; start a new one')
}

function batchReply(body: Uint8Array | null): Reply {
  return { status: 200, body: body ?? '' }
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

function readBody(req: IncomingMessage, maxBytes: number): Promise<Uint8Array | null> {
  const declared = Number(req.headers['content-length'] ?? '0')
  if (declared > maxBytes) return Promise.resolve(null)
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    req.on('data', (chunk: Buffer) => {
      total += chunk.length
      if (total > maxBytes) {
        req.removeAllListeners('data')
        req.resume()
        resolve(null)
        return
      }
      chunks.push(chunk)
    })
    req.once('end', () => resolve(new Uint8Array(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))))
    req.once('error', reject)
  })
}

/**
 * The long-poll endpoints as a plain Node request handler: it answers
 * `GET /comet/poll` and `POST /comet/send` and returns true, or returns
 * false for anything else. The server calls it before Koa: these requests
 * are the hot path of every long-polling client (one per delivered batch),
 * and Koa's context, delegation and middleware chain cost about a quarter
 * of the server's CPU on them (measured with `npm run bench`).
 */
export function cometHttpHandler(options: CometHttpEndpointOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { sessions, pollHoldMs, maxBodyBytes, logger } = options
  const allowedOrigins = options.allowedOrigins
  return (req, res) => {
    const url = req.url ?? '/'
    const queryAt = url.indexOf('?')
    const path = queryAt === -1 ? url : url.slice(0, queryAt)
    const isPoll = path === '/comet/poll' && req.method === 'GET'
    const isSend = path === '/comet/send' && req.method === 'POST'
    if (!isPoll && !isSend) return false
    // The origin guard of the Koa stack (server/http/origin.ts), for these two requests.
    const headers: Record<string, string> = {}
    if (allowedOrigins) {
      const verdict = checkRequestOrigin(req, allowedOrigins)
      if (allowedOrigins.length > 0) headers.Vary = 'Origin'
      if (!verdict.ok) {
        logger.warn({ origin: req.headers.origin, host: req.headers.host, path, reason: verdict.reason }, 'refused a request from another origin')
        send(res, { status: 403, body: `${verdict.reason}; see ALLOWED_ORIGINS\n` }, headers)
        return true
      }
      if (verdict.kind === 'allowed') headers['Access-Control-Allow-Origin'] = verdict.origin
    }
    const query = new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1))
    const failed = (error: unknown): void => {
      logger.error({ err: error, method: req.method, path }, 'request failed')
      send(res, { status: 500, body: 'Internal Server Error' }, headers)
    }
    if (isSend) {
      upload(req, query).then((reply) => send(res, reply, headers), failed)
      return true
    }
    let reply: Reply | null
    try {
      reply = poll(req, query, (body) => send(res, batchReply(body), headers))
    } catch (error) {
      failed(error)
      return true
    }
    if (reply) send(res, reply, headers)
    return true
  }

  /** A poll's reply, or null when the poll is held (or answered) through `respond`. */
  function poll(req: IncomingMessage, query: URLSearchParams, respond: (body: Uint8Array | null) => void): Reply | null {
    const sid = query.getAll('sid')
    if (sid.length === 0) {
      const ip = peerAddress(req.socket)
      if (!sessions.admit(ip)) return closeReply(429, CloseCode.RateLimited, 'too many sessions from this address')
      const session = sessions.create(ip, 'long-poll')
      const transport = new LongPollTransport()
      session.attach(transport, 0, false)
      return batchReply(transport.takeQueued())
    }
    const ack = Number(query.get('ack') ?? '0')
    if (sid.length !== 1 || !Number.isSafeInteger(ack) || ack < 0) return closeReply(400, CloseCode.BadFrame, 'sid must be one string and ack a whole number')
    const session = sessions.get(sid[0]!)
    if (!session || session.state === 'closed') return unknownSession(sessions, sid[0]!)
    const isNewTransport = query.get('hello') === '1'
    const current = session.currentTransport
    const isPaced = !isNewTransport && current instanceof LongPollTransport && current.takePacedAnswer()
    // Before anything else: a refused poll must cost the server nothing more.
    if (!session.admitPoll(ack, isPaced)) return { status: 429, body: refusedPoll(session, sessions) }
    let transport: LongPollTransport
    try {
      transport = longPollOf(session, ack, isNewTransport)
    } catch (error) {
      return closeReply(400, CloseCode.BadFrame, (error as Error).message)
    }
    if (isNewTransport) logger.debug({ sid: session.id, ack, transport: 'long-poll' }, 'comet connection resumed')
    transport.poll(pollHoldMs, respond, (cancel) => req.once('close', cancel))
    return null
  }

  async function upload(req: IncomingMessage, query: URLSearchParams): Promise<Reply> {
    const sid = query.getAll('sid')
    const session = sid.length === 1 ? sessions.get(sid[0]!) : undefined
    if (!session || session.state === 'closed') return unknownSession(sessions, sid.length === 1 ? sid[0]! : '')
    const transport = session.currentTransport
    if (!(transport instanceof LongPollTransport || transport instanceof StreamTransport) || transport.closed) {
      // The session moved to another transport or is waiting for a resume: poll first.
      // Not a Close: the session lives on; the client resumes it by polling.
      return { status: 409 }
    }
    const body = await readBody(req, maxBodyBytes)
    if (!body) {
      session.close(CloseCode.TooLarge, `a request body may hold at most ${maxBodyBytes} bytes`)
      return closeReply(413, CloseCode.TooLarge, `a request body may hold at most ${maxBodyBytes} bytes`)
    }
    transport.receive(body)
    // Let the session flush what this batch produced (replies, the Ack),
    // then piggyback it on this response.
    await new Promise((resolve) => setImmediate(resolve))
    const reply = transport.answerUpload()
    return reply ? batchReply(reply) : { status: 204 }
  }
}

/** The same endpoints as Koa middleware (for servers built without the fast path, e.g. in tests). */
export function cometHttp(options: CometHttpEndpointOptions): Middleware {
  const handle = cometHttpHandler(options)
  return async (ctx, next) => {
    ctx.respond = false
    if (handle(ctx.req, ctx.res)) return
    ctx.respond = true
    await next()
  }
}
