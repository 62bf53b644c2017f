/**
 * Checks a Yjs update from a peer before it reaches `Y.applyUpdate`.
 *
 * `Y.applyUpdate` trusts its input: it allocates what the header declares
 * before it reads the structs, it throws half-way through a transaction on
 * malformed bytes, and it keeps structs it cannot integrate yet ("pending
 * structs") in memory for ever. So every update from a peer is first decoded
 * here, with bounded work, and refused unless it is a well-formed V1 update
 * that the document can take. A refused update never touches the document:
 * its state vector, content and pending structs stay exactly as they were.
 *
 * The checks, in order:
 *
 * 1. size: at most `maxUpdateBytes`;
 * 2. header pre-scan (lib0, no allocation): the number of client blocks and
 *    the first block's struct count must fit in the bytes that follow and
 *    within `maxStructsPerUpdate`;
 * 3. a full V1 decode with a counting decoder: every struct and delete range
 *    is counted as it is read and decoding stops at `maxStructsPerUpdate`;
 *    the decode must consume exactly the whole update. When it fails, the
 *    bytes are tried as a V2 update only to name the refusal;
 * 4. clocks: no struct or delete range may start more than `maxClockGap`
 *    beyond the document's state for its client, nor end past 2^53;
 * 5. pending structs: structs that could not be integrated now (a clock gap
 *    or an origin the document lacks) may not push the document's pending
 *    structs and delete ranges past `maxPendingStructs`.
 *
 * V1 vs V2. Both formats are self-delimiting but share no magic number: a V2
 * update starts with a feature flag (0), which a V1 decoder reads as "no
 * client blocks". We therefore require the V1 decode to consume every byte;
 * a V2 update read as V1 practically never does. When the bytes are not a V1
 * update we try a (bounded) V2 decode and, if that succeeds, refuse with
 * "V2-encoded". Bytes that happen to be valid both ways are treated as V1,
 * which is what Yjs itself would do with them, and are checked as such.
 */
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'

/** A decoded update's delete set (Yjs does not export the type by name). */
type DeleteSet = ReturnType<typeof Y.decodeUpdate>['ds']

/** Bounds on what one update may ask of the server. Every field is configurable through `RoomOptions.limits`. */
export interface UpdateLimits {
  /**
   * Largest update accepted, in bytes. Stops a peer from making the server
   * decode (and hold) arbitrarily large inputs. @default 16 MiB
   */
  maxUpdateBytes: number
  /**
   * Most structs in one update, and separately most delete ranges. A struct
   * costs a JS object of ~100 bytes after decoding, far more than its 2 wire
   * bytes, so this bounds the memory one update can make the server spend.
   * @default 100_000
   */
  maxStructsPerUpdate: number
  /**
   * How far beyond the document's current clock for a client a struct or
   * delete range may start. A struct past the end of what the document has
   * can never be integrated until the gap is filled; a peer inventing clocks
   * far ahead would park it in memory for ever. @default 10_000_000
   */
  maxClockGap: number
  /**
   * Most structs plus delete ranges the document may hold pending (waiting
   * for a missing dependency) once this update is applied. Only checked
   * when the update itself adds pending entries. @default 10_000
   */
  maxPendingStructs: number
}

/** The defaults of {@link UpdateLimits}. */
export const defaultUpdateLimits: Readonly<UpdateLimits> = Object.freeze({
  maxUpdateBytes: 16 * 1024 * 1024,
  maxStructsPerUpdate: 100_000,
  maxClockGap: 10_000_000,
  maxPendingStructs: 10_000,
})

/**
 * The outcome of {@link validateUpdate}. An accepted update comes with its
 * end clock per Yjs client, as `Y.parseUpdateMeta(update).to` has it, read
 * from the structs the check decoded rather than by decoding them again.
 */
export type UpdateVerdict = { ok: true; ends: Map<number, number> } | { ok: false; reason: string }

/** Yjs clocks are JS numbers; past this they stop being exact. */
const maxClock = Number.MAX_SAFE_INTEGER

