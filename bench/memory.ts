/**
 * Server memory: resident memory per connected idle client, and per open
 * document, read from /proc of the server's own process. Each figure is
 * the growth over a warmed-up baseline divided by the count; a fresh
 * server each time, so one figure does not inherit the other's heap. Both
 * readings follow a full garbage collection in the server (every server
 * alike), so they count what the server holds for its clients rather than
 * how much garbage connecting them left to collect.
 */
import type { Target } from './clients'
import type { WorkerPool } from './pool'
import { startServer } from './servers'
import { connectLayout, sleep } from './typing'

export interface MemoryResult {
  clients: number
  /** Bytes of server RSS per idle client on one document. */
  perClientBytes: number
  documents: number
  /** Bytes of server RSS per open document (one idle client each), the client's own share taken off. */
  perDocumentBytes: number
}


async function growth(pool: WorkerPool, target: Omit<Target, 'url'>, docs: number, clientsPerDoc: number, settleMs: number): Promise<number> {
  const server = await startServer(target.server)
  try {
    const full = { ...target, url: server.url }
    // Warm up, so code loaded on first use is in the baseline.
    const warm = await connectLayout(pool, server, full, { docs: 1, clientsPerDoc: 2, writersPerDoc: 0 })
    await warm.close()
    await sleep(settleMs)
    await server.collectGarbage()
    const before = server.rss()
    const session = await connectLayout(pool, server, full, { docs, clientsPerDoc, writersPerDoc: 0 })
    await sleep(settleMs)
    await server.collectGarbage()
    const after = server.rss()
    await session.close()
    return after - before
  } finally {
    await server.stop()
  }
}

/** `settleMs`: how long to let the server settle before reading its memory. */
export async function measureMemory(pool: WorkerPool, target: Omit<Target, 'url'>, clients: number, documents: number, settleMs: number): Promise<MemoryResult> {
  const perClientBytes = (await growth(pool, target, 1, clients, settleMs)) / clients
  const perDocumentBytes = (await growth(pool, target, documents, 1, settleMs)) / documents - perClientBytes
  return { clients, perClientBytes, documents, perDocumentBytes }
}
