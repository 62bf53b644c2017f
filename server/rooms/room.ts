/**
 * A Room is one open document: its Y.Doc, its Awareness, the peers editing
 * it, and the queue of writes that make its changes durable. It composes a
 * Y.Doc rather than extending one.
 *
 * Every change to the document, whoever made it, is appended to the store.
 * `durable()` resolves once everything applied so far is stored; a failed
 * write is retried with the whole document state until it succeeds, so the
 * promise waits for storage to come back rather than ever resolving on a
 * write that did not happen.
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import type { Logger } from 'pino'
import { DocErrorCode, MessageType } from '../../common/messages'
import type { DocId } from '../../common/ids'
import type { DocStore } from '../storage/doc-store'
import type { Peer } from './peer'
import { defaultUpdateLimits, type UpdateLimits } from './update-validation'
import { defaultAwarenessLimits, type AwarenessLimits, type AwarenessRoomView } from './awareness-guard'
import { atTurnEnd } from '../util/turn-end'

/** Bounds on what peers may send a room: see {@link UpdateLimits} and {@link AwarenessLimits}. */
export type RoomLimits = UpdateLimits & AwarenessLimits

/** The defaults of {@link RoomLimits}. */
export const defaultRoomLimits: Readonly<RoomLimits> = Object.freeze({ ...defaultUpdateLimits, ...defaultAwarenessLimits })

/** What a room needs. */
export interface RoomOptions {
  docId: DocId
  store: DocStore
  logger: Logger
  /** The stored state to start from, or null for an empty document. */
  initialState: Uint8Array | null
  /** The state vector of `initialState` when the store knew it; computed on first need otherwise. */
  initialStateVector?: Uint8Array | null
  /** First and longest delay between retries of a failed write, in ms. @default 500, 30000 */
  retryBaseMs?: number
  retryMaxMs?: number
  /** Bounds on hostile input; each missing field takes its default from {@link defaultRoomLimits}. */
  limits?: Partial<RoomLimits>
  /** Refuse updates that would grow the document's estimated size past this; 0 = no limit. @default 0 */
  maxDocBytes?: number
}

/** See the module comment. */
export class Room implements AwarenessRoomView {
  readonly docId: DocId
  private readonly ydoc: Y.Doc
  /**
   * The stored state, until it is applied to `ydoc` (see {@link doc}). A
   * document that is only read never needs to be: new clients get these
   * bytes as they are, and opening a large document after a restart costs
   * a read from the store rather than rebuilding it in memory.
   */
  private unapplied: Uint8Array | null
  /** The state vector of `unapplied`, once computed. */
  private unappliedStateVector: Uint8Array | null = null
  /** The whole document encoded for a new client, until the next change. */
  private encodedState: Uint8Array | null = null
  readonly awareness: awarenessProtocol.Awareness
  /** What peers may send this room. */
  readonly limits: Readonly<RoomLimits>
  /**
   * Each peer and the awareness client ids it introduced: an array, as a
   * peer has one or two (a Set cost every peer of the room some 180 bytes).
   */
  private readonly peers = new Map<Peer, number[]>()
  /** Who writes under each Yjs client id (see {@link writerOf}). */
  private readonly writers = new Map<number, Peer>()
  private readonly store: DocStore
  private readonly logger: Logger
  /** Resolves when every write queued so far is durable (or covered by a recovery write). */
  private tail: Promise<void> = Promise.resolve()
  private writesQueued = 0
  /** Writes up to this number are covered by a successful full-state write. */
  private coveredUpTo = 0
  private isDestroyed = false
  private readonly retryBaseMs: number
  private readonly retryMaxMs: number
  /**
   * Peers' updates accepted this turn and not yet applied (see
   * {@link applyIncoming}), with the end clock per Yjs client they reach
   * and their size. Applying a turn's updates in one Yjs transaction costs
   * one cleanup, one state-vector walk and one update event for all of them
   * instead of one each.
   */
  private incoming: Array<{ update: Uint8Array; origin: Peer }> = []
  private incomingEnds = new Map<number, number>()
  private incomingBytes = 0
  /** Resolves once the updates in `incoming` are applied and their write is queued. */
  private incomingApplied: { promise: Promise<void>; resolve: () => void } | null = null
  /** Accepted updates that Yjs failed to apply: never confirmed as saved (see {@link failedToApply}). */
  private readonly failed = new WeakSet<Uint8Array>()
  /** Updates applied this turn and not yet broadcast (see {@link broadcastUnsent}). */
  private unsent: Uint8Array[] = []
  /** The peer every update in `unsent` came from, or null when several (or the server) made them. */
  private unsentOrigin: Peer | null = null
  /** Set while the last write failed; cleared by a successful recovery. */
  storageError: Error | null = null
  /**
   * An upper estimate of the document's size, in bytes: the stored state it
   * was loaded from plus every update applied since (deletions do not
   * shrink it until the room is reloaded from the compacted store).
   */
  private estimatedBytes: number
  /** See {@link RoomOptions.maxDocBytes}. */
  readonly maxDocBytes: number

