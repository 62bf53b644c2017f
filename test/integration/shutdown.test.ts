/**
 * The built server as an operator runs it: SIGTERM mid-burst exits 0 with
 * every confirmed edit stored; a second instance on the same data folder
 * refuses to start and says why; `--help` and bad flags behave.
 * Needs `npm run build` (the test scripts build first).
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import { LevelDocStore } from '../../server/storage/level-doc-store'
import { settings } from '../../server/config'
import type { DocId } from '../../common/ids'
import { connectClient } from '../helpers/comet-client'
import { spawnServer, type ServerProcess } from '../helpers/server-process'
import { tempDir } from '../helpers/start-server'
import { waitFor } from '../helpers/wait-for'

const mainJs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/server/main.js')

/** Run the built server to completion (it is expected to exit by itself), killing it after `timeoutMs`. */
function runToExit(args: string[], env: Record<string, string>, children: ChildProcess[], timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [mainJs, ...args], { env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** Wait for the process to exit, at most `timeoutMs`; SIGKILL it past that so the test fails instead of hanging. */
async function exitOf(server: ServerProcess, timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const timer = setTimeout(() => server.child.kill('SIGKILL'), timeoutMs)
  try {
    return await server.exited
  } finally {
    clearTimeout(timer)
  }
}

describe('server process: shutdown, data-folder lock, command line', () => {
  const dirs: string[] = []
  const children: ChildProcess[] = []
  const cleanups: (() => void)[] = []
  after(async () => {
    // Even after a failed assertion: no client or process outlives the file.
    for (const cleanup of cleanups) cleanup()
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  })
  const start = async (dataDir: string): Promise<ServerProcess> => {
    const server = await spawnServer({ DATA_DIR: dataDir })
    children.push(server.child)
    return server
  }

  it('exits 0 on SIGTERM mid-burst with every confirmed edit stored', { timeout: 90_000 }, async () => {
    const dataDir = await tempDir()
    dirs.push(dataDir)
    const server = await start(dataDir)
    const created = (await (await fetch(`${server.url}/api/docs`, { method: 'POST' })).json()) as { id: string }
    const client = connectClient(server.url)
    cleanups.push(() => client.close())
    const provider = client.open(created.id)
    await waitFor(() => provider.status.synced, 'synced')
    const text = provider.doc.getText('t')
    let confirmedUpTo = 0
    provider.on('saved', (id) => (confirmedUpTo = id))
    const edits: { marker: string; updateId: number; beforeSignal: boolean }[] = []
    let signalled = false
    // Bursts of ten edits with a turn of the event loop between them (so
    // confirmations arrive), until 100 are confirmed while more are in
    // flight; then SIGTERM, and keep typing until the process is gone.
    let exited = false
    void server.exited.then(() => (exited = true))
    const deadline = Date.now() + 60_000
    for (let i = 0; !exited && Date.now() < deadline; i++) {
      const marker = `<${i}>`
      text.insert(text.length, marker)
      edits.push({ marker, updateId: provider.lastUpdateId, beforeSignal: !signalled })
      // Ten edits a batch, at most a hundred batches a second: a fast typist
      // many times over, and within the server's per-session message rate.
      if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 10))
      if (!signalled && confirmedUpTo >= 100 && provider.status.unsavedCount > 0) {
        server.child.kill('SIGTERM')
        signalled = true
      }
      // After the signal, pace the typing so the loop does not starve the socket.
      if (signalled) await new Promise((resolve) => setTimeout(resolve, 1))
    }
    assert.ok(signalled, `100 edits were not confirmed within a minute (confirmed ${confirmedUpTo})`)
    const { code, signal } = await exitOf(server)
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, `graceful exit; stderr: ${server.stderr()}`)
    const confirmedAtExit = confirmedUpTo
    client.close()

    const store = await LevelDocStore.open({ dir: dataDir })
    try {
      const stored = await store.load(created.id as DocId)
      assert.ok(stored, 'the document is stored')
      const doc = new Y.Doc()
      Y.applyUpdate(doc, stored)
      const content = doc.getText('t').toString()
      const confirmed = edits.filter((edit) => edit.updateId <= confirmedAtExit)
      assert.ok(confirmed.length >= 100)
      const missing = confirmed.filter((edit) => !content.includes(edit.marker))
      assert.deepEqual(missing, [], `${missing.length} confirmed edits were lost`)
      const beforeSignal = edits.filter((edit) => edit.beforeSignal)
      const storedBeforeSignal = beforeSignal.filter((edit) => content.includes(edit.marker)).length
      console.log(`edits: ${edits.length} typed, ${confirmed.length} confirmed, ${beforeSignal.length} typed before SIGTERM of which ${storedBeforeSignal} stored`)
      // Stored edits are a prefix: the server never stores a later update without the earlier ones of the same client.
      let lastStored = -1
      edits.forEach((edit, i) => content.includes(edit.marker) && (lastStored = i))
      assert.ok(edits.slice(0, lastStored + 1).every((edit) => content.includes(edit.marker)), 'the stored edits are a prefix of the typed ones')
    } finally {
      await store.close()
    }
  })

  it('refuses a second instance on the same data folder, and the first keeps serving', { timeout: 30_000 }, async () => {
    const dataDir = await tempDir()
    dirs.push(dataDir)
    const first = await start(dataDir)
    const second = await runToExit([], { DATA_DIR: dataDir }, children)
    assert.equal(second.signal, null, 'the second instance exited by itself')
    assert.notEqual(second.code, 0)
    assert.ok(second.code !== null)
    assert.match(second.stderr, /data folder .* is in use/i, second.stderr)
    assert.ok(second.stderr.includes(dataDir), `names the folder: ${second.stderr}`)
    assert.doesNotMatch(second.stdout, /listening/, 'the second instance never listened')
    const health = await fetch(`${first.url}/healthz`)
    assert.equal(health.status, 200)
    await health.arrayBuffer()
    first.child.kill('SIGTERM')
    const { code } = await exitOf(first)
    assert.equal(code, 0)
  })

  it('prints every setting for --help and exits 0; exits 2 on a bad flag', { timeout: 30_000 }, async () => {
    const help = await runToExit(['--help'], {}, children)
    assert.equal(help.code, 0, help.stderr)
    for (const name of ['PORT', 'HOST', 'DATA_DIR', 'LOG_LEVEL', ...settings.map((s) => s.env)]) assert.ok(help.stdout.includes(name), `--help mentions ${name}`)
    for (const s of settings) assert.ok(help.stdout.includes(`--${s.flag}`), `--help mentions --${s.flag}`)

    const badPort = await runToExit(['--port', 'abc'], {}, children)
    assert.equal(badPort.code, 2)
    assert.match(badPort.stderr, /PORT.*abc/)
    assert.doesNotMatch(badPort.stdout, /listening/)

    const unknown = await runToExit(['--no-such-flag'], {}, children)
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /no-such-flag/)
  })
})
