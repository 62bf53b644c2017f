/**
 * The DocStore conformance suite: every store implementation runs these same
 * tests (STYLE §G, like Hono's `runTest({ newRouter })`).
 */
import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it } from 'node:test'
import * as Y from 'yjs'
import { newDocId } from '../../common/ids'
import type { DocId } from '../../common/ids'
import type { DocStore, StoredState } from '../../server/storage/doc-store'

/** A store under test: a DocStore that can also count the updates in a document's log. */
export type CountingDocStore = DocStore & { updateCount(docId: DocId): Promise<number> }

/** How the suite gets a fresh, empty store for each test, and removes it afterwards. */
export interface DocStoreSuiteOptions {
  /** Names the implementation in test output. */
  name: string
  /** A fresh empty store; `cleanup` must work whether or not the test closed the store. */
  create: () => Promise<{ store: CountingDocStore; cleanup: () => Promise<void> }>
}

/** A Y.Doc being edited, with every update it produced, in order. */
interface Source {
  doc: Y.Doc
  updates: Uint8Array[]
}

function newSource(): Source {
  const doc = new Y.Doc()
  const updates: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => updates.push(update))
  return { doc, updates }
}

/** Makes one edit and returns the update it produced. */
function edit(source: Source, i: number): Uint8Array {
  const text = source.doc.getText('body')
  // Insert at a position that moves around, and delete now and then, so the
  // updates depend on each other and merging has real work to do.
  const before = source.updates.length
  source.doc.transact(() => {
    text.insert((i * 7) % (text.length + 1), `w${i} `)
    if (i % 5 === 4 && text.length > 3) text.delete(1, 2)
  })
  assert.equal(source.updates.length, before + 1, 'one edit, one update')
  const update = source.updates[source.updates.length - 1]
  assert.ok(update, 'the edit produced an update')
  return update
}

function edits(source: Source, count: number, from = 0): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => edit(source, from + i))
}

/** Asserts that `stored` rebuilds exactly `source.doc`. */
function assertSameDoc(stored: Uint8Array | null, source: Source): void {
  assert.ok(stored, 'the document was stored')
  const loaded = new Y.Doc()
  Y.applyUpdate(loaded, stored)
  assert.deepEqual(Y.encodeStateVector(loaded), Y.encodeStateVector(source.doc))
  assert.equal(loaded.getText('body').toString(), source.doc.getText('body').toString())
}

