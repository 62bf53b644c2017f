import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { ClassicLevel, type ChainedBatch } from 'classic-level'
import * as Y from 'yjs'
import { newDocId } from '../../../../common/ids'
import type { DocId } from '../../../../common/ids'
import { LevelDocStore } from '../../../../server/storage/level-doc-store'
import type { LevelDocDb, StoreLogger } from '../../../../server/storage/level-doc-store'
import { runDocStoreSuite } from '../../../conformance/doc-store.suite'
import { waitFor } from '../../../helpers/wait-for'

function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'cometpad-store-'))
}

runDocStoreSuite({
  name: 'LevelDocStore',
  create: async () => {
    const dir = await tempDir()
    const store = await LevelDocStore.open({ dir })
    return {
      store,
      cleanup: async () => {
        await store.close()
        await fs.rm(dir, { recursive: true, force: true })
      },
    }
  },
})

/** A Y.Doc and the updates of `count` edits to it. */
function editedDoc(count: number, doc = new Y.Doc()): { doc: Y.Doc; updates: Uint8Array[] } {
  const updates: Uint8Array[] = []
  const onUpdate = (update: Uint8Array) => updates.push(update)
  doc.on('update', onUpdate)
  for (let i = 0; i < count; i++) doc.getText('body').insert(0, `e${i} `)
  doc.off('update', onUpdate)
  return { doc, updates }
}

function assertLoadsAs(stored: Uint8Array | null, doc: Y.Doc): void {
  assert.ok(stored)
  const loaded = new Y.Doc()
  Y.applyUpdate(loaded, stored)
  assert.deepEqual(Y.encodeStateVector(loaded), Y.encodeStateVector(doc))
  assert.equal(loaded.getText('body').toString(), doc.getText('body').toString())
}

async function appendAll(store: LevelDocStore, docId: DocId, updates: Uint8Array[]): Promise<void> {
  for (const update of updates) await store.append(docId, update)
}

/** A logger that records what was logged at error level. */
function recordingLogger(): StoreLogger & { errors: string[] } {
  const errors: string[] = []
  return { errors, error: (_obj, msg) => void errors.push(msg), warn: () => {}, info: () => {} }
}

