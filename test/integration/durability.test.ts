/**
 * "Saved" means durable: a server killed with SIGKILL right in the middle
 * of a burst of edits loses none of the edits it had confirmed.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import * as Y from 'yjs'
import { LevelDocStore } from '../../server/storage/level-doc-store'
import type { DocId } from '../../common/ids'
import { connectClient } from '../helpers/comet-client'
import { spawnServer } from '../helpers/server-process'
import { tempDir } from '../helpers/start-server'
import { waitFor } from '../helpers/wait-for'

describe('durability', () => {
  const dirs: string[] = []
  const cleanups: (() => void)[] = []
  after(async () => {
    // Even when an assertion failed midway: no client or server outlives the test.
    for (const cleanup of cleanups) cleanup()
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  })

  it('loses no confirmed edit when the server is killed with SIGKILL mid-burst', async () => {
    const dataDir = await tempDir()
    dirs.push(dataDir)
    const server = await spawnServer({ DATA_DIR: dataDir })
    cleanups.push(() => server.child.kill('SIGKILL'))
    const created = (await (await fetch(`${server.url}/api/docs`, { method: 'POST' })).json()) as { id: string }
    const client = connectClient(server.url)
    cleanups.push(() => client.close())
    const provider = client.open(created.id)
    await waitFor(() => provider.status.synced, 'synced')
    const text = provider.doc.getText('t')
    let confirmedUpTo = 0
    provider.on('saved', (id) => (confirmedUpTo = id))
    // Each edit is one update; remember which update id carried it.
    const edits: { marker: string; updateId: number }[] = []
    let killed = false
    // Type in bursts of ten, letting the event loop deliver confirmations
    // in between, until 200 edits are confirmed while more are in flight;
    // then kill. Bounded in time, not in edits, so a slow machine only
    // makes the burst longer.
    const deadline = Date.now() + 60_000
    for (let i = 0; !killed && Date.now() < deadline; i++) {
      const marker = `<${i}>`
      text.insert(text.length, marker)
      edits.push({ marker, updateId: provider.lastUpdateId })
      // Ten edits a batch, at most a hundred batches a second: a fast typist
      // many times over, and within the server's per-session message rate.
      if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 10))
      if (confirmedUpTo >= 200 && provider.status.unsavedCount > 0) {
        server.child.kill('SIGKILL')
        killed = true
      }
    }
    assert.ok(killed, `200 edits were not confirmed within a minute (confirmed ${confirmedUpTo})`)
    const { signal } = await server.exited
    assert.equal(signal, 'SIGKILL')
    const confirmedAtKill = confirmedUpTo
    client.close()

    const store = await LevelDocStore.open({ dir: dataDir })
    try {
      const stored = await store.load(created.id as DocId)
      assert.ok(stored, 'the document is stored')
      const doc = new Y.Doc()
      Y.applyUpdate(doc, stored)
      const content = doc.getText('t').toString()
      const confirmed = edits.filter((edit) => edit.updateId <= confirmedAtKill)
      assert.ok(confirmed.length >= 200)
      const missing = confirmed.filter((edit) => !content.includes(edit.marker))
      assert.deepEqual(missing, [], `${missing.length} confirmed edits were lost`)
    } finally {
      await store.close()
    }
  })
})