/** Registers the DocStore conformance tests for one implementation. */
export function runDocStoreSuite({ name, create }: DocStoreSuiteOptions): void {
  describe(`DocStore conformance: ${name}`, () => {
    let store: CountingDocStore
    let cleanup: () => Promise<void>

    beforeEach(async () => {
      ;({ store, cleanup } = await create())
    })
    afterEach(async () => {
      await cleanup()
    })

    describe('load and has', () => {
      it('returns null and false for a document never stored', async () => {
        const docId = newDocId()
        assert.equal(await store.load(docId), null)
        assert.equal(await store.has(docId), false)
        assert.equal(await store.updateCount(docId), 0)
      })

      it('loads back exactly the document whose updates were appended', async () => {
        const docId = newDocId()
        const source = newSource()
        for (const update of edits(source, 12)) await store.append(docId, update)
        assert.equal(await store.has(docId), true)
        assert.equal(await store.updateCount(docId), 12)
        assertSameDoc(await store.load(docId), source)
        // Other documents are unaffected.
        assert.equal(await store.has(newDocId()), false)
      })

      it('stores a copy, so changing the appended or loaded buffer changes nothing', async () => {
        const docId = newDocId()
        const source = newSource()
        const update = edit(source, 0)
        const mine = update.slice()
        const appended = store.append(docId, mine)
        mine.fill(0)
        await appended
        const loaded = await store.load(docId)
        assert.ok(loaded)
        assert.deepEqual(loaded, update)
        loaded.fill(0)
        assertSameDoc(await store.load(docId), source)
      })
    })

    describe('append', () => {
      it('stores many concurrent appends to several documents', async () => {
        const docs = Array.from({ length: 5 }, () => ({ docId: newDocId(), source: newSource() }))
        const appends: Promise<void>[] = []
        // Interleave documents so every batch mixes them.
        for (let i = 0; i < 40; i++) {
          for (const { docId, source } of docs) appends.push(store.append(docId, edit(source, i)))
        }
        await Promise.all(appends)
        for (const { docId, source } of docs) {
          assertSameDoc(await store.load(docId), source)
          assert.equal(await store.updateCount(docId), 40)
        }
      })

      it("resolves one document's appends in the order they were made", async () => {
        const a = { docId: newDocId(), source: newSource() }
        const b = { docId: newDocId(), source: newSource() }
        const resolved: Record<string, number[]> = { a: [], b: [] }
        const appends: Promise<void>[] = []
        for (let i = 0; i < 50; i++) {
          appends.push(store.append(a.docId, edit(a.source, i)).then(() => void resolved.a?.push(i)))
          if (i % 3 === 0) appends.push(store.append(b.docId, edit(b.source, i)).then(() => void resolved.b?.push(i)))
        }
        await Promise.all(appends)
        const inOrder = (list: number[] | undefined) => [...(list ?? [])].sort((x, y) => x - y)
        assert.equal(resolved.a?.length, 50)
        assert.deepEqual(resolved.a, inOrder(resolved.a))
        assert.deepEqual(resolved.b, inOrder(resolved.b))
      })
    })

    describe('loadState', () => {
      /** loadState agrees with load, and any state vector it gives is the update's. */
      async function assertLoadState(docId: DocId): Promise<StoredState | null> {
        const state = await store.loadState(docId)
        const update = await store.load(docId)
        if (update === null) {
          assert.equal(state, null)
          return null
        }
        assert.ok(state)
        assert.deepEqual(state.update, update)
        if (state.stateVector !== null) assert.deepEqual(state.stateVector, Y.encodeStateVectorFromUpdate(update))
        return state
      }

      it('gives null for a document never stored, and the document with a true state vector (or none) otherwise', async () => {
        assert.equal(await assertLoadState(newDocId()), null)
        const docId = newDocId()
        const source = newSource()
        for (const update of edits(source, 12)) await store.append(docId, update)
        const state = await assertLoadState(docId)
        assertSameDoc(state?.update ?? null, source)
        await store.compact(docId)
        assertSameDoc((await assertLoadState(docId))?.update ?? null, source)
        // After appends the stored state vector of the compaction no longer describes the document.
        for (const update of edits(source, 3, 12)) await store.append(docId, update)
        assertSameDoc((await assertLoadState(docId))?.update ?? null, source)
        await store.compact(docId)
        assertSameDoc((await assertLoadState(docId))?.update ?? null, source)
      })
    })

    describe('compact', () => {
      it('keeps the content and leaves one stored update', async () => {
        const docId = newDocId()
        const source = newSource()
        for (const update of edits(source, 30)) await store.append(docId, update)
        assert.equal(await store.updateCount(docId), 30)
        await store.compact(docId)
        assert.equal(await store.updateCount(docId), 1)
        assertSameDoc(await store.load(docId), source)
        // Appending after a compaction still works.
        for (const update of edits(source, 3, 30)) await store.append(docId, update)
        assert.equal(await store.updateCount(docId), 4)
        assertSameDoc(await store.load(docId), source)
      })

      it('does nothing for a document never stored', async () => {
        const docId = newDocId()
        await store.compact(docId)
        assert.equal(await store.load(docId), null)
        assert.equal(await store.has(docId), false)
      })

      it('loses no append made while it runs', async () => {
        const docId = newDocId()
        const source = newSource()
        for (const update of edits(source, 20)) await store.append(docId, update)
        const compactions = [store.compact(docId)]
        const appends = edits(source, 20, 20).map((update) => store.append(docId, update))
        compactions.push(store.compact(docId))
        await Promise.all([...compactions, ...appends])
        assertSameDoc(await store.load(docId), source)
        const count = await store.updateCount(docId)
        assert.ok(count >= 1 && count <= 21, `at most the merged update plus the 20 racing appends, got ${count}`)
        await store.compact(docId)
        assert.equal(await store.updateCount(docId), 1)
        assertSameDoc(await store.load(docId), source)
      })
    })

    describe('metadata', () => {
      it('returns null for a key never stored, and the last value stored otherwise', async () => {
        assert.equal(await store.getMeta('view!nothing-here'), null)
        await store.putMeta('view!abc', 'first')
        assert.equal(await store.getMeta('view!abc'), 'first')
        await store.putMeta('view!abc', 'second · ünïcödé ✓')
        assert.equal(await store.getMeta('view!abc'), 'second · ünïcödé ✓')
        assert.equal(await store.getMeta('view!ab'), null, 'keys match exactly, not by prefix')
      })

      it('keeps metadata and documents apart, whatever the key', async () => {
        const docId = newDocId()
        // Keys shaped like a document id or like a document's update keys.
        await store.putMeta(docId, 'not a document')
        await store.putMeta(`doc!${docId}!u!0000000000000000`, 'not an update')
        assert.equal(await store.has(docId), false)
        assert.equal(await store.load(docId), null)
        const source = newSource()
        await store.append(docId, edit(source, 0))
        await store.compact(docId)
        assertSameDoc(await store.load(docId), source)
        assert.equal(await store.getMeta(docId), 'not a document')
        assert.equal(await store.getMeta(`doc!${docId}!u!0000000000000000`), 'not an update')
        assert.equal(await store.getMeta(`doc!${docId}`), null)
      })

      it('finishes metadata writes made before close, and rejects those made after it', async () => {
        const writes = Array.from({ length: 10 }, (_, i) => store.putMeta(`k${i}`, `v${i}`))
        await store.close()
        await Promise.all(writes)
        await assert.rejects(async () => store.putMeta('late', 'x'), /closed/)
      })
    })

    describe('close', () => {
      it('finishes appends made before it, and rejects appends made after it', async () => {
        const docId = newDocId()
        const source = newSource()
        const outcomes: string[] = []
        const appends = edits(source, 20).map((update, i) =>
          store.append(docId, update).then(
            () => void (outcomes[i] = 'stored'),
            () => void (outcomes[i] = 'failed'),
          ),
        )
        await store.close()
        // Every append settled before close resolved, and all succeeded.
        assert.deepEqual(outcomes, Array(20).fill('stored'))
        await Promise.all(appends)
        await assert.rejects(store.append(docId, edit(source, 20)), /closed/)
      })
    })
  })
}
