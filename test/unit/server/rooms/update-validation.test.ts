import { afterEach, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { DocErrorCode, MessageType } from '../../../../common/messages'
import { handleMessage } from '../../../../server/rooms/messages'
import { defaultUpdateLimits, validateUpdate } from '../../../../server/rooms/update-validation'
import {
  FakePeer,
  newDoc,
  newRoom,
  runCleanups,
  seededRandom,
  syncUpdateMessage,
  textUpdate,
  trackedUpdateMessage,
} from './fake-peer'

afterEach(runCleanups)

/** A V1 update made of GC structs, written by hand: `blocks` as given, then an empty delete set. */
function gcUpdate(blocks: { client: number; clock: number; lens: number[]; declared?: number }[]): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, blocks.length)
  for (const block of blocks) {
    encoding.writeVarUint(encoder, block.declared ?? block.lens.length)
    encoding.writeVarUint(encoder, block.client)
    encoding.writeVarUint(encoder, block.clock)
    for (const len of block.lens) {
      encoding.writeUint8(encoder, 0) // info: GC
      encoding.writeVarUint(encoder, len)
    }
  }
  encoding.writeVarUint(encoder, 0) // delete set: no clients
  return encoding.toUint8Array(encoder)
}

function stateVector(doc: Y.Doc): Uint8Array {
  return Y.encodeStateVector(doc)
}

/** Accepted, with the end clocks `Y.parseUpdateMeta` reads from the same update. */
function assertAccepted(doc: Y.Doc, update: Uint8Array, limits = defaultUpdateLimits): void {
  const verdict = validateUpdate(doc, update, limits)
  assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason)
  assert.deepEqual(verdict.ends, Y.parseUpdateMeta(update).to)
}

