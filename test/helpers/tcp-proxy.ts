/**
 * A TCP proxy on loopback for fault tests: forwards to a target port and
 * can freeze every connection (bytes stop flowing, sockets stay open, as
 * with a laptop that went to sleep) or cut them all at once.
 */
import net from 'node:net'
import type { AddressInfo } from 'node:net'

/** A running proxy. */
export interface TcpProxy {
  /** `http://127.0.0.1:<port>` of the proxy. */
  url: string
  /** Stop forwarding on every open connection without closing it, and forward no new one. */
  freeze(): void
  /** Destroy every open connection abruptly. */
  cutAll(): void
  close(): Promise<void>
}

/** Start a proxy to `127.0.0.1:targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>()
  let isFrozen = false
  const held = new Set<net.Socket>()
  const server = net.createServer((client) => {
    if (isFrozen) {
      // A frozen network accepts nothing through: hold the socket silently.
      held.add(client)
      client.pause()
      client.on('error', () => client.destroy())
      client.on('close', () => held.delete(client))
      return
    }
    const upstream = net.connect(targetPort, '127.0.0.1')
    const pair: [net.Socket, net.Socket] = [client, upstream]
    pairs.add(pair)
    client.pipe(upstream)
    upstream.pipe(client)
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end)
    upstream.on('error', end)
    client.on('close', end)
    upstream.on('close', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    freeze() {
      isFrozen = true
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream)
        upstream.unpipe(client)
        client.pause()
        upstream.pause()
      }
    },
    cutAll() {
      for (const [client, upstream] of pairs) {
        client.destroy()
        upstream.destroy()
      }
      pairs.clear()
    },
    close() {
      for (const socket of held) socket.destroy()
      for (const [client, upstream] of pairs) {
        client.destroy()
        upstream.destroy()
      }
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
