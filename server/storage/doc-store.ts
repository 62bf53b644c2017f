/**
 * Durable storage of documents, as Yjs updates. Implementations: LevelDB
 * (the embedded default) and memory (tests, development).
 */
import type { DocId } from '../../common/ids'

/** Where rooms load documents from and append updates to. */
export interface DocStore {
  /** The document as one merged Yjs update, or null if it was never stored. */
  load(docId: DocId): Promise<Uint8Array | null>
  /**
   * The document as {@link load} gives it, with its state vector when the
   * store knows it without parsing the update (LevelDB keeps the state
   * vector of each compacted state): what a room needs to open a document.
   */
  loadState(docId: DocId): Promise<StoredState | null>
  /** Whether anything was ever stored for `docId`. */
  has(docId: DocId): Promise<boolean>
  /**
   * Append `update` to the document's log. Resolves only once the update is
   * durable (for LevelDB: in a write made with `sync: true`); rejects on
   * failure and never swallows an error. Appends to one document resolve in
   * the order they were made.
   */
  append(docId: DocId, update: Uint8Array): Promise<void>
  /**
   * Store a small piece of metadata (such as which document a view link
   * names) under `key`, replacing any earlier value. Resolves only once it
   * is durable (for LevelDB: written with `sync: true`); rejects on failure.
   * Metadata keys live apart from documents: no key can reach a document's
   * updates, whatever it contains.
   */
  putMeta(key: string, value: string): Promise<void>
  /** The metadata stored under `key`, or null if there is none. */
  getMeta(key: string): Promise<string | null>
  /** Replace the document's update log with one merged update. */
  compact(docId: DocId): Promise<void>
  /** Finish pending writes and release the store. */
  close(): Promise<void>
}

/** A stored document: one merged update, and its state vector when known. */
export interface StoredState {
  update: Uint8Array
  /** `Y.encodeStateVectorFromUpdate(update)`, or null when the store would have to parse the update for it. */
  stateVector: Uint8Array | null
}

/** What `/healthz` reports for a store. */
export interface StoreHealth {
  ok: boolean
  /** The last write error, while the store has not written successfully since. */
  error?: string
}

/** A DocStore that can tell whether its last writes succeeded. */
export interface HealthReporting {
  health(): StoreHealth
}