/**
 * Decide whether `update` (a Yjs V1 update from a peer) may be applied to
 * `doc`. Pure: it reads `doc` and never changes it. Never throws for bad
 * input. Run it before `Y.applyUpdate`; see the module comment for the checks.
 */
export function validateUpdate(doc: Y.Doc, update: Uint8Array, limits: UpdateLimits = defaultUpdateLimits): UpdateVerdict {
  // A huge update costs decode time and memory before anything else can be checked.
  if (update.length > limits.maxUpdateBytes) {
    return refuse(`the update is ${update.length} bytes, more than the ${limits.maxUpdateBytes} allowed`)
  }
  if (update.length === 0) return refuse('the update is empty')

  const header = preScanHeader(update, limits)
  if (header) return refuse(header)

  const decoded = decodeCounting(update, 'v1', limits.maxStructsPerUpdate)
  if (!decoded.ok) {
    if (decoded.limit) return refuse(decoded.reason)
    const asV2 = decodeCounting(update, 'v2', limits.maxStructsPerUpdate)
    if (asV2.ok) return refuse('the update is V2-encoded; send V1 (Y.encodeStateAsUpdate) updates')
    return refuse(`the update could not be decoded: ${decoded.reason}`)
  }
  const { structs, ds } = decoded.update

  const clocks = checkClocks(doc, structs, ds, limits)
  if (clocks) return refuse(clocks)

  const pending = checkPending(doc, structs, ds, limits)
  if (pending) return refuse(pending)
  return { ok: true, ends: endClocks(structs) }
}

/**
 * Each client's end clock: where its last struct in the update ends, Skips
 * included, which is `Y.parseUpdateMeta`'s `to` (its reader visits the same
 * structs in the same order).
 */
function endClocks(structs: (Y.Item | Y.GC | Y.Skip)[]): Map<number, number> {
  const ends = new Map<number, number>()
  for (const struct of structs) ends.set(struct.id.client, struct.id.clock + struct.length)
  return ends
}

function refuse(reason: string): UpdateVerdict {
  return { ok: false, reason }
}

/**
 * Read the header varints without decoding any struct:
 *
 *   update := varUint(numClients) • (varUint(numStructs) • varUint(client) • varUint(clock) • struct*)* • deleteSet
 *
 * A few bytes can declare 2^53 client blocks or structs, and Yjs allocates
 * `new Array(numStructs)` from the declaration before reading a struct. Each
 * client block takes at least 3 bytes and each struct at least 1 (its info
 * byte), so larger counts are lies. Only the first block's count can be read
 * without decoding its structs; the counting decoder bounds the rest.
 */
function preScanHeader(update: Uint8Array, limits: UpdateLimits): string | null {
  const decoder = decoding.createDecoder(update)
  try {
    const numClients = decoding.readVarUint(decoder)
    const rest = update.length - decoder.pos
    if (numClients > rest / 3) return `the update declares ${numClients} client blocks in ${rest} bytes`
    if (numClients > limits.maxStructsPerUpdate) return `the update declares ${numClients} client blocks, more than the ${limits.maxStructsPerUpdate} allowed`
    if (numClients === 0) return null
    const numStructs = decoding.readVarUint(decoder)
    decoding.readVarUint(decoder) // client
    decoding.readVarUint(decoder) // clock
    const structBytes = update.length - decoder.pos
    if (numStructs > structBytes) return `the update declares ${numStructs} structs in ${structBytes} bytes`
    if (numStructs > limits.maxStructsPerUpdate) return `the update declares ${numStructs} structs, more than the ${limits.maxStructsPerUpdate} allowed`
    return null
  } catch {
    return 'the update header is truncated'
  }
}

/** Thrown by the counting decoders when an update holds more entries than allowed. */
class LimitExceeded extends Error {}

type Decoded = { ok: true; update: { structs: (Y.Item | Y.GC | Y.Skip)[]; ds: DeleteSet } } | { ok: false; limit: boolean; reason: string }

