/**
 * The open rooms. Loading is single-flight (however many clients join a
 * document at the same moment, it is read from the store once), and a room
 * leaves memory only after its last peer has left and its last write is
 * durable, so a client that joins during an unload never sees an older
 * state than the store holds.
 */
import type { Logger } from 'pino'
import type { DocId } from '../../common/ids'
import type { DocStore } from '../storage/doc-store'
import type { Peer } from './peer'
import { Room } from './room'

type Slot =
  | { state: 'loading'; ready: Promise<Room> }
  | { state: 'open'; room: Room }
  | { state: 'unloading'; done: Promise<void> }

/** What the registry needs. */
export interface RoomRegistryOptions {
  store: DocStore
  logger: Logger
  /** Most documents in memory at once; joining another is refused with {@link RoomsFullError}. 0 = no limit. @default 0 */
  maxOpenRooms?: number
  /** Passed to every room: see `RoomOptions.maxDocBytes`. @default 0 */
  maxDocBytes?: number
  /** Called when a join is refused because `maxOpenRooms` rooms are open (metrics). */
  onRoomsFull?: () => void
}

/** Thrown by {@link RoomRegistry.join} when `maxOpenRooms` documents are in memory already. */
export class RoomsFullError extends Error {
  override readonly name = 'RoomsFullError'
}

/** See the module comment. */
export class RoomRegistry {
  private readonly slots = new Map<DocId, Slot>()

  constructor(private readonly options: RoomRegistryOptions) {}

  /** How many rooms are in memory (open or loading). */
  get size(): number {
    return this.slots.size
  }

  /** The open room for `docId`, if it is in memory (no load). */
  peek(docId: DocId): Room | undefined {
    const slot = this.slots.get(docId)
    return slot?.state === 'open' ? slot.room : undefined
  }

  /** All open rooms. */
  openRooms(): Room[] {
    const rooms: Room[] = []
    for (const slot of this.slots.values()) if (slot.state === 'open') rooms.push(slot.room)
    return rooms
  }

  /**
   * Join `peer` to the room of `docId`, loading it if needed. The caller has
   * already checked that the document exists.
   */
  async join(docId: DocId, peer: Peer): Promise<Room> {
    for (;;) {
      const slot = this.slots.get(docId)
      if (!slot) {
        const max = this.options.maxOpenRooms ?? 0
        if (max > 0 && this.slots.size >= max) {
          this.options.onRoomsFull?.()
          throw new RoomsFullError(`the server has ${max} documents open, its limit; try again later`)
        }
        const ready = this.load(docId)
        this.slots.set(docId, { state: 'loading', ready })
        try {
          const room = await ready
          this.slots.set(docId, { state: 'open', room })
        } catch (error) {
          this.slots.delete(docId)
          throw error
        }
        continue
      }
      if (slot.state === 'loading') {
        await slot.ready
        continue
      }
      if (slot.state === 'unloading') {
        await slot.done
        continue
      }
      slot.room.join(peer)
      return slot.room
    }
  }

  /** Remove `peer` from the room; unload the room once it is empty and durable. */
  leave(docId: DocId, peer: Peer): void {
    const slot = this.slots.get(docId)
    if (slot?.state !== 'open') return
    slot.room.leave(peer)
    if (slot.room.peerCount === 0) this.unload(docId, slot.room)
  }

  /**
   * Run `fn` on the room of `docId`, loading it for the time of the call if
   * no client has it open (for the server-side API).
   */
  async withRoom<T>(docId: DocId, fn: (room: Room) => T | Promise<T>): Promise<T> {
    const holder: Peer = {
      id: `api:${docId}`,
      canWrite: true,
      speaksCometpad: false,
      send: () => {},
      close: () => {},
    }
    const room = await this.join(docId, holder)
    try {
      return await fn(room)
    } finally {
      this.leave(docId, holder)
    }
  }

  /** Wait for every room's writes and unload them all (shutdown). */
  async closeAll(): Promise<void> {
    const pending: Promise<void>[] = []
    for (const [docId, slot] of this.slots) {
      if (slot.state === 'open') pending.push(this.unload(docId, slot.room))
      else if (slot.state === 'unloading') pending.push(slot.done)
      else pending.push(slot.ready.then((room) => this.unload(docId, room)))
    }
    await Promise.all(pending)
  }

  private async load(docId: DocId): Promise<Room> {
    const stored = await this.options.store.loadState(docId)
    return new Room({
      docId,
      store: this.options.store,
      logger: this.options.logger,
      initialState: stored?.update ?? null,
      initialStateVector: stored?.stateVector ?? null,
      maxDocBytes: this.options.maxDocBytes ?? 0,
    })
  }

  private unload(docId: DocId, room: Room): Promise<void> {
    const done = (async () => {
      await room.durable()
      room.destroy()
      try {
        await this.options.store.compact(docId)
      } catch (error) {
        this.options.logger.error({ err: error, docId }, 'compacting a document on unload failed; its log stays as it is')
      }
    })()
    const slot: Slot = { state: 'unloading', done }
    this.slots.set(docId, slot)
    void done.finally(() => {
      if (this.slots.get(docId) === slot) this.slots.delete(docId)
    })
    return done
  }
}