  constructor(options: RoomOptions) {
    this.docId = options.docId
    this.store = options.store
    this.logger = options.logger
    this.retryBaseMs = options.retryBaseMs ?? 500
    this.retryMaxMs = options.retryMaxMs ?? 30_000
    this.limits = Object.freeze({ ...defaultRoomLimits, ...definedFields(options.limits ?? {}) })
    this.maxDocBytes = options.maxDocBytes ?? 0
    this.estimatedBytes = options.initialState?.length ?? 0
    this.ydoc = new Y.Doc({ gc: true })
    this.unapplied = options.initialState && options.initialState.length > 0 ? options.initialState : null
    if (this.unapplied) this.unappliedStateVector = options.initialStateVector ?? null
    this.awareness = new awarenessProtocol.Awareness(this.ydoc)
    // The server is not a user: it has no presence of its own.
    this.awareness.setLocalState(null)
    this.ydoc.on('update', this.onDocUpdate)
    this.awareness.on('update', this.onAwarenessUpdate)
  }

  /**
   * The document with every accepted update applied, built from the stored
   * state on first use (see `unapplied`).
   */
  get doc(): Y.Doc {
    this.applyIncoming()
    return this.docAsApplied
  }

  /**
   * The document as applied so far: without the updates accepted this turn
   * (see {@link queueUpdate}). What checks of the next update read, so that
   * they do not undo the batching; {@link knownClock} covers the rest.
   */
  get docAsApplied(): Y.Doc {
    const state = this.unapplied
    if (state) {
      this.unapplied = null
      this.unappliedStateVector = null
      Y.applyUpdate(this.ydoc, state, this)
    }
    return this.ydoc
  }

  /** The clock the room has reached for Yjs client `clientId`, counting the updates accepted this turn. */
  knownClock(clientId: number): number {
    return Math.max(Y.getState(this.docAsApplied.store, clientId), this.incomingEnds.get(clientId) ?? 0)
  }

  /**
   * Accept a checked update from `origin`: it is applied at the end of this
   * turn, with every other update the room accepts in it, in one transaction.
   * `ends` is its end clock per Yjs client (`Y.parseUpdateMeta(update).to`;
   * validation reads it, see `UpdateVerdict`).
   */
  queueUpdate(update: Uint8Array, origin: Peer, ends: ReadonlyMap<number, number>): void {
    if (this.incoming.length === 0) {
      let resolve!: () => void
      const promise = new Promise<void>((done) => (resolve = done))
      this.incomingApplied = { promise, resolve }
      atTurnEnd(this.applyIncoming)
    }
    this.incoming.push({ update, origin })
    this.incomingBytes += update.length
    for (const [clientId, end] of ends) if (end > (this.incomingEnds.get(clientId) ?? 0)) this.incomingEnds.set(clientId, end)
  }

