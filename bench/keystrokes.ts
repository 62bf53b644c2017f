/**
 * Stamped keystrokes: how latency is measured across processes. A writer
 * inserts one element into the shared text carrying its send time (a Y.Text
 * embed `{ t }`), so any receiver can tell how long the keystroke took to
 * reach it without a side channel. All clients run on one machine and read
 * the same clock (`performance.timeOrigin + performance.now()`, which is
 * wall-clock time with sub-millisecond resolution).
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
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
    const sentAt = now()
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
    encoding.writeVarString(encoder, JSON.stringify({ t: sentAt }))
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
 */
export function sendTimes(update: Uint8Array, ownClientId: number | null): number[] {
  const times: number[] = []
  for (const struct of Y.decodeUpdate(update).structs) {
    if (!(struct instanceof Y.Item) || !(struct.content instanceof Y.ContentEmbed)) continue
    if (struct.id.client === ownClientId) continue
    const embed: unknown = struct.content.embed
    if (typeof embed === 'object' && embed !== null && 't' in embed && typeof embed.t === 'number') times.push(embed.t)
  }
  return times
}
