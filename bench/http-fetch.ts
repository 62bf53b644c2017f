/**
 * A lean `fetch` for the benchmark's long-polling and streaming clients,
 * over undici's `request` (the engine under Node's fetch, without the WHATWG
 * Request/Response/stream objects fetch builds per call) through one
 * keep-alive agent. With hundreds of headless clients in one process, Node's
 * fetch — and node:http too, whose request and header machinery took most
 * of a core at 50 long-polling clients — saturates the load generator long
 * before the server, so the figures would measure the client. A browser's
 * fetch is native and runs off the page's thread, so this is the closer
 * stand-in. It implements only what client/comet/transports use: method,
 * headers, body and signal in; ok, status, headers.get, body (a web
 * ReadableStream) and arrayBuffer() out.
 */
import { Readable } from 'node:stream'
import { Agent, request } from 'undici'

const dispatcher = new Agent({ keepAliveTimeout: 30_000, pipelining: 1 })

export const httpFetch: typeof fetch = async (input, init) => {
  const url = input instanceof Request ? input.url : String(input)
  const body = init?.body
  const response = await request(url, {
    method: (init?.method ?? 'GET') as 'GET' | 'POST',
    headers: (init?.headers ?? {}) as Record<string, string>,
    body: body instanceof Uint8Array ? body : null,
    signal: init?.signal ?? null,
    dispatcher,
  })
  const status = response.statusCode
  let stream: ReadableStream<Uint8Array> | null = null
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: { get: (name: string) => response.headers[name.toLowerCase()]?.toString() ?? null },
    get body() {
      stream ??= Readable.toWeb(response.body) as ReadableStream<Uint8Array>
      return stream
    },
    arrayBuffer: () => response.body.arrayBuffer(),
  } as unknown as Response
}
