/**
 * Origin checks for the endpoints a browser page could reach from another
 * site: the WebSocket upgrades (`/comet/ws`, `/yjs/<id>`) and the Comet HTTP
 * endpoints (`/comet/poll`, `/comet/stream`, `/comet/send`).
 *
 * The threat: browsers send cookies and reach private networks on behalf of
 * any page, and WebSocket is not covered by the same-origin policy at all.
 * Without this check a page on another site could open a Comet session or a
 * y-websocket socket to this server from a visitor's browser and read or
 * write documents through it (cross-site WebSocket hijacking), or POST
 * writes to `/comet/send` (CSRF-style writes).
 *
 * The rule: a request with an `Origin` header is accepted when that origin's
 * host equals the request's `Host` header (same origin), or when the origin is
 * in the configured allow-list. A request WITHOUT an `Origin` header is
 * accepted: browsers always send one on WebSocket handshakes and on
 * cross-origin fetches, so its absence means a non-browser client (the
 * y-websocket provider in Node, curl, a server-side integration), which no
 * hostile page can make the visitor's browser impersonate.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Middleware } from 'koa'
import type { Logger } from 'pino'

/** The outcome of an origin check. */
export type OriginVerdict =
  /** No Origin header: a non-browser client. */
  | { ok: true; kind: 'absent' }
  /** The page is served by this server. */
  | { ok: true; kind: 'same-origin' }
  /** The origin is in the allow-list: CORS headers are due. */
  | { ok: true; kind: 'allowed'; origin: string }
  | { ok: false; reason: string }

/**
 * Normalise one allow-list entry to its origin (`scheme://host[:port]`,
 * default port dropped, lower case). Throws a `TypeError` for anything that
 * is not an http(s) origin, including `*`: a wildcard would undo the check.
 */
export function normaliseOrigin(entry: string): string {
  let url: URL
  try {
    url = new URL(entry.trim())
  } catch {
    throw new TypeError(`"${entry}" is not an origin such as https://example.com`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`"${entry}" is not an http(s) origin`)
  // An origin has nothing past the port; a path would suggest a misunderstanding.
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
    throw new TypeError(`"${entry}" has more than scheme, host and port`)
  }
  return url.origin
}

/**
 * Decide whether a request with `Origin: origin` and `Host: host` may
 * proceed, given the normalised allow-list `allowed` (see
 * {@link normaliseOrigin}). Pure.
 */
export function checkOrigin(origin: string | undefined, host: string | undefined, allowed: readonly string[]): OriginVerdict {
  if (origin === undefined) return { ok: true, kind: 'absent' }
  let parsed: URL
  try {
    parsed = new URL(origin)
  } catch {
    return { ok: false, reason: 'malformed Origin header' }
  }
  // `null` (sandboxed frames, file: pages) and non-web schemes parse or not,
  // but are never an origin we serve.
  if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.origin === 'null') {
    return { ok: false, reason: 'malformed Origin header' }
  }
  if (allowed.includes(parsed.origin)) return { ok: true, kind: 'allowed', origin: parsed.origin }
  if (host !== undefined && host !== '') {
    // Parsed with the Origin's scheme, so `host:80` under http equals `host`.
    // Only hosts are compared: behind a TLS-terminating proxy the request
    // arrives over http while the page is https.
    let requestHost: string | null
    try {
      requestHost = new URL(`${parsed.protocol}//${host}`).host
    } catch {
      requestHost = null
    }
    if (requestHost !== null && requestHost === parsed.host) return { ok: true, kind: 'same-origin' }
  }
  return { ok: false, reason: `origin ${parsed.origin} is not allowed` }
}

/** The first value of a header that may have been repeated. */
function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** {@link checkOrigin} for a Node request. */
export function checkRequestOrigin(req: IncomingMessage, allowed: readonly string[]): OriginVerdict {
  return checkOrigin(single(req.headers.origin), single(req.headers.host), allowed)
}

/**
 * Refuse a WebSocket upgrade on the raw socket, before any upgrade, with a
 * plain HTTP 403. Returns false when refused (the caller stops there).
 */
export function guardUpgrade(req: IncomingMessage, socket: Duplex, allowed: readonly string[], logger: Logger): boolean {
  const verdict = checkRequestOrigin(req, allowed)
  if (verdict.ok) return true
  logger.warn({ origin: req.headers.origin, host: req.headers.host, url: req.url, reason: verdict.reason }, 'refused a WebSocket upgrade from another origin')
  const body = `${verdict.reason}; see ALLOWED_ORIGINS\n`
  socket.end(`HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  return false
}

/** What {@link originGuard} needs. */
export interface OriginGuardOptions {
  /** Paths to guard (exact match). */
  paths: readonly string[]
  /** Normalised allow-list. */
  allowedOrigins: readonly string[]
  logger: Logger
}

/**
 * Koa middleware guarding `paths`: 403 with a text body for a refused
 * origin; for an allow-listed one, `Access-Control-Allow-Origin: <origin>`
 * (never `*`) and the answer to a CORS preflight.
 */
export function originGuard(options: OriginGuardOptions): Middleware {
  const paths = new Set(options.paths)
  const { allowedOrigins, logger } = options
  return async (ctx, next) => {
    if (!paths.has(ctx.path)) {
      await next()
      return
    }
    const verdict = checkRequestOrigin(ctx.req, allowedOrigins)
    // The answer depends on Origin whenever an allow-list exists: caches must key on it.
    if (allowedOrigins.length > 0) ctx.vary('Origin')
    if (!verdict.ok) {
      logger.warn({ origin: ctx.get('Origin'), host: ctx.get('Host'), path: ctx.path, reason: verdict.reason }, 'refused a request from another origin')
      ctx.status = 403
      ctx.type = 'text/plain'
      ctx.body = `${verdict.reason}; see ALLOWED_ORIGINS\n`
      return
    }
    if (verdict.kind === 'allowed') ctx.set('Access-Control-Allow-Origin', verdict.origin)
    if (ctx.method === 'OPTIONS') {
      if (verdict.kind !== 'allowed') {
        // Same-origin and non-browser clients never preflight.
        ctx.status = 204
        return
      }
      ctx.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS')
      ctx.set('Access-Control-Allow-Headers', 'Content-Type')
      ctx.set('Access-Control-Max-Age', '600')
      ctx.status = 204
      return
    }
    await next()
  }
}
