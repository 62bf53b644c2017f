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
 * ignore becomes a QueryAwareness; the tab's own Sync step 1 that follows
 * gets it the server's state) and one tab's leaving does not close it for
 * the others.
 *
 * The server never echoes a session's own changes and presence back to it,
 * so the leader hands every change (Update, Sync step 2 or update) and
 * presence a tab sends to the other tabs itself, as the server would have.
 * That also keeps tabs of one document in step while the server is away.
 *
 * Tabs that go away without a word (a crashed renderer) are noticed through
 * a per-tab Web Lock that the leader waits for: their Joins are given back.
 *
 * Browsers without Web Locks or BroadcastChannel get a private channel per
 * tab, as before (check {@link SharedChannel.isSupported}).
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { Observable } from '../../common/observable'
import { DocErrorCode, MessageType, encodeEmptyMessage, encodeSavedMessage, encodeUpdateMessage, splitDocMessage } from '../../common/messages'
import type { Channel, ChannelEvents, ChannelStatus } from './channel'

/** What a provider needs of a channel: the real one or a tab's share of it. */
export interface ChannelPort extends Observable<ChannelEvents> {
  readonly status: ChannelStatus
  send(payload: Uint8Array): void
  close(reason?: string): void
}

/** Relay messages between tabs. `to` addresses one tab, `except` skips one. */
type RelayMessage =
  | { type: 'send'; from: string; payload: Uint8Array }
  | { type: 'message'; to?: string; except?: string; payload: Uint8Array }
  | { type: 'status'; status: ChannelStatus }
  | { type: 'open'; to?: string; resumed: boolean; sid: string }
  | { type: 'close'; code: number; reason: string }
  | { type: 'hello'; from: string }
  | { type: 'bye'; from: string }

/** The part of the Web Locks API used here (tests pass a fake). */
export interface LockManagerLike {
  request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => unknown): Promise<unknown>
}

/** Options of a {@link SharedChannel}. */
export interface SharedChannelOptions {
  /** Creates the real channel when this tab becomes the leader. */
  createChannel: () => ChannelPort
  /** Lock and BroadcastChannel name; one per server. @default 'cometpad' */
  name?: string
  /** @default navigator.locks */
  locks?: LockManagerLike
  /** @default globalThis.BroadcastChannel */
  BroadcastChannel?: typeof globalThis.BroadcastChannel
}

interface Renumbered {
  tab: string
  docId: string
  localId: number
}

// y-protocols sync message types (client/comet must not import y-protocols).
const syncStep2 = 1
const syncUpdate = 2

/** See the module comment. */
export class SharedChannel extends Observable<ChannelEvents> implements ChannelPort {
  readonly tabId = Math.random().toString(36).slice(2) + Date.now().toString(36)
  private readonly name: string
  private readonly bus: BroadcastChannel
  private readonly locks: LockManagerLike
  /** Aborts this tab's pending lock requests when it closes. */
  private readonly lifetime = new AbortController()
  private channel: ChannelPort | null = null
  private statusValue: ChannelStatus = { state: 'connecting', transport: null }
  private isClosed = false
  private releaseLeaderLock: (() => void) | null = null
  private releaseTabLock: (() => void) | null = null
  /** The session of the last 'open' this tab passed on (followers). */
  private openSid: string | null = null
  // Leader state, reset with every new channel or session.
  private leadership: AbortController | null = null
  private nextGlobalId = 1
  private readonly renumbered = new Map<number, Renumbered>()
  /** docId → the tabs that joined it in the current session. */
  private readonly joins = new Map<string, Set<string>>()
  /** Tabs whose lock the leader waits for. */
  private readonly watched = new Set<string>()

  constructor(private readonly options: SharedChannelOptions) {
    super()
    this.name = options.name ?? 'cometpad'
    const Bus = options.BroadcastChannel ?? globalThis.BroadcastChannel
    const locks = options.locks ?? (globalThis.navigator?.locks as LockManagerLike | undefined)
    if (typeof Bus !== 'function' || !locks) throw new TypeError('SharedChannel needs BroadcastChannel and Web Locks; check SharedChannel.isSupported()')
    this.locks = locks
    this.bus = new Bus(`${this.name}:relay`)
    this.bus.onmessage = (event: MessageEvent<RelayMessage>) => this.onRelay(event.data)
    const { signal } = this.lifetime
    // Our own lock, held while this tab lives: a leader waiting for it learns when we are gone.
    // Only once we hold it do we say hello (and so send anything a leader would watch us for).
    this.locks
      .request(this.tabLockName(this.tabId), { signal }, () => {
        if (this.isClosed) return
        this.post({ type: 'hello', from: this.tabId })
        return new Promise<void>((resolve) => {
          this.releaseTabLock = resolve
        })
      })
      .catch(ignoreAbort)
    this.locks.request(`${this.name}:leader`, { signal }, () => this.lead()).catch(ignoreAbort)
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
    else this.post({ type: 'send', from: this.tabId, payload: ownBytes(payload) })
  }