  /** Apply the updates accepted this turn, in arrival order, in one transaction (see `incoming`). */
  private readonly applyIncoming = (): void => {
    const incoming = this.incoming
    if (incoming.length === 0) return
    const applied = this.incomingApplied
    this.incoming = []
    this.incomingEnds.clear()
    this.incomingBytes = 0
    this.incomingApplied = null
    if (this.isDestroyed) {
      // Unreachable while unloading waits for durable(); were it reached, nothing here may be confirmed.
      for (const { update } of incoming) this.failed.add(update)
    } else {
      const first = incoming[0]!.origin
      const origin = incoming.every((entry) => entry.origin === first) ? first : severalPeers
      const doc = this.docAsApplied
      doc.transact(() => {
        for (const { update, origin: peer } of incoming) {
          try {
            Y.applyUpdate(doc, update, peer)
          } catch (error) {
            // Checked before it was accepted, so this is a Yjs failure, not bad input: keep the others.
            this.failed.add(update)
            this.logger.error({ err: error, docId: this.docId, peer: peer.id }, 'applying a checked update failed')
          }
        }
      }, origin)
    }
    applied?.resolve()
  }

  /** Whether Yjs failed to apply `update` after the room accepted it (so it must not be confirmed). */
  failedToApply(update: Uint8Array): boolean {
    return this.failed.has(update)
  }

  /** The document's state vector, for a sync step 1. */
  stateVector(): Uint8Array {
    this.applyIncoming()
    if (this.unapplied) return (this.unappliedStateVector ??= Y.encodeStateVectorFromUpdate(this.unapplied))
    return Y.encodeStateVector(this.ydoc)
  }

  /** What a client whose state vector is `stateVector` lacks, for a sync step 2. */
  missingFrom(stateVector: Uint8Array): Uint8Array {
    this.applyIncoming()
    const isNewClient = Y.decodeStateVector(stateVector).size === 0
    const state = this.unapplied
    if (state) {
      // A new client of a document nobody changed since it was loaded: the stored bytes are the answer.
      return isNewClient ? state : Y.diffUpdate(state, stateVector)
    }
    // Clients joining a document nobody is typing in share one encoding of it.
    if (isNewClient) return (this.encodedState ??= Y.encodeStateAsUpdate(this.ydoc))
    return Y.encodeStateAsUpdate(this.ydoc, stateVector)
  }

  /** How many peers are in the room. */
  get peerCount(): number {
    return this.peers.size
  }

  /** All peers (for the server-side API and tests). */
  get peerList(): Peer[] {
    return [...this.peers.keys()]
  }

  /** The estimated size of the document, in bytes (see `estimatedBytes`). */
  get sizeEstimate(): number {
    return this.estimatedBytes
  }

  /** Whether applying an update of `bytes` bytes would take the document past `maxDocBytes`. */
  wouldExceedSize(bytes: number): boolean {
    return this.maxDocBytes > 0 && this.estimatedBytes + this.incomingBytes + bytes > this.maxDocBytes
  }

  /** Add a peer and start the sync: send the server's state vector and everyone's presence. */
  join(peer: Peer): void {
    if (this.isDestroyed) throw new Error(`room ${this.docId} is unloaded`)
    if (this.peers.has(peer)) return
    this.peers.set(peer, [])
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    encoding.writeVarUint(encoder, syncProtocol.messageYjsSyncStep1)
    encoding.writeVarUint8Array(encoder, this.stateVector())
    peer.send(encoding.toUint8Array(encoder))
    const states = this.awareness.getStates()
    if (states.size > 0) peer.send(this.encodeAwareness([...states.keys()]))
  }

  /** Remove a peer and, for everyone else, the presence it introduced. */
  leave(peer: Peer): void {
    const clientIds = this.peers.get(peer)
    if (!clientIds) return
    this.peers.delete(peer)
    for (const [clientId, writer] of this.writers) if (writer === peer) this.writers.delete(clientId)
    if (clientIds.length > 0) awarenessProtocol.removeAwarenessStates(this.awareness, clientIds, null)
  }