/** The limit the next counting decoder takes (decoding is synchronous: one decode at a time). */
let nextDecoderMax = 0
/** The counting decoder made last, to check where its decode stopped. */
let lastDecoder: CountingDecoderV1 | CountingDecoderV2 | null = null

/** Counts the structs and delete ranges a decoder reads; throws once either passes the limit it was made under. */
class ReadCounter {
  private readonly max = nextDecoderMax
  private structs = 0
  private deleteRanges = 0

  struct(): void {
    if (++this.structs > this.max) throw new LimitExceeded(`the update holds more than ${this.max} structs`)
  }

  deleteRange(): void {
    if (++this.deleteRanges > this.max) throw new LimitExceeded(`the update holds more than ${this.max} delete ranges`)
  }
}

/**
 * A V1 decoder that counts the structs (`readInfo`, called once per struct)
 * and delete ranges (`readDsLen`, once per range) it reads. The classes are
 * made once, not per decode: a class per decode gives every decoder a new
 * hidden class, and Yjs's decoding call sites, which `Y.applyUpdate` shares,
 * go megamorphic (validating and applying a keystroke took twice as long).
 */
class CountingDecoderV1 extends Y.UpdateDecoderV1 {
  private readonly counter = new ReadCounter()

  constructor(decoder: decoding.Decoder) {
    super(decoder)
    lastDecoder = this
  }

  override readInfo(): number {
    this.counter.struct()
    // lib0's readUint8 returns undefined past the end instead of throwing.
    if (this.restDecoder.pos >= this.restDecoder.arr.length) throw new RangeError('unexpected end of update')
    return super.readInfo()
  }

  override readDsLen(): number {
    this.counter.deleteRange()
    return super.readDsLen()
  }
}

/** {@link CountingDecoderV1} for V2 updates. */
class CountingDecoderV2 extends Y.UpdateDecoderV2 {
  private readonly counter = new ReadCounter()

  constructor(decoder: decoding.Decoder) {
    super(decoder)
    lastDecoder = this
  }

  override readInfo(): number {
    this.counter.struct()
    return super.readInfo()
  }

  override readDsLen(): number {
    this.counter.deleteRange()
    return super.readDsLen()
  }
}

/**
 * Fully decode `update` with a counting decoder (see {@link CountingDecoderV1})
 * that stops at `max` structs or delete ranges. The decode must end exactly
 * at the last byte.
 *
 * For V1 the count alone bounds the work, as every struct consumes bytes; a
 * V2 update's run-length encoders can yield values without consuming any, so
 * there the count is what keeps a few bytes from decoding into millions of
 * structs.
 */
function decodeCounting(update: Uint8Array, format: 'v1' | 'v2', max: number): Decoded {
  nextDecoderMax = max
  lastDecoder = null
  try {
    const result = Y.decodeUpdateV2(update, (format === 'v1' ? CountingDecoderV1 : CountingDecoderV2) as typeof Y.UpdateDecoderV1)
    const end = (lastDecoder as CountingDecoderV1 | CountingDecoderV2 | null)?.restDecoder
    if (!end || end.pos !== end.arr.length) {
      return { ok: false, limit: false, reason: `it does not end where its content does (${end?.pos ?? 0} of ${update.length} bytes)` }
    }
    return { ok: true, update: result }
  } catch (error) {
    if (error instanceof LimitExceeded) return { ok: false, limit: true, reason: error.message }
    return { ok: false, limit: false, reason: error instanceof Error ? error.message : String(error) }
  } finally {
    lastDecoder = null
  }
}

/**
 * A struct starting far beyond what the document has for its client waits in
 * pending structs until the gap is filled, which an invented clock never is;
 * a clock near 2^53 breaks Yjs's arithmetic. Skips are placeholders for
 * missing ranges and carry nothing, so only their end is checked.
 */
