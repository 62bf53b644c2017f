/**
 * A lean `fetch` for the benchmark's long-polling and streaming clients,
 * over node:http with a keep-alive agent. Node's own fetch (undici) builds
 * WHATWG Request/Response/stream objects per call; with hundreds of
 * headless clients in one process that cost saturates the load generator
 * long before the server, so the figures would measure the client. A
 * browser's fetch is native and each tab has its own thread, so this is the
 * closer stand-in. It implements only what client/comet/transports use:
 * method, headers, body and signal in; ok, status, headers.get, body
 * (a web ReadableStream) and arrayBuffer() out.
 */
import http from 'node:http'
import { Readable } from 'node:stream'

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity })

function collect(response: http.IncomingMessage): Promise<ArrayBuffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    response.on('data', (chunk: Buffer) => chunks.push(chunk))
    response.once('end', () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      resolve(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer)
    })
    response.once('error', reject)
    response.once('aborted', () => reject(new Error('response aborted')))
  })
}

function abortError(): Error {
  return new DOMException('the request was aborted', 'AbortError')
}

export const httpFetch: typeof fetch = (input, init) =>
  new Promise<Response>((resolve, reject) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    const signal = init?.signal ?? null
    if (signal?.aborted) {
      reject(abortError())
      return
    }
    const headers = (init?.headers ?? {}) as Record<string, string>
    const request = http.request(url, { method: init?.method ?? 'GET', agent, headers }, (response) => {
      const status = response.statusCode ?? 0
      let stream: ReadableStream<Uint8Array> | null = null
      resolve({
        ok: status >= 200 && status < 300,
        status,
        headers: { get: (name: string) => response.headers[name.toLowerCase()]?.toString() ?? null },
        get body() {
          stream ??= Readable.toWeb(response) as ReadableStream<Uint8Array>
          return stream
        },
        arrayBuffer: () => collect(response),
      } as unknown as Response)
    })
    const onAbort = (): void => {
      request.destroy(abortError())
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    request.once('close', () => signal?.removeEventListener('abort', onAbort))
    request.once('error', reject)
    const body = init?.body
    if (body instanceof Uint8Array) request.end(body)
    else request.end()
  })
