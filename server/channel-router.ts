/**
 * Routes each Comet session's document messages to rooms. One session
 * multiplexes many documents, so for every (session, document) pair it
 * joins, the router makes a Peer that prefixes the document address to what
 * the room sends and strips it from what the client sends (PROTOCOL.md §6).
 */
import * as encoding from 'lib0/encoding'
import type { Logger } from 'pino'
import { DocErrorCode, MessageType, encodeErrorMessage, splitDocMessage } from '../common/messages'
import { CloseCode } from '../common/close-codes'
import type { Session } from './comet/session'
import type { SessionRegistry } from './comet/session-registry'
import type { DocDirectory } from './docs/doc-directory'
import type { Peer } from './rooms/peer'
import { RoomsFullError, type RoomRegistry } from './rooms/room-registry'
import { handleMessage, type RefusalReason } from './rooms/messages'
import type { Room } from './rooms/room'
import type { DocId } from '../common/ids'
import { ThrottledLog } from './util/throttled-log'

/** What the router keeps for one session. */
class SessionChannels {
  /**
   * Its documents, found by the address the client used. An array searched
   * in order rather than a Map: a session has one document or a few (at
   * most maxDocsPerSession), and a Map's hash table cost about 320 bytes
   * per connected client (heap snapshot of 1,000 idle clients). Replaced,
   * never changed in place, so it holds no spare capacity and a loop over
   * it is unaffected by joins and leaves made meanwhile.
   */
  private peers: readonly SessionPeer[] = noPeers
  /** Its refusal log, shared by all its documents (one line a second at most); made on the first refusal. */
  refusals: ThrottledLog | null = null

  get size(): number {
    return this.peers.length
  }

  get(address: string): SessionPeer | undefined {
    for (const peer of this.peers) if (peer.address === address) return peer
    return undefined
  }

  /** Every document of the session, as it is now. */
  all(): readonly SessionPeer[] {
    return this.peers
  }

  /** Adds `peer`; its address must not be taken. */
  add(peer: SessionPeer): void {
    this.peers = this.peers.concat(peer)
  }

  /** Removes `peer` if it is still the session's peer for its address. */
  remove(peer: SessionPeer): void {
    if (this.peers.includes(peer)) this.peers = this.peers.filter((one) => one !== peer)
  }
}

const noPeers: readonly SessionPeer[] = []

/** A session's membership of one document. */
class SessionPeer implements Peer {
  readonly speaksCometpad = true
  /** The room once joined; messages that arrive while the join resolves wait in `backlog`. */
  room: Room | null = null
  backlog: Uint8Array[] | null = null
  /** Known once the address is resolved. */
  docId: DocId | null = null
  canWrite = false

  constructor(
    private readonly session: Session,
    readonly address: string,
    /** The router's state for the session (its documents and refusal log). */
    readonly channels: SessionChannels,
    /** Addressed copies of broadcast messages, shared by every peer (see `send`). */
    private readonly addressed: WeakMap<Uint8Array, { address: string; payload: Uint8Array }>,
  ) {}

  /** For log lines; made on demand rather than kept by every peer. */
  get id(): string {
    return `${this.session.id}/${this.address}`
  }

  send(message: Uint8Array): void {
    // A room broadcasts the same message object to each peer in turn: the
    // peers of one address share one addressed copy instead of one each.
    const cached = this.addressed.get(message)
    if (cached?.address === this.address) {
      this.session.send(cached.payload)
      return
    }
    // Encoded here rather than kept per peer: once per message and address,
    // while a thousand peers of one document would each hold a copy.
    const encoder = encoding.createEncoder()
    encoding.writeVarString(encoder, this.address)
    const prefix = encoding.toUint8Array(encoder)
    const payload = new Uint8Array(prefix.length + message.length)
    payload.set(prefix, 0)
    payload.set(message, prefix.length)
    this.addressed.set(message, { address: this.address, payload })
    this.session.send(payload)
  }

  close(code: number, reason: string): void {
    this.session.send(encodeErrorMessage(this.address, code, reason))
  }
}

/** What the router needs. */
export interface ChannelRouterOptions {
  sessions: SessionRegistry
  rooms: RoomRegistry
  directory: DocDirectory
  logger: Logger
  /** Most documents one session may have open at once. @default {@link defaultMaxDocsPerSession} */
  maxDocsPerSession?: number
  /** Called for every refused message (metrics); rooms stay free of metrics. */
  onRefused?: (reason: RefusalReason) => void
}

