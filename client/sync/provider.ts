/**
 * CometProvider: one Yjs document and its Awareness kept in sync with the
 * server over a Comet Channel, speaking y-protocols inside Cometpad's
 * document envelope (PROTOCOL.md §6).
 *
 * Durability: every local change is sent as a numbered Update and kept
 * until the server answers Saved for it (stored with `sync: true`). After
 * a new session (server restart) the provider joins again and resends every
 * unconfirmed change; Yjs updates are idempotent, so that is safe.
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { Observable } from '../../common/observable'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import * as authProtocol from 'y-protocols/auth'
import type { TransportName } from '../../common/comet/handshake'
import { DocErrorCode, MessageType, encodeEmptyMessage, encodeUpdateMessage, splitDocMessage, startDocMessage } from '../../common/messages'
import type { ChannelState } from '../comet/channel'
import { nextDelay, type BackoffOptions } from '../comet/backoff'
import type { ChannelPort } from '../comet/tab-leader'

/** What the status indicator and the page need to know. */
export interface ProviderStatus {
  connection: 'connecting' | 'connected' | 'reconnecting' | 'offline'
  transport: TransportName | null
  /** The document has received the server's state at least once. */
  synced: boolean
  /** Local changes the server has not yet confirmed as stored. */
  unsavedCount: number
  /** Why saving is failing, while it is. */
  saveError: string | null
  /** The server refused changes: this link is view-only. */
  readOnly: boolean
  /** The server does not know this document. */
  notFound: boolean
  /**
   * The server refused a change of ours because the document reached its
   * size limit (Error 413): that change is not saved, and later ones will
   * not be either. Stays set for the life of the provider.
   */
  sizeLimitReached: boolean
  /**
   * The server could not open the document because it holds as many as it
   * may (Error 503); the provider is retrying to join, with backoff, and
   * clears this once it has.
   */
  serverBusy: boolean
}

/** Events of a {@link CometProvider}. */
export type ProviderEvents = {
  status: (status: ProviderStatus) => void
  /** The first sync with the server completed. */
  synced: () => void
  /** The server confirmed every local update up to this id as durably stored. */
  saved: (upToId: number) => void
}

/** Provider options. */
export interface ProviderOptions {
  channel: ChannelPort
  /** The document's address (the id in its link). */
  docId: string
  doc: Y.Doc
  awareness: awarenessProtocol.Awareness
  /**
   * Open read-only from the start (a view link): local changes are never
   * sent. The server enforces the link's rights regardless; without this the
   * provider learns them from the server's first refusal.
   * @default false
   */
  readOnly?: boolean
  /** Backoff between attempts to join while the server is busy (Error 503), in ms. @default { baseMs: 1000, maxMs: 30000 } */
  busyBackoff?: BackoffOptions
  /** Random source for the jitter of that backoff. @default Math.random */
  random?: () => number
}

/** See the module comment. */
export class CometProvider extends Observable<ProviderEvents> {
  readonly doc: Y.Doc
  readonly awareness: awarenessProtocol.Awareness
  readonly docId: string
  private readonly channel: ChannelPort
  /** Unconfirmed local updates by id, oldest first. */
  private readonly unsaved = new Map<number, Uint8Array>()
  private nextUpdateId = 1
  private statusValue: ProviderStatus
  private isDestroyed = false
  /** Set by the first Join: nothing for this document may reach the server before it. */
  private hasJoined = false
  private readonly cleanups: (() => void)[] = []
  private readonly busyBackoff: BackoffOptions
  private readonly random: () => number
  /** Failed joins in a row because the server was busy. */
  private busyAttempt = 0
  private rejoinTimer: ReturnType<typeof setTimeout> | null = null

