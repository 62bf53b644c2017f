/**
 * SharedChannel: several "tabs" in one process, over Node's real
 * BroadcastChannel, with an in-process Web Locks fake and a fake channel
 * standing for the server connection.
 */
import { afterEach, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { Observable } from '../../../../common/observable'
import type { ChannelEvents, ChannelStatus } from '../../../../client/comet/channel'
import { SharedChannel, type ChannelPort, type LockManagerLike } from '../../../../client/comet/tab-leader'
import { DocErrorCode, MessageType, encodeEmptyMessage, encodeErrorMessage, encodeSavedMessage, encodeUpdateMessage, splitDocMessage, startDocMessage } from '../../../../common/messages'
import { waitFor } from '../../../helpers/wait-for'

/** Web Locks in one process: exclusive locks granted in request order, released when the callback's promise settles. */
class FakeLocks implements LockManagerLike {
  private readonly held = new Set<string>()
  private readonly queues = new Map<string, { grant: () => void; signal: AbortSignal | undefined; onAbort: () => void }[]>()

  request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const { signal } = options
      if (signal?.aborted) {
        reject(new DOMException('aborted', 'AbortError'))
        return
      }
      const entry = {
        signal,
        grant: () => {
          signal?.removeEventListener('abort', entry.onAbort)
          this.held.add(name)
          Promise.resolve()
            .then(() => callback({ name }))
            .then(resolve, reject)
            .finally(() => {
              this.held.delete(name)
              this.next(name)
            })
        },
        onAbort: () => {
          const queue = this.queues.get(name) ?? []
          const index = queue.indexOf(entry)
          if (index >= 0) queue.splice(index, 1)
          reject(new DOMException('aborted', 'AbortError'))
        },
      }
      signal?.addEventListener('abort', entry.onAbort)
      const queue = this.queues.get(name) ?? []
      queue.push(entry)
      this.queues.set(name, queue)
      if (!this.held.has(name)) this.next(name)
    })
  }

  private next(name: string): void {
    if (this.held.has(name)) return
    const entry = this.queues.get(name)?.shift()
    entry?.grant()
  }
}

/** The real channel's stand-in: records what is sent, emits what the test says the server sent. */
class FakeChannel extends Observable<ChannelEvents> implements ChannelPort {
  readonly sent: Uint8Array[] = []
  status: ChannelStatus = { state: 'connecting', transport: null }
  closed: string | null = null
  readonly sessionId = `sid-${Math.random().toString(36).slice(2)}`

  send(payload: Uint8Array): void {
    this.sent.push(payload)
  }

  close(reason = 'closed'): void {
    this.closed = reason
    this.status = { state: 'closed', transport: null }
    this.emit('status', [this.status])
  }

  open(resumed = false): void {
    this.status = { state: 'open', transport: 'websocket' }
    this.emit('status', [this.status])
    this.emit('open', [{ resumed, sid: this.sessionId }])
  }

  fromServer(payload: Uint8Array): void {
    this.emit('message', [payload])
  }

  /** What was sent, as `type:docId` strings (Updates with their id). */
  summary(): string[] {
    return this.sent.map((payload) => {
      const { docId, type, message } = splitDocMessage(payload)
      if (type !== MessageType.Update) return `${type}:${docId}`
      const decoder = decoding.createDecoder(message)
      decoding.readVarUint(decoder)
      return `${type}:${docId}#${decoding.readVarUint(decoder)}`
    })
  }
}

/** One tab: its SharedChannel and everything it heard. */
interface Tab {
  shared: SharedChannel
  messages: Uint8Array[]
  opens: { resumed: boolean; sid: string }[]
  statuses: ChannelStatus[]
}

const J = MessageType.Join
const L = MessageType.Leave
const Q = MessageType.QueryAwareness
const U = MessageType.Update

function savedIdOf(payload: Uint8Array): number | null {
  const { type, message } = splitDocMessage(payload)
  if (type !== MessageType.Saved) return null
  const decoder = decoding.createDecoder(message)
  decoding.readVarUint(decoder)
  return decoding.readVarUint(decoder)
}

