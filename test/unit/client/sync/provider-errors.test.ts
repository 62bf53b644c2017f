/**
 * CometProvider and the server's document errors 413 (too large) and 503
 * (busy), against a hand-driven channel and mocked timers.
 */
import { afterEach, beforeEach, describe, it, mock } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { Observable } from '../../../../common/observable'
import { Awareness } from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import type { ChannelEvents, ChannelStatus } from '../../../../client/comet/channel'
import type { ChannelPort } from '../../../../client/comet/tab-leader'
import { CometProvider } from '../../../../client/sync/provider'
import { DocErrorCode, MessageType, encodeErrorMessage, splitDocMessage, startDocMessage } from '../../../../common/messages'

/** A channel driven by hand: records what the provider sends. */
class FakeChannel extends Observable<ChannelEvents> implements ChannelPort {
  status: ChannelStatus = { state: 'open', transport: 'websocket' }
  readonly sent: { docId: string; type: number }[] = []
  send(payload: Uint8Array): void {
    const { docId, type } = splitDocMessage(payload)
    this.sent.push({ docId, type })
  }
  close(): void {}
  /** The server sends `payload`. */
  deliver(payload: Uint8Array): void {
    this.emit('message', [payload])
  }
  types(): number[] {
    return this.sent.map((message) => message.type)
  }
}

const docId = 'doc-a'

function serverStep2(): Uint8Array {
  const encoder = startDocMessage(docId, MessageType.Sync)
  syncProtocol.writeSyncStep2(encoder, new Y.Doc())
  return encoding.toUint8Array(encoder)
}

const providers: CometProvider[] = []

function setup() {
  const channel = new FakeChannel()
  const doc = new Y.Doc()
  const provider = new CometProvider({ channel, docId, doc, awareness: new Awareness(doc), busyBackoff: { baseMs: 1_000, maxMs: 8_000 }, random: () => 0 })
  providers.push(provider)
  return { channel, doc, provider }
}

beforeEach(() => {
  mock.timers.enable({ apis: ['setTimeout'] })
})
afterEach(() => {
  for (const provider of providers.splice(0)) {
    provider.destroy()
    provider.awareness.destroy()
  }
  mock.timers.reset()
})

describe('CometProvider on Error 503 (server busy)', () => {
  it('says the server is busy, sends nothing for the document meanwhile, and joins again after a backoff', () => {
    const { channel, doc, provider } = setup()
    assert.deepEqual(channel.types().slice(0, 2), [MessageType.Join, MessageType.Sync], 'joined on construction')
    channel.deliver(encodeErrorMessage(docId, DocErrorCode.Busy, 'the server has too many documents open'))
    assert.equal(provider.status.serverBusy, true)
    channel.sent.length = 0
    doc.getText('t').insert(0, 'kept')
    assert.deepEqual(channel.sent, [], 'a change waits instead of being refused as not joined')
    assert.equal(provider.status.unsavedCount, 1)
    // Backoff with random 0: half of 1000 ms.
    mock.timers.tick(499)
    assert.deepEqual(channel.sent, [])
    mock.timers.tick(1)
    assert.deepEqual(channel.types(), [MessageType.Join, MessageType.Sync, MessageType.Awareness, MessageType.Update], 'the rejoin resends the waiting change')
  })

  it('backs off further on each refusal in a row, and clears the notice once the server syncs', () => {
    const { channel, provider } = setup()
    const busy = () => channel.deliver(encodeErrorMessage(docId, DocErrorCode.Busy, 'busy'))
    const joins = () => channel.sent.filter((m) => m.type === MessageType.Join).length
    busy()
    mock.timers.tick(500)
    assert.equal(joins(), 2)
    busy()
    mock.timers.tick(999)
    assert.equal(joins(), 2, 'the second wait is longer')
    mock.timers.tick(1)
    assert.equal(joins(), 3)
    channel.deliver(serverStep2())
    assert.equal(provider.status.serverBusy, false)
    assert.equal(provider.status.synced, true)
    busy()
    mock.timers.tick(500)
    assert.equal(joins(), 4, 'a success resets the backoff')
  })

  it('joins at once when the channel opens a new session, and not again when the timer fires', () => {
    const { channel } = setup()
    channel.deliver(encodeErrorMessage(docId, DocErrorCode.Busy, 'busy'))
    channel.sent.length = 0
    channel.emit('open', [{ resumed: false, sid: 's2' }])
    assert.equal(channel.types()[0], MessageType.Join)
    mock.timers.tick(60_000)
    assert.equal(channel.sent.filter((m) => m.type === MessageType.Join).length, 1)
  })
})

describe('CometProvider on Error 413 (document too large)', () => {
  it('reports the size limit and keeps the refused change as unsaved', () => {
    const { channel, doc, provider } = setup()
    doc.getText('t').insert(0, 'too much')
    channel.deliver(encodeErrorMessage(docId, DocErrorCode.TooLarge, 'the document would grow past 1024 bytes; the update was refused'))
    assert.equal(provider.status.sizeLimitReached, true)
    assert.equal(provider.status.unsavedCount, 1)
    assert.equal(provider.isSaved, false)
  })
})