  /**
   * The peer that writes under Yjs client id `clientId`, if one does. The
   * first peer to add content under an id owns it while it stays in the
   * room: another peer adding content there would claim the owner's next
   * clocks, and Yjs would then drop the owner's own edits as already known.
   */
  writerOf(clientId: number): Peer | undefined {
    return this.writers.get(clientId)
  }

  /** Record that `peer` writes under `clientId` (see {@link writerOf}). */
  claimWriter(clientId: number, peer: Peer): void {
    this.writers.set(clientId, peer)
  }

  /** Whether `peer` is in the room. */
  has(peer: Peer): boolean {
    return this.peers.has(peer)
  }

  /** Record that `peer` introduced awareness client `clientId` (its presence goes when it leaves). */
  claimAwarenessClient(peer: Peer, clientId: number): void {
    const clientIds = this.peers.get(peer)
    if (clientIds && !clientIds.includes(clientId)) clientIds.push(clientId)
  }

  /** Forget that `peer` controls `clientId` (its state was removed). */
  releaseAwarenessClient(peer: Peer, clientId: number): void {
    const clientIds = this.peers.get(peer)
    if (!clientIds) return
    const index = clientIds.indexOf(clientId)
    if (index >= 0) clientIds.splice(index, 1)
  }

  /** The awareness client ids `peer` controls (empty for a peer not in the room). */
  awarenessClientsOf(peer: Peer): readonly number[] {
    return this.peers.get(peer) ?? noClients
  }

  /** The peer controlling awareness client `clientId`, or null when none does. */
  awarenessOwner(clientId: number): Peer | null {
    for (const [peer, clientIds] of this.peers) if (clientIds.includes(clientId)) return peer
    return null
  }

  /** The room's own awareness client id; it has no state (the server is not a user). */
  get ownClientId(): number {
    return this.awareness.clientID
  }

  /** The room's awareness clock for `clientId` (0 when it never had a state). */
  awarenessClock(clientId: number): number {
    return this.awareness.meta.get(clientId)?.clock ?? 0
  }

  /** Whether awareness client `clientId` has a state in the room. */
  hasState(clientId: number): boolean {
    return this.awareness.getStates().has(clientId)
  }

  /** How many awareness states the room holds. */
  get stateCount(): number {
    return this.awareness.getStates().size
  }

  /** Send `message` to every peer but `except`. */
  broadcast(message: Uint8Array, except: Peer | null, { cometpadOnly = false } = {}): void {
    for (const peer of this.peers.keys()) {
      if (peer === except) continue
      if (cometpadOnly && !peer.speaksCometpad) continue
      peer.send(message)
    }
  }

  /**
   * Resolves once every change applied so far is durable. Never rejects:
   * while storage fails it waits for the recovery write.
   */
  durable(): Promise<void> {
    // Updates accepted this turn are written once they are applied.
    const applied = this.incomingApplied
    return applied ? applied.promise.then(() => this.tail) : this.tail
  }

  /** Unload: stop listening; the caller has awaited `durable()` first. */
  destroy(): void {
    this.isDestroyed = true
    this.ydoc.off('update', this.onDocUpdate)
    this.awareness.off('update', this.onAwarenessUpdate)
    this.awareness.destroy()
    this.ydoc.destroy()
  }

