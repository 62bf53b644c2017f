/**
 * The default DocStore: each document's Yjs updates as an append-only log in
 * an embedded LevelDB (classic-level), written with `sync: true` and group
 * commit, and compacted into one update so loading costs in proportion to a
 * document's size rather than its history (DESIGN §4).
 *
 * We do not use y-leveldb: its `_transact` wrapper catches and logs write
 * errors instead of rejecting, so a caller cannot know whether an update is
 * durable — and "All changes saved" may only be shown once it is.
 *
 * Key scheme (utf8 keys, Uint8Array values):
 *
 *     doc!<docId>!u!<seq as 16 lowercase hex digits>  →  Yjs update
 *
 *     doc!<docId>!v                                    →  varUint(seq) • state vector of the
 *                                                         compacted update stored at that seq
 *
 *     meta!<key>                                       →  utf8 string (putMeta/getMeta)
 *
 * The sequence number is fixed-width so that key order is numeric order.
 * Metadata sits under its own prefix, so no metadata key can fall inside a
 * document's `doc!` range, nor a document id inside `meta!`.
 */
import { ClassicLevel, type ChainedBatch } from 'classic-level'
import type { DocId } from '../../common/ids'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import type { DocStore, HealthReporting, StoreHealth, StoredState } from './doc-store'
import { ThreadUpdateMerger, type UpdateMerger } from './update-merger'
import { atTurnEnd } from '../util/turn-end'

