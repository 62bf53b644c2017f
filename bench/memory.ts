/**
 * Server memory: resident memory per connected idle client, and per open
 * document, read from /proc of the server's own process. Each figure is
 * the growth over a warmed-up baseline divided by the count; a fresh
 * server each time, so one figure does not inherit the other's heap. Both
 * readings follow a full garbage collection in the server (every server
 * alike), so they count what the server holds for its clients rather than
 * how much garbage connecting them left to collect.
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
import { connectLayout, sleep } from './typing'

export interface MemoryResult {
  clients: number
  /** How many times the per-client growth was measured (each on a fresh server); the figures are the medians. */
  clientReadings: number
  /** Bytes of server RSS per idle client on one document. */
  perClientBytes: number
  /** Of those, bytes of live JS heap (after a full collection). */
  perClientHeapBytes: number
  documents: number
  /** Bytes of server RSS per open document (one idle client each), the client's own share taken off. */
  perDocumentBytes: number
  /** Of those, bytes of live JS heap. */
  perDocumentHeapBytes: number
}

/** Node flags for every server the memory workload starts (see the module comment). */
export const memoryNodeFlags = ['--max-semi-space-size=1'] as const

/** Growth of the server's RSS and live JS heap, in bytes, from connecting `docs` × `clientsPerDoc` idle clients. */
async function growth(pool: WorkerPool, target: Omit<Target, 'url'>, docs: number, clientsPerDoc: number, settleMs: number): Promise<{ rss: number; heap: number }> {
  const server = await startServer(target.server, { nodeFlags: memoryNodeFlags })
  try {
    const full = { ...target, url: server.url }
    // Warm up, so code loaded on first use is in the baseline.
    const warm = await connectLayout(pool, server, full, { docs: 1, clientsPerDoc: 2, writersPerDoc: 0 })
    await warm.close()
    await sleep(settleMs)
    const heapBefore = await server.collectGarbage()
    const rssBefore = server.rss()
    const session = await connectLayout(pool, server, full, { docs, clientsPerDoc, writersPerDoc: 0 })
    await sleep(settleMs)
    const heapAfter = await server.collectGarbage()
    const rssAfter = server.rss()
    await session.close()
    return { rss: rssAfter - rssBefore, heap: heapAfter - heapBefore }
  } finally {
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
  const readings: Array<{ rss: number; heap: number }> = []
  for (let i = 0; i < clientReadings; i++) readings.push(await growth(pool, target, 1, clients, settleMs))
  const perDocument = await growth(pool, target, documents, 1, settleMs)
  const perClientBytes = median(readings.map((reading) => reading.rss)) / clients
  const perClientHeapBytes = median(readings.map((reading) => reading.heap)) / clients
  return {
    clients,
    clientReadings,
    perClientBytes,
    perClientHeapBytes,
    documents,
    perDocumentBytes: perDocument.rss / documents - perClientBytes,
    perDocumentHeapBytes: perDocument.heap / documents - perClientHeapBytes,
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