describe('validateUpdate', () => {
  it('accepts an ordinary text update, an empty update and a full document state', () => {
    const doc = newDoc()
    assertAccepted(doc, textUpdate('hello'))
    assertAccepted(doc, Y.encodeStateAsUpdate(newDoc()))
    const client = newDoc()
    textUpdate('one ', client)
    client.getText('t').delete(0, 2)
    client.getMap('m').set('k', { nested: [1, 2, 3] })
    assertAccepted(doc, Y.encodeStateAsUpdate(client))
  })

  it('gives the end clock of every client in the update, Skips included, as Y.parseUpdateMeta does', () => {
    const a = newDoc()
    const b = newDoc()
    const updatesOfA: Uint8Array[] = []
    a.on('update', (update: Uint8Array) => updatesOfA.push(update))
    a.getText('t').insert(0, 'abc')
    a.getText('t').insert(3, 'def')
    a.getText('t').insert(6, 'ghi')
    b.getText('t').insert(0, 'xy')
    // A's first and third changes without its second: a Skip fills the gap.
    const withGap = Y.mergeUpdates([updatesOfA[0]!, updatesOfA[2]!, Y.encodeStateAsUpdate(b)])
    const verdict = validateUpdate(newDoc(), withGap)
    assert.ok(verdict.ok)
    assert.deepEqual(verdict.ends, new Map([[a.clientID, 9], [b.clientID, 2]]))
    assertAccepted(newDoc(), withGap)
  })

  it('refuses an update larger than maxUpdateBytes before decoding it', () => {
    const update = textUpdate('x'.repeat(200))
    const verdict = validateUpdate(newDoc(), update, { ...defaultUpdateLimits, maxUpdateBytes: 100 })
    assert.equal(verdict.ok, false)
    assert.match(!verdict.ok ? verdict.reason : '', /more than the 100 allowed/)
  })

  it('refuses truncated, padded and empty updates', () => {
    const doc = newDoc()
    const update = textUpdate('hello')
    for (const bad of [update.subarray(0, update.length - 1), new Uint8Array([...update, 0]), new Uint8Array()]) {
      assert.equal(validateUpdate(doc, bad).ok, false, `refused: ${Array.from(bad).join(',')}`)
    }
  })

  it('refuses a V2-encoded update and names the format', () => {
    const client = newDoc()
    textUpdate('written as V2', client)
    const verdict = validateUpdate(newDoc(), Y.encodeStateAsUpdateV2(client))
    assert.equal(verdict.ok, false)
    assert.match(!verdict.ok ? verdict.reason : '', /V2/)
  })

  it('refuses a ~10-byte update declaring millions of structs, quickly and without allocating them', () => {
    const lie = gcUpdate([{ client: 1, clock: 0, lens: [1], declared: 5_000_000 }])
    assert.ok(lie.length <= 12, `${lie.length} bytes`)
    const heapBefore = process.memoryUsage().heapUsed
    const started = performance.now()
    const verdict = validateUpdate(newDoc(), lie)
    assert.ok(performance.now() - started < 100, 'refused at once')
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 50 * 1024 * 1024, 'no big allocation')
    assert.equal(verdict.ok, false)
    assert.match(!verdict.ok ? verdict.reason : '', /declares 5000000 structs/)
  })

  it('refuses a header declaring millions of client blocks', () => {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, 2 ** 40)
    encoding.writeVarUint(encoder, 0)
    const verdict = validateUpdate(newDoc(), encoding.toUint8Array(encoder))
    assert.match(!verdict.ok ? verdict.reason : '', /declares \d+ client blocks/)
  })

  it('refuses a lying struct count in a later client block (past the pre-scan)', () => {
    const lie = gcUpdate([
      { client: 1, clock: 0, lens: [1] },
      { client: 2, clock: 0, lens: [1], declared: 2 ** 31 },
    ])
    const verdict = validateUpdate(newDoc(), lie)
    assert.equal(verdict.ok, false)
    assert.match(!verdict.ok ? verdict.reason : '', /could not be decoded/)
  })

  it('refuses more structs than maxStructsPerUpdate, counted across client blocks', () => {
    const update = gcUpdate([
      { client: 1, clock: 0, lens: [1, 1, 1, 1] },
      { client: 2, clock: 0, lens: [1, 1, 1, 1] },
    ])
    const limits = { ...defaultUpdateLimits, maxStructsPerUpdate: 5 }
    const verdict = validateUpdate(newDoc(), update, limits)
    assert.match(!verdict.ok ? verdict.reason : '', /more than 5 structs/)
    assertAccepted(newDoc(), update, { ...limits, maxStructsPerUpdate: 8 })
  })

  it('refuses a struct starting more than maxClockGap beyond the document state', () => {
    const verdict = validateUpdate(newDoc(), gcUpdate([{ client: 7, clock: defaultUpdateLimits.maxClockGap + 1, lens: [1] }]))
    assert.match(!verdict.ok ? verdict.reason : '', /more than 10000000 beyond/)
  })

  it('refuses a struct whose clock overflows 2^53', () => {
    const verdict = validateUpdate(newDoc(), gcUpdate([{ client: 7, clock: 10, lens: [Number.MAX_SAFE_INTEGER] }]))
    assert.match(!verdict.ok ? verdict.reason : '', /largest clock/)
  })

  it('refuses a delete range far beyond the document state', () => {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, 0) // no structs
    encoding.writeVarUint(encoder, 1) // one client in the delete set
    encoding.writeVarUint(encoder, 9) // client
    encoding.writeVarUint(encoder, 1) // one range
    encoding.writeVarUint(encoder, 2 ** 40) // clock
    encoding.writeVarUint(encoder, 1) // len
    const verdict = validateUpdate(newDoc(), encoding.toUint8Array(encoder))
    assert.match(!verdict.ok ? verdict.reason : '', /delete range of client 9/)
  })

  it('counts structs waiting for missing dependencies against maxPendingStructs', () => {
    const doc = newDoc()
    const limits = { ...defaultUpdateLimits, maxPendingStructs: 3 }
    const gap = gcUpdate([{ client: 7, clock: 100, lens: [1, 1] }])
    assertAccepted(doc, gap, limits)
    Y.applyUpdate(doc, gap)
    assert.ok(doc.store.pendingStructs, 'Yjs keeps the structs pending')
    assert.deepEqual(Y.encodeStateVector(doc), Y.encodeStateVector(newDoc()), 'and does not integrate them')
    const more = gcUpdate([{ client: 8, clock: 50, lens: [1, 1] }])
    const verdict = validateUpdate(doc, more, limits)
    assert.match(!verdict.ok ? verdict.reason : '', /4 structs waiting for missing dependencies/)
    // An update that adds nothing pending is not charged for what is already there.
    assertAccepted(doc, textUpdate('fine'), { ...limits, maxPendingStructs: 0 })
  })

  it('counts an item whose origin the document lacks as pending', () => {
    const author = newDoc()
    textUpdate('abc', author)
    const dependent = textUpdate('d', author) // its origin is 'c', which the server never got
    const verdict = validateUpdate(newDoc(), dependent, { ...defaultUpdateLimits, maxPendingStructs: 0 })
    assert.match(!verdict.ok ? verdict.reason : '', /waiting for missing dependencies/)
  })

  it('never changes the document it checks', () => {
    const doc = newDoc()
    const before = stateVector(doc)
    validateUpdate(doc, textUpdate('x'))
    validateUpdate(doc, gcUpdate([{ client: 7, clock: 5, lens: [1] }]))
    assert.deepEqual(stateVector(doc), before)
    assert.equal(doc.store.pendingStructs, null)
  })
})

