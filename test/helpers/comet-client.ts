/**
 * A headless Cometpad client in Node: the real browser Channel and
 * CometProvider, with `ws` as the WebSocket.
 */
import * as Y from 'yjs'
import WebSocket from 'ws'
import { Awareness } from 'y-protocols/awareness'
import { Channel, type ChannelOptions } from '../../client/comet/channel'
import type { WebSocketConstructor } from '../../client/comet/transports/websocket'
import { CometProvider, type ProviderOptions } from '../../client/sync/provider'

/** One client: a channel and the providers of the documents it opened. */
export interface TestClient {
  channel: Channel
  /** Open `docId` in a new provider; `options` go to it (backoff, read-only). */
  open(docId: string, options?: Partial<Pick<ProviderOptions, 'busyBackoff' | 'random' | 'readOnly'>>): CometProvider
  close(): void
}

/** Connect a client to `httpUrl` (the server's http://host:port). */
export function connectClient(httpUrl: string, options: Partial<ChannelOptions> = {}): TestClient {
  const channel = new Channel({
    url: `${httpUrl.replace(/^http/, 'ws')}/comet/ws`,
    baseUrl: httpUrl,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    memory: null,
    backoff: { baseMs: 20, maxMs: 200 },
    connectTimeoutMs: 5_000,
    ...options,
  })
  const providers: CometProvider[] = []
  return {
    channel,
    open(docId, options = {}) {
      const doc = new Y.Doc()
      const provider = new CometProvider({ channel, docId, doc, awareness: new Awareness(doc), ...options })
      providers.push(provider)
      return provider
    },
    close() {
      for (const provider of providers) {
        provider.destroy()
        provider.awareness.destroy()
      }
      channel.close()
    },
  }
}

/** A client on long-polling only that counts its polls (GETs) as it makes them. */
export function connectPollCountingClient(httpUrl: string): TestClient & { readonly polls: number } {
  let polls = 0
  const countingFetch: typeof fetch = (input, init) => {
    if ((init?.method ?? 'GET').toUpperCase() === 'GET') polls++
    return globalThis.fetch(input, init)
  }
  const client = connectClient(httpUrl, { transports: ['long-poll'], fetch: countingFetch })
  return {
    ...client,
    get polls() {
      return polls
    },
  }
}
