/**
 * Stamped keystrokes: how latency is measured across processes. A writer
 * inserts one element into the shared text carrying its send time (a Y.Text
 * embed `{ t }`), so any receiver can tell how long the keystroke took to
 * reach it without a side channel. All clients run on one machine and read
 * the same clock (`performance.timeOrigin + performance.now()`, which is
 * wall-clock time with sub-millisecond resolution).
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as random from 'lib0/random'

/** Milliseconds on the clock shared by every process on this machine. */
export function now(): number {
  return performance.timeOrigin + performance.now()
}

/** The name of the shared text every workload types into. */
export const textName = 't'

/**
 * A writer: the updates it sends are those of a Y.Text where each stamped
 * keystroke goes right after its previous one, which is what typing at one's
 * own position in the shared document sends.
 *
 * It encodes them itself instead of typing into a private Y.Doc. Yjs finds
 * the end of a text by walking from its nearest search marker, and a writer
 * of the throughput workload types thousands of keystrokes a second: in a
 * profile at its highest rate, that walk (`findMarker`, `findNextPosition`)
 * took more than half of each client worker, so the load generator, not the
 * server, set the latency. Each update is one Item in Yjs's V1 format (the
 * test in test/unit/bench checks it is byte for byte what Yjs sends):
 *
 *   varUint(1 client) • varUint(1 struct) • varUint(client) • varUint(clock) •
 *   info • (origin: varUint(client) • varUint(clock - 1) | root: varUint(1) • varString(name)) •
 *   varString(JSON of the embed) • varUint(0: empty delete set)
 */
export class Typist {
  /** The Yjs client id this writer's keystrokes carry. */
  readonly clientId = random.uint32()
  private clock = 0

  /** Type one stamped keystroke; returns its update and send time. */
  keystroke(): { update: Uint8Array; sentAt: number } {
    // Stamped in whole microseconds, which a receiver reads back exactly (see stampOf).
    const stamp = Math.round(now() * 1000)
    const sentAt = stamp / 1000
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, 1)
    encoding.writeVarUint(encoder, 1)
    encoding.writeVarUint(encoder, this.clientId)
    encoding.writeVarUint(encoder, this.clock)
    if (this.clock === 0) {
      // The first keystroke has no left neighbour: it names its parent, the root text.
      encoding.writeUint8(encoder, contentEmbedRef)
      encoding.writeVarUint(encoder, 1)
      encoding.writeVarString(encoder, textName)
    } else {
      encoding.writeUint8(encoder, contentEmbedRef | hasOrigin)
      encoding.writeVarUint(encoder, this.clientId)
      encoding.writeVarUint(encoder, this.clock - 1)
    }
    encoding.writeVarString(encoder, JSON.stringify({ t: stamp }))
    encoding.writeVarUint(encoder, 0)
    this.clock++
    return { update: encoding.toUint8Array(encoder), sentAt }
  }
}

/** Yjs's content ref of an embed (ContentEmbed.getRef()), and the info bit for "has a left origin". */
const contentEmbedRef = 5
const hasOrigin = 0x80

/**
 * The send times of every stamped keystroke in `update` (a server may merge
 * several into one), leaving out those of `ownClientId`: some servers echo
 * a writer's updates back to it, and that is no arrival at another client.
 *
 * It walks Yjs's V1 update format itself rather than calling
 * `Y.decodeUpdate`, which builds an Item, its IDs and its content for every
 * struct and decodes every string. Every probe reads every update, so at the
 * top of the throughput ladder that decoding took most of the client
 * workers' time: in a profile at 391k deliveries a second the workers were
 * at 95-113 % CPU against the server's 51-64 %, and Yjs's decoding
 * (`readJSON`, the lazy struct reader, UTF-8 decoding) was the largest part
 * of it. The load generator, not the server, then set the latency. Only the
 * embeds' strings are read here; everything else is skipped by its length.
 * The unit test checks it against `Y.decodeUpdate` on merged updates with
 * every kind of content.
 */
