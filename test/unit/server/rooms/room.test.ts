import { afterEach, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import * as authProtocol from 'y-protocols/auth'
import { pino } from 'pino'
import { DocErrorCode, MessageType } from '../../../../common/messages'
import type { DocId } from '../../../../common/ids'
import type { DocStore, StoredState } from '../../../../server/storage/doc-store'
import { MemoryDocStore } from '../../../../server/storage/memory-doc-store'
import type { Peer } from '../../../../server/rooms/peer'
import { Room } from '../../../../server/rooms/room'
import { handleMessage } from '../../../../server/rooms/messages'
import { RoomRegistry } from '../../../../server/rooms/room-registry'
import { waitFor } from '../../../helpers/wait-for'
import { FakePeer } from './fake-peer'

const logger = pino({ level: 'silent' })
const docId = 'RoomTestDocument000001' as DocId

interface Deferred {
  promise: Promise<void>
  resolve: () => void
}

function deferred(): Deferred {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

const stores: TestStore[] = []

/** A memory store whose appends and loads can be counted, held open, or made to fail. */
class TestStore implements DocStore {
  readonly inner = new MemoryDocStore()
  loads = 0
  appends = 0
  compacts = 0
  failing = false
  failLoads = false
  /** While set, appends wait for it before storing. */
  hold: Deferred | null = null
  private appendWaiters: { count: number; resolve: () => void }[] = []

  constructor() {
    stores.push(this)
  }

  /** Let every held or failing write through, so a failed test cannot keep rooms (and their timers) alive. */
  release(): void {
    this.failing = false
    this.failLoads = false
    this.hold?.resolve()
    this.hold = null
  }

  async load(id: DocId): Promise<Uint8Array | null> {
    this.loads++
    if (this.failLoads) throw new Error('load failed')
    return this.inner.load(id)
  }
  async loadState(id: DocId): Promise<StoredState | null> {
    const update = await this.load(id)
    return update === null ? null : { update, stateVector: null }
  }
  has(id: DocId): Promise<boolean> {
    return this.inner.has(id)
  }
  async append(id: DocId, update: Uint8Array): Promise<void> {
    this.appends++
    for (const waiter of this.appendWaiters.filter((w) => this.appends >= w.count)) waiter.resolve()
    const copy = update.slice()
    if (this.hold) await this.hold.promise
    if (this.failing) throw new Error('disk unavailable')
    await this.inner.append(id, copy)
  }
  putMeta(key: string, value: string): Promise<void> {
    return this.inner.putMeta(key, value)
  }
  getMeta(key: string): Promise<string | null> {
    return this.inner.getMeta(key)
  }
  async compact(id: DocId): Promise<void> {
    this.compacts++
    await this.inner.compact(id)
  }
  close(): Promise<void> {
    return this.inner.close()
  }
  /** Resolves once `append` has been called `count` times in all. */
  appendCalls(count: number): Promise<void> {
    if (this.appends >= count) return Promise.resolve()
    return new Promise((resolve) => this.appendWaiters.push({ count, resolve }))
  }
  /** The stored document's text. */
  async storedText(id: DocId = docId): Promise<string> {
    const doc = new Y.Doc()
    const state = await this.inner.load(id)
    if (state) Y.applyUpdate(doc, state)
    return doc.getText('t').toString()
  }
}

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const store of stores.splice(0)) store.release()
  for (const cleanup of cleanups.splice(0)) cleanup()
})

function newRoom(store: DocStore = new TestStore(), initialState: Uint8Array | null = null, retry = { retryBaseMs: 5, retryMaxMs: 20 }): Room {
  const room = new Room({ docId, store, logger, initialState, ...retry })
  cleanups.push(() => room.destroy())
  return room
}

function newDoc(): Y.Doc {
  const doc = new Y.Doc()
  cleanups.push(() => doc.destroy())
  return doc
}

/** A Yjs update inserting `text` into a fresh client document. */
function textUpdate(text: string, doc: Y.Doc = newDoc()): Uint8Array {
  let update: Uint8Array | null = null
  const onUpdate = (u: Uint8Array) => (update = u)
  doc.on('update', onUpdate)
  doc.getText('t').insert(doc.getText('t').length, text)
  doc.off('update', onUpdate)
  assert.ok(update)
  return update
}

