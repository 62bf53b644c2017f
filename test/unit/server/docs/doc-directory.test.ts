/**
 * DocDirectory: every document gets an edit id and an independent view id;
 * addresses resolve to the rights they carry, and malformed ones never
 * reach the store.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { isDocId, newDocId } from '../../../../common/ids'
import type { DocId } from '../../../../common/ids'
import { DocDirectory } from '../../../../server/docs/doc-directory'
import type { DocStore, StoredState } from '../../../../server/storage/doc-store'
import { MemoryDocStore } from '../../../../server/storage/memory-doc-store'

/** A memory store that counts every call made to it. */
class CountingStore implements DocStore {
  readonly inner = new MemoryDocStore()
  calls = 0
  load(docId: DocId): Promise<Uint8Array | null> {
    this.calls++
    return this.inner.load(docId)
  }
  loadState(docId: DocId): Promise<StoredState | null> {
    this.calls++
    return this.inner.loadState(docId)
  }
  has(docId: DocId): Promise<boolean> {
    this.calls++
    return this.inner.has(docId)
  }
  append(docId: DocId, update: Uint8Array): Promise<void> {
    this.calls++
    return this.inner.append(docId, update)
  }
  putMeta(key: string, value: string): Promise<void> {
    this.calls++
    return this.inner.putMeta(key, value)
  }
  getMeta(key: string): Promise<string | null> {
    this.calls++
    return this.inner.getMeta(key)
  }
  compact(docId: DocId): Promise<void> {
    this.calls++
    return this.inner.compact(docId)
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

describe('DocDirectory', () => {
  it('creates a stored document with a well-formed view id different from its edit id', async () => {
    const store = new CountingStore()
    const directory = new DocDirectory(store)
    const { docId, viewId } = await directory.create()
    assert.ok(isDocId(docId))
    assert.ok(isDocId(viewId), 'a view id is 22 URL-safe characters')
    assert.notEqual(viewId, docId)
    assert.equal(await store.inner.has(docId), true)
    assert.equal(await store.inner.has(viewId as DocId), false, 'nothing is stored under the view id as a document')
    assert.equal(await store.inner.getMeta(`view!${viewId}`), docId)
    assert.equal(await store.inner.getMeta(`doc-view!${docId}`), viewId)
  })

  it('gives every document its own view id', async () => {
    const directory = new DocDirectory(new MemoryDocStore())
    const created = await Promise.all(Array.from({ length: 50 }, () => directory.create()))
    const ids = new Set(created.flatMap(({ docId, viewId }) => [docId, viewId]))
    assert.equal(ids.size, 100)
  })

  it('resolves an edit id to write access with its view id, and a view id to read access', async () => {
    const directory = new DocDirectory(new MemoryDocStore())
    const { docId, viewId } = await directory.create()
    assert.deepEqual(await directory.resolve(docId), { docId, canWrite: true, viewId })
    assert.deepEqual(await directory.resolve(viewId), { docId, canWrite: false })
  })

  it('resolves from the store alone, as after a restart', async () => {
    const store = new MemoryDocStore()
    const { docId, viewId } = await new DocDirectory(store).create()
    const fresh = new DocDirectory(store)
    assert.deepEqual(await fresh.resolve(viewId), { docId, canWrite: false })
    assert.deepEqual(await fresh.resolve(docId), { docId, canWrite: true, viewId })
  })

  it('answers null for a well-formed id that names nothing', async () => {
    const directory = new DocDirectory(new MemoryDocStore())
    await directory.create()
    assert.equal(await directory.resolve(newDocId()), null)
  })

  it('answers null for malformed addresses without touching the store', async () => {
    const store = new CountingStore()
    const directory = new DocDirectory(store)
    const malformed = ['', 'short', 'A'.repeat(21), 'A'.repeat(23), `${'A'.repeat(21)}!`, `${'A'.repeat(20)}/.`, '../../etc/passwd', 'doc!x!u!0', 'é'.repeat(22), ' '.repeat(22)]
    for (const address of malformed) assert.equal(await directory.resolve(address), null, JSON.stringify(address))
    assert.equal(store.calls, 0)
  })

  it('remembers resolved addresses, so repeated resolves read nothing', async () => {
    const store = new CountingStore()
    const directory = new DocDirectory(store, { cacheSize: 2 })
    const { docId, viewId } = await directory.create()
    await directory.resolve(docId)
    await directory.resolve(viewId)
    const before = store.calls
    await directory.resolve(docId)
    await directory.resolve(viewId)
    assert.equal(store.calls, before)
    // The cache is bounded: a third address evicts the least recently used.
    const other = await directory.create()
    await directory.resolve(other.docId)
    const afterEviction = store.calls
    await directory.resolve(docId)
    assert.ok(store.calls > afterEviction, 'the evicted address is read again')
    assert.deepEqual(await directory.resolve(docId), { docId, canWrite: true, viewId })
  })

  it('gives a document stored without a view id exactly one, even to concurrent resolves', async () => {
    const store = new MemoryDocStore()
    const docId = newDocId()
    await store.append(docId, Y.encodeStateAsUpdate(new Y.Doc()))
    const directory = new DocDirectory(store)
    const [a, b] = await Promise.all([directory.resolve(docId), directory.resolve(docId)])
    assert.ok(a?.canWrite && b?.canWrite)
    assert.equal(a.viewId, b.viewId)
    assert.deepEqual(await new DocDirectory(store).resolve(a.viewId), { docId, canWrite: false })
  })
})