/** The logging a store needs; a pino logger fits. */
export interface StoreLogger {
  error(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
}

/** The LevelDB database a LevelDocStore writes to. */
export type LevelDocDb = ClassicLevel<string, Uint8Array>

/** Options for {@link LevelDocStore.open}. */
export interface LevelDocStoreOptions {
  /** The data folder; created if missing. Only one process may use it at a time. */
  dir: string
  /** Where write failures and compaction errors are reported; silent if absent. */
  logger?: StoreLogger
  /**
   * Compact a document once its log holds more than this many updates, and
   * at least half as many bytes as its last compacted state, so a load
   * merges a bounded log and compacting costs in proportion to what is
   * appended.
   * @default 500
   */
  compactAfterUpdates?: number
  /**
   * Compact one document on its own at most this often, in ms: a document
   * being typed into fast is re-encoded every few seconds, not every few
   * hundred keystrokes (its log then holds what this many ms bring).
   * @default 5000
   */
  minCompactionIntervalMs?: number
  /**
   * How long an append that finds room for a write (fewer than
   * {@link maxBatchesInFlight} in flight) waits, in ms, so that appends
   * arriving meanwhile (typically from other documents) share its synced
   * write; the wait only delays the Saved confirmation, never the
   * broadcast. 0 writes at the end of the event-loop turn the append came
   * in, together with every other append of that turn.
   *
   * While that many writes are in flight, appends queue for the next one
   * anyway, so a busy server groups its appends without a window. A window
   * of 2 ms used to be the default: measured with `npm run bench` (200
   * clients on one document, and 100 documents × 10 clients), it saved no
   * server CPU and added about 3 ms to every append (a timer fires a loop
   * turn later on a busy server).
   * @default 0
   */
  groupCommitWindowMs?: number
  /**
   * A database created on `dir` to use instead of creating one. Tests pass
   * one to make writes fail for real (by closing it under the store).
   */
  db?: LevelDocDb
  /**
   * What merges a document's updates for compactions and loads.
   * @default a {@link ThreadUpdateMerger}, so merging never stalls the event loop
   */
  merger?: UpdateMerger
}

/** Counters of the store's writes, for tests and metrics. */
export interface LevelDocStoreStats {
  /** Synced append batches written successfully. */
  batches: number
  /** Appends carried by those batches. */
  appends: number
  /** Compactions written successfully. */
  compactions: number
}

interface PendingAppend {
  docId: DocId
  seq: number
  key: string
  update: Uint8Array
  resolve: () => void
  reject: (error: unknown) => void
}

/** What the store knows about one document's log, once initialised from disk. */
interface DocLog {
  /** The seq the next append gets; null until read from the last key. */
  nextSeq: number | null
  /** Appends made while `nextSeq` was being read, in call order. */
  waiting: Omit<PendingAppend, 'seq' | 'key'>[]
  /**
   * Every append with a lower seq has settled (is durable, or failed and
   * was never written); those with this seq or higher may still be in
   * flight, and may land in any order. Meaningful once `nextSeq` is read.
   */
  settledSeq: number
  /** Durable log entries (exact unless capped at compactAfterUpdates + 1 on init). */
  length: number
  /** Bytes appended since the last compaction this process made (0 when none did). */
  appendedBytes: number
  /** The size of the last compacted state this process wrote (0 when none). */
  compactedBytes: number
  /** When the last compaction this process made of it ended (performance.now()), or -Infinity. */
  compactedAt: number
}

const seqWidth = 16

/**
 * How many synced batches LevelDB may be writing at once.
 *
 * A batch's callback runs only when the event loop comes round, after the
 * rest of the turn it was issued in: at 200 clients on one document that
 * is the turn's broadcast, 3 ms at the median, while the fsync itself
 * takes 0.3 ms on the benchmark machine. With one batch at a time, an
 * append made meanwhile waited for that callback, then for a turn of its
 * own: two turns before its Saved. With two, the next batch goes to
 * LevelDB at the end of its own turn; LevelDB's writer queue groups
 * concurrent writes into one log write and one sync. Measured with
 * `npm run bench -- --only=typing --scenarios=200`: Saved p99 44–50 →
 * 27–33 ms. More than two would only hold more libuv thread-pool threads
 * (four by default, shared with reads) waiting on LevelDB's writer lock.
 *
 * Two batches in flight may reach the log in either order: appends still
 * resolve in the order they were made (see `settled`), and a compaction
 * merges only seqs that have all settled (see `settledSeq`). A crash
 * between the two can leave a later update on disk without an earlier
 * one. Neither was confirmed: the client still holds both and sends them
 * again when it next syncs, and until then Yjs keeps the later one
 * pending when the document loads.
 */
const maxBatchesInFlight = 2

function keyPrefix(docId: DocId): string {
  return `doc!${docId}!u!`
}

/** Bounds covering exactly the keys of one document (`~` sorts after every hex digit). */
function docRange(docId: DocId): { gte: string; lt: string } {
  const prefix = keyPrefix(docId)
  return { gte: prefix, lt: `${prefix}~` }
}

/**
 * Iterator options for a load, which wants the document's whole log in
 * memory at once: all of it in one pass on classic-level's thread pool. By
 * default an iterator hands over 16 KiB at a time, so a compacted document
 * of a few hundred KB took a second round trip through the pool only to
 * learn that the range had ended. Over the 311 KB editing trace that was
 * 0.8-1.9 ms against 0.6-0.9 ms in one pass (a fresh process reading a
 * real LevelDB, 2026-11-28). The pass still stops at 1,000 entries, as
 * classic-level's `all()` asks for no more at a time. Compactions keep the
 * default: they run while the document is being typed into, and there the
 * 16 KiB chunks keep each callback on the event loop short.
 */
const wholeLog = { highWaterMarkBytes: 0xffff_ffff } as const

/** Where the state vector of the document's compacted update is kept (outside its update range). */
function stateVectorKey(docId: DocId): string {
  return `doc!${docId}!v`
}

function encodeStateVectorRecord(seq: number, stateVector: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, seq)
  encoding.writeUint8Array(encoder, stateVector)
  return encoding.toUint8Array(encoder)
}

/**
 * The state vector in `record` if it describes the update stored at `seq`;
 * null for a record left from an older compaction, or one that does not
 * read (the room then computes the state vector from the update itself).
 */