function syncUpdateMessage(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.Sync)
  syncProtocol.writeUpdate(encoder, update)
  return encoding.toUint8Array(encoder)
}

function trackedUpdateMessage(updateId: number, update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.Update)
  encoding.writeVarUint(encoder, updateId)
  encoding.writeVarUint8Array(encoder, update)
  return encoding.toUint8Array(encoder)
}

/** Apply every sync message `peer` received to `doc`, as a y-websocket client would. */
function applySyncMessages(peer: FakePeer, doc: Y.Doc): void {
  for (const decoder of peer.received(MessageType.Sync)) {
    syncProtocol.readSyncMessage(decoder, encoding.createEncoder(), doc, 'server')
  }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('Room.join', () => {
  it('sends sync step 1 carrying the state vector of the room', () => {
    const room = newRoom(new TestStore(), textUpdate('stored'))
    const peer = new FakePeer('a')
    room.join(peer)
    assert.equal(peer.sent.length, 1)
    const [decoder] = peer.received(MessageType.Sync)
    assert.ok(decoder)
    assert.equal(decoding.readVarUint(decoder), syncProtocol.messageYjsSyncStep1)
    assert.deepEqual(decoding.readVarUint8Array(decoder), Y.encodeStateVector(room.doc))
    assert.equal(room.peerCount, 1)
    assert.equal(room.has(peer), true)
  })

  it('answers a new client of an unchanged stored document with the stored bytes, and still merges later edits', async () => {
    const stored = textUpdate('stored')
    const room = newRoom(new TestStore(), stored)
    const peer = new FakePeer('a')
    room.join(peer)
    const step1 = encoding.createEncoder()
    encoding.writeVarUint(step1, MessageType.Sync)
    syncProtocol.writeSyncStep1(step1, newDoc())
    assert.equal(handleMessage(room, peer, encoding.toUint8Array(step1)), null)
    const [, reply] = peer.received(MessageType.Sync)
    assert.ok(reply)
    assert.equal(decoding.readVarUint(reply), syncProtocol.messageYjsSyncStep2)
    assert.deepEqual(decoding.readVarUint8Array(reply), stored, 'the stored state, not re-encoded')
    // A client that already has part of it gets only the rest.
    const partial = newDoc()
    Y.applyUpdate(partial, stored)
    assert.equal(Y.decodeUpdate(room.missingFrom(Y.encodeStateVector(partial))).structs.length, 0)
    // An edit builds the document from the stored state first.
    const client = newDoc()
    Y.applyUpdate(client, stored)
    assert.equal(handleMessage(room, peer, syncUpdateMessage(textUpdate(' and edited', client))), null)
    assert.equal(room.doc.getText('t').toString(), 'stored and edited')
  })

  it('gives each new client the document as it is now, also right after an edit', () => {
    const room = newRoom()
    const writer = new FakePeer('w')
    room.join(writer)
    const client = newDoc()
    const stateFor = (): string => {
      const fresh = newDoc()
      Y.applyUpdate(fresh, room.missingFrom(Y.encodeStateVector(newDoc())))
      return fresh.getText('t').toString()
    }
    assert.equal(handleMessage(room, writer, syncUpdateMessage(textUpdate('one', client))), null)
    assert.equal(stateFor(), 'one')
    assert.equal(stateFor(), 'one', 'the second new client gets the same')
    assert.equal(handleMessage(room, writer, syncUpdateMessage(textUpdate(' two', client))), null)
    assert.equal(stateFor(), 'one two', 'an edit is never hidden by an earlier encoding')
  })

  it('does not store or broadcast the initial state it loaded', async () => {
    const store = new TestStore()
    const room = newRoom(store, textUpdate('stored'))
    assert.equal(room.doc.getText('t').toString(), 'stored')
    await room.durable()
    assert.equal(store.appends, 0)
  })

  it('sends everyone’s presence to a joining peer when there is any', () => {
    const room = newRoom()
    const a = new FakePeer('a')
    room.join(a)
    const clientAwareness = newAwareness({ name: 'Ada' })
    handleMessage(room, a, awarenessMessage(clientAwareness))
    const b = new FakePeer('b')
    room.join(b)
    assert.deepEqual(b.types(), [MessageType.Sync, MessageType.Awareness])
  })

  it('ignores a second join of the same peer', () => {
    const room = newRoom()
    const peer = new FakePeer('a')
    room.join(peer)
    room.join(peer)
    assert.equal(peer.sent.length, 1)
    assert.equal(room.peerCount, 1)
  })
})

describe('handleMessage sync', () => {
  it('answers a client sync step 1 with a step 2 holding what the client lacks', () => {
    const room = newRoom(new TestStore(), textUpdate('server text'))
    const peer = new FakePeer('a')
    room.join(peer)
    const client = newDoc()
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeSyncStep1(encoder, client)
    assert.equal(handleMessage(room, peer, encoding.toUint8Array(encoder)), null)
    const replies = peer.received(MessageType.Sync).slice(1)
    assert.equal(replies.length, 1)
    const [reply] = replies
    assert.ok(reply)
    assert.equal(decoding.readVarUint(reply), syncProtocol.messageYjsSyncStep2)
    Y.applyUpdate(client, decoding.readVarUint8Array(reply))
    assert.equal(client.getText('t').toString(), 'server text')
  })

  it('answers sync step 1 from a view-only peer too (reading is allowed)', () => {
    const room = newRoom(new TestStore(), textUpdate('visible'))
    const viewer = new FakePeer('v', false)
    room.join(viewer)
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeSyncStep1(encoder, newDoc())
    assert.equal(handleMessage(room, viewer, encoding.toUint8Array(encoder)), null)
    const client = newDoc()
    applySyncMessages(viewer, client)
    assert.equal(client.getText('t').toString(), 'visible')
  })

  it('applies an update from A, sends it to B but not back to A, and stores it', async () => {
    const store = new TestStore()
    const room = newRoom(store)
    const a = new FakePeer('a')
    const b = new FakePeer('b')
    room.join(a)
    room.join(b)
    assert.equal(handleMessage(room, a, syncUpdateMessage(textUpdate('hello'))), null)
    assert.equal(room.doc.getText('t').toString(), 'hello')
    await turn() // updates go out at the end of the turn, merged
    assert.equal(a.sent.length, 1, 'A only got its join step 1')
    const bDoc = newDoc()
    applySyncMessages(b, bDoc)
    assert.equal(bDoc.getText('t').toString(), 'hello')
    await room.durable()
    assert.equal(await store.storedText(), 'hello')
  })

  it('applies a sync step 2 from a client like an update', async () => {
    const store = new TestStore()
    const room = newRoom(store)
    const a = new FakePeer('a')
    room.join(a)
    const client = newDoc()
    client.getText('t').insert(0, 'offline edits')
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeSyncStep2(encoder, client)
    assert.equal(handleMessage(room, a, encoding.toUint8Array(encoder)), null)
    assert.equal(room.doc.getText('t').toString(), 'offline edits')
    await room.durable()
    assert.equal(await store.storedText(), 'offline edits')
  })

  it('refuses a malformed update with bad-update and leaves the document unchanged', async () => {
    const store = new TestStore()
    const room = newRoom(store, textUpdate('before'))
    const a = new FakePeer('a')
    const b = new FakePeer('b')
    room.join(a)
    room.join(b)
    const stateVector = Y.encodeStateVector(room.doc)
    const update = textUpdate('after')
    const truncated = update.subarray(0, update.length - 1)
    assert.throws(() => Y.decodeUpdate(truncated), 'the test update really is malformed')
    const result = handleMessage(room, a, syncUpdateMessage(truncated))
    assert.equal(result?.refused, 'bad-update')
    assert.deepEqual(Y.encodeStateVector(room.doc), stateVector)
    assert.equal(room.doc.getText('t').toString(), 'before')
    assert.equal(b.sent.length, 1, 'nothing was broadcast')
    const [error] = a.received(MessageType.Error)
    assert.ok(error, 'a Cometpad peer is told its message was refused')
    assert.equal(decoding.readVarUint(error), DocErrorCode.BadMessage)
    await room.durable()
    assert.equal(store.appends, 0)
  })

  it('refuses an update from a view-only peer with an Auth permission-denied reply', async () => {
    const store = new TestStore()
    const room = newRoom(store, textUpdate('original'))
    const viewer = new FakePeer('v', false)
    const b = new FakePeer('b')
    room.join(viewer)
    room.join(b)
    const stateVector = Y.encodeStateVector(room.doc)
    const result = handleMessage(room, viewer, syncUpdateMessage(textUpdate('vandalism')))
    assert.equal(result?.refused, 'read-only')
    const [auth] = viewer.received(MessageType.Auth)
    assert.ok(auth, 'the viewer got an Auth message')
    assert.equal(decoding.readVarUint(auth), authProtocol.messagePermissionDenied)
    assert.equal(typeof decoding.readVarString(auth), 'string')
    assert.deepEqual(Y.encodeStateVector(room.doc), stateVector)
    assert.equal(room.doc.getText('t').toString(), 'original')
    assert.equal(b.sent.length, 1, 'nothing was broadcast')
    await room.durable()
    assert.equal(store.appends, 0)
    assert.equal(await store.inner.has(docId), false)
  })

  it('refuses a tracked Update from a view-only peer and never confirms it', async () => {
    const store = new TestStore()
    const room = newRoom(store)
    const viewer = new FakePeer('v', false)
    room.join(viewer)
    const result = handleMessage(room, viewer, trackedUpdateMessage(1, textUpdate('x')))
    assert.equal(result?.refused, 'read-only')
    await room.durable()
    await turn()
    assert.deepEqual(viewer.received(MessageType.Saved), [])
    assert.equal(room.doc.getText('t').toString(), '')
  })
})

describe('updates of one turn', () => {
  it('applies the updates several peers sent in one turn together: one transaction, one broadcast, one store append', async () => {
    const store = new TestStore()
    const room = newRoom(store)
    const [a, b, c] = [new FakePeer('a'), new FakePeer('b'), new FakePeer('c')]
    for (const peer of [a, b, c]) room.join(peer)
    let transactions = 0
    room.docAsApplied.on('afterTransaction', () => transactions++)
    assert.equal(handleMessage(room, a, syncUpdateMessage(textUpdate('one '))), null)
    assert.equal(handleMessage(room, b, syncUpdateMessage(textUpdate('two '))), null)
    assert.equal(handleMessage(room, a, syncUpdateMessage(textUpdate('three'))), null)
    assert.equal(transactions, 0, 'nothing applied before the end of the turn')
    await turn()
    assert.equal(transactions, 1)
    assert.equal(c.received(MessageType.Sync).length, 2, 'C got its join step 1 and one update')
    const seen = newDoc()
    applySyncMessages(c, seen)
    assert.equal(seen.getText('t').toString().length, 'one two three'.length)
    assert.equal(seen.getText('t').toString(), room.doc.getText('t').toString())
    await room.durable()
    assert.equal(store.appends, 1)
    assert.equal(await store.storedText(), room.doc.getText('t').toString())
  })

  it('shows updates accepted this turn to a reader of the document, and to a client syncing in the same turn', () => {
    const room = newRoom()
    const a = new FakePeer('a')
    const b = new FakePeer('b')
    room.join(a)
    room.join(b)
    assert.equal(handleMessage(room, a, syncUpdateMessage(textUpdate('queued'))), null)
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeSyncStep1(encoder, newDoc())
    assert.equal(handleMessage(room, b, encoding.toUint8Array(encoder)), null)
    const client = newDoc()
    applySyncMessages(b, client)
    assert.equal(client.getText('t').toString(), 'queued')
    assert.equal(room.doc.getText('t').toString(), 'queued')
  })

  it('lets a peer relay content another peer sent earlier in the same turn (it is not forged)', async () => {
    const room = newRoom()
    const [a, b, c] = [new FakePeer('a'), new FakePeer('b'), new FakePeer('c')]
    for (const peer of [a, b, c]) room.join(peer)
    const update = textUpdate('relayed')
    assert.equal(handleMessage(room, a, syncUpdateMessage(update)), null)
    assert.equal(handleMessage(room, b, syncUpdateMessage(update)), null, 'B only repeats what A sent')
    assert.deepEqual(b.received(MessageType.Error), [])
    await turn()
    assert.equal(room.doc.getText('t').toString(), 'relayed')
  })

  it('still refuses new content under a client id another peer wrote under earlier in the same turn', () => {
    const room = newRoom()
    const a = new FakePeer('a')
    const b = new FakePeer('b')
    room.join(a)
    room.join(b)
    const doc = newDoc()
    assert.equal(handleMessage(room, a, syncUpdateMessage(textUpdate('mine', doc))), null)
    const forged = textUpdate(' and more', doc)
    assert.equal(handleMessage(room, b, syncUpdateMessage(forged))?.refused, 'bad-update')
    assert.equal(room.doc.getText('t').toString(), 'mine')
  })
})

describe('handleMessage tracked Update', () => {
  it('applies the update and answers Saved with its id only after the store append resolved', async () => {
    const store = new TestStore()
    const room = newRoom(store)
    const a = new FakePeer('a')
    const b = new FakePeer('b')
    room.join(a)
    room.join(b)
    const hold = deferred()
    store.hold = hold
    assert.equal(handleMessage(room, a, trackedUpdateMessage(42, textUpdate('tracked'))), null)
    assert.equal(room.doc.getText('t').toString(), 'tracked')
    await store.appendCalls(1)
    await turn()
    await turn()
    assert.deepEqual(a.received(MessageType.Saved), [], 'no Saved while the append is pending')
    store.hold = null
    hold.resolve()
    await room.durable()
    await turn()
    const saved = a.received(MessageType.Saved)
    assert.equal(saved.length, 1)
    assert.equal(decoding.readVarUint(saved[0]!), 42)
    assert.deepEqual(b.received(MessageType.Saved), [], 'only the sender is told')
    assert.equal(b.received(MessageType.Sync).length, 2, 'B got the update itself')
    assert.equal(await store.storedText(), 'tracked')
  })

  it('does not send Saved to a peer that left before the write finished', async () => {
    const store = new TestStore()
    const room = newRoom(store)
    const a = new FakePeer('a')
    room.join(a)
    const hold = deferred()
    store.hold = hold
    handleMessage(room, a, trackedUpdateMessage(1, textUpdate('x')))
    room.leave(a)
    store.hold = null
    hold.resolve()
    await room.durable()
    assert.deepEqual(a.received(MessageType.Saved), [])
  })

  it('refuses a tracked Update whose body is truncated as malformed', () => {
    const room = newRoom()
    const a = new FakePeer('a')
    room.join(a)
    const result = handleMessage(room, a, new Uint8Array([MessageType.Update, 1]))
    assert.equal(result?.refused, 'malformed')
  })
})

describe('handleMessage refusals', () => {
  it('refuses an unknown message type with unknown-type and an Error 400 to a Cometpad peer', () => {
    const room = newRoom()
    const a = new FakePeer('a')
    room.join(a)
    const result = handleMessage(room, a, new Uint8Array([99]))
    assert.equal(result?.refused, 'unknown-type')
    const [error] = a.received(MessageType.Error)
    assert.ok(error)
    assert.equal(decoding.readVarUint(error), DocErrorCode.BadMessage)
  })

  it('refuses an unknown sync message type', () => {
    const room = newRoom()
    const a = new FakePeer('a')
    room.join(a)
    assert.equal(handleMessage(room, a, new Uint8Array([MessageType.Sync, 9]))?.refused, 'unknown-type')
  })

  it('refuses an empty message as malformed', () => {
    const room = newRoom()
    const a = new FakePeer('a')
    room.join(a)
    assert.equal(handleMessage(room, a, new Uint8Array())?.refused, 'malformed')
  })

  it('sends no Cometpad Error to a stock y-websocket peer', () => {
    const room = newRoom()
    const stock = new FakePeer('y', true, false)
    room.join(stock)
    assert.equal(handleMessage(room, stock, new Uint8Array([99]))?.refused, 'unknown-type')
    assert.deepEqual(stock.types(), [MessageType.Sync])
  })
})

function newAwareness(state: Record<string, unknown>): awarenessProtocol.Awareness {
  const awareness = new awarenessProtocol.Awareness(newDoc())
  cleanups.push(() => awareness.destroy())
  awareness.setLocalState(state)
  return awareness
}

function awarenessMessage(awareness: awarenessProtocol.Awareness, clientIds = [awareness.clientID]): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.Awareness)
  encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, clientIds))
  return encoding.toUint8Array(encoder)
}