function syncMessage(docId: string, syncType: number, data: Uint8Array): Uint8Array {
  const encoder = startDocMessage(docId, MessageType.Sync)
  encoding.writeVarUint(encoder, syncType)
  encoding.writeVarUint8Array(encoder, data)
  return encoding.toUint8Array(encoder)
}

function awarenessMessage(docId: string, data: Uint8Array): Uint8Array {
  const encoder = startDocMessage(docId, MessageType.Awareness)
  encoding.writeVarUint8Array(encoder, data)
  return encoding.toUint8Array(encoder)
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b))
}

let counter = 0

describe('SharedChannel', () => {
  let tabs: Tab[] = []
  let channels: FakeChannel[] = []
  let locks: FakeLocks
  let name: string

  function openTab(): Tab {
    const shared = new SharedChannel({
      name,
      locks,
      createChannel: () => {
        const channel = new FakeChannel()
        channels.push(channel)
        return channel
      },
    })
    const tab: Tab = { shared, messages: [], opens: [], statuses: [] }
    shared.on('message', (payload) => tab.messages.push(payload))
    shared.on('open', (info) => tab.opens.push(info))
    shared.on('status', (status) => tab.statuses.push(status))
    tabs.push(tab)
    return tab
  }

  /** Open `count` tabs, the first the leader, all with an open channel. */
  async function openTabs(count: number): Promise<{ tabs: Tab[]; channel: FakeChannel }> {
    const opened = [openTab()]
    await waitFor(() => opened[0]!.shared.isLeader, 'the first tab to lead')
    for (let i = 1; i < count; i++) opened.push(openTab())
    const channel = channels[0]!
    // Every tab has said hello (its lock is held), then the channel opens.
    channel.open()
    await waitFor(() => opened.every((tab) => tab.opens.length > 0), 'every tab to hear open')
    return { tabs: opened, channel }
  }

  afterEach(() => {
    for (const tab of tabs) tab.shared.close('test over')
    tabs = []
    channels = []
  })

  function fresh(): void {
    locks = new FakeLocks()
    name = `test-${process.pid}-${++counter}`
  }

  it('elects exactly one leader, which alone creates a channel', async () => {
    fresh()
    const [a, b, c] = [openTab(), openTab(), openTab()]
    await waitFor(() => channels.length === 1, 'a channel')
    await waitFor(() => b.statuses.length > 0 && c.statuses.length > 0, 'followers to hear the status')
    assert.equal([a, b, c].filter((tab) => tab.shared.isLeader).length, 1)
    assert.equal(a.shared.isLeader, true)
    assert.equal(channels.length, 1)
  })

  it('gives every tab, also one that starts after the channel opened, its status and one open', async () => {
    fresh()
    const { tabs: [a, b], channel } = await openTabs(2)
    assert.deepEqual(a!.opens, [{ resumed: false, sid: channel.sessionId }])
    assert.equal(b!.opens.length, 1)
    assert.equal(b!.shared.status.state, 'open')
    const late = openTab()
    await waitFor(() => late.opens.length === 1 && late.shared.status.state === 'open', 'the late tab to hear status and open')
    assert.equal(late.opens[0]!.resumed, false)
    // Only the newcomer is told: the others need not rejoin.
    await waitFor(() => late.opens.length === 1, 'settle')
    assert.equal(a!.opens.length, 1)
    assert.equal(b!.opens.length, 1)
  })

  it('forwards what followers send and hands what the server sends to every tab', async () => {
    fresh()
    const { tabs: [a, b, c], channel } = await openTabs(3)
    b!.shared.send(encodeEmptyMessage('doc', J))
    await waitFor(() => channel.sent.length === 1, 'the Join to reach the server')
    assert.deepEqual(channel.summary(), [`${J}:doc`])
    const fromServer = syncMessage('doc', 0, new Uint8Array([1, 2, 3]))
    channel.fromServer(fromServer)
    await waitFor(() => [a, b, c].every((tab) => tab!.messages.some((m) => same(m, fromServer))), 'every tab to get the server message')
  })

  it('renumbers Updates and routes each Saved to its tab with its own id', async () => {
    fresh()
    const { tabs: [a, b, c], channel } = await openTabs(3)
    a!.shared.send(encodeEmptyMessage('doc', J))
    b!.shared.send(encodeEmptyMessage('doc', J))
    await waitFor(() => channel.sent.length === 2, 'both Joins')
    a!.shared.send(encodeUpdateMessage('doc', 1, new Uint8Array([0, 0])))
    b!.shared.send(encodeUpdateMessage('doc', 1, new Uint8Array([0, 0])))
    await waitFor(() => channel.sent.length === 4, "b's Update")
    a!.shared.send(encodeUpdateMessage('doc', 2, new Uint8Array([0, 0])))
    b!.shared.send(encodeUpdateMessage('doc', 2, new Uint8Array([0, 0])))
    await waitFor(() => channel.sent.length === 6, 'all four Updates')
    assert.deepEqual(channel.summary(), [`${J}:doc`, `${Q}:doc`, `${U}:doc#1`, `${U}:doc#2`, `${U}:doc#3`, `${U}:doc#4`])

    const savedOf = (tab: Tab) => tab.messages.map(savedIdOf).filter((id) => id !== null)
    channel.fromServer(encodeSavedMessage('doc', 2)) // a#1 (leader) and b#1
    await waitFor(() => savedOf(b!).length === 1, 'b to hear Saved')
    assert.deepEqual(savedOf(a!), [1])
    assert.deepEqual(savedOf(b!), [1])
    channel.fromServer(encodeSavedMessage('doc', 4)) // a#2 and b#2
    await waitFor(() => savedOf(b!).length === 2, 'b to hear the second Saved')
    assert.deepEqual(savedOf(a!), [1, 2])
    assert.deepEqual(savedOf(b!), [1, 2])
    // c sent nothing and is told nothing; a message that reaches every tab
    // afterwards proves nothing was merely late.
    const marker = syncMessage('doc', 2, new Uint8Array([9]))
    channel.fromServer(marker)
    await waitFor(() => c!.messages.some((m) => same(m, marker)), 'c to hear the marker')
    assert.deepEqual(savedOf(c!), [])
  })

  it("hands a tab's changes and presence to the other tabs, since the server does not echo them", async () => {
    fresh()
    const { tabs: [a, b, c], channel } = await openTabs(3)
    for (const tab of [a, b]) tab!.shared.send(encodeEmptyMessage('doc', J))
    await waitFor(() => channel.sent.length === 2, 'both Joins')
    b!.shared.send(encodeUpdateMessage('doc', 7, new Uint8Array([4, 5])))
    const asSyncUpdate = syncMessage('doc', 2, new Uint8Array([4, 5]))
    await waitFor(() => a!.messages.some((m) => same(m, asSyncUpdate)) && c!.messages.some((m) => same(m, asSyncUpdate)), 'the others to get the change')
    assert.equal(b!.messages.some((m) => same(m, asSyncUpdate)), false)
    const presence = awarenessMessage('doc', new Uint8Array([1, 2]))
    a!.shared.send(presence)
    await waitFor(() => b!.messages.some((m) => same(m, presence)) && c!.messages.some((m) => same(m, presence)), 'the others to get the presence')
    assert.equal(a!.messages.some((m) => same(m, presence)), false)
  })

  it('turns a second Join into a QueryAwareness, lets its Sync step 1 through, and Leaves only with the last tab', async () => {
    fresh()
    const { tabs: [a, b, c], channel } = await openTabs(3)
    b!.shared.send(encodeEmptyMessage('doc', J))
    b!.shared.send(syncMessage('doc', 0, new Uint8Array([0])))
    await waitFor(() => channel.sent.length === 2, "b's join")
    c!.shared.send(encodeEmptyMessage('doc', J))
    c!.shared.send(syncMessage('doc', 0, new Uint8Array([0])))
    await waitFor(() => channel.sent.length === 4, "c's join")
    a!.shared.send(encodeEmptyMessage('doc', J))
    assert.deepEqual(channel.summary(), [`${J}:doc`, `0:doc`, `${Q}:doc`, `0:doc`, `${Q}:doc`])

    a!.shared.send(encodeEmptyMessage('doc', L))
    b!.shared.send(encodeEmptyMessage('doc', L))
    // b's Leave is not forwarded; an Awareness after it (in order) shows it arrived.
    b!.shared.send(awarenessMessage('doc', new Uint8Array([0])))
    await waitFor(() => channel.sent.length === 6, "b's awareness")
    assert.deepEqual(channel.summary().slice(5), [`1:doc`])
    c!.shared.close() // c goes: its bye leaves the document for the channel
    await waitFor(() => channel.summary().includes(`${L}:doc`), 'the Leave')
    assert.deepEqual(channel.summary().slice(5), [`1:doc`, `${L}:doc`])
  })

  it('forgets a Join the server refused as busy (Error 503), so the next Join goes out as a Join', async () => {
    fresh()
    const { tabs: [a], channel } = await openTabs(1)
    a!.shared.send(encodeEmptyMessage('doc', J))
    await waitFor(() => channel.sent.length === 1, 'the Join')
    channel.fromServer(encodeErrorMessage('doc', DocErrorCode.Busy, 'the server has too many documents open'))
    await waitFor(() => a!.messages.length === 1, 'the tab to hear the refusal')
    a!.shared.send(encodeEmptyMessage('doc', J))
    await waitFor(() => channel.sent.length === 2, 'the second Join')
    assert.deepEqual(channel.summary(), [`${J}:doc`, `${J}:doc`], 'not a QueryAwareness: the server dropped the first Join')
  })

  it("gives back the Joins of a tab that vanished without a word (its lock was released)", async () => {
    fresh()
    const { tabs: [, b], channel } = await openTabs(2)
    b!.shared.send(encodeEmptyMessage('doc', J))
    await waitFor(() => channel.sent.length === 1, "b's Join")
    // A crashed tab: its lock goes, but it never says bye.
    ;(b!.shared as unknown as { releaseTabLock: () => void }).releaseTabLock()
    await waitFor(() => channel.summary().includes(`${L}:doc`), 'the Leave')
  })

  it('hands over when the leader closes: a follower leads with a new channel and every tab rejoins', async () => {
    fresh()
    const { tabs: [a, b, c], channel } = await openTabs(3)
    b!.shared.send(encodeEmptyMessage('doc', J))
    await waitFor(() => channel.sent.length === 1, "b's Join")
    a!.shared.close('tab closed')
    assert.equal(channel.closed, 'tab closed')
    await waitFor(() => channels.length === 2, 'a second channel')
    const leaders = [b, c].filter((tab) => tab!.shared.isLeader)
    assert.equal(leaders.length, 1)
    const follower = leaders[0] === b ? c! : b!
    await waitFor(() => follower.shared.status.state === 'connecting', 'the follower to hear the new status')

    // Until the new session opens, nothing goes to the server without its Join.
    follower.shared.send(encodeUpdateMessage('doc', 3, new Uint8Array([0, 0])))
    const second = channels[1]!
    second.open()
    await waitFor(() => b!.opens.length === 2 && c!.opens.length === 2, 'both tabs to hear the new open')
    assert.deepEqual(b!.opens[1], { resumed: false, sid: second.sessionId })
    assert.deepEqual(c!.opens[1], { resumed: false, sid: second.sessionId })
    assert.deepEqual(second.summary(), [])

    // Both rejoin and resend: the first Join goes through, the second becomes a query.
    follower.shared.send(encodeEmptyMessage('doc', J))
    follower.shared.send(encodeUpdateMessage('doc', 3, new Uint8Array([0, 0])))
    await waitFor(() => second.sent.length === 2, "the follower's rejoin")
    leaders[0]!.shared.send(encodeEmptyMessage('doc', J))
    assert.deepEqual(second.summary(), [`${J}:doc`, `${U}:doc#1`, `${Q}:doc`])
    second.fromServer(encodeSavedMessage('doc', 1))
    await waitFor(() => follower.messages.some((m) => savedIdOf(m) === 3), 'the follower to hear Saved for its own id 3')
  })

  it('is not supported where there are no Web Locks', () => {
    const hasLocks = typeof (globalThis.navigator as { locks?: unknown } | undefined)?.locks !== 'undefined'
    if (hasLocks) return // a Node with Web Locks: nothing to check
    assert.equal(SharedChannel.isSupported(), false)
    assert.throws(() => new SharedChannel({ createChannel: () => new FakeChannel() }), TypeError)
  })
})