/** Most documents one session may have open at once, unless the options say otherwise. */
export const defaultMaxDocsPerSession = 64

/** See the module comment. */
export class ChannelRouter {
  private readonly maxDocsPerSession: number
  /** See SessionPeer.send; entries go with the messages they copy. */
  private readonly addressed = new WeakMap<Uint8Array, { address: string; payload: Uint8Array }>()
  /** Each open session's documents. */
  private readonly channels = new Map<Session, SessionChannels>()

  constructor(private readonly options: ChannelRouterOptions) {
    this.maxDocsPerSession = options.maxDocsPerSession ?? defaultMaxDocsPerSession
    options.sessions.on('session', (session) => this.onSession(session))
  }

  private onSession(session: Session): void {
    this.channels.set(session, new SessionChannels())
    session.on('message', this.onMessage)
    session.on('close', this.onClose)
  }

  // One listener for every session, not a closure per session: each
  // session's state is in `channels`.
  private readonly onMessage = (payload: Uint8Array, session: Session): void => {
    const channels = this.channels.get(session)
    if (!channels) return
    let split
    try {
      split = splitDocMessage(payload)
    } catch (error) {
      session.close(CloseCode.BadFrame, `malformed message: ${(error as Error).message}`)
      return
    }
    const { docId: address, type, message } = split
    const peer = channels.get(address)
    if (type === MessageType.Join) {
      if (peer) return
      if (channels.size >= this.maxDocsPerSession) {
        session.send(encodeErrorMessage(address, DocErrorCode.Forbidden, `at most ${this.maxDocsPerSession} documents per connection`))
        return
      }
      // Registered at once, so the messages that follow a Join in the
      // same batch wait for the room instead of being refused.
      const joining = new SessionPeer(session, address, channels, this.addressed)
      channels.add(joining)
      void this.join(session, joining)
      return
    }
    if (type === MessageType.Leave) {
      if (peer) this.leave(peer)
      return
    }
    if (!peer) {
      session.send(encodeErrorMessage(address, DocErrorCode.NotJoined, 'join the document before sending to it'))
      return
    }
    if (!peer.room) {
      ;(peer.backlog ??= []).push(message)
      return
    }
    this.dispatch(peer, message)
  }

  private readonly onClose = (_code: number, _reason: string, session: Session): void => {
    const channels = this.channels.get(session)
    if (!channels) return
    this.channels.delete(session)
    for (const peer of channels.all()) this.leave(peer)
    channels.refusals?.flush()
  }

  private async join(session: Session, peer: SessionPeer): Promise<void> {
    const { address, channels } = peer
    const fail = (code: number, message: string) => {
      channels.remove(peer)
      session.send(encodeErrorMessage(address, code, message))
    }
    let access
    try {
      access = await this.options.directory.resolve(address)
    } catch (error) {
      this.options.logger.error({ err: error, address }, 'resolving a document failed')
      fail(DocErrorCode.StorageFailed, 'the document could not be opened; try again')
      return
    }
    if (!access) {
      fail(DocErrorCode.NotFound, 'no document has this address')
      return
    }
    if (channels.get(address) !== peer) return // left or closed meanwhile
    peer.docId = access.docId
    peer.canWrite = access.canWrite
    try {
      const room = await this.options.rooms.join(access.docId, peer)
      if (channels.get(address) !== peer) {
        // The session left or closed while the room loaded.
        this.options.rooms.leave(access.docId, peer)
        return
      }
      peer.room = room
      const backlog = peer.backlog
      peer.backlog = null
      for (const message of backlog ?? []) this.dispatch(peer, message)
    } catch (error) {
      if (error instanceof RoomsFullError) {
        this.options.logger.warn({ docId: access.docId }, error.message)
        fail(DocErrorCode.Busy, error.message)
        return
      }
      this.options.logger.error({ err: error, docId: access.docId }, 'loading a document failed')
      fail(DocErrorCode.StorageFailed, 'the document could not be loaded; try again')
    }
  }

  private leave(peer: SessionPeer): void {
    peer.channels.remove(peer)
    if (peer.room && peer.docId) this.options.rooms.leave(peer.docId, peer)
  }

  private dispatch(peer: SessionPeer, message: Uint8Array): void {
    if (!peer.room) return
    const result = handleMessage(peer.room, peer, message)
    if (!result) return
    peer.channels.refusals ??= new ThrottledLog({ logger: this.options.logger })
    peer.channels.refusals.warn({ peer: peer.id, docId: peer.docId, ...result }, 'refused a message')
    this.options.onRefused?.(result.refused)
  }
}