function applyAwarenessMessages(peer: FakePeer, awareness: awarenessProtocol.Awareness): void {
  for (const decoder of peer.received(MessageType.Awareness)) {
    awarenessProtocol.applyAwarenessUpdate(awareness, decoding.readVarUint8Array(decoder), 'server')
  }
}

describe('awareness', () => {
  it('relays presence from A to B and does not echo it to a Cometpad A', () => {
    const room = newRoom()
    const a = new FakePeer('a')
    const b = new FakePeer('b')
    room.join(a)
    room.join(b)
    const aAwareness = newAwareness({ name: 'Ada' })
    assert.equal(handleMessage(room, a, awarenessMessage(aAwareness)), null)
    assert.deepEqual(room.awareness.getStates().get(aAwareness.clientID), { name: 'Ada' })
    const bView = newAwareness({ name: 'Bob' })
    applyAwarenessMessages(b, bView)
    assert.deepEqual(bView.getStates().get(aAwareness.clientID), { name: 'Ada' })
    assert.deepEqual(a.received(MessageType.Awareness), [])
  })

  it('echoes presence to a stock y-websocket sender, which expects it', () => {
    const room = newRoom()
    const stock = new FakePeer('y', true, false)
    room.join(stock)
    handleMessage(room, stock, awarenessMessage(newAwareness({ name: 'Yan' })))
    assert.equal(stock.received(MessageType.Awareness).length, 1)
  })

  it('removes the presence A introduced when A leaves and tells B', () => {
    const room = newRoom()
    const a = new FakePeer('a')
    const b = new FakePeer('b')
    room.join(a)
    room.join(b)
    const aAwareness = newAwareness({ name: 'Ada' })
    handleMessage(room, a, awarenessMessage(aAwareness))
    const bView = newAwareness({ name: 'Bob' })
    applyAwarenessMessages(b, bView)
    assert.equal(bView.getStates().has(aAwareness.clientID), true)
    const receivedBefore = b.received(MessageType.Awareness).length
    room.leave(a)
    assert.equal(room.has(a), false)
    assert.equal(room.awareness.getStates().has(aAwareness.clientID), false)
    const removals = b.received(MessageType.Awareness).slice(receivedBefore)
    assert.equal(removals.length, 1)
    awarenessProtocol.applyAwarenessUpdate(bView, decoding.readVarUint8Array(removals[0]!), 'server')
    assert.equal(bView.getStates().has(aAwareness.clientID), false)
  })

  it('answers QueryAwareness with every known state', () => {
    const room = newRoom()
    const a = new FakePeer('a')
    const b = new FakePeer('b')
    room.join(a)
    room.join(b)
    const aAwareness = newAwareness({ name: 'Ada' })
    handleMessage(room, a, awarenessMessage(aAwareness))
    const before = b.received(MessageType.Awareness).length
    assert.equal(handleMessage(room, b, new Uint8Array([MessageType.QueryAwareness])), null)
    assert.equal(b.received(MessageType.Awareness).length, before + 1)
  })
})

