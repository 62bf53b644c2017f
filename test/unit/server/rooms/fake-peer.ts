/**
 * Fixtures shared by the sync-core tests: a peer that records what the room
 * sends it, a room on the memory store, and message builders.
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import { pino } from 'pino'
import { MessageType } from '../../../../common/messages'
import type { DocId } from '../../../../common/ids'
import { MemoryDocStore } from '../../../../server/storage/memory-doc-store'
import type { Peer } from '../../../../server/rooms/peer'
import { Room, type RoomLimits } from '../../../../server/rooms/room'
export { seededRandom } from '../../../helpers/seeded-random'

export const docId = 'GuardTestDocument00001' as DocId

/** A peer that records what the room sends it. */
export class FakePeer implements Peer {
  readonly sent: Uint8Array[] = []
  readonly closes: { code: number; reason: string }[] = []
  constructor(
    readonly id: string,
    readonly canWrite = true,
    readonly speaksCometpad = true,
  ) {}
  send(message: Uint8Array): void {
    this.sent.push(message)
  }
  close(code: number, reason: string): void {
    this.closes.push({ code, reason })
  }
  /** Messages of one type, each as a decoder positioned after the type. */
  received(type: number): decoding.Decoder[] {
    return this.sent.map((m) => decoding.createDecoder(m)).filter((d) => decoding.readVarUint(d) === type)
  }
  /** The type of every message sent, in order. */
  types(): number[] {
    return this.sent.map((m) => decoding.readVarUint(decoding.createDecoder(m)))
  }
}

/** Rooms and docs to destroy after each test. */
export const cleanups: (() => void)[] = []

export function runCleanups(): void {
  for (const cleanup of cleanups.splice(0)) cleanup()
}

export function newRoom(options: { initialState?: Uint8Array | null; limits?: Partial<RoomLimits> } = {}): Room {
  const room = new Room({
    docId,
    store: new MemoryDocStore(),
    logger: pino({ level: 'silent' }),
    initialState: options.initialState ?? null,
    retryBaseMs: 5,
    retryMaxMs: 20,
    ...(options.limits ? { limits: options.limits } : {}),
  })
  cleanups.push(() => room.destroy())
  return room
}

export function newDoc(): Y.Doc {
  const doc = new Y.Doc()
  cleanups.push(() => doc.destroy())
  return doc
}

/** A Yjs V1 update inserting `text` at the end of `doc`'s text `t`. */
export function textUpdate(text: string, doc: Y.Doc = newDoc()): Uint8Array {
  let update: Uint8Array | null = null
  const onUpdate = (u: Uint8Array): void => {
    update = u
  }
  doc.on('update', onUpdate)
  doc.getText('t').insert(doc.getText('t').length, text)
  doc.off('update', onUpdate)
  if (!update) throw new Error('no update')
  return update
}

export function syncUpdateMessage(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.Sync)
  syncProtocol.writeUpdate(encoder, update)
  return encoding.toUint8Array(encoder)
}

export function trackedUpdateMessage(updateId: number, update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.Update)
  encoding.writeVarUint(encoder, updateId)
  encoding.writeVarUint8Array(encoder, update)
  return encoding.toUint8Array(encoder)
}

/** One awareness entry, `state` as JSON (or raw, when a string is not valid JSON on purpose). */
export interface AwarenessEntry {
  clientId: number
  clock: number
  state: unknown
  /** Written instead of `JSON.stringify(state)`. */
  raw?: string
}

/** An Awareness message holding `entries`, encoded by hand as y-protocols does. */
export function awarenessMessage(entries: AwarenessEntry[]): Uint8Array {
  const inner = encoding.createEncoder()
  encoding.writeVarUint(inner, entries.length)
  for (const entry of entries) {
    encoding.writeVarUint(inner, entry.clientId)
    encoding.writeVarUint(inner, entry.clock)
    encoding.writeVarString(inner, entry.raw ?? JSON.stringify(entry.state))
  }
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.Awareness)
  encoding.writeVarUint8Array(encoder, encoding.toUint8Array(inner))
  return encoding.toUint8Array(encoder)
}