function checkClocks(doc: Y.Doc, structs: (Y.Item | Y.GC | Y.Skip)[], ds: DeleteSet, limits: UpdateLimits): string | null {
  for (const struct of structs) {
    const { client, clock } = struct.id
    if (clock + struct.length > maxClock) return `a struct of client ${client} ends past the largest clock`
    if (struct instanceof Y.Skip) continue
    const state = Y.getState(doc.store, client)
    if (clock > state + limits.maxClockGap) return `a struct of client ${client} starts at clock ${clock}, more than ${limits.maxClockGap} beyond the document's ${state}`
  }
  for (const [client, ranges] of ds.clients) {
    const state = Y.getState(doc.store, client)
    for (const { clock, len } of ranges) {
      if (clock + len > maxClock) return `a delete range of client ${client} ends past the largest clock`
      if (clock > state + limits.maxClockGap) return `a delete range of client ${client} starts at clock ${clock}, more than ${limits.maxClockGap} beyond the document's ${state}`
    }
  }
  return null
}

/**
 * Estimate how many entries this update would add to the document's pending
 * structs and delete set, and refuse when the total would pass the limit.
 *
 * What Yjs exposes: `doc.store.pendingStructs` (`{ missing, update }`, a V2
 * update holding every struct that waits for a dependency) and
 * `doc.store.pendingDs` (a V2 update holding delete ranges over structs the
 * document lacks). Both are retried on every later update and only leave
 * memory when their dependencies arrive. We count what is already there by
 * decoding those two updates (cached by identity: Yjs replaces them when it
 * changes them), and count as newly pending:
 *
 * - a struct starting at or past its client's reach (the document's state,
 *   extended by the update's own contiguous structs for that client);
 * - an Item whose origin, right origin or parent ID lies past its client's reach;
 * - a delete range ending past its client's reach.
 *
 * This is an estimate, not Yjs's exact integration: dependencies of
 * dependencies are not followed, and an update that fills an existing gap is
 * still charged for its own gaps. It never misses a clock gap, which is the
 * cheap way to grow pending structs.
 */
function checkPending(doc: Y.Doc, structs: (Y.Item | Y.GC | Y.Skip)[], ds: DeleteSet, limits: UpdateLimits): string | null {
  const reach = new Map<number, number>()
  const reachOf = (client: number): number => reach.get(client) ?? Y.getState(doc.store, client)
  for (const struct of structs) {
    if (struct instanceof Y.Skip) continue
    const { client, clock } = struct.id
    const current = reachOf(client)
    if (clock <= current) reach.set(client, Math.max(current, clock + struct.length))
  }
  const isMissing = (id: Y.ID | null | unknown): boolean => id instanceof Y.ID && id.clock >= reachOf(id.client)
  let added = 0
  for (const struct of structs) {
    if (struct instanceof Y.Skip) continue
    if (struct.id.clock >= reachOf(struct.id.client)) added++
    else if (struct instanceof Y.Item && (isMissing(struct.origin) || isMissing(struct.rightOrigin) || isMissing(struct.parent))) added++
  }
  for (const [client, ranges] of ds.clients) {
    for (const { clock, len } of ranges) if (clock + len > reachOf(client)) added++
  }
  if (added === 0) return null
  const existing = countPending(doc.store.pendingStructs?.update ?? null) + countPending(doc.store.pendingDs)
  if (existing + added > limits.maxPendingStructs) {
    return `the update would leave ${existing + added} structs waiting for missing dependencies, more than the ${limits.maxPendingStructs} allowed`
  }
  return null
}

const pendingCounts = new WeakMap<Uint8Array, number>()

/** Structs plus delete ranges in one of Yjs's pending V2 updates. */
function countPending(update: Uint8Array | null): number {
  if (update === null) return 0
  let count = pendingCounts.get(update)
  if (count === undefined) {
    try {
      let ranges = 0
      const { structs, ds } = Y.decodeUpdateV2(update)
      for (const list of ds.clients.values()) ranges += list.length
      count = structs.length + ranges
    } catch {
      // Yjs wrote it; if it cannot be read, treat the budget as spent.
      count = Number.POSITIVE_INFINITY
    }
    pendingCounts.set(update, count)
  }
  return count
}
