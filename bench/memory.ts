/**
 * Server memory: resident memory per connected idle client, and per open
 * document, read from /proc of the server's own process. Each figure is a
 * marginal cost: the growth from adding clients (or documents) to a server
 * that already holds half as many, divided by the number added. A fresh
 * server each time, so one figure does not inherit the other's heap. Both
 * readings follow a full garbage collection in the server (every server
 * alike), so they count what the server holds for its clients rather than
 * how much garbage connecting them left to collect.
 *
 * Why over a loaded baseline rather than an empty one: a server's first
 * connections also pay one-time costs that later clients do not repeat
 * (V8 optimises the connection path on its compiler threads, whose malloc
 * arenas keep the freed compiler memory; maps and arrays grow their
 * backing stores). From an empty baseline the per-client figure depended
 * on how many clients were counted: at 500, 1,000 and 2,000 clients,
 * Cometpad's WebSocket read 9.7, 8.9 and 6.9 KiB, y-websocket 10.6, 7.1
 * and 5.9, Hocuspocus 17.1, 14.5 and 12.8 (2026-11-27).
 *
 * Every server alike runs here with V8's young generation held at its
 * smallest size (`--max-semi-space-size=1`). That space is a per-process
 * allocation buffer, empty after a full collection; V8 grows it up to
 * 32 MiB when a burst of allocations survives (a thousand clients
 * connecting at once) and gives it back only after it has been idle for
 * a while. Left free, it landed on the reading at random: the same
 * long-polling run measured 17.5 or 33 KiB per client, with the live heap
 * the same in both.
 */
import type { Target } from './clients'
import type { WorkerPool } from './pool'
import { startServer } from './servers'
import { connectLayout, sleep, type Layout, type Session } from './typing'

export interface MemoryResult {
  /** Idle clients added to one document, over `baselineClients` already on it. */
  clients: number
  baselineClients: number
  /** How many times the per-client growth was measured (each on a fresh server); the figures are the medians. */
  clientReadings: number
  /** Bytes of server RSS per idle client on one document. */
  perClientBytes: number
  /** Of those, bytes of live JS heap (after a full collection). */
  perClientHeapBytes: number
  /** Documents opened (one idle client each), over `baselineDocuments` already open. */
  documents: number
  baselineDocuments: number
  /** Bytes of server RSS per open document (one idle client each), the client's own share taken off. */
  perDocumentBytes: number
  /** Of those, bytes of live JS heap. */
  perDocumentHeapBytes: number
  /** How long the server sat idle before each reading, in ms. */
  settleMs: number
}

/** Node flags for every server the memory workload starts (see the module comment). */
export const memoryNodeFlags = ['--max-semi-space-size=1'] as const

/**
 * Growth of the server's RSS and live JS heap, in bytes, from connecting
 * `added` to a fresh server that holds `base`: on the same documents when
 * `sameDocs`, else on new ones.
 */
async function marginalGrowth(pool: WorkerPool, target: Omit<Target, 'url'>, base: Layout, added: Layout, sameDocs: boolean, settleMs: number): Promise<{ rss: number; heap: number }> {
  const server = await startServer(target.server, { nodeFlags: memoryNodeFlags })
  const sessions: Session[] = []
  try {
    const full = { ...target, url: server.url }
    const baseline = await connectLayout(pool, server, full, base)
    sessions.push(baseline)
    await sleep(settleMs)
    const heapBefore = await server.collectGarbage()
    const rssBefore = server.rss()
    sessions.push(await connectLayout(pool, server, full, added, sameDocs ? [...baseline.clientsPerDocByName.keys()] : undefined))
    await sleep(settleMs)
    const heapAfter = await server.collectGarbage()
    const rssAfter = server.rss()
    return { rss: rssAfter - rssBefore, heap: heapAfter - heapBefore }
  } finally {
    for (const session of sessions) await session.close()
    await server.stop()
  }
}

/**
 * `settleMs`: how long to let the server settle before reading its memory.
 * `clientReadings`: measure the per-client growth this many times, each on
 * a fresh server, and report the medians: one RSS reading moves by about
 * ±1 KiB per client between runs of the same code (the live JS heap
 * barely moves), enough to flip a ratio near its target.
 */
export async function measureMemory(
  pool: WorkerPool,
  target: Omit<Target, 'url'>,
  clients: number,
  documents: number,
  settleMs: number,
  clientReadings = 1,
): Promise<MemoryResult> {
  const baselineClients = Math.max(1, Math.floor(clients / 2))
  const baselineDocuments = Math.max(1, Math.floor(documents / 2))
  const idle = (docs: number, clientsPerDoc: number): Layout => ({ docs, clientsPerDoc, writersPerDoc: 0 })
  const readings: Array<{ rss: number; heap: number }> = []
  for (let i = 0; i < clientReadings; i++) readings.push(await marginalGrowth(pool, target, idle(1, baselineClients), idle(1, clients), true, settleMs))
  const perDocument = await marginalGrowth(pool, target, idle(baselineDocuments, 1), idle(documents, 1), false, settleMs)
  const perClientBytes = median(readings.map((reading) => reading.rss)) / clients
  const perClientHeapBytes = median(readings.map((reading) => reading.heap)) / clients
  return {
    clients,
    baselineClients,
    clientReadings,
    perClientBytes,
    perClientHeapBytes,
    documents,
    baselineDocuments,
    perDocumentBytes: perDocument.rss / documents - perClientBytes,
    perDocumentHeapBytes: perDocument.heap / documents - perClientHeapBytes,
    settleMs,
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
