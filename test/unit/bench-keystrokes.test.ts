import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { Typist, sendTimes, textName } from '../../bench/keystrokes'

describe('bench Typist', () => {
  it('sends byte for byte the updates of a Y.Text typed at its end, one stamped embed at a time', () => {
    const typist = new Typist()
    const reference = new Y.Doc()
    reference.clientID = typist.clientId
    const text = reference.getText(textName)
    let expected: Uint8Array | null = null
    reference.on('update', (update: Uint8Array) => (expected = update))
    for (let i = 0; i < 300; i++) {
      const { update, sentAt } = typist.keystroke()
      assert.deepEqual(sendTimes(update, null), [sentAt])
      // Stamps are whole microseconds.
      text.insertEmbed(text.length, { t: Math.round(sentAt * 1000) })
      assert.deepEqual(update, expected, `keystroke ${i}`)
    }
    reference.destroy()
  })

  it('makes updates that build one text in typing order on a server, interleaved with another writer', () => {
    const [a, b] = [new Typist(), new Typist()]
    const server = new Y.Doc()
    const sent: number[] = []
    for (let i = 0; i < 50; i++) {
      for (const typist of [a, b]) {
        const { update, sentAt } = typist.keystroke()
        sent.push(sentAt)
        Y.applyUpdate(server, update)
      }
    }
    const delta = server.getText(textName).toDelta() as Array<{ insert: { t: number } }>
    assert.equal(delta.length, 100)
    assert.deepEqual(server.store.pendingStructs, null)
    assert.deepEqual([...delta.map((op) => op.insert.t / 1000)].sort((x, y) => x - y), [...sent].sort((x, y) => x - y))
    server.destroy()
  })
})

/** What sendTimes reads, the slow way: every struct decoded by Yjs. */
function referenceSendTimes(update: Uint8Array, ownClientId: number | null): number[] {
  const times: number[] = []
  for (const struct of Y.decodeUpdate(update).structs) {
    if (!(struct instanceof Y.Item) || !(struct.content instanceof Y.ContentEmbed) || struct.id.client === ownClientId) continue
    const embed: unknown = struct.content.embed
    if (typeof embed === 'object' && embed !== null && 't' in embed && typeof embed.t === 'number') times.push(embed.t / 1000)
  }
  return times
}

describe('bench sendTimes', () => {
  it('reads the stamps of updates merged from several writers, leaving out its own', () => {
    const typists = [new Typist(), new Typist(), new Typist()]
    const updates: Uint8Array[] = []
    const sent = new Map<number, number[]>(typists.map((typist) => [typist.clientId, []]))
    for (let i = 0; i < 40; i++) {
      for (const typist of typists) {
        const { update, sentAt } = typist.keystroke()
        updates.push(update)
        sent.get(typist.clientId)!.push(sentAt)
      }
    }
    const merged = Y.mergeUpdates(updates)
    const own = typists[1]!.clientId
    const expected = [...sent].filter(([client]) => client !== own).flatMap(([, times]) => times)
    assert.deepEqual([...sendTimes(merged, own)].sort(), [...expected].sort())
    assert.deepEqual(sendTimes(merged, own), referenceSendTimes(merged, own))
    assert.equal(sendTimes(merged, null).length, 120)
  })

  it('agrees with Y.decodeUpdate on every kind of content, gaps and garbage collected structs', () => {
    const doc = new Y.Doc()
    const text = doc.getText(textName)
    text.insert(0, 'héllo wörld ✓')
    text.format(0, 5, { bold: true })
    text.insertEmbed(3, { t: 1764288000123456 })
    text.insertEmbed(3, { t: 12.5 })
    text.insertEmbed(4, { image: 'a.png' })
    text.insertEmbed(5, { t: 'not a number' })
    text.insertEmbed(6, { t: 5e-7, extra: [1, 2] })
    text.delete(8, 3)
    const map = doc.getMap('m')
    map.set('n', 42)
    map.set('o', { deep: ['x', null, true, 1.5] })
    map.set('bytes', new Uint8Array([1, 2, 3]))
    map.set('sub', new Y.Doc())
    const fragment = doc.getXmlFragment('prosemirror')
    const paragraph = new Y.XmlElement('paragraph')
    paragraph.setAttribute('align', 'left')
    fragment.insert(0, [paragraph, new Y.XmlText('x')])
    map.set('hook', new Y.XmlHook('hook'))
    const nested = new Y.Map()
    map.set('nested', nested)
    nested.set('k', 'v')
    const array = doc.getArray('a')
    array.insert(0, [1, 'two', new Uint8Array([3])])
    array.delete(0, 2)
    // A type deleted whole leaves GC structs once collected.
    map.delete('nested')
    const stateUpdate = Y.encodeStateAsUpdate(doc)
    const found = sendTimes(stateUpdate, null)
    assert.deepEqual(found, referenceSendTimes(stateUpdate, null))
    assert.deepEqual([...found].sort((a, b) => a - b), [5e-7 / 1000, 12.5 / 1000, 1764288000123.456])
    // An update with a gap: Yjs merges it with a Skip struct.
    const typist = new Typist()
    const keystrokes = Array.from({ length: 5 }, () => typist.keystroke())
    const gapped = Y.mergeUpdates([stateUpdate, keystrokes[0]!.update, keystrokes[3]!.update, keystrokes[4]!.update])
    assert.deepEqual(sendTimes(gapped, null), referenceSendTimes(gapped, null))
    assert.deepEqual(sendTimes(gapped, typist.clientId), referenceSendTimes(gapped, typist.clientId))
    doc.destroy()
  })

  it('throws on a content ref Yjs does not define rather than misreading what follows', () => {
    // One client, one struct at clock 0: info with content ref 11, origin-less, parent by name "t".
    const update = new Uint8Array([1, 1, 7, 0, 11, 1, 1, 0x74])
    assert.throws(() => sendTimes(update, null), /unknown Yjs content ref 11/)
  })
})