  constructor(options: ProviderOptions) {
    super()
    this.doc = options.doc
    this.awareness = options.awareness
    this.docId = options.docId
    this.channel = options.channel
    this.busyBackoff = options.busyBackoff ?? { baseMs: 1_000, maxMs: 30_000 }
    this.random = options.random ?? Math.random
    this.statusValue = {
      connection: 'connecting',
      transport: null,
      synced: false,
      unsavedCount: 0,
      saveError: null,
      readOnly: options.readOnly ?? false,
      notFound: false,
      sizeLimitReached: false,
      serverBusy: false,
    }
    const onMessage = (payload: Uint8Array) => this.onChannelMessage(payload)
    const onOpen = () => this.join()
    const onStatus = ({ state, transport }: { state: ChannelState; transport: TransportName | null }) =>
      this.setStatus({ connection: connectionOf(state), transport })
    this.channel.on('message', onMessage)
    this.channel.on('open', onOpen)
    this.channel.on('status', onStatus)
    this.doc.on('update', this.onDocUpdate)
    this.awareness.on('update', this.onAwarenessUpdate)
    this.cleanups.push(() => {
      this.channel.off('message', onMessage)
      this.channel.off('open', onOpen)
      this.channel.off('status', onStatus)
      this.doc.off('update', this.onDocUpdate)
      this.awareness.off('update', this.onAwarenessUpdate)
    })
    if (typeof window !== 'undefined' && typeof window.addEventListener === 'function') {
      // Tell everyone at once that we left, rather than after a timeout.
      const onPageHide = () => awarenessProtocol.removeAwarenessStates(this.awareness, [this.doc.clientID], 'window unload')
      window.addEventListener('pagehide', onPageHide)
      this.cleanups.push(() => window.removeEventListener('pagehide', onPageHide))
    }
    const { state, transport } = this.channel.status
    this.statusValue.connection = connectionOf(state)
    this.statusValue.transport = transport
    if (state === 'open') this.join()
  }

  /** The current status. */
  get status(): ProviderStatus {
    return this.statusValue
  }

  /** The id given to the most recent local update (0 before the first). */
  get lastUpdateId(): number {
    return this.nextUpdateId - 1
  }

  /** Whether every local change is confirmed stored. */
  get isSaved(): boolean {
    return this.unsaved.size === 0
  }

  /** Leave the document on the server and stop syncing. The channel stays open. */
  override destroy(): void {
    if (this.isDestroyed) return
    // Our presence goes first (this sends the removal), then we leave.
    awarenessProtocol.removeAwarenessStates(this.awareness, [this.doc.clientID], 'destroy')
    this.isDestroyed = true
    this.clearRejoinTimer()
    if (this.hasJoined) this.channel.send(encodeEmptyMessage(this.docId, MessageType.Leave))
    for (const cleanup of this.cleanups.splice(0)) cleanup()
    super.destroy()
  }

  // (Re)join: sent on every new session. Join, our state vector, our
  // presence, and every change the server has not confirmed yet.
  private join(): void {
    if (this.isDestroyed) return
    this.clearRejoinTimer()
    this.hasJoined = true
    this.channel.send(encodeEmptyMessage(this.docId, MessageType.Join))
    const step1 = startDocMessage(this.docId, MessageType.Sync)
    syncProtocol.writeSyncStep1(step1, this.doc)
    this.channel.send(encoding.toUint8Array(step1))
    if (this.awareness.getLocalState() !== null) this.sendAwareness([this.doc.clientID])
    if (this.unsaved.size > 0 && !this.statusValue.readOnly) {
      // One merged update confirmed under the newest id covers them all.
      const ids = [...this.unsaved.keys()]
      const merged = Y.mergeUpdates([...this.unsaved.values()])
      this.channel.send(encodeUpdateMessage(this.docId, ids[ids.length - 1]!, merged))
    }
  }

