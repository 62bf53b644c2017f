/**
 * Stamped keystrokes: how latency is measured across processes. A writer
 * inserts one element into the shared text carrying its send time (a Y.Text
 * embed `{ t }`), so any receiver can tell how long the keystroke took to
 * reach it without a side channel. All clients run on one machine and read
 * the same clock (`performance.timeOrigin + performance.now()`, which is
 * wall-clock time with sub-millisecond resolution).
 */
import * as Y from 'yjs'

/** Milliseconds on the clock shared by every process on this machine. */
export function now(): number {
  return performance.timeOrigin + performance.now()
}

/** The name of the shared text every workload types into. */
export const textName = 't'

/**
 * A writer's private document. It holds only the writer's own keystrokes:
 * each new one goes right after its previous one, which is what typing at
 * one's own position in the shared document sends, without the cost of
 * applying everyone else's updates on the load generator.
 */
export class Typist {
  private readonly doc = new Y.Doc()
  private readonly text = this.doc.getText(textName)
  private pending: Uint8Array | null = null

  constructor() {
    this.doc.on('update', (update: Uint8Array) => {
      this.pending = update
    })
  }

  /** The Yjs client id this writer's keystrokes carry. */
  get clientId(): number {
    return this.doc.clientID
  }

  /** Type one stamped keystroke; returns its update and send time. */
  keystroke(): { update: Uint8Array; sentAt: number } {
    const sentAt = now()
    this.text.insertEmbed(this.text.length, { t: sentAt })
    const update = this.pending
    this.pending = null
    if (!update) throw new Error('a keystroke produced no update')
    return { update, sentAt }
  }

  destroy(): void {
    this.doc.destroy()
  }
}

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
