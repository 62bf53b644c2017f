/**
 * The benchmark's lean HTTP/1.1 client (bench/raw-http.ts) against a real
 * Node HTTP server on loopback: what the long-polling transport needs of
 * fetch, connection reuse, and failures surfacing as fetch's would.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { ChunkedDecoder, createRawFetch, parseResponse } from '../../bench/raw-http'

describe('bench raw HTTP client', () => {
  let server: http.Server
  let base: string
  const held: http.ServerResponse[] = []
  const streams: http.ServerResponse[] = []

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const url = new URL(req.url!, 'http://x')
        const peer = String(req.socket.remotePort)
        if (url.pathname === '/bytes') {
          const body = Buffer.from([0, 1, 2, 255])
          res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length, 'X-Peer': peer })
          res.end(body)
        } else if (url.pathname === '/echo') {
          const body = Buffer.concat(chunks)
          res.writeHead(201, { 'Content-Length': body.length, 'X-Type': req.headers['content-type'] ?? '', 'X-Query': url.searchParams.get('q') ?? '' })
          res.end(body)
        } else if (url.pathname === '/chunked') {
          res.writeHead(200, { 'X-Peer': peer })
          res.write('hello ')
          setTimeout(() => res.end('world'), 5)
        } else if (url.pathname === '/empty') {
          res.writeHead(204, { 'X-Peer': peer })
          res.end()
        } else if (url.pathname === '/close') {
          res.writeHead(200, { 'Content-Length': 2, Connection: 'close', 'X-Peer': peer })
          res.end('ok')
        } else if (url.pathname === '/stream') {
          res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'X-Peer': peer })
          streams.push(res)
          res.write(Buffer.from([1]))
        } else if (url.pathname === '/hold') {
          held.push(res)
        } else {
          res.writeHead(404, { 'Content-Length': 0 })
          res.end()
        }
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  after(async () => {
    for (const res of [...held, ...streams]) res.destroy()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  it('reads a binary body with its status and headers, and reuses the connection', async () => {
    const fetch = createRawFetch()
    const first = await fetch(`${base}/bytes`)
    assert.equal(first.status, 200)
    assert.equal(first.ok, true)
    assert.equal(first.headers.get('Content-Type'), 'application/octet-stream')
    assert.deepEqual([...new Uint8Array(await first.arrayBuffer())], [0, 1, 2, 255])
    const second = await fetch(`${base}/bytes`)
    assert.equal(second.headers.get('x-peer'), first.headers.get('x-peer'), 'the second request went out on the same connection')
  })

  it('posts a body with headers and a query string', async () => {
    const fetch = createRawFetch()
    const response = await fetch(`${base}/echo?q=a%20b`, { method: 'POST', headers: { 'Content-Type': 'application/x-test' }, body: new Uint8Array([7, 8, 9]) })
    assert.equal(response.status, 201)
    assert.equal(response.headers.get('x-type'), 'application/x-test')
    assert.equal(response.headers.get('x-query'), 'a b')
    assert.deepEqual([...new Uint8Array(await response.arrayBuffer())], [7, 8, 9])
  })

  it('reads chunked and empty (204) answers, then keeps using the connection', async () => {
    const fetch = createRawFetch()
    const chunked = await fetch(`${base}/chunked`)
    assert.equal(new TextDecoder().decode(await chunked.arrayBuffer()), 'hello world')
    const empty = await fetch(`${base}/empty`)
    assert.equal(empty.status, 204)
    assert.equal((await empty.arrayBuffer()).byteLength, 0)
    assert.equal(empty.headers.get('x-peer'), chunked.headers.get('x-peer'))
    assert.equal((await fetch(`${base}/missing`)).status, 404)
  })

  it('opens a new connection after the server says Connection: close', async () => {
    const fetch = createRawFetch()
    const closing = await fetch(`${base}/close`)
    assert.equal(new TextDecoder().decode(await closing.arrayBuffer()), 'ok')
    const next = await fetch(`${base}/bytes`)
    assert.notEqual(next.headers.get('x-peer'), closing.headers.get('x-peer'))
  })

  it('rejects an aborted request with its signal reason and goes on working', async () => {
    const fetch = createRawFetch()
    const abort = new AbortController()
    const pending = fetch(`${base}/hold`, { signal: abort.signal })
    await new Promise((resolve) => setTimeout(resolve, 20))
    abort.abort(new Error('gave up'))
    await assert.rejects(pending, /gave up/)
    await assert.rejects(fetch(`${base}/bytes`, { signal: abort.signal }), /gave up/, 'an already aborted signal rejects at once')
    assert.equal((await fetch(`${base}/bytes`)).status, 200)
  })

  it('aborts every request under way on a shared signal, and only those', async () => {
    const fetch = createRawFetch()
    const shared = new AbortController()
    const finished = await fetch(`${base}/bytes`, { signal: shared.signal })
    const first = fetch(`${base}/hold`, { signal: shared.signal })
    const second = fetch(`${base}/hold`, { signal: shared.signal })
    const other = fetch(`${base}/hold`, { signal: new AbortController().signal })
    await new Promise((resolve) => setTimeout(resolve, 20))
    shared.abort(new Error('closed'))
    await assert.rejects(first, /closed/)
    await assert.rejects(second, /closed/)
    assert.equal(finished.status, 200, 'a finished request is not touched')
    // The server sees the aborted requests' connections close; the one left is `other`'s.
    const live = (): http.ServerResponse[] => held.filter((res) => !res.socket?.destroyed && !res.writableEnded)
    for (let i = 0; i < 100 && live().length > 1; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    assert.equal(live().length, 1, 'only the request on another signal is still held')
    live()[0]!.writeHead(200, { 'Content-Length': 2 }).end('ok')
    assert.equal(new TextDecoder().decode(await (await other).arrayBuffer()), 'ok')
  })

  it('fails like fetch when the server drops the connection mid-request', async () => {
    const fetch = createRawFetch()
    const pending = fetch(`${base}/hold`)
    await new Promise((resolve) => setTimeout(resolve, 20))
    held.pop()!.socket!.destroy()
    await assert.rejects(pending, (error: Error) => error instanceof TypeError && error.message === 'fetch failed')
  })

  it('streams a chunked body as its chunks arrive, then reuses the connection', async () => {
    const fetch = createRawFetch()
    const response = await fetch(`${base}/stream`)
    assert.equal(response.status, 200)
    const reader = response.body!.getReader()
    assert.deepEqual([...(await reader.read()).value!], [1], 'the first chunk arrives before the response ends')
    const res = streams.at(-1)!
    res.write(Buffer.from([2, 3]))
    assert.deepEqual([...(await reader.read()).value!], [2, 3])
    res.end()
    assert.equal((await reader.read()).done, true)
    const next = await fetch(`${base}/bytes`)
    assert.equal(next.headers.get('x-peer'), response.headers.get('x-peer'), 'the connection went back to the pool')
  })

  it('aborting a stream ends its body with the reason; a dropped stream fails its body', async () => {
    const fetch = createRawFetch()
    const abort = new AbortController()
    const aborted = (await fetch(`${base}/stream`, { signal: abort.signal })).body!.getReader()
    await aborted.read()
    abort.abort(new Error('stream closed'))
    await assert.rejects(aborted.read(), /stream closed/)
    const dropped = (await fetch(`${base}/stream`)).body!.getReader()
    await dropped.read()
    streams.at(-1)!.socket!.destroy()
    await assert.rejects(dropped.read(), (error: Error) => error instanceof TypeError && error.message === 'fetch failed')
  })

  it('decodes chunked bodies however their bytes are split', () => {
    const wire = Buffer.from('3;ext=1\r\nabc\r\n1\r\nd\r\n0\r\nTrailer: x\r\n\r\n')
    for (const step of [1, 2, 5, wire.length]) {
      const decoder = new ChunkedDecoder()
      const out: Buffer[] = []
      for (let at = 0; at < wire.length; at += step) out.push(...decoder.push(wire.subarray(at, at + step)))
      assert.equal(Buffer.concat(out).toString(), 'abcd', `split every ${step} bytes`)
      assert.equal(decoder.isDone, true)
    }
    assert.throws(() => new ChunkedDecoder().push(Buffer.from('zz\r\n')), /malformed chunk size/)
    assert.throws(() => new ChunkedDecoder().push(Buffer.from('1\r\nab\r\n')), /longer than its size/)
    assert.throws(() => new ChunkedDecoder().push(Buffer.from('0\r\n\r\nx')), /after the end/)
  })

  it('parses a response only once all of it has arrived', () => {
    const whole = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabc')
    assert.equal(parseResponse(whole.subarray(0, 20)), null)
    assert.equal(parseResponse(whole.subarray(0, whole.length - 1)), null)
    const parsed = parseResponse(whole)!
    assert.equal(parsed.length, whole.length)
    assert.equal(parsed.response.headers.get('x-a'), 'b')
    assert.equal(parsed.response.body.toString(), 'abc')
    assert.throws(() => parseResponse(Buffer.from('SMTP ready\r\n\r\n')), /malformed status line/)
    assert.throws(() => parseResponse(Buffer.from('HTTP/1.1 200 OK\r\n\r\n')), /neither Content-Length nor chunked/)
  })
})
