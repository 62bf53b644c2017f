/**
 * Merges stored updates off the event loop. Compacting a large document, or
 * loading one whose log has grown, takes tens of milliseconds of CPU (more
 * for a big log): done on the main thread it would stall every client of
 * every document for that long. A worker thread from a Piscina pool does it
 * instead; the thread exits after a while idle, so a quiet server holds no
 * extra memory for it.
 */
import Piscina from 'piscina'
import type { MergedState } from './merge-updates'

/** Merges a document's updates into one, and gives its state vector. */
export interface UpdateMerger {
  merge(updates: Uint8Array[]): Promise<MergedState>
  /** Waits for running merges, then stops the threads. */
  close(): Promise<void>
}

/**
 * The merge thread's module next to this one: `merge-worker.ts` when running
 * from source (tests, under tsx), `merge-worker.js` beside the bundled server.
 */
function workerFile(): string {
  const here = import.meta.url
  return new URL(here.endsWith('.ts') ? './merge-worker.ts' : './merge-worker.js', here).href
}

/** Merges on one worker thread. */
export class ThreadUpdateMerger implements UpdateMerger {
  private readonly pool: Piscina<Uint8Array[], MergedState>

  constructor(options: { idleTimeoutMs?: number } = {}) {
    this.pool = new Piscina({
      filename: workerFile(),
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: options.idleTimeoutMs ?? 60_000,
    })
  }

  async merge(updates: Uint8Array[]): Promise<MergedState> {
    return this.pool.run(updates)
  }

  /** Merges the worker thread has finished. */
  get completedOnThread(): number {
    return this.pool.completed
  }

  async close(): Promise<void> {
    await this.pool.close()
  }
}
