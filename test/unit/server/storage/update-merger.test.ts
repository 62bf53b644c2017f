import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { threadId } from 'node:worker_threads'
import * as Y from 'yjs'
import { mergeDirectlyUpTo, mergeStoredUpdates, type MergedState } from '../../../../server/storage/merge-updates'
import { ThreadUpdateMerger } from '../../../../server/storage/update-merger'

/** The updates of `count` edits (inserts and deletes) to a text and a map, and the final text. */
function edits(count: number): { updates: Uint8Array[]; text: string; map: Record<string, unknown> } {
  const doc = new Y.Doc()
  const updates: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => updates.push(update))
  const text = doc.getText('body')
  for (let i = 0; i < count; i++) {
    if (i % 5 === 4) text.delete(0, 1)
    else text.insert((i * 7) % (text.length + 1), `e${i}`)
    if (i % 10 === 0) doc.getMap('meta').set(`k${i % 30}`, i)
  }
  return { updates, text: text.toString(), map: doc.getMap('meta').toJSON() }
}

/** What a merged state loads as; also checks that its state vector is the update's. */
function loaded({ update, stateVector }: MergedState): { text: string; map: Record<string, unknown> } {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, update)
  assert.deepEqual(stateVector, Y.encodeStateVector(doc), 'the state vector is the merged state\'s')
  return { text: doc.getText('body').toString(), map: doc.getMap('meta').toJSON() }
}

describe('mergeStoredUpdates', () => {
  for (const count of [1, 2, mergeDirectlyUpTo, mergeDirectlyUpTo + 1, 600]) {
    it(`merges ${count} updates into one that loads as the whole document`, () => {
      const { updates, text, map } = edits(count)
      assert.deepEqual(loaded(mergeStoredUpdates(updates)), { text, map })
    })
  }

  it('merges updates given out of order (a log may hold a later edit before its dependency)', () => {
    const { updates, text } = edits(100)
    const shuffled = [...updates.slice(50), ...updates.slice(0, 50)]
    assert.equal(loaded(mergeStoredUpdates(shuffled)).text, text)
  })

  it('refuses to merge nothing, and fails on a corrupt update rather than dropping it', () => {
    assert.throws(() => mergeStoredUpdates([]), /nothing to merge/)
    const { updates } = edits(40)
    assert.throws(() => mergeStoredUpdates([...updates, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x01)]))
  })
})

describe('ThreadUpdateMerger', () => {
  it('merges on a worker thread and gives back a whole, transferable result', async () => {
    const merger = new ThreadUpdateMerger({ idleTimeoutMs: 100 })
    try {
      const { updates, text, map } = edits(300)
      const merged = await merger.merge(updates)
      assert.ok(merged.update instanceof Uint8Array && merged.stateVector instanceof Uint8Array)
      assert.deepEqual(loaded(merged), { text, map })
      // The inputs stay usable: they were copied to the thread, not moved.
      assert.ok(updates.every((update) => update.byteLength > 0))
      assert.equal(merger.completedOnThread, 1, 'the merge ran on the worker thread')
      assert.equal(threadId, 0, 'the test itself runs on the main thread')
    } finally {
      await merger.close()
    }
  })

  it('rejects with the merge error for a corrupt log, and keeps working', async () => {
    const merger = new ThreadUpdateMerger({ idleTimeoutMs: 100 })
    try {
      const { updates, text } = edits(50)
      await assert.rejects(merger.merge([...updates, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x01)]))
      assert.equal(loaded(await merger.merge(updates)).text, text)
    } finally {
      await merger.close()
    }
  })
})