function stateVectorOf(record: Uint8Array, seq: number): Uint8Array | null {
  try {
    const decoder = decoding.createDecoder(record)
    if (decoding.readVarUint(decoder) !== seq) return null
    const stateVector = decoding.readTailAsUint8Array(decoder)
    // A state vector is a count of (client, clock) pairs: check it reads whole.
    const check = decoding.createDecoder(stateVector)
    const clients = decoding.readVarUint(check)
    for (let i = 0; i < clients; i++) {
      decoding.readVarUint(check)
      decoding.readVarUint(check)
    }
    return decoding.hasContent(check) ? null : stateVector
  } catch {
    return null
  }
}

function updateKey(docId: DocId, seq: number): string {
  return keyPrefix(docId) + seq.toString(16).padStart(seqWidth, '0')
}

const metaPrefix = 'meta!'

/** `pending` with its seq and key, built field by field: spreading `pending` (it holds a promise's resolve and reject) took V8's slow path, about 2.5 µs an append against 0.2. */
function withSeq(pending: Omit<PendingAppend, 'seq' | 'key'>, seq: number): PendingAppend {
  const { docId, update, resolve, reject } = pending
  return { docId, seq, key: updateKey(docId, seq), update, resolve, reject }
}

function seqOfKey(key: string): number {
  return Number.parseInt(key.slice(key.lastIndexOf('!') + 1), 16)
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function hasCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code
}

/**
 * Open every table file of the database now, rather than on the first read
 * that needs it. LevelDB opens a table (the file, its index and its filter)
 * the first time a read touches its key range, so after a restart the first
 * clients paid for it: the first document join read its address in 4.7 ms
 * instead of 0.2 (the editing-trace cold load after a restart, `npm run
 * bench -- --only=cold-load`). Estimating the size of the whole key range
 * opens every table and reads only its index, no data; here it took
 * 0.15–0.4 ms. A failure costs only the warm-up, so it is logged, not thrown.
 */
async function warmTableCache(db: LevelDocDb, logger: StoreLogger | undefined): Promise<void> {
  try {
    // Keys are ASCII ('doc!…', 'meta!…'): the range '' to U+FFFF holds them all.
    await db.approximateSize('', '\uffff')
  } catch (error) {
    logger?.warn({ err: error }, 'could not open the document store\'s tables ahead of the first reads; they open on first use')
  }
}

