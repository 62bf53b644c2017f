/**
 * The transport conformance suite for each client transport, against a
 * real server on loopback: WebSocket, HTTP streaming, HTTP long-polling.
 */
import WebSocket from 'ws'
import { Channel } from '../../client/comet/channel'
import type { WebSocketConstructor } from '../../client/comet/transports/websocket'
import { runTransportSuite, type TransportSuiteOptions } from '../conformance/transport.suite'

const names: TransportSuiteOptions['name'][] = ['websocket', 'stream', 'long-poll']

for (const name of names) {
  runTransportSuite({
    name,
    connect: (server, options = {}) => {
      const httpUrl = options.httpUrl ?? server.url
      return new Channel({
        url: `${httpUrl.replace(/^http/, 'ws')}/comet/ws`,
        baseUrl: httpUrl,
        transports: [name],
        WebSocket: WebSocket as unknown as WebSocketConstructor,
        memory: null,
        backoff: { baseMs: 20, maxMs: 200 },
        connectTimeoutMs: 5_000,
        ...(options.fetch ? { fetch: options.fetch } : {}),
      })
    },
  })
}
