/**
 * One Comet channel per browser, shared by all its tabs (PROTOCOL.md §5,
 * "connection budget"). Browsers allow few connections per host; with
 * long-polling every tab would hold one for its poll. So the tabs of one
 * origin elect a leader with a Web Lock; the leader alone owns the real
 * Channel and relays over a BroadcastChannel: what the server sends goes
 * to every tab, what a tab sends goes to the server. When the leader tab
 * closes its lock is released, the next tab takes over with a new channel,
 * and every tab's provider rejoins and resends its unconfirmed changes, so
 * nothing is lost.
 *
 * The relay keeps one thing per tab that one shared session would mix up:
 * Update ids. Each tab numbers its own Updates; the leader renumbers them
 * into one sequence for the server and routes each Saved back to the tabs
 * it covers, with their own ids. It also counts Joins per document, so a
 * second tab on a document gets the document (a Join the server would
 * ignore becomes a Sync step 1 and a QueryAwareness) and one tab's leaving
 * does not close it for the others.
 *
 * Browsers without Web Locks or BroadcastChannel get a private channel per
 * tab, as before.
 */
import * as decoding from 'lib0/decoding'
import { ObservableV2 } from 'lib0/observable'
import { MessageType, encodeEmptyMessage, encodeSavedMessage, encodeUpdateMessage, splitDocMessage } from '../../common/messages'
import type { ChannelEvents, ChannelStatus } from './channel'

/** What a provider needs of a channel: the real one or a tab's share of it. */
export interface ChannelPort extends ObservableV2<ChannelEvents> {
  readonly status: ChannelStatus
  send(payload: Uint8Array): void
  close(reason?: string): void
}

/** Relay messages between tabs. */
type RelayMessage =
  | { type: 'send'; from: string; payload: Uint8Array }
  | { type: 'message'; to?: string; payload: Uint8Array }
  | { type: 'status'; status: ChannelStatus }
  | { type: 'open'; resumed: boolean; sid: string }
  | { type: 'hello'; from: string }
  | { type: 'bye'; from: string }

/** Options of a {@link SharedChannel}. */
export interface SharedChannelOptions {
  /** Creates the real channel when this tab becomes the leader. */
  createChannel: () => ChannelPort
  /** Lock and BroadcastChannel name; one per server. @default 'cometpad' */
  name?: string
  locks?: LockManager
  BroadcastChannel?: typeof globalThis.BroadcastChannel
}

interface Renumbered {
  tab: string
  docId: string
  localId: number
}

/** See the module comment. */
export class SharedChannel extends ObservableV2<ChannelEvents> implements ChannelPort {
  readonly tabId = Math.random().toString(36).slice(2)
  private readonly bus: BroadcastChannel
  private channel: ChannelPort | null = null
  private statusValue: ChannelStatus = { state: 'connecting', transport: null }
  private isClosed = false
  private releaseLock: (() => void) | null = null
  // Leader state.
  private nextGlobalId = 1
  private readonly renumbered = new Map<number, Renumbered>()
  private readonly joins = new Map<string, Set<string>>()

  constructor(private readonly options: SharedChannelOptions) {
    super()
    const name = options.name ?? 'cometpad'
    const Bus = options.BroadcastChannel ?? globalThis.BroadcastChannel
    this.bus = new Bus(`${name}:relay`)
    this.bus.onmessage = (event: MessageEvent<RelayMessage>) => this.onRelay(event.data)
    const locks = options.locks ?? globalThis.navigator?.locks
    void locks.request(`${name}:leader`, () => this.lead())
    // Ask a leader, if there is one, for the state of the channel.
    this.post({ type: 'hello', from: this.tabId })
  }

  /** Whether Web Locks and BroadcastChannel exist here. */
  static isSupported(): boolean {
    return typeof globalThis.BroadcastChannel === 'function' && typeof globalThis.navigator?.locks?.request === 'function'
  }

  /** Whether this tab owns the real channel. */
  get isLeader(): boolean {
    return this.channel !== null
  }

  get status(): ChannelStatus {
    return this.statusValue
  }

  send(payload: Uint8Array): void {
    if (this.isClosed) return
    if (this.channel) this.forward(this.tabId, payload)
    else this.post({ type: 'send', from: this.tabId, payload })
  }

  close(reason = 'tab closed'): void {
    if (this.isClosed) return
    this.isClosed = true
    if (this.channel) {
      this.channel.close(reason)
      this.channel = null
    } else {
      this.post({ type: 'bye', from: this.tabId })
    }
    this.releaseLock?.()
    this.bus.close()
  }