describe('Room storage failure', () => {
  it('keeps durable() pending while appends fail, tells Cometpad peers once, and stores the whole document on recovery', async () => {
    const store = new TestStore()
    const room = newRoom(store)
    const a = new FakePeer('a')
    const stock = new FakePeer('y', true, false)
    room.join(a)
    room.join(stock)
    store.failing = true
    const client = newDoc()
    handleMessage(room, a, syncUpdateMessage(textUpdate('first ', client)))
    let isDurable = false
    void room.durable().then(() => (isDurable = true))
    // The first append and two retries fail.
    await store.appendCalls(3)
    handleMessage(room, a, syncUpdateMessage(textUpdate('second', client)))
    await store.appendCalls(6)
    await turn()
    assert.equal(isDurable, false, 'durable() must not resolve while storage fails')
    assert.ok(room.storageError, 'the room reports the storage error')
    const errors = a.received(MessageType.Error)
    assert.equal(errors.length, 1, 'the failure is reported once, not on every retry')
    assert.equal(decoding.readVarUint(errors[0]!), DocErrorCode.StorageFailed)
    assert.deepEqual(stock.received(MessageType.Error), [], 'a y-websocket peer is not sent Cometpad errors')
    assert.equal(await store.inner.has(docId), false)
    store.failing = false
    await room.durable()
    assert.equal(isDurable, true)
    assert.equal(room.storageError, null)
    assert.equal(await store.storedText(), 'first second')
  })

  it('waits for earlier failed writes even when a later append succeeds', async () => {
    const store = new TestStore()
    const room = newRoom(store)
    const a = new FakePeer('a')
    room.join(a)
    const client = newDoc()
    store.failing = true
    handleMessage(room, a, trackedUpdateMessage(1, textUpdate('one ', client)))
    await store.appendCalls(1)
    store.failing = false
    const hold = deferred()
    store.hold = hold
    handleMessage(room, a, trackedUpdateMessage(2, textUpdate('two', client)))
    await store.appendCalls(2)
    // Let the second append succeed while the first is still being retried.
    store.hold = null
    hold.resolve()
    await room.durable()
    assert.equal(await store.storedText(), 'one two')
    const saved = a.received(MessageType.Saved).map((d) => decoding.readVarUint(d))
    assert.deepEqual(saved.sort(), [1, 2])
  })
})