  private readonly onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this) return // loading the stored state
    this.encodedState = null
    this.estimatedBytes += update.length
    if (this.unsent.length === 0) {
      this.unsentOrigin = isPeer(origin) ? origin : null
      atTurnEnd(this.broadcastUnsent)
    } else if (this.unsentOrigin !== origin) {
      this.unsentOrigin = null
    }
    this.unsent.push(update)
    // Stored at once, so that `durable()` covers it from now on. At the end
    // of this turn the broadcast above is encoded first; the store's flush,
    // scheduled here, comes before the session flushes that broadcast
    // schedules, so the batch reaches LevelDB before the sockets are
    // written and its fsync runs while they are.
    this.queueWrite(update)
  }

  /**
   * The updates of one event-loop turn go out as one merged update, encoded
   * once: under load every peer gets one message per turn, not one per
   * keystroke. When they all came from one peer it is skipped; when several
   * peers wrote in the turn each also gets its own changes back, which Yjs
   * ignores.
   */
  private readonly broadcastUnsent = (): void => {
    const updates = this.unsent
    const origin = this.unsentOrigin
    this.unsent = []
    this.unsentOrigin = null
    if (this.isDestroyed || updates.length === 0) return
    const update = updates.length === 1 ? updates[0]! : Y.mergeUpdates(updates)
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeUpdate(encoder, update)
    this.broadcast(encoding.toUint8Array(encoder), origin)
  }

  private readonly onAwarenessUpdate = (
    { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ): void => {
    const changed = [...added, ...updated, ...removed]
    if (isPeer(origin)) {
      for (const id of [...added, ...updated]) this.claimAwarenessClient(origin, id)
      for (const id of removed) this.releaseAwarenessClient(origin, id)
    }
    if (changed.length === 0) return
    // A stock y-websocket client expects its own awareness echoed (it counts
    // any message as a sign of life); Cometpad clients do not need it.
    const except = isPeer(origin) && origin.speaksCometpad ? origin : null
    this.broadcast(this.encodeAwareness(changed), except)
  }

  private encodeAwareness(clientIds: number[]): Uint8Array {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Awareness)
    encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(this.awareness, clientIds))
    return encoding.toUint8Array(encoder)
  }

  private queueWrite(update: Uint8Array): void {
    const writeNumber = ++this.writesQueued
    const attempt = this.store.append(this.docId, update)
    const previous = this.tail
    this.tail = (async () => {
      try {
        await attempt
      } catch (error) {
        await this.recover(writeNumber, error as Error)
      }
      await previous
    })()
  }

  // A failed append is replaced by a write of the whole document, which
  // covers it and every write queued before the snapshot was taken.
  private async recover(writeNumber: number, firstError: Error): Promise<void> {
    let error = firstError
    let delayMs = this.retryBaseMs
    while (this.coveredUpTo < writeNumber) {
      if (this.storageError === null) {
        this.logger.error({ err: error, docId: this.docId }, 'storing a document update failed; the document stays in memory and the write is retried')
        const message = encodeErrorMessage(DocErrorCode.StorageFailed, 'The server could not save your changes yet; it keeps them and is retrying.')
        this.broadcast(message, null, { cometpadOnly: true })
      }
      this.storageError = error
      await new Promise((resolve) => setTimeout(resolve, delayMs))
      delayMs = Math.min(delayMs * 2, this.retryMaxMs)
      if (this.coveredUpTo >= writeNumber) break
      const coveredWrites = this.writesQueued
      try {
        await this.store.append(this.docId, Y.encodeStateAsUpdate(this.doc))
        this.coveredUpTo = Math.max(this.coveredUpTo, coveredWrites)
        if (this.storageError) this.logger.warn({ docId: this.docId }, 'document stored again after a storage failure')
        this.storageError = null
      } catch (retryError) {
        error = retryError as Error
      }
    }
  }
}

const noClients: readonly number[] = Object.freeze([])

/** The origin of a transaction applying several peers' updates: no one peer's, so the broadcast goes to all. */
const severalPeers = Object.freeze({ severalPeers: true })

/** `partial` without its undefined fields, so they do not override defaults. */
function definedFields<T extends object>(partial: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(partial).filter(([, value]) => value !== undefined)) as Partial<T>
}

function isPeer(origin: unknown): origin is Peer {
  return typeof origin === 'object' && origin !== null && 'send' in origin && 'canWrite' in origin
}

function encodeErrorMessage(code: number, message: string): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.Error)
  encoding.writeVarUint(encoder, code)
  encoding.writeVarString(encoder, message)
  return encoding.toUint8Array(encoder)
}
