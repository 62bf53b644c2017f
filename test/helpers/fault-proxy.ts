/**
 * An HTTP proxy on loopback that misbehaves on purpose, the way corporate
 * proxies and middleboxes do: it can refuse WebSocket upgrades, drop a poll
 * response after the server has sent it, buffer a streamed response until
 * it ends, and cut connections at random (seeded, so a failure can be
 * replayed).
 */
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { seededRandom } from './seeded-random'

/** What the proxy does wrong; change it at any time. */
export interface FaultOptions {
  /** Answer every WebSocket upgrade with 403, as proxies that strip `Upgrade` do. */
  refuseWebSocket: boolean
  /** Buffer `/comet/stream` responses whole and deliver them only when they end. */
  bufferStreams: boolean
  /** Probability (0–1) of cutting a request or upgraded connection abruptly. */
  cutProbability: number
}

/** A running fault proxy. */
export interface FaultProxy {
  /** `http://127.0.0.1:<port>` of the proxy. */
  url: string
  options: FaultOptions
  /**
   * Let the next `count` poll responses reach the proxy in full, then
   * destroy the client's connection instead of forwarding them: the
   * server believes it delivered them.
   */
  dropPollResponses(count?: number): void
  /** How many poll responses were dropped so far. */
  readonly droppedPolls: number
  /** How many WebSocket upgrades were refused so far. */
  readonly refusedUpgrades: number
  /** How many connections were cut at random so far. */
  readonly cuts: number
  close(): Promise<void>
}

/** Start a proxy in front of `127.0.0.1:targetPort`. */
export async function startFaultProxy(targetPort: number, options: Partial<FaultOptions> = {}, seed = 1): Promise<FaultProxy> {
  const faults: FaultOptions = { refuseWebSocket: false, bufferStreams: false, cutProbability: 0, ...options }
  const random = seededRandom(seed)
  let pollsToDrop = 0
  let droppedPolls = 0
  let refusedUpgrades = 0
  let cuts = 0
  const sockets = new Set<net.Socket>()
  const agent = new http.Agent({ keepAlive: false })

  const server = http.createServer((req, res) => {
    if (random() < faults.cutProbability) {
      cuts++
      req.socket.destroy()
      return
    }
    const upstream = http.request(
      { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers, agent },
      (upstreamRes) => {
        const isPoll = (req.url ?? '').startsWith('/comet/poll')
        const isStream = (req.url ?? '').startsWith('/comet/stream')
        if (isPoll && pollsToDrop > 0) {
          pollsToDrop--
          // Read the whole response, as a proxy that loses it would have, then drop it.
          upstreamRes.resume()
          upstreamRes.on('end', () => {
            droppedPolls++
            req.socket.destroy()
          })
          return
        }
        if (isStream && faults.bufferStreams) {
          const chunks: Buffer[] = []
          upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk))
          upstreamRes.on('end', () => {
            const body = Buffer.concat(chunks)
            const headers = { ...upstreamRes.headers, 'content-length': String(body.length) }
            delete headers['transfer-encoding']
            res.writeHead(upstreamRes.statusCode ?? 502, headers)
            res.end(body)
          })
          return
        }
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers)
        res.flushHeaders()
        upstreamRes.pipe(res)
      },
    )
    upstream.on('error', () => res.destroy())
    res.on('close', () => upstream.destroy())
    req.pipe(upstream)
  })

  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })

  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    if (faults.refuseWebSocket) {
      refusedUpgrades++
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    const upstream = net.connect(targetPort, '127.0.0.1', () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`]
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`)
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`)
      if (head.length > 0) upstream.write(head)
      upstream.pipe(socket)
      socket.pipe(upstream)
    })
    sockets.add(upstream)
    const end = () => {
      upstream.destroy()
      socket.destroy()
    }
    upstream.on('error', end)
    upstream.on('close', end)
    socket.on('close', end)
    if (faults.cutProbability > 0 && random() < faults.cutProbability) {
      // Cut this connection a little later, mid-conversation.
      setTimeout(() => {
        cuts++
        end()
      }, Math.floor(random() * 500)).unref()
    }
  })

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    options: faults,
    dropPollResponses(count = 1) {
      pollsToDrop += count
    },
    get droppedPolls() {
      return droppedPolls
    },
    get refusedUpgrades() {
      return refusedUpgrades
    },
    get cuts() {
      return cuts
    },
    close() {
      for (const socket of sockets) socket.destroy()
      agent.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