  close(reason = 'tab closed'): void {
    if (this.isClosed) return
    const channel = this.channel
    if (channel) {
      // The others reconnect through whoever takes the lock next.
      this.post({ type: 'status', status: { state: 'reconnecting', transport: null } })
    } else {
      this.post({ type: 'bye', from: this.tabId })
    }
    this.isClosed = true
    this.channel = null
    this.leadership?.abort()
    this.leadership = null
    channel?.close(reason)
    this.lifetime.abort()
    this.releaseLeaderLock?.()
    this.releaseTabLock?.()
    this.bus.close()
  }

  // Holding the lock is being the leader; the promise resolves when this tab closes.
  private lead(): Promise<void> | undefined {
    if (this.isClosed) return undefined
    const channel = this.options.createChannel()
    this.channel = channel
    this.leadership = new AbortController()
    this.renumbered.clear()
    this.joins.clear()
    this.watched.clear()
    channel.on('message', (payload) => {
      if (this.channel === channel) this.onServerMessage(payload)
    })
    channel.on('status', (status) => {
      if (this.channel !== channel) return
      this.setStatus(status)
      this.post({ type: 'status', status })
    })
    channel.on('open', (info) => {
      if (this.channel !== channel) return
      // A new session has forgotten every Join and every Update id: every
      // provider rejoins on this 'open' and resends what is unconfirmed.
      if (!info.resumed) {
        this.renumbered.clear()
        this.joins.clear()
      }
      this.emit('open', [info])
      this.post({ type: 'open', ...info })
    })
    channel.on('close', (code, reason) => {
      if (this.channel !== channel) return
      this.emit('close', [code, reason])
      this.post({ type: 'close', code, reason })
    })
    this.setStatus(channel.status)
    this.post({ type: 'status', status: channel.status })
    return new Promise((resolve) => {
      this.releaseLeaderLock = resolve
    })
  }

  private onRelay(message: RelayMessage): void {
    if (this.isClosed) return
    switch (message.type) {
      case 'send':
        if (this.channel) {
          this.watch(message.from)
          this.forward(message.from, message.payload)
        }
        return
      case 'message':
        if (this.channel || message.except === this.tabId) return
        if (message.to === undefined || message.to === this.tabId) this.emit('message', [message.payload])
        return
      case 'status':
        if (!this.channel) this.setStatus(message.status)
        return
      case 'open':
        if (this.channel) return
        if (message.to === undefined) {
          this.openSid = message.sid
          this.emit('open', [{ resumed: message.resumed, sid: message.sid }])
        } else if (message.to === this.tabId && message.sid !== this.openSid) {
          // The answer to our hello, unless the channel's own 'open' reached us first.
          this.openSid = message.sid
          this.emit('open', [{ resumed: message.resumed, sid: message.sid }])
        }
        return
      case 'close':
        if (!this.channel) this.emit('close', [message.code, message.reason])
        return
      case 'hello': {
        const channel = this.channel
        if (!channel) return
        this.watch(message.from)
        // A tab that started after the channel opened: tell it where things
        // stand, and let its provider join as on any new session.
        this.post({ type: 'status', status: channel.status })
        if (channel.status.state === 'open') this.post({ type: 'open', to: message.from, resumed: false, sid: this.sessionId() })
        return
      }
      case 'bye':
        if (this.channel) this.forgetTab(message.from)
        return
    }
  }

  private sessionId(): string {
    return (this.channel as Channel | null)?.sessionId ?? 'shared'
  }

  private tabLockName(tab: string): string {
    return `${this.name}:tab:${tab}`
  }

