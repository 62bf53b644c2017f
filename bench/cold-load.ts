/**
 * Cold load: how long a new client takes to join a large document, from
 * opening its connection to holding the whole text in a Y.Doc. Measured
 * with the document in the server's memory, and (Cometpad) straight after
 * a restart, when the server must read it from LevelDB first.
 */
import * as Y from 'yjs'
import { connectBenchClient, type BenchClient, type Target } from './clients'
import type { BenchDocument } from './documents'
import { now, textName } from './keystrokes'
import { startServer, type RunningServer } from './servers'

/**
 * Upload `document` to a new document on `server` and wait until it is
 * stored (Cometpad) or served (peers). The uploader stays connected, as an
 * editor of a live document would, so the document stays in the server's
 * memory; close it when done.
 */
export async function upload(server: RunningServer, target: Target, document: BenchDocument): Promise<{ name: string; holder: BenchClient }> {
  const name = await server.createDoc()
  let confirm: () => void = () => {}
  const saved = new Promise<void>((resolve) => (confirm = resolve))
  const holder = connectBenchClient(target, name, { onUpdate() {}, onSaved: () => confirm() })
  try {
    await holder.synced
    holder.send(document.update)
    if (target.server === 'cometpad') await saved
    else await loadOnce(target, name, document) // the peers confirm nothing: wait until a reader gets it all
  } catch (error) {
    holder.close()
    throw error
  }
  return { name, holder }
}

/** One new client loads `name`; resolves with the milliseconds it took. Throws if the text is incomplete. */
export async function loadOnce(target: Target, name: string, document: BenchDocument, timeoutMs = 60_000): Promise<number> {
  const deadline = now() + timeoutMs
  for (;;) {
    const started = now()
    const reader = connectBenchClient(target, name, { onUpdate() {} })
    try {
      const state = await reader.synced
      const doc = new Y.Doc()
      Y.applyUpdate(doc, state)
      const length = doc.getText(textName).length
      const ms = now() - started
      doc.destroy()
      if (length === document.length) return ms
      if (now() > deadline) throw new Error(`${target.server} served ${length} of ${document.length} characters`)
    } finally {
      reader.close()
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Apply `document` a few times in this process, the one that measures every
 * server's loads: until V8 has optimised Yjs's decoding, the client's share
 * of a load varies by a factor of three from one load to the next (25 to
 * 90 ms for the editing trace), whichever server sent the bytes.
 */
export function warmUpClient(document: BenchDocument, times = 5): void {
  for (let i = 0; i < times; i++) {
    const doc = new Y.Doc()
    Y.applyUpdate(doc, document.update)
    doc.destroy()
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

export interface ColdLoadResult {
  document: string
  /** Median ms for a new client while the document is in the server's memory. */
  fromMemoryMs: number
  /** Cometpad: median ms when nobody has the document open, so the server reads it from LevelDB (a warm server). */
  fromStoreMs: number | null
  /** Cometpad: median ms for the first client after a server restart (from LevelDB, in a process that just started). */
  afterRestartMs: number | null
}

export async function measureColdLoad(target: Omit<Target, 'url'>, document: BenchDocument, repeats: number): Promise<ColdLoadResult> {
  let server = await startServer(target.server, { keepData: true })
  try {
    let full: Target = { ...target, url: server.url }
    const { name, holder } = await upload(server, full, document)
    const fromMemory: number[] = []
    try {
      // One load not counted: the first row measured must not pay for warming this process's JIT.
      await loadOnce(full, name, document)
      for (let i = 0; i < repeats; i++) fromMemory.push(await loadOnce(full, name, document))
    } finally {
      holder.close()
    }
    if (target.server !== 'cometpad') return { document: document.name, fromMemoryMs: median(fromMemory), fromStoreMs: null, afterRestartMs: null }
    // Nobody has it open now: each load reads it from LevelDB (the room unloads when its last client leaves).
    const fromStore: number[] = []
    for (let i = 0; i < repeats; i++) {
      await new Promise((resolve) => setTimeout(resolve, 300))
      fromStore.push(await loadOnce(full, name, document))
    }
    const afterRestart: number[] = []
    // After a restart the server starts cold; the loading client stays warm, as for the peers.
    for (let i = 0; i < repeats; i++) {
      const dataDir = server.dataDir!
      await server.stop()
      server = await startServer('cometpad', { dataDir, keepData: true })
      full = { ...target, url: server.url }
      afterRestart.push(await loadOnce(full, name, document))
    }
    if (process.env.BENCH_DEBUG) console.error(`[bench] cold load samples ${document.name}: memory ${fromMemory.map((ms) => ms.toFixed(1)).join(" ")}; store ${fromStore.map((ms) => ms.toFixed(1)).join(" ")}; restart ${afterRestart.map((ms) => ms.toFixed(1)).join(" ")}`)
    return { document: document.name, fromMemoryMs: median(fromMemory), fromStoreMs: median(fromStore), afterRestartMs: median(afterRestart) }
  } finally {
    await server.stop()
    await server.removeData()
  }
}