  // Holding the lock is being the leader; the promise resolves when this tab closes.
  private lead(): Promise<void> {
    if (this.isClosed) return Promise.resolve()
    const channel = this.options.createChannel()
    this.channel = channel
    this.renumbered.clear()
    this.joins.clear()
    channel.on('message', (payload) => this.onServerMessage(payload))
    channel.on('status', (status) => {
      this.setStatus(status)
      this.post({ type: 'status', status })
    })
    channel.on('open', (info) => {
      // A new session has forgotten every Join and every Update id.
      if (!info.resumed) {
        this.renumbered.clear()
        this.joins.clear()
      }
      this.emit('open', [info])
      this.post({ type: 'open', ...info })
    })
    channel.on('close', (code, reason) => this.emit('close', [code, reason]))
    this.setStatus(channel.status)
    this.post({ type: 'status', status: channel.status })
    return new Promise((resolve) => {
      this.releaseLock = resolve
    })
  }

  private onRelay(message: RelayMessage): void {
    if (this.isClosed) return
    switch (message.type) {
      case 'send':
        if (this.channel) this.forward(message.from, message.payload)
        return
      case 'message':
        if (!this.channel && (message.to === undefined || message.to === this.tabId)) this.emit('message', [message.payload])
        return
      case 'status':
        if (!this.channel) this.setStatus(message.status)
        return
      case 'open':
        if (!this.channel) this.emit('open', [{ resumed: message.resumed, sid: message.sid }])
        return
      case 'hello':
        if (this.channel) {
          this.post({ type: 'status', status: this.channel.status })
          const sid = this.channel.status.state === 'open' ? this.sessionId() : null
          if (sid) this.post({ type: 'open', resumed: false, sid })
        }
        return
      case 'bye':
        if (this.channel) this.forgetTab(message.from)
        return
    }
  }

  private sessionId(): string | null {
    const withId = this.channel as ChannelPort & { sessionId?: string | null }
    return withId.sessionId ?? 'shared'
  }

  // Leader: a message from a tab (this one or another) on its way to the server.
  private forward(tab: string, payload: Uint8Array): void {
    const channel = this.channel!
    let split
    try {
      split = splitDocMessage(payload)
    } catch {
      channel.send(payload) // let the server judge it
      return
    }
    const { docId, type, message } = split
    if (type === MessageType.Join) {
      const tabs = this.joins.get(docId) ?? new Set<string>()
      const isFirst = tabs.size === 0
      tabs.add(tab)
      this.joins.set(docId, tabs)
      // The server already serves this document to the channel: ask for
      // what a Join would have sent instead (presence; the tab's own step 1 follows).
      channel.send(isFirst ? payload : encodeEmptyMessage(docId, MessageType.QueryAwareness))
      return
    }
    if (type === MessageType.Leave) {
      const tabs = this.joins.get(docId)
      tabs?.delete(tab)
      if (!tabs || tabs.size === 0) {
        this.joins.delete(docId)
        channel.send(payload)
      }
      return
    }
    if (type === MessageType.Update) {
      const decoder = decoding.createDecoder(message)
      decoding.readVarUint(decoder)
      const localId = decoding.readVarUint(decoder)
      const update = decoding.readVarUint8Array(decoder)
      const globalId = this.nextGlobalId++
      this.renumbered.set(globalId, { tab, docId, localId })
      channel.send(encodeUpdateMessage(docId, globalId, update))
      return
    }
    channel.send(payload)
  }

  // Leader: a message from the server, for every tab (a Saved only for the tabs it covers).
  private onServerMessage(payload: Uint8Array): void {
    let split
    try {
      split = splitDocMessage(payload)
    } catch {
      return
    }
    if (split.type !== MessageType.Saved) {
      this.emit('message', [payload])
      this.post({ type: 'message', payload })
      return
    }
    const decoder = decoding.createDecoder(split.message)
    decoding.readVarUint(decoder)
    const upTo = decoding.readVarUint(decoder)
    const newestPerTab = new Map<string, number>()
    for (const [globalId, entry] of this.renumbered) {
      if (globalId > upTo) break
      if (entry.docId !== split.docId) continue
      this.renumbered.delete(globalId)
      newestPerTab.set(entry.tab, Math.max(newestPerTab.get(entry.tab) ?? 0, entry.localId))
    }
    for (const [tab, localId] of newestPerTab) {
      const saved = encodeSavedMessage(split.docId, localId)
      if (tab === this.tabId) this.emit('message', [saved])
      else this.post({ type: 'message', to: tab, payload: saved })
    }
  }

  private forgetTab(tab: string): void {
    for (const [docId, tabs] of this.joins) {
      if (!tabs.delete(tab) || tabs.size > 0) continue
      this.joins.delete(docId)
      this.channel?.send(encodeEmptyMessage(docId, MessageType.Leave))
    }
    for (const [globalId, entry] of this.renumbered) if (entry.tab === tab) this.renumbered.delete(globalId)
  }

  private setStatus(status: ChannelStatus): void {
    this.statusValue = status
    this.emit('status', [status])
  }

  private post(message: RelayMessage): void {
    if (!this.isClosed) this.bus.postMessage(message)
  }
}