/** A DocStore on LevelDB with synced group commit and compaction; create it with {@link LevelDocStore.open}. */
export class LevelDocStore implements DocStore, HealthReporting {
  /**
   * Opens (creating if needed) the store in `options.dir`.
   * @throws Error saying the data folder is in use by another Cometpad
   * instance when LevelDB's LOCK is held; the LevelDB error is its `cause`.
   */
  static async open(options: LevelDocStoreOptions): Promise<LevelDocStore> {
    const compactAfterUpdates = options.compactAfterUpdates ?? 500
    if (!Number.isInteger(compactAfterUpdates) || compactAfterUpdates < 1) {
      throw new RangeError(`compactAfterUpdates must be a positive integer, got ${compactAfterUpdates}`)
    }
    const db = options.db ?? new ClassicLevel<string, Uint8Array>(options.dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
    try {
      await db.open()
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause
      if (hasCode(error, 'LEVEL_LOCKED') || hasCode(cause, 'LEVEL_LOCKED')) {
        throw new Error(
          `The data folder ${options.dir} is in use by another Cometpad instance (its LevelDB LOCK is held); stop that instance or choose another data folder`,
          { cause: error },
        )
      }
      throw new Error(`Could not open the document store in ${options.dir}: ${errorMessage(error)}`, { cause: error })
    }
    const minCompactionIntervalMs = options.minCompactionIntervalMs ?? 5_000
    if (!(minCompactionIntervalMs >= 0)) throw new RangeError(`minCompactionIntervalMs must be ≥ 0, got ${minCompactionIntervalMs}`)
    const groupCommitWindowMs = options.groupCommitWindowMs ?? 0
    if (!(groupCommitWindowMs >= 0)) throw new RangeError(`groupCommitWindowMs must be ≥ 0, got ${groupCommitWindowMs}`)
    await warmTableCache(db, options.logger)
    return new LevelDocStore(db, options.logger, { compactAfterUpdates, minCompactionIntervalMs, groupCommitWindowMs }, options.merger ?? new ThreadUpdateMerger())
  }

  private readonly logs = new Map<DocId, DocLog>()
  /** Appends waiting for the next batch, from all documents, in call order. */
  private queue: PendingAppend[] = []
  private flushScheduled = false
  /** Batches handed to LevelDB whose write has not completed. */
  private batchesInFlight = 0
  /** Settles once every batch issued so far has settled and resolved or rejected its appends, in issue order. */
  private settled: Promise<void> = Promise.resolve()
  private readonly seqReads = new Set<Promise<void>>()
  private readonly metaWrites = new Set<Promise<void>>()
  private readonly compactions = new Map<DocId, Promise<void>>()
  private lastError: string | null = null
  private closing: Promise<void> | null = null
  /** Set once close() has nothing left to wait for and closes the database. */
  private isClosed = false
  private readonly counters: LevelDocStoreStats = { batches: 0, appends: 0, compactions: 0 }
  private readonly compactAfterUpdates: number
  private readonly minCompactionIntervalMs: number
  private readonly groupCommitWindowMs: number

  private constructor(
    private readonly db: LevelDocDb,
    private readonly logger: StoreLogger | undefined,
    timing: { compactAfterUpdates: number; minCompactionIntervalMs: number; groupCommitWindowMs: number },
    private readonly merger: UpdateMerger,
  ) {
    this.compactAfterUpdates = timing.compactAfterUpdates
    this.minCompactionIntervalMs = timing.minCompactionIntervalMs
    this.groupCommitWindowMs = timing.groupCommitWindowMs
  }

  /** Loads the document as one merged update, or null if nothing is stored. */
  async load(docId: DocId): Promise<Uint8Array | null> {
    checkDocId(docId)
    const updates = await this.db.values({ ...docRange(docId), ...wholeLog }).all()
    if (updates.length === 0) return null
    const [only] = updates
    // classic-level hands out Buffers; return a plain Uint8Array view like Y.mergeUpdates does.
    if (updates.length === 1 && only) return new Uint8Array(only.buffer, only.byteOffset, only.byteLength)
    return (await this.merger.merge(updates)).update
  }

  /**
   * The document with its state vector: read from beside the update when
   * the log is one compacted update (so opening a large document needs no
   * pass over it), else computed by the merge.
   */
  async loadState(docId: DocId): Promise<StoredState | null> {
    checkDocId(docId)
    const [entries, record] = await Promise.all([this.db.iterator({ ...docRange(docId), ...wholeLog }).all(), this.db.get(stateVectorKey(docId))])
    const [first] = entries
    if (first === undefined) return null
    if (entries.length > 1) return this.merger.merge(entries.map(([, update]) => update))
    const [key, value] = first
    const update = new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
    return { update, stateVector: record === undefined ? null : stateVectorOf(record, seqOfKey(key)) }
  }

  /** Whether any update is stored for the document. */
  async has(docId: DocId): Promise<boolean> {
    checkDocId(docId)
    const keys = await this.db.keys({ ...docRange(docId), limit: 1 }).all()
    return keys.length > 0
  }

  /** The number of updates in the document's stored log (1 after a compaction with no appends since). */
  async updateCount(docId: DocId): Promise<number> {
    checkDocId(docId)
    const keys = await this.db.keys(docRange(docId)).all()
    return keys.length
  }

  /**
   * Appends `update` to the document's log; resolves once it is in a batch
   * written with `sync: true`, rejects with the write's error otherwise.
   */
  append(docId: DocId, update: Uint8Array): Promise<void> {
    checkDocId(docId)
    if (!(update instanceof Uint8Array)) throw new TypeError('update must be a Uint8Array')
    if (this.closing) return Promise.reject(new Error('LevelDocStore is closed; the update was not stored'))
    return new Promise<void>((resolve, reject) => {
      const log = this.logFor(docId)
      // Copied because the update may wait in the queue while a batch is
      // written, and the caller is free to reuse its buffer once append returns.
      const pending = { docId, update: update.slice(), resolve, reject }
      // Seqs are assigned synchronously, in call order, and appends resolve
      // in that order too (their batches may land in either; see
      // maxBatchesInFlight).
      if (log.nextSeq === null) log.waiting.push(pending)
      else this.enqueue(withSeq(pending, log.nextSeq++))
    })
  }

  /**
   * Stores `value` under the metadata `key` in a write made with
   * `sync: true`; resolves once it is durable, rejects with the write's error.
   */
  putMeta(key: string, value: string): Promise<void> {
    checkMetaArgs(key, value)
    if (this.closing) return Promise.reject(new Error('LevelDocStore is closed; the metadata was not stored'))
    const write = this.db.put(metaPrefix + key, new TextEncoder().encode(value), { sync: true }).then(
      () => {
        this.lastError = null
      },
      (error: unknown) => {
        this.lastError = errorMessage(error)
        this.logger?.error({ err: error }, 'document store metadata write failed')
        throw error
      },
    )
    const tracked = write.finally(() => this.metaWrites.delete(tracked))
    // Tracked so that close() waits for it; the caller sees the write's own outcome.
    tracked.catch(() => {})
    this.metaWrites.add(tracked)
    return write
  }

  /** The metadata stored under `key`, or null. */
  async getMeta(key: string): Promise<string | null> {
    checkMetaArgs(key, '')
    const value = await this.db.get(metaPrefix + key)
    return value === undefined ? null : new TextDecoder().decode(value)
  }

  /**
   * Merges the document's log into one update, written at the highest merged
   * seq in one synced batch that also deletes the other merged entries.
   * Appends made meanwhile get higher seqs and are left alone. A call while a
   * compaction of the same document runs joins it.
   */
  compact(docId: DocId): Promise<void> {
    checkDocId(docId)
    const running = this.compactions.get(docId)
    if (running) return running
    if (this.closing) return Promise.reject(new Error('LevelDocStore is closed; cannot compact'))
    return this.startCompaction(docId)
  }

  // Also used while closing: close() waits for every compaction, including
  // one a finished compaction starts because appends made during it left
  // the log too long again.
  private startCompaction(docId: DocId): Promise<void> {
    const compaction = this.doCompact(docId).then(
      () => {
        this.compactions.delete(docId)
        this.maybeAutoCompact(docId)
      },
      (error: unknown) => {
        // No retry here: a failing store would only fail again at once.
        this.compactions.delete(docId)
        throw error
      },
    )
    this.compactions.set(docId, compaction)
    return compaction
  }

  /** Whether the last write succeeded; after a failure, until a write succeeds, the error. */
  health(): StoreHealth {
    return this.lastError === null ? { ok: true } : { ok: false, error: this.lastError }
  }

  /** A copy of the write counters. */
  stats(): LevelDocStoreStats {
    return { ...this.counters }
  }

  /**
   * Writes every append already made, waits for running compactions, then
   * closes the database. Later appends reject. Calling it again returns the
   * same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose()
    return this.closing
  }

  private async doClose(): Promise<void> {
    // Seq reads feed the queue, a finished write may leave a next batch, and
    // compactions must not write to a closed db: keep flushing and waiting
    // until nothing is left.
    for (;;) {
      this.startFlush()
      await Promise.allSettled([...this.seqReads, ...this.metaWrites, ...this.compactions.values(), this.settled])
      const isIdle = this.seqReads.size === 0 && this.metaWrites.size === 0 && this.compactions.size === 0 && this.batchesInFlight === 0 && this.queue.length === 0
      if (isIdle) break
    }
    this.isClosed = true
    try {
      await this.db.close()
    } finally {
      await this.merger.close()
    }
  }

  private logFor(docId: DocId): DocLog {
    let log = this.logs.get(docId)
    if (!log) {
      log = { nextSeq: null, waiting: [], settledSeq: 0, length: 0, appendedBytes: 0, compactedBytes: 0, compactedAt: -Infinity }
      this.logs.set(docId, log)
      this.readSeq(docId, log)
    }
    return log
  }

  /**
   * Reads the document's last key to learn its next seq. Reads at most
   * compactAfterUpdates + 1 keys (newest first): enough to know whether the
   * log already needs compacting, without scanning an arbitrarily long history.
   */
  private readSeq(docId: DocId, log: DocLog): void {
    const read = this.db
      .keys({ ...docRange(docId), reverse: true, limit: this.compactAfterUpdates + 1 })
      .all()
      .then(
        (keys) => {
          const last = keys[0]
          log.nextSeq = last === undefined ? 0 : seqOfKey(last) + 1
          log.settledSeq = log.nextSeq
          log.length = keys.length
          for (const pending of log.waiting) this.enqueue(withSeq(pending, log.nextSeq++))
          log.waiting = []
        },
        (error: unknown) => {
          // Forget the document so the next append retries the read.
          this.logs.delete(docId)
          for (const pending of log.waiting) pending.reject(error)
          log.waiting = []
          this.logger?.error({ err: error, docId }, 'could not read the document log to append to it')
        },
      )
      .finally(() => this.seqReads.delete(read))
    this.seqReads.add(read)
  }

  private enqueue(pending: PendingAppend): void {
    this.queue.push(pending)
    // Deferring lets appends made meanwhile share the first batch (see
    // groupCommitWindowMs); while maxBatchesInFlight batches are being
    // written the queue just grows.
    if (this.batchesInFlight < maxBatchesInFlight && !this.flushScheduled) {
      this.flushScheduled = true
      const flush = (): void => {
        this.flushScheduled = false
        this.startFlush()
      }
      if (this.groupCommitWindowMs > 0) setTimeout(flush, this.groupCommitWindowMs)
      else atTurnEnd(flush)
    }
  }

  private startFlush(): void {
    if (this.queue.length === 0 || this.batchesInFlight >= maxBatchesInFlight) return
    const batch = this.queue
    this.queue = []
    this.batchesInFlight++
    const written = this.writeBatch(batch).then(
      () => ({ ok: true as const }),
      (error: unknown) => ({ ok: false as const, error }),
    )
    // The next batch may go as soon as this one's write completes; its
    // appends settle once every earlier batch's have.
    void written.then(() => {
      this.batchesInFlight--
      this.startFlush()
    })
    this.settled = Promise.all([written, this.settled]).then(([outcome]) => this.settleBatch(batch, outcome))
  }

  /**
   * Write `batch` in one synced LevelDB batch. Built as a chained batch
   * (one native put per append, then one write) rather than an array of
   * operations: abstract-level prepares an array batch in JavaScript,
   * copying every operation into a new object by spreading the options
   * into it, and that took the event loop 86-94 µs per two-put batch
   * against 43-51 µs chained (median over 2,000 synced batches each, on
   * this machine's LevelDB). A busy server writes a batch every turn.
   * Never throws: a closed database (or any other failure) rejects.
   */
  private writeBatch(batch: readonly PendingAppend[]): Promise<void> {
    let chained: ChainedBatch<LevelDocDb, string, Uint8Array> | null = null
    try {
      chained = this.db.batch()
      for (const { key, update } of batch) chained.put(key, update)
      return chained.write({ sync: true })
    } catch (error) {
      // A batch that was never written holds native resources until closed.
      chained?.close().catch((closeError: unknown) => this.logger?.warn({ err: closeError }, 'could not close a document store batch that was never written'))
      return Promise.reject(error)
    }
  }

  private settleBatch(batch: PendingAppend[], outcome: { ok: true } | { ok: false; error: unknown }): void {
    for (const pending of batch) {
      const log = this.logs.get(pending.docId)
      if (log) log.settledSeq = pending.seq + 1
    }
    if (!outcome.ok) {
      this.lastError = errorMessage(outcome.error)
      this.logger?.error({ err: outcome.error, appends: batch.length }, 'document store write failed; the updates were not saved')
      for (const pending of batch) pending.reject(outcome.error)
      return
    }
    this.lastError = null
    this.counters.batches++
    this.counters.appends += batch.length
    const touched = new Set<DocId>()
    for (const pending of batch) {
      const log = this.logs.get(pending.docId)
      if (log) {
        log.length++
        log.appendedBytes += pending.update.byteLength
      }
      touched.add(pending.docId)
      pending.resolve()
    }
    for (const docId of touched) this.maybeAutoCompact(docId)
  }

  private maybeAutoCompact(docId: DocId): void {
    const log = this.logs.get(docId)
    if (!log || log.length <= this.compactAfterUpdates) return
    // Compacting costs in proportion to the document's size: wait until the
    // log holds at least half that much again, so a large document being
    // typed into is not re-encoded every few hundred keystrokes (the cost
    // per byte appended stays constant; a load merges at most that log).
    if (log.appendedBytes * 2 < log.compactedBytes) return
    if (performance.now() - log.compactedAt < this.minCompactionIntervalMs) return
    if (this.compactions.has(docId) || this.isClosed) return
    // Not awaited by the append: the update is already durable, and a failed
    // compaction only leaves a longer log behind.
    this.startCompaction(docId).catch((error: unknown) => {
      this.logger?.error({ err: error, docId }, 'automatic compaction failed')
    })
  }

  private async doCompact(docId: DocId): Promise<void> {
    // One iterator sees one snapshot, so keys and values agree even while
    // appends land. It stops below the first seq not yet settled: two
    // batches in flight may land in either order, so a later seq can be in
    // the snapshot while an earlier one lands after it, where the range
    // deletion below would erase it. Appends to a document whose next seq
    // is still being read are all waiting, none in flight.
    const log = this.logs.get(docId)
    const range = log?.nextSeq == null ? docRange(docId) : { gte: docRange(docId).gte, lt: updateKey(docId, log.settledSeq) }
    const entries = await this.db.iterator(range).all()
    const last = entries[entries.length - 1]
    if (last === undefined) return
    if (entries.length === 1) {
      // Already one update: the measure of what later compactions cost.
      if (log) {
        log.compactedBytes = last[1].byteLength
        log.appendedBytes = Math.max(0, log.appendedBytes - last[1].byteLength)
      }
      return
    }
    const { update: merged, stateVector } = await this.merger.merge(entries.map(([, update]) => update))
    const [lastKey] = last
    const [firstKey] = entries[0]!
    try {
      // The merged state replaces the newest merged update, durably, before
      // anything is deleted: from then on it covers every older entry, so
      // their deletion needs neither the same batch nor a sync (an entry a
      // crash leaves behind merges in again harmlessly). Deleting them as a
      // range keeps the event loop free of per-key work, whatever the count.
      await this.db.batch(
        [
          { type: 'put', key: lastKey, value: merged },
          { type: 'put', key: stateVectorKey(docId), value: encodeStateVectorRecord(seqOfKey(lastKey), stateVector) },
        ],
        { sync: true },
      )
      await this.db.clear({ gte: firstKey, lt: lastKey })
    } catch (error) {
      this.lastError = errorMessage(error)
      throw error
    }
    this.lastError = null
    this.counters.compactions++
    if (log) {
      log.length = Math.max(1, log.length - entries.length + 1)
      const mergedBytes = entries.reduce((sum, [, update]) => sum + update.byteLength, 0)
      // What stays counted is what was appended while this compaction ran (the old compacted state was among the merged entries).
      log.appendedBytes = Math.max(0, log.appendedBytes - (mergedBytes - log.compactedBytes))
      log.compactedBytes = merged.byteLength
      log.compactedAt = performance.now()
    }
  }
}

/** Ids with `!` could reach into another document's key range. */
function checkDocId(docId: DocId): void {
  if (typeof docId !== 'string' || docId.length === 0 || docId.includes('!')) {
    throw new TypeError(`invalid document id ${JSON.stringify(docId)}: must be a non-empty string without "!"`)
  }
}

function checkMetaArgs(key: unknown, value: unknown): void {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('a metadata key must be a non-empty string')
  if (typeof value !== 'string') throw new TypeError('a metadata value must be a string')
}