describe('RoomRegistry', () => {
  function registryWith(store: TestStore): RoomRegistry {
    const registry = new RoomRegistry({ store, logger })
    cleanups.push(() => void registry.closeAll())
    return registry
  }

  async function storeWithText(text: string): Promise<TestStore> {
    const store = new TestStore()
    await store.inner.append(docId, textUpdate(text))
    return store
  }

  it('loads a document from the store once for concurrent joins', async () => {
    const store = await storeWithText('shared')
    const registry = registryWith(store)
    const peers = [new FakePeer('a'), new FakePeer('b'), new FakePeer('c')]
    const rooms = await Promise.all(peers.map((peer) => registry.join(docId, peer)))
    // Rooms the registry lost track of would keep their timers alive; destroy them if there are any.
    for (const room of new Set(rooms)) if (room !== registry.peek(docId)) cleanups.push(() => room.destroy())
    assert.equal(store.loads, 1)
    assert.equal(new Set(rooms).size, 1)
    const [room] = rooms
    assert.ok(room)
    assert.equal(room.peerCount, 3)
    assert.equal(room.doc.getText('t').toString(), 'shared')
    assert.equal(registry.peek(docId), room)
    assert.equal(registry.size, 1)
  })

  it('unloads the room after the last peer leaves', async () => {
    const store = await storeWithText('x')
    const registry = registryWith(store)
    const a = new FakePeer('a')
    const b = new FakePeer('b')
    const room = await registry.join(docId, a)
    await registry.join(docId, b)
    registry.leave(docId, a)
    assert.equal(registry.peek(docId), room, 'still open while B is in it')
    registry.leave(docId, b)
    assert.equal(registry.peek(docId), undefined)
    await waitFor(() => registry.size === 0, 'the room to unload')
    assert.equal(store.compacts, 1)
    assert.throws(() => room.join(new FakePeer('late')), /unloaded/)
  })

  it('gives a peer that joins during an unload a new room with every change', async () => {
    const store = await storeWithText('stored ')
    const registry = registryWith(store)
    const a = new FakePeer('a')
    const oldRoom = await registry.join(docId, a)
    const hold = deferred()
    store.hold = hold
    const client = newDoc()
    Y.applyUpdate(client, (await store.inner.load(docId))!)
    handleMessage(oldRoom, a, syncUpdateMessage(textUpdate('unsaved', client)))
    await store.appendCalls(1)
    registry.leave(docId, a)
    let joined = false
    const joining = registry.join(docId, new FakePeer('b')).then((room) => {
      joined = true
      return room
    })
    await turn()
    assert.equal(joined, false, 'the join waits for the unload')
    store.hold = null
    hold.resolve()
    const reloaded = await joining
    assert.notEqual(reloaded, oldRoom)
    assert.equal(reloaded.doc.getText('t').toString(), 'stored unsaved')
    assert.equal(store.loads, 2)
  })

  it('forgets a failed load so the next join tries again', async () => {
    const store = await storeWithText('x')
    const registry = registryWith(store)
    store.failLoads = true
    await assert.rejects(registry.join(docId, new FakePeer('a')), /load failed/)
    assert.equal(registry.size, 0)
    store.failLoads = false
    const room = await registry.join(docId, new FakePeer('b'))
    assert.equal(room.doc.getText('t').toString(), 'x')
  })
})