describe('LevelDocStore', () => {
  let dir: string
  const opened: LevelDocStore[] = []

  async function open(options: Partial<Parameters<typeof LevelDocStore.open>[0]> = {}): Promise<LevelDocStore> {
    const store = await LevelDocStore.open({ dir, ...options })
    opened.push(store)
    return store
  }

  beforeEach(async () => {
    dir = await tempDir()
  })
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()))
    await fs.rm(dir, { recursive: true, force: true })
  })

  describe('open', () => {
    it('keeps documents across close and reopen, and appends after them', async () => {
      const docId = newDocId()
      const { doc, updates } = editedDoc(10)
      const first = await open()
      await appendAll(first, docId, updates.slice(0, 6))
      // Not awaited: close must still write them.
      const pending = updates.slice(6).map((update) => first.append(docId, update))
      await first.close()
      await Promise.all(pending)

      const second = await open()
      assert.equal(await second.has(docId), true)
      assertLoadsAs(await second.load(docId), doc)
      // The next seq is read from disk: new appends must not overwrite old keys.
      const more = editedDoc(3, doc).updates
      await appendAll(second, docId, more)
      assert.equal(await second.updateCount(docId), 13)
      assertLoadsAs(await second.load(docId), doc)
    })

    it('keeps metadata across close and reopen', async () => {
      const first = await open()
      const written = first.putMeta('view!some-view-id', 'some-doc-id')
      await first.close()
      await written
      const second = await open()
      assert.equal(await second.getMeta('view!some-view-id'), 'some-doc-id')
    })

    it('refuses a second open of the same folder with a clear message, and the first keeps working', async () => {
      const first = await open()
      const error: unknown = await LevelDocStore.open({ dir }).then(
        () => assert.fail('the second open succeeded'),
        (caught: unknown) => caught,
      )
      assert.ok(error instanceof Error)
      assert.match(error.message, /in use by another Cometpad instance/)
      assert.ok(error.message.includes(dir), 'the message names the folder')
      assert.ok(error.cause, 'the LevelDB error is kept as the cause')

      const docId = newDocId()
      const { doc, updates } = editedDoc(2)
      await appendAll(first, docId, updates)
      assertLoadsAs(await first.load(docId), doc)
    })

    it('rejects a compactAfterUpdates below 1', async () => {
      await assert.rejects(LevelDocStore.open({ dir, compactAfterUpdates: 0 }), RangeError)
    })
  })

  describe('append', () => {
    it('writes concurrent appends in far fewer batches than appends', async () => {
      const store = await open()
      const docs = Array.from({ length: 4 }, () => ({ docId: newDocId(), doc: new Y.Doc() }))
      // Learn each document's next seq first, so what groups the appends
      // below is the group commit and not the initial read.
      for (const { docId, doc } of docs) await appendAll(store, docId, editedDoc(1, doc).updates)
      const before = store.stats()

      const appends = docs.flatMap(({ docId, doc }) => editedDoc(50, doc).updates.map((u) => store.append(docId, u)))
      assert.equal(appends.length, 200)
      await Promise.all(appends)

      const after = store.stats()
      assert.equal(after.appends - before.appends, 200)
      const batches = after.batches - before.batches
      assert.ok(batches >= 1 && batches <= 10, `200 appends took ${batches} batches`)
      for (const { docId, doc } of docs) assertLoadsAs(await store.load(docId), doc)
    })

    it('lets appends made within groupCommitWindowMs of the first share its synced write', async () => {
      const docs = Array.from({ length: 3 }, () => ({ docId: newDocId(), doc: new Y.Doc() }))
      const batchesFor = async (groupCommitWindowMs: number): Promise<number> => {
        const store = await open({ groupCommitWindowMs })
        for (const { docId, doc } of docs) await appendAll(store, docId, editedDoc(1, doc).updates)
        const before = store.stats().batches
        // Three documents, each typed into 10 ms after the one before.
        const appends: Promise<void>[] = []
        for (const { docId, doc } of docs) {
          appends.push(...editedDoc(1, doc).updates.map((update) => store.append(docId, update)))
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
        await Promise.all(appends)
        const batches = store.stats().batches - before
        await store.close()
        return batches
      }
      assert.equal(await batchesFor(200), 1, 'one synced write for appends 10 ms apart inside a 200 ms window')
      assert.equal(await batchesFor(0), 3, 'without a window, one synced write each')
      const reopened = await open()
      for (const { docId, doc } of docs) assertLoadsAs(await reopened.load(docId), doc)
    })

    it('opens every table of the database when it opens (a size estimate over all keys), and opens anyway when that fails', async () => {
      const first = await open()
      const docId = newDocId()
      const { doc, updates } = editedDoc(3)
      for (const update of updates) await first.append(docId, update)
      await first.close()

      const db: LevelDocDb = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
      const ranges: Array<[string, string]> = []
      const estimate = db.approximateSize.bind(db) as (start: string, end: string) => Promise<number>
      db.approximateSize = ((start: string, end: string) => {
        ranges.push([start, end])
        return estimate(start, end)
      }) as typeof db.approximateSize
      const warmed = await open({ db })
      assert.deepEqual(ranges, [['', '\uffff']], 'one estimate over the whole key range, before open resolved')
      assertLoadsAs(await warmed.load(docId), doc)
      await warmed.close()

      const broken: LevelDocDb = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
      broken.approximateSize = (() => Promise.reject(new Error('estimate failed'))) as typeof broken.approximateSize
      const warnings: string[] = []
      const logger = { ...recordingLogger(), warn: (_obj: object, msg: string) => void warnings.push(msg) }
      const unwarmed = await open({ db: broken, logger })
      assert.equal(warnings.length, 1, 'the failed warm-up is logged')
      assert.match(warnings[0]!, /tables/)
      assertLoadsAs(await unwarmed.load(docId), doc)
    })

    it('rejects appends whose write fails, reports unhealthy, and recovers after a good write', async () => {
      const db: LevelDocDb = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
      const logger = recordingLogger()
      const store = await open({ db, logger })
      const docId = newDocId()
      const [good, ...rest] = editedDoc(5).updates
      assert.ok(good)
      await store.append(docId, good)
      assert.deepEqual(store.health(), { ok: true })

      // A real failure: the database is closed under the store, so LevelDB refuses the batch.
      await db.close()
      const failing = rest.slice(0, 3).map((update) => store.append(docId, update))
      const results = await Promise.allSettled(failing)
      for (const result of results) {
        assert.equal(result.status, 'rejected')
        assert.equal((result.reason as { code?: string }).code, 'LEVEL_DATABASE_NOT_OPEN')
      }
      const health = store.health()
      assert.equal(health.ok, false)
      assert.match(health.error ?? '', /not open/i)
      assert.ok(logger.errors.length >= 1, 'the failure was logged')

      await db.open()
      const last = rest[3]
      assert.ok(last)
      await store.append(docId, last)
      assert.deepEqual(store.health(), { ok: true })
      // Only the two successful appends were stored.
      assert.equal(await store.updateCount(docId), 2)
    })

    it('writes the next batch while one is in flight, still resolves appends in order, and never compacts away a seq that lands late', async () => {
      const db: LevelDocDb = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
      const store = await open({ db, compactAfterUpdates: 1000 })
      const docId = newDocId()
      const { doc, updates } = editedDoc(5)
      await appendAll(store, docId, updates.slice(0, 3)) // seqs 0–2, durable

      // Two batches in flight can reach LevelDB's log in either order. Make
      // it happen: hold the next batch (seq 3) back from LevelDB, let the one
      // after it (seq 4) land first, and release the held one just after a
      // compaction has read the log and before it deletes what it merged.
      // Appends go in chained batches, the compaction's write in an array batch.
      type Chained = ChainedBatch<LevelDocDb, string, Uint8Array>
      type ArrayWrite = (ops: Array<{ key: string }>, options: { sync: boolean }) => Promise<void>
      const realChained = (db.batch as unknown as () => Chained).bind(db)
      const realArray = (db.batch as unknown as ArrayWrite).bind(db)
      let release = (): void => {}
      const released = new Promise<void>((resolve) => (release = resolve))
      let held: Promise<void> | null = null
      const batch = (...args: [] | Parameters<ArrayWrite>): Chained | Promise<void> => {
        if (args.length === 0) {
          const chained = realChained()
          if (held !== null) return chained
          const write = chained.write.bind(chained)
          chained.write = ((options?: { sync?: boolean }) => (held = released.then(() => write(options ?? {})))) as Chained['write']
          return chained
        }
        const [ops, options] = args
        // The compaction's write (the merged update and its state vector).
        if (!ops.some((op) => op.key.endsWith('!v'))) return realArray(ops, options)
        release()
        return (held ?? Promise.resolve()).then(() => realArray(ops, options))
      }
      db.batch = batch as unknown as LevelDocDb['batch']

      const resolved: number[] = []
      const third = store.append(docId, updates[3]!).then(() => void resolved.push(3))
      await new Promise((resolve) => setImmediate(resolve))
      const fourth = store.append(docId, updates[4]!).then(() => void resolved.push(4))
      // Seq 4 is written while seq 3 is still held: the second batch did not wait for the first.
      await waitFor(async () => (await store.updateCount(docId)) === 4, 'the second batch to land while the first is held')
      await new Promise((resolve) => setTimeout(resolve, 20))
      assert.deepEqual(resolved, [], 'an append resolves only once every earlier one has')

      await store.compact(docId)
      await Promise.all([third, fourth])
      assert.deepEqual(resolved, [3, 4])
      assert.equal(store.stats().compactions, 1)
      // The compaction merged only seqs 0–2; seq 3, landed after its read, survived its deletion.
      assertLoadsAs(await store.load(docId), doc)
      await store.compact(docId)
      assert.equal(await store.updateCount(docId), 1)
      assertLoadsAs(await store.load(docId), doc)
    })

    it('rejects a document id that could reach into another document’s keys', async () => {
      const store = await open()
      assert.throws(() => store.append('a!u!b' as DocId, new Uint8Array([0, 0])), TypeError)
    })
  })

  describe('compact', () => {
    it('joins a compaction already running for the same document', async () => {
      const store = await open()
      const docId = newDocId()
      const { doc, updates } = editedDoc(10)
      await appendAll(store, docId, updates)
      const before = store.stats().compactions
      await Promise.all([store.compact(docId), store.compact(docId), store.compact(docId)])
      assert.equal(store.stats().compactions - before, 1)
      assert.equal(await store.updateCount(docId), 1)
      assertLoadsAs(await store.load(docId), doc)
    })

    it('compacts on its own once a log passes compactAfterUpdates', async () => {
      const docId = newDocId()
      const { doc, updates } = editedDoc(12)
      const store = await open({ compactAfterUpdates: 5, minCompactionIntervalMs: 0 })
      await appendAll(store, docId, updates)
      // close waits for the compaction the appends scheduled.
      await store.close()
      assert.ok(store.stats().compactions >= 1, 'a compaction ran')

      const reopened = await open({ compactAfterUpdates: 5 })
      const count = await reopened.updateCount(docId)
      assert.ok(count <= 6, `the log was compacted, ${count} updates left`)
      assertLoadsAs(await reopened.load(docId), doc)
    })

    it('compacts after a reopen when the stored log is already too long', async () => {
      const docId = newDocId()
      const { doc, updates } = editedDoc(8)
      const first = await open({ compactAfterUpdates: 100 })
      await appendAll(first, docId, updates.slice(0, 7))
      await first.close()

      const second = await open({ compactAfterUpdates: 5 })
      await second.append(docId, updates[7] ?? assert.fail())
      await second.close()
      assert.equal(second.stats().compactions, 1)

      const third = await open()
      assert.equal(await third.updateCount(docId), 1)
      assertLoadsAs(await third.load(docId), doc)
    })

    it('compacts a large document again only once its log holds half its size', async () => {
      const docId = newDocId()
      const doc = new Y.Doc()
      doc.getText('body').insert(0, 'x'.repeat(20_000))
      const store = await open({ compactAfterUpdates: 5, minCompactionIntervalMs: 0 })
      await store.append(docId, Y.encodeStateAsUpdate(doc))
      await store.compact(docId)
      const compactions = store.stats().compactions
      // ~50 bytes each: 5 of them are far from half of 20 KB.
      const { updates: small } = editedDoc(40, doc)
      await appendAll(store, docId, small)
      assert.equal(store.stats().compactions, compactions, 'no compaction for a log much smaller than the document')
      assert.equal(await store.updateCount(docId), 41)
      // A log of half the document's size is worth compacting.
      const big = new Y.Doc()
      Y.applyUpdate(big, Y.encodeStateAsUpdate(doc))
      const { updates: large } = editedDoc(1, big)
      big.getText('body').insert(0, 'y'.repeat(10_000))
      await appendAll(store, docId, [...large, Y.encodeStateAsUpdate(big, Y.encodeStateVector(doc))])
      await store.close()
      assert.equal(store.stats().compactions, compactions + 1)
      const reopened = await open()
      assert.equal(await reopened.updateCount(docId), 1)
      assertLoadsAs(await reopened.load(docId), big)
    })

    it('keeps the state vector of a compacted document, so loading it needs no pass over the update', async () => {
      const docId = newDocId()
      const { doc, updates } = editedDoc(40)
      const store = await open()
      await appendAll(store, docId, updates)
      // A log is merged on load, which gives its state vector too.
      assert.deepEqual((await store.loadState(docId))?.stateVector, Y.encodeStateVector(doc))
      await store.compact(docId)
      await store.close()
      const reopened = await open()
      const state = await reopened.loadState(docId)
      assert.ok(state?.stateVector)
      assert.deepEqual(state.stateVector, Y.encodeStateVector(doc))
      assertLoadsAs(state.update, doc)
      // One more append: the kept state vector describes an older state; the merge gives the new one.
      const { updates: more } = editedDoc(1, doc)
      await appendAll(reopened, docId, more)
      const after = await reopened.loadState(docId)
      assert.ok(after)
      assertLoadsAs(after.update, doc)
      assert.deepEqual(after.stateVector, Y.encodeStateVector(doc))
    })

    it('opens a document whose stored state vector is unreadable, computing it instead', async () => {
      const docId = newDocId()
      const { doc, updates } = editedDoc(20)
      const store = await open()
      await appendAll(store, docId, updates)
      await store.compact(docId)
      await store.close()
      for (const garbage of [Uint8Array.of(0xff, 0xff), Uint8Array.of(0x00, 0x05, 0x01), new Uint8Array(0)]) {
        const db: LevelDocDb = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
        await db.open()
        const keys = await db.keys({ gte: `doc!${docId}!u!`, lt: `doc!${docId}!u!~` }).all()
        assert.equal(keys.length, 1)
        await db.put(`doc!${docId}!v`, garbage)
        await db.close()
        const reopened = await open()
        const state = await reopened.loadState(docId)
        assert.ok(state)
        assert.equal(state.stateVector, null)
        assertLoadsAs(state.update, doc)
        await reopened.close()
      }
    })

    it('compacts one document on its own at most every minCompactionIntervalMs', async () => {
      const docId = newDocId()
      const { doc, updates } = editedDoc(30)
      const store = await open({ compactAfterUpdates: 5, minCompactionIntervalMs: 60_000 })
      await appendAll(store, docId, updates)
      await store.close()
      assert.equal(store.stats().compactions, 1, 'one compaction, then none for a minute')
      const reopened = await open()
      assert.ok((await reopened.updateCount(docId)) > 6)
      assertLoadsAs(await reopened.load(docId), doc)
    })
  })
})