describe('handleMessage with hostile updates', () => {
  it('refuses a huge clock gap with bad-update and an Error 400, leaving the state vector unchanged', () => {
    const room = newRoom({ initialState: textUpdate('before') })
    const hostile = new FakePeer('h')
    const other = new FakePeer('o')
    room.join(hostile)
    room.join(other)
    const before = stateVector(room.doc)
    const result = handleMessage(room, hostile, syncUpdateMessage(gcUpdate([{ client: 7, clock: 2 ** 40, lens: [1] }])))
    assert.equal(result?.refused, 'bad-update')
    assert.deepEqual(stateVector(room.doc), before)
    assert.equal(room.doc.store.pendingStructs, null, 'nothing parked in pending structs')
    const [error] = hostile.received(MessageType.Error)
    assert.ok(error)
    assert.equal(decoding.readVarUint(error), DocErrorCode.BadMessage)
    assert.equal(other.sent.length, 1, 'the other peer saw nothing but its join')
  })

  it('refuses a V2 update and a millions-of-structs update sent as tracked Updates, without Saved', async () => {
    const room = newRoom()
    const peer = new FakePeer('h')
    room.join(peer)
    const client = newDoc()
    textUpdate('v2', client)
    assert.equal(handleMessage(room, peer, trackedUpdateMessage(1, Y.encodeStateAsUpdateV2(client)))?.refused, 'bad-update')
    const lie = gcUpdate([{ client: 1, clock: 0, lens: [1], declared: 5_000_000 }])
    assert.equal(handleMessage(room, peer, trackedUpdateMessage(2, lie))?.refused, 'bad-update')
    await room.durable()
    assert.deepEqual(peer.received(MessageType.Saved), [])
    assert.equal(room.doc.getText('t').toString(), '')
  })

  it('never throws and never changes the state vector for 1000 seeded random byte strings', () => {
    const seed = 0xc0ffee
    const random = seededRandom(seed)
    const room = newRoom({ initialState: textUpdate('steady') })
    const peer = new FakePeer('fuzz')
    room.join(peer)
    const before = stateVector(room.doc)
    for (let i = 0; i < 1000; i++) {
      const bytes = new Uint8Array(1 + Math.floor(random() * 48))
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256)
      // Half raw messages (any type), half random bodies of sync updates.
      const message = i % 2 === 0 ? bytes : syncUpdateMessage(bytes)
      assert.doesNotThrow(() => handleMessage(room, peer, message), `seed ${seed}, input ${i}`)
      assert.deepEqual(stateVector(room.doc), before, `seed ${seed}, input ${i}: ${Array.from(message).join(',')}`)
    }
    assert.equal(room.doc.getText('t').toString(), 'steady')
  })

  it('still applies a valid update, and an honest peer keeps working after a hostile one is refused', async () => {
    const room = newRoom()
    const hostile = new FakePeer('h')
    const honest = new FakePeer('a')
    const watcher = new FakePeer('w')
    room.join(hostile)
    room.join(honest)
    room.join(watcher)
    const client = newDoc()
    assert.equal(handleMessage(room, honest, syncUpdateMessage(textUpdate('one ', client))), null)
    assert.equal(handleMessage(room, hostile, syncUpdateMessage(new Uint8Array([1, 255, 255, 255, 255, 15, 1, 0])))?.refused, 'bad-update')
    assert.equal(handleMessage(room, hostile, syncUpdateMessage(gcUpdate([{ client: client.clientID, clock: 2 ** 30, lens: [1] }])))?.refused, 'bad-update')
    assert.equal(handleMessage(room, honest, syncUpdateMessage(textUpdate('two', client))), null)
    assert.equal(room.doc.getText('t').toString(), 'one two')
    await new Promise((resolve) => setImmediate(resolve))
    // The room broadcasts the updates of one turn merged into one message.
    const [step1, broadcast, ...more] = watcher.received(MessageType.Sync)
    assert.ok(step1 && broadcast, 'join step 1 and the honest updates')
    assert.equal(more.length, 0, 'nothing of the hostile peer')
    const watcherDoc = newDoc()
    syncProtocol.readSyncMessage(broadcast, encoding.createEncoder(), watcherDoc, 'server')
    assert.equal(watcherDoc.getText('t').toString(), 'one two')
  })
})