  private readonly onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this) return
    this.sendTracked(update)
  }

  private sendTracked(update: Uint8Array): void {
    if (this.isDestroyed || this.statusValue.readOnly) return
    const id = this.nextUpdateId++
    this.unsaved.set(id, update)
    // Before the first Join the change waits in `unsaved`; the Join sends it.
    if (this.hasJoined) this.channel.send(encodeUpdateMessage(this.docId, id, update))
    this.setStatus({ unsavedCount: this.unsaved.size })
  }

  private readonly onAwarenessUpdate = (
    { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ): void => {
    if (origin === this) return
    this.sendAwareness([...added, ...updated, ...removed])
  }

  private sendAwareness(clientIds: number[]): void {
    if (!this.hasJoined) return // the Join sends our presence
    const encoder = startDocMessage(this.docId, MessageType.Awareness)
    encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(this.awareness, clientIds))
    this.channel.send(encoding.toUint8Array(encoder))
  }

  private onChannelMessage(payload: Uint8Array): void {
    let split
    try {
      split = splitDocMessage(payload)
    } catch {
      return // not addressed to anyone we can read
    }
    if (split.docId !== this.docId || this.isDestroyed) return
    const decoder = decoding.createDecoder(split.message)
    decoding.readVarUint(decoder) // the type, already in split.type
    switch (split.type) {
      case MessageType.Sync:
        this.onSync(decoder)
        return
      case MessageType.Awareness:
        awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(decoder), this)
        return
      case MessageType.Auth:
        authProtocol.readAuthMessage(decoder, this.doc, () => this.becomeReadOnly())
        return
      case MessageType.Saved:
        this.onSaved(decoding.readVarUint(decoder))
        return
      case MessageType.Error:
        this.onError(decoding.readVarUint(decoder), decoding.readVarString(decoder))
        return
      default:
        return // a newer server's message this client does not know
    }
  }

  private onSync(decoder: decoding.Decoder): void {
    // Sync from the server means it opened the document for us.
    if (this.statusValue.serverBusy) {
      this.busyAttempt = 0
      this.setStatus({ serverBusy: false })
    }
    const syncType = decoding.readVarUint(decoder)
    switch (syncType) {
      case syncProtocol.messageYjsSyncStep1: {
        // The server's state vector: answer with what it lacks, as a tracked
        // update so that "saved" covers changes made before this session.
        const diff = Y.encodeStateAsUpdate(this.doc, decoding.readVarUint8Array(decoder))
        if (!isEmptyUpdate(diff)) this.sendTracked(diff)
        return
      }
      case syncProtocol.messageYjsSyncStep2:
        Y.applyUpdate(this.doc, decoding.readVarUint8Array(decoder), this)
        if (!this.statusValue.synced) {
          this.setStatus({ synced: true })
          this.emit('synced', [])
        }
        return
      case syncProtocol.messageYjsUpdate:
        Y.applyUpdate(this.doc, decoding.readVarUint8Array(decoder), this)
        return
      default:
        return
    }
  }

  private onSaved(upToId: number): void {
    for (const id of this.unsaved.keys()) {
      if (id > upToId) break
      this.unsaved.delete(id)
    }
    this.setStatus({ unsavedCount: this.unsaved.size, saveError: null })
    this.emit('saved', [upToId])
  }

  private onError(code: number, message: string): void {
    if (code === DocErrorCode.StorageFailed) this.setStatus({ saveError: message })
    else if (code === DocErrorCode.NotFound) this.setStatus({ notFound: true })
    else if (code === DocErrorCode.Forbidden) this.becomeReadOnly()
    else if (code === DocErrorCode.TooLarge) this.setStatus({ sizeLimitReached: true })
    else if (code === DocErrorCode.Busy) this.onBusy()
    else console.warn(`cometpad: the server refused a message for ${this.docId}: ${message}`)
  }

  /**
   * The server refused to open the document: it holds as many as it may.
   * It forgot our Join, so nothing more is sent for this document (changes
   * wait in `unsaved`, presence in the awareness) until a new Join, after a
   * backoff, or at once when the channel opens a new session.
   */
  private onBusy(): void {
    this.hasJoined = false
    this.setStatus({ serverBusy: true })
    if (this.rejoinTimer || this.isDestroyed) return
    const delayMs = nextDelay(this.busyAttempt++, 0, this.busyBackoff, this.random)
    this.rejoinTimer = setTimeout(() => {
      this.rejoinTimer = null
      // Not open: the channel's next `open` joins.
      if (this.channel.status.state === 'open') this.join()
    }, delayMs)
  }

  private clearRejoinTimer(): void {
    if (this.rejoinTimer) clearTimeout(this.rejoinTimer)
    this.rejoinTimer = null
  }

  /**
   * The server refused our changes: this link is view-only. Stop sending
   * changes, and drop the unconfirmed ones, which can never be saved (so no
   * rejoin resends them and nothing waits for a Saved that will not come).
   */
  private becomeReadOnly(): void {
    this.unsaved.clear()
    this.setStatus({ readOnly: true, unsavedCount: 0 })
  }

  private setStatus(change: Partial<ProviderStatus>): void {
    const next = { ...this.statusValue, ...change }
    const keys = Object.keys(change) as (keyof ProviderStatus)[]
    if (keys.every((key) => next[key] === this.statusValue[key])) return
    this.statusValue = next
    this.emit('status', [next])
  }
}

function connectionOf(state: ChannelState): ProviderStatus['connection'] {
  switch (state) {
    case 'open':
      return 'connected'
    case 'connecting':
      return 'connecting'
    case 'reconnecting':
      return 'reconnecting'
    case 'offline':
    case 'closed':
      return 'offline'
  }
}

/** Whether an update carries no structs and no deletions. */
function isEmptyUpdate(update: Uint8Array): boolean {
  const { structs, ds } = Y.decodeUpdate(update)
  return structs.length === 0 && ds.clients.size === 0
}
