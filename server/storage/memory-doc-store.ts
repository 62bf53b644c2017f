/**
 * A DocStore that keeps update logs in memory: same contract as the LevelDB
 * store, nothing survives the process. For tests and development.
 */
import * as Y from 'yjs'
import type { DocId } from '../../common/ids'
import type { DocStore, HealthReporting, StoreHealth, StoredState } from './doc-store'

/** An in-memory DocStore; stores and returns copies, so callers cannot change stored bytes. */
export class MemoryDocStore implements DocStore, HealthReporting {
  private readonly logs = new Map<DocId, Uint8Array[]>()
  private readonly meta = new Map<string, string>()
  private isClosed = false

  /** Loads the document as one merged update (a fresh copy), or null if nothing is stored. */
  async load(docId: DocId): Promise<Uint8Array | null> {
    const log = this.logs.get(docId)
    if (!log || log.length === 0) return null
    const [only] = log
    return log.length === 1 && only ? only.slice() : Y.mergeUpdates(log)
  }

  /** As {@link load}; the state vector is left to the caller (a memory store has no cheaper way to it). */
  async loadState(docId: DocId): Promise<StoredState | null> {
    const update = await this.load(docId)
    return update === null ? null : { update, stateVector: null }
  }

  /** Whether any update is stored for the document. */
  async has(docId: DocId): Promise<boolean> {
    return (this.logs.get(docId)?.length ?? 0) > 0
  }

  /** The number of updates in the document's log (1 after a compaction with no appends since). */
  async updateCount(docId: DocId): Promise<number> {
    return this.logs.get(docId)?.length ?? 0
  }

  /** Appends a copy of `update` to the document's log; rejects once the store is closed. */
  async append(docId: DocId, update: Uint8Array): Promise<void> {
    if (!(update instanceof Uint8Array)) throw new TypeError('update must be a Uint8Array')
    if (this.isClosed) throw new Error('MemoryDocStore is closed; the update was not stored')
    // Copy before the first await so a caller reusing its buffer cannot change what was stored.
    const copy = update.slice()
    let log = this.logs.get(docId)
    if (!log) {
      log = []
      this.logs.set(docId, log)
    }
    log.push(copy)
  }

  /** Stores `value` under the metadata `key`; rejects once the store is closed. */
  async putMeta(key: string, value: string): Promise<void> {
    checkMetaArgs(key, value)
    if (this.isClosed) throw new Error('MemoryDocStore is closed; the metadata was not stored')
    this.meta.set(key, value)
  }

  /** The metadata stored under `key`, or null. */
  async getMeta(key: string): Promise<string | null> {
    checkMetaArgs(key, '')
    return this.meta.get(key) ?? null
  }

  /** Replaces the document's log with one merged update. */
  async compact(docId: DocId): Promise<void> {
    if (this.isClosed) throw new Error('MemoryDocStore is closed; cannot compact')
    const log = this.logs.get(docId)
    if (!log || log.length < 2) return
    this.logs.set(docId, [Y.mergeUpdates(log)])
  }

  /** Always ok: memory writes cannot fail. */
  health(): StoreHealth {
    return { ok: true }
  }

  /** Marks the store closed; later appends reject. Stored logs stay readable. */
  async close(): Promise<void> {
    this.isClosed = true
  }
}

function checkMetaArgs(key: unknown, value: unknown): void {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('a metadata key must be a non-empty string')
  if (typeof value !== 'string') throw new TypeError('a metadata value must be a string')
}
