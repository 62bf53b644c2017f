import { afterEach, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as decoding from 'lib0/decoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import { MessageType } from '../../../../common/messages'
import { handleMessage } from '../../../../server/rooms/messages'
import type { Room } from '../../../../server/rooms/room'
import { awarenessMessage, FakePeer, newDoc, newRoom, runCleanups, type AwarenessEntry } from './fake-peer'

afterEach(runCleanups)

const ada = { user: { name: 'Ada', color: '#d32f2f' }, cursor: null }

/** The states `peer` learned from the Awareness messages it received. */
function viewOf(peer: FakePeer): Map<number, Record<string, unknown>> {
  const awareness = new awarenessProtocol.Awareness(newDoc())
  awareness.setLocalState(null)
  for (const decoder of peer.received(MessageType.Awareness)) {
    awarenessProtocol.applyAwarenessUpdate(awareness, decoding.readVarUint8Array(decoder), 'server')
  }
  const states = new Map(awareness.getStates())
  awareness.destroy()
  return states
}

function send(room: Room, peer: FakePeer, ...entries: AwarenessEntry[]): ReturnType<typeof handleMessage> {
  return handleMessage(room, peer, awarenessMessage(entries))
}

function threePeers(room: Room): [FakePeer, FakePeer, FakePeer] {
  const peers: [FakePeer, FakePeer, FakePeer] = [new FakePeer('a'), new FakePeer('b'), new FakePeer('c')]
  for (const peer of peers) room.join(peer)
  return peers
}

describe('awareness ownership', () => {
  it('drops a state B sends for A’s client id: A’s state is unchanged at the room and for other peers', () => {
    const room = newRoom()
    const [a, b, c] = threePeers(room)
    assert.equal(send(room, a, { clientId: 100, clock: 1, state: ada }), null)
    const cBefore = c.sent.length
    const result = send(room, b, { clientId: 100, clock: 99, state: { user: { name: 'Ada', color: '#000000' }, cursor: 'fake' } })
    assert.equal(result?.refused, 'awareness')
    assert.match(result?.detail ?? '', /another connection/)
    assert.deepEqual(room.awareness.getStates().get(100), ada)
    assert.equal(c.sent.length, cBefore, 'nothing relayed to C')
    assert.deepEqual(viewOf(c).get(100), ada)
    assert.deepEqual([...room.awarenessClientsOf(b)], [])
    assert.equal(room.awarenessOwner(100), a)
  })

  it('drops a removal B sends for A’s client id', () => {
    const room = newRoom()
    const [a, b] = threePeers(room)
    send(room, a, { clientId: 100, clock: 1, state: ada })
    assert.equal(send(room, b, { clientId: 100, clock: 5, state: null })?.refused, 'awareness')
    assert.deepEqual(room.awareness.getStates().get(100), ada)
  })

  it('applies B’s own entry and drops its spoofed one in the same update', () => {
    const room = newRoom()
    const [a, b, c] = threePeers(room)
    send(room, a, { clientId: 100, clock: 1, state: ada })
    const bob = { user: { name: 'Bob', color: '#1565c0' } }
    assert.equal(send(room, b, { clientId: 200, clock: 1, state: bob }, { clientId: 100, clock: 50, state: { user: { name: 'Mallory' } } }), null)
    assert.deepEqual(room.awareness.getStates().get(200), bob)
    assert.deepEqual(room.awareness.getStates().get(100), ada)
    assert.deepEqual(viewOf(c).get(100), ada)
    assert.deepEqual(viewOf(c).get(200), bob)
  })

  it('lets A update and remove its own state, after which another peer may use the id', () => {
    const room = newRoom()
    const [a, b] = threePeers(room)
    send(room, a, { clientId: 100, clock: 1, state: ada })
    assert.equal(send(room, a, { clientId: 100, clock: 2, state: { ...ada, cursor: 3 } }), null)
    assert.equal((room.awareness.getStates().get(100) as { cursor: unknown }).cursor, 3)
    assert.equal(send(room, a, { clientId: 100, clock: 3, state: null }), null)
    assert.equal(room.awareness.getStates().has(100), false)
    assert.equal(send(room, b, { clientId: 100, clock: 4, state: ada }), null)
    assert.equal(room.awarenessOwner(100), b)
  })

  it('ignores, without refusing, a stock client echoing another peer’s state at its current clock', () => {
    const room = newRoom()
    const [a, b, c] = threePeers(room)
    send(room, a, { clientId: 100, clock: 3, state: ada })
    const cBefore = c.sent.length
    // y-websocket clients re-send every awareness change they receive.
    assert.equal(send(room, b, { clientId: 100, clock: 3, state: ada }), null)
    assert.equal(send(room, b, { clientId: 100, clock: 2, state: null }), null)
    assert.equal(c.sent.length, cBefore, 'an echo changes nothing and is not relayed')
    assert.deepEqual(room.awareness.getStates().get(100), ada)
    // A removal at the same clock would act, so it is spoofing.
    assert.equal(send(room, b, { clientId: 100, clock: 3, state: null })?.refused, 'awareness')
    assert.deepEqual(room.awareness.getStates().get(100), ada)
  })

  it('does not count echoes of other peers against the per-peer cap', () => {
    const room = newRoom()
    const [, b] = threePeers(room)
    const others = [1, 2, 3, 4, 5].map((clientId) => ({ clientId, clock: 1, state: { n: clientId } }))
    for (const entry of others) {
      const peer = new FakePeer(`p${entry.clientId}`)
      room.join(peer)
      send(room, peer, entry)
    }
    assert.equal(send(room, b, ...others, { clientId: 200, clock: 1, state: { n: 'b' } }), null)
    assert.deepEqual([...room.awarenessClientsOf(b)], [200])
    assert.equal(room.awarenessOwner(1)?.id, 'p1')
  })

  it('drops an entry for the room’s own client id', () => {
    const room = newRoom()
    const [a] = threePeers(room)
    assert.equal(send(room, a, { clientId: room.awareness.clientID, clock: 50, state: ada })?.refused, 'awareness')
    assert.equal(room.awareness.getStates().size, 0)
  })
})

describe('awareness caps', () => {
  it('gives one peer at most 4 client ids', () => {
    const room = newRoom()
    const [a, b] = threePeers(room)
    const entries = [1, 2, 3, 4, 5, 6].map((clientId) => ({ clientId, clock: 1, state: { n: clientId } }))
    assert.equal(send(room, a, ...entries), null)
    assert.deepEqual([...room.awarenessClientsOf(a)].sort(), [1, 2, 3, 4])
    assert.equal(room.awareness.getStates().size, 4)
    assert.match(send(room, a, { clientId: 7, clock: 1, state: {} })?.detail ?? '', /already controls 4/)
    assert.equal(send(room, a, { clientId: 4, clock: 2, state: { n: 'again' } }), null, 'its own ids still update')
    assert.equal(send(room, b, { clientId: 8, clock: 1, state: {} }), null, 'other peers are not affected')
  })

  it('holds at most maxClientsPerRoom states in a room', () => {
    const room = newRoom({ limits: { maxClientsPerRoom: 2 } })
    const [a, b, c] = threePeers(room)
    assert.equal(send(room, a, { clientId: 1, clock: 1, state: {} }), null)
    assert.equal(send(room, b, { clientId: 2, clock: 1, state: {} }), null)
    assert.match(send(room, c, { clientId: 3, clock: 1, state: {} })?.detail ?? '', /already holds 2 states/)
    room.leave(a)
    assert.equal(send(room, c, { clientId: 3, clock: 1, state: {} }), null)
  })

  it('drops a state larger than 4 KiB', () => {
    const room = newRoom()
    const [a] = threePeers(room)
    const result = send(room, a, { clientId: 1, clock: 1, state: { blob: 'x'.repeat(5000) } })
    assert.equal(result?.refused, 'awareness')
    assert.match(result?.detail ?? '', /more than 4096/)
    assert.equal(room.awareness.getStates().size, 0)
  })

  it('drops states that are not JSON objects instead of failing the whole message', () => {
    const room = newRoom()
    const [a] = threePeers(room)
    assert.equal(send(room, a, { clientId: 1, clock: 1, state: null, raw: '{not json' })?.refused, 'awareness')
    assert.equal(send(room, a, { clientId: 1, clock: 1, state: [1, 2] })?.refused, 'awareness')
    assert.equal(send(room, a, { clientId: 1, clock: 1, state: 'text' })?.refused, 'awareness')
    assert.equal(send(room, a, { clientId: 1, clock: 1, state: { user: 'Ada' } })?.refused, 'awareness')
    assert.equal(send(room, a, { clientId: 1, clock: 1, state: null, raw: '{}' }, { clientId: 2, clock: 1, state: null, raw: '[' }), null)
    assert.deepEqual([...room.awareness.getStates().keys()], [1])
  })

  it('refuses a malformed or lying awareness update without throwing', () => {
    const room = newRoom()
    const [a] = threePeers(room)
    assert.equal(handleMessage(room, a, new Uint8Array([MessageType.Awareness, 3, 200, 1, 1]))?.refused, 'awareness')
    assert.equal(handleMessage(room, a, new Uint8Array([MessageType.Awareness, 2, 1, 5]))?.refused, 'awareness')
    // A state declared 5 bytes long of which only `null` (4) arrived.
    assert.equal(handleMessage(room, a, new Uint8Array([MessageType.Awareness, 8, 1, 5, 1, 5, 110, 117, 108, 108]))?.refused, 'awareness')
    assert.equal(send(room, a), null, 'an empty update is fine')
  })
})

describe('awareness user fields', () => {
  function userAfter(state: unknown): unknown {
    const room = newRoom()
    const [a] = threePeers(room)
    assert.equal(send(room, a, { clientId: 1, clock: 1, state }), null)
    return (room.awareness.getStates().get(1) as { user?: unknown }).user
  }

  it('removes a colour that is not #rrggbb and keeps the entry', () => {
    assert.deepEqual(userAfter({ user: { name: 'Ada', color: 'red;background:url(x)' } }), { name: 'Ada' })
    assert.deepEqual(userAfter({ user: { name: 'Ada', color: 7 } }), { name: 'Ada' })
    assert.deepEqual(userAfter({ user: { name: 'Ada', color: '#A1b2C3' } }), { name: 'Ada', color: '#A1b2C3' })
  })

  it('strips control and bidi characters from the name, trims it and cuts it to 64 code points', () => {
    assert.deepEqual(userAfter({ user: { name: '  Ada\n\u202eLovelace\u0000 ', color: '#000000' } }), { name: 'AdaLovelace', color: '#000000' })
    const long = userAfter({ user: { name: '😀'.repeat(100) } }) as { name: string }
    assert.equal(Array.from(long.name).length, 64)
    assert.equal(long.name, '😀'.repeat(64))
  })

  it('removes a name that is not a string or is empty once cleaned', () => {
    assert.deepEqual(userAfter({ user: { name: { toString: 'x' }, color: '#000000' } }), { color: '#000000' })
    assert.deepEqual(userAfter({ user: { name: '\u200b\n ' } }), {})
  })

  it('relays the cleaned state, not the one the peer sent', () => {
    const room = newRoom()
    const [a, b] = threePeers(room)
    send(room, a, { clientId: 1, clock: 1, state: { user: { name: 'Ada\u202e', color: 'javascript:' } } })
    assert.deepEqual(viewOf(b).get(1), { user: { name: 'Ada' } })
  })
})

describe('an honest peer next to a hostile one', () => {
  it('keeps its presence and keeps working after the hostile peer’s refusals', () => {
    const room = newRoom()
    const [honest, hostile, watcher] = threePeers(room)
    assert.equal(send(room, honest, { clientId: 10, clock: 1, state: ada }), null)
    for (let clock = 2; clock < 20; clock++) {
      send(room, hostile, { clientId: 10, clock, state: { user: { name: 'Not Ada' } } })
      send(room, hostile, { clientId: 10, clock, state: null })
      handleMessage(room, hostile, new Uint8Array([MessageType.Awareness, 1, 255]))
    }
    const moved = { ...ada, cursor: 42 }
    assert.equal(send(room, honest, { clientId: 10, clock: 2, state: moved }), null)
    assert.deepEqual(room.awareness.getStates().get(10), moved)
    assert.deepEqual(viewOf(watcher).get(10), moved)
    room.leave(hostile)
    assert.deepEqual(room.awareness.getStates().get(10), moved, 'the hostile peer leaving takes nothing with it')
  })
})