  // Leader: wait for `tab`'s lock; getting it means the tab is gone.
  private watch(tab: string): void {
    const leadership = this.leadership
    if (!leadership || tab === this.tabId || this.watched.has(tab)) return
    this.watched.add(tab)
    this.locks
      .request(this.tabLockName(tab), { signal: leadership.signal }, () => {
        if (this.leadership !== leadership) return
        this.watched.delete(tab)
        this.forgetTab(tab)
      })
      .catch(ignoreAbort)
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
      // The server already serves this document to the channel and would
      // ignore a second Join: ask for the presence a Join would have sent
      // instead. The tab's own Sync step 1 follows and gets it the document.
      channel.send(isFirst ? payload : encodeEmptyMessage(docId, MessageType.QueryAwareness))
      return
    }
    if (type === MessageType.Leave) {
      const tabs = this.joins.get(docId)
      if (!tabs) return // not joined in this session: nothing to leave
      tabs.delete(tab)
      if (tabs.size === 0) {
        this.joins.delete(docId)
        channel.send(payload)
      }
      return
    }
    this.fanOut(tab, docId, type, message)
    // Nothing for a document may reach the server before its Join: after a
    // new session (or a takeover) every provider rejoins and resends anyway.
    if (!this.joins.has(docId)) return
    if (type === MessageType.Update) {
      let localId: number
      let update: Uint8Array
      try {
        const decoder = decoding.createDecoder(message)
        decoding.readVarUint(decoder)
        localId = decoding.readVarUint(decoder)
        update = decoding.readVarUint8Array(decoder)
      } catch {
        channel.send(payload)
        return
      }
      const globalId = this.nextGlobalId++
      this.renumbered.set(globalId, { tab, docId, localId })
      channel.send(encodeUpdateMessage(docId, globalId, update))
      return
    }
    channel.send(payload)
  }

  // Leader: what the server would have sent the other tabs, had they their own sessions.
  private fanOut(tab: string, docId: string, type: number, message: Uint8Array): void {
    let downstream: Uint8Array | null = null
    try {
      const decoder = decoding.createDecoder(message)
      decoding.readVarUint(decoder)
      if (type === MessageType.Awareness) {
        downstream = encoding.toUint8Array(withDocId(docId, message))
      } else if (type === MessageType.Update) {
        decoding.readVarUint(decoder) // the tab's update id
        downstream = encodeSyncUpdate(docId, decoding.readVarUint8Array(decoder))
      } else if (type === MessageType.Sync) {
        const syncType = decoding.readVarUint(decoder)
        if (syncType === syncStep2 || syncType === syncUpdate) downstream = encodeSyncUpdate(docId, decoding.readVarUint8Array(decoder))
      }
    } catch {
      return // malformed: the server will say so
    }
    if (!downstream) return
    if (tab !== this.tabId) this.emit('message', [downstream])
    this.post({ type: 'message', except: tab, payload: downstream })
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
      if (split.type === MessageType.Error) this.onServerError(split.docId, split.message)
      this.emit('message', [payload])
      this.post({ type: 'message', payload: ownBytes(payload) })
      return
    }
    let upTo: number
    try {
      const decoder = decoding.createDecoder(split.message)
      decoding.readVarUint(decoder)
      upTo = decoding.readVarUint(decoder)
    } catch {
      return
    }
    const newestPerTab = new Map<string, number>()
    // Ascending global ids: the map keeps insertion order.
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

  // Leader: the server refused a document; if it dropped the Join, forget it,
  // so the next tab's Join goes through instead of becoming a QueryAwareness.
  private onServerError(docId: string, message: Uint8Array): void {
    try {
      const decoder = decoding.createDecoder(message)
      decoding.readVarUint(decoder)
      const code = decoding.readVarUint(decoder)
      // Busy (503): the server holds as many documents as it may and dropped
      // the Join; the provider joins again later, and that Join must go out.
      if (code === DocErrorCode.NotFound || code === DocErrorCode.NotJoined || code === DocErrorCode.Busy) this.joins.delete(docId)
    } catch {
      // unreadable: nothing to learn
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

function encodeSyncUpdate(docId: string, update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarString(encoder, docId)
  encoding.writeVarUint(encoder, MessageType.Sync)
  encoding.writeVarUint(encoder, syncUpdate)
  encoding.writeVarUint8Array(encoder, update)
  return encoding.toUint8Array(encoder)
}

function withDocId(docId: string, message: Uint8Array): encoding.Encoder {
  const encoder = encoding.createEncoder()
  encoding.writeVarString(encoder, docId)
  encoding.writeUint8Array(encoder, message)
  return encoder
}

/** A view's own bytes: posting a view would copy its whole underlying buffer. */
function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()
}

function ignoreAbort(error: unknown): void {
  if ((error as { name?: string } | null)?.name === 'AbortError') return
  console.warn('cometpad: a tab lock request failed', error)
}
