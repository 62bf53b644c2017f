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
      text.insertEmbed(text.length, { t: sentAt })
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
    assert.deepEqual([...delta.map((op) => op.insert.t)].sort((x, y) => x - y), [...sent].sort((x, y) => x - y))
    server.destroy()
  })
})