export function sendTimes(update: Uint8Array, ownClientId: number | null): number[] {
  const times: number[] = []
  const decoder = decoding.createDecoder(update)
  const clients = decoding.readVarUint(decoder)
  for (let c = 0; c < clients; c++) {
    const structs = decoding.readVarUint(decoder)
    const isOwn = decoding.readVarUint(decoder) === ownClientId
    decoding.readVarUint(decoder) // the first struct's clock
    for (let s = 0; s < structs; s++) {
      const info = decoding.readUint8(decoder)
      const contentRef = info & 0x1f
      // GC and Skip: only a length.
      if (contentRef === gcRef || contentRef === skipRef) {
        decoding.readVarUint(decoder)
        continue
      }
      if (info & hasOrigin) skipId(decoder)
      if (info & hasRightOrigin) skipId(decoder)
      if ((info & (hasOrigin | hasRightOrigin)) === 0) {
        // Parent: a root type's name (1) or the ID of the item holding it (0); then a map key if any.
        if (decoding.readVarUint(decoder) === 1) skipBytes(decoder)
        else skipId(decoder)
        if (info & hasParentSub) skipBytes(decoder)
      }
      if (contentRef === contentEmbedRef) {
        const json = decoding.readVarUint8Array(decoder)
        if (isOwn) continue
        const t = stampOf(json)
        if (t !== null) times.push(t)
      } else {
        skipContent(decoder, contentRef)
      }
    }
  }
  return times
}

// Yjs's struct refs and info bits (readClientsStructRefs, readItemContent).
const gcRef = 0
const skipRef = 10
const hasRightOrigin = 0x40
const hasParentSub = 0x20
// ContentType's refs for the types that carry a name (YXmlElement, YXmlHook).
const xmlElementRef = 3
const xmlHookRef = 5

function skipId(decoder: decoding.Decoder): void {
  decoding.readVarUint(decoder)
  decoding.readVarUint(decoder)
}

/** A varUint length and that many bytes: a string or a buffer. */
function skipBytes(decoder: decoding.Decoder): void {
  // Not `decoder.pos += readVarUint(decoder)`: that reads pos before the length is read.
  const length = decoding.readVarUint(decoder)
  decoder.pos += length
}

/** Skip an Item's content other than an embed (Yjs's readItemContent, V1). */
function skipContent(decoder: decoding.Decoder, contentRef: number): void {
  switch (contentRef) {
    case 1: // deleted: a length
      decoding.readVarUint(decoder)
      return
    case 2: {
      // JSON: that many strings
      const length = decoding.readVarUint(decoder)
      for (let i = 0; i < length; i++) skipBytes(decoder)
      return
    }
    case 3: // binary
    case 4: // string
      skipBytes(decoder)
      return
    case 6: // format: key and JSON value
      skipBytes(decoder)
      skipBytes(decoder)
      return
    case 7: {
      // type: its ref, and a name for the XML types that have one
      const typeRef = decoding.readVarUint(decoder)
      if (typeRef === xmlElementRef || typeRef === xmlHookRef) skipBytes(decoder)
      return
    }
    case 8: {
      // any: that many values
      const length = decoding.readVarUint(decoder)
      for (let i = 0; i < length; i++) decoding.readAny(decoder)
      return
    }
    case 9: // subdocument: its guid and options
      skipBytes(decoder)
      decoding.readAny(decoder)
      return
    default:
      throw new Error(`unknown Yjs content ref ${contentRef}`)
  }
}

/** `{"t":` in ASCII, the start of every stamp the Typist writes. */
const stampPrefix = [0x7b, 0x22, 0x74, 0x22, 0x3a]
const closingBrace = 0x7d
const digitZero = 0x30

/**
 * The send time, in ms, of an embed's JSON, or null if it is no stamp. The
 * Typist's stamps (`{"t":<microseconds>}`) are read digit by digit, which
 * is exact for integers below 2^53; anything else goes through JSON.parse.
 */
function stampOf(json: Uint8Array): number | null {
  const end = json.length - 1
  let isStamp = end > stampPrefix.length && json[end] === closingBrace
  for (let i = 0; isStamp && i < stampPrefix.length; i++) isStamp = json[i] === stampPrefix[i]
  let micros = 0
  for (let i = stampPrefix.length; isStamp && i < end; i++) {
    const digit = json[i]! - digitZero
    if (digit < 0 || digit > 9) isStamp = false
    else micros = micros * 10 + digit
  }
  if (isStamp && Number.isSafeInteger(micros)) return micros / 1000
  const embed: unknown = JSON.parse(new TextDecoder().decode(json))
  return typeof embed === 'object' && embed !== null && 't' in embed && typeof embed.t === 'number' ? embed.t / 1000 : null
}
