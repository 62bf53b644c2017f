/**
 * Filters an awareness update from a peer before it reaches
 * `applyAwarenessUpdate`: presence belongs to the connection that introduced
 * it, and what one peer shows to everyone else is bounded and well-formed.
 *
 *   awarenessUpdate := varUint(count) • (varUint(clientID) • varUint(clock) • varString(stateJSON))*
 *
 * Each entry is kept, cleaned, ignored or dropped on its own; the accepted
 * entries are re-encoded and only those are applied.
 *
 * An entry that `applyAwarenessUpdate` would not act on (its clock is not
 * newer than the room's, and it is not a removal at the same clock) is
 * ignored silently: stock y-websocket clients re-send every awareness change
 * they receive, other people's included, so such echoes are normal traffic,
 * not spoofing. Ignored entries are not applied and count against nothing.
 *
 * An entry that would change the room is dropped when:
 *
 * - its client id is controlled by another peer of the room (spoofing
 *   someone's cursor or name, or removing their presence), or is the room's
 *   own awareness client id;
 * - it would give the peer more than `maxClientsPerPeer` client ids, or the
 *   room more than `maxClientsPerRoom` states (each state is sent to every
 *   peer, and `Awareness` keeps metadata for every id it has seen);
 * - its state JSON is longer than `maxStateBytes`, is not JSON, or is neither
 *   null nor an object (every peer receives it, and renders it);
 * - its `user` field is present but not an object.
 *
 * A `user.name` that is not a string, or is empty once cleaned, is removed;
 * otherwise it is cleaned like the client's `cleanName` (control and format
 * characters, which include bidi overrides, are stripped; trimmed) and cut to
 * `maxNameLength` code points. A `user.color` that is not `#rrggbb` is
 * removed; clients then show their fallback colour. Removing a field rather
 * than the entry keeps a peer with an odd name or colour visible.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import type { Peer } from './peer'

/** Bounds on presence. Configurable through `RoomOptions.limits`. */
export interface AwarenessLimits {
  /** Most awareness client ids one peer may control. A browser tab uses one per document. @default 4 */
  maxClientsPerPeer: number
  /** Most awareness states in a room; each is relayed to every peer. @default 1000 */
  maxClientsPerRoom: number
  /** Longest state JSON accepted, in UTF-8 bytes. @default 4096 */
  maxStateBytes: number
  /** Longest `user.name` kept, in code points; longer names are cut. @default 64 */
  maxNameLength: number
}

/** The defaults of {@link AwarenessLimits}. */
export const defaultAwarenessLimits: Readonly<AwarenessLimits> = Object.freeze({
  maxClientsPerPeer: 4,
  maxClientsPerRoom: 1000,
  maxStateBytes: 4096,
  maxNameLength: 64,
})

/** What the guard needs to know about the room. */
export interface AwarenessRoomView {
  /** The room's own awareness client id (the server has no presence). */
  readonly ownClientId: number
  /** The room's awareness clock for `clientId` (0 when it never had a state). */
  awarenessClock(clientId: number): number
  /** Whether `clientId` currently has a state in the room. */
  hasState(clientId: number): boolean
  /** How many states the room holds. */
  readonly stateCount: number
  /** The peer controlling `clientId`, or null when none does. */
  awarenessOwner(clientId: number): Peer | null
  /** The client ids `peer` controls. */
  awarenessClientsOf(peer: Peer): readonly number[]
}

/** The outcome of {@link guardAwarenessUpdate}. */
export type AwarenessVerdict =
  /**
   * `update` holds the `accepted` entries, re-encoded; `ignored` entries were
   * no-ops (echoes), `dropped` ones were refused for the `reasons` given.
   */
  | { ok: true; update: Uint8Array; accepted: number; ignored: number; dropped: number; reasons: string[] }
  | { ok: false; reason: string }

const hexColor = /^#[0-9a-fA-F]{6}$/
// Control (Cc) and format (Cf) characters: newlines break one-line labels,
// bidi overrides and zero-width characters let a name pass for another.
const invisible = /[\p{Cc}\p{Cf}]/gu

/**
 * Decide which entries of `update` (from `peer`) may be applied to the
 * room's awareness. Never throws for bad input. `ok: false` when nothing in
 * the update is acceptable and something was dropped (including a malformed
 * update); an update with no entries, or only echoes, is `ok` with nothing
 * to apply.
 */
export function guardAwarenessUpdate(
  room: AwarenessRoomView,
  peer: Peer,
  update: Uint8Array,
  limits: AwarenessLimits = defaultAwarenessLimits,
): AwarenessVerdict {
  const decoder = decoding.createDecoder(update)
  const accepted: { clientId: number; clock: number; json: string }[] = []
  const reasons: string[] = []
  let count: number
  let ignored = 0
  try {
    count = decoding.readVarUint(decoder)
    // Each entry takes at least 3 bytes; a larger count is a lie.
    if (count > (update.length - decoder.pos) / 3) return { ok: false, reason: `the awareness update declares ${count} entries in ${update.length} bytes` }
    const owned = room.awarenessClientsOf(peer)
    const newIds = new Set<number>()
    let newStates = 0
    for (let i = 0; i < count; i++) {
      const clientId = decoding.readVarUint(decoder)
      const clock = decoding.readVarUint(decoder)
      const stateBytes = decoding.readVarUint8Array(decoder)
      // lib0 clamps a length past the end instead of throwing; a cut-off state must not pass as a shorter one.
      if (decoder.pos > update.length) throw new RangeError('unexpected end of awareness update')
      const drop = (reason: string): void => void reasons.push(`client ${clientId}: ${reason}`)
      if (!wouldChange(room, clientId, clock, isNullState(stateBytes))) {
        ignored++
        continue
      }
      if (stateBytes.length > limits.maxStateBytes) {
        drop(`state of ${stateBytes.length} bytes, more than ${limits.maxStateBytes}`)
        continue
      }
      const state = parseState(stateBytes, limits)
      if (typeof state === 'string') {
        drop(state)
        continue
      }
      if (clientId === room.ownClientId) {
        drop('is the room’s own client id')
        continue
      }
      const owner = room.awarenessOwner(clientId)
      if (owner !== null && owner !== peer) {
        drop('is controlled by another connection')
        continue
      }
      if (state.value !== null) {
        if (!owned.includes(clientId) && !newIds.has(clientId)) {
          if (owned.length + newIds.size >= limits.maxClientsPerPeer) {
            drop(`this connection already controls ${limits.maxClientsPerPeer} client ids`)
            continue
          }
          if (!room.hasState(clientId) && room.stateCount + newStates >= limits.maxClientsPerRoom) {
            drop(`the room already holds ${limits.maxClientsPerRoom} states`)
            continue
          }
          newIds.add(clientId)
          if (!room.hasState(clientId)) newStates++
        }
      }
      accepted.push({ clientId, clock, json: state.json })
    }
  } catch (error) {
    return { ok: false, reason: `malformed awareness update: ${error instanceof Error ? error.message : String(error)}` }
  }
  if (accepted.length === 0 && reasons.length > 0) return { ok: false, reason: summarize(reasons) }
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, accepted.length)
  for (const entry of accepted) {
    encoding.writeVarUint(encoder, entry.clientId)
    encoding.writeVarUint(encoder, entry.clock)
    encoding.writeVarString(encoder, entry.json)
  }
  return { ok: true, update: encoding.toUint8Array(encoder), accepted: accepted.length, ignored, dropped: reasons.length, reasons }
}

/** Mirrors the test in y-protocols' `applyAwarenessUpdate`: whether it would act on this entry. */
function wouldChange(room: AwarenessRoomView, clientId: number, clock: number, isRemoval: boolean): boolean {
  const current = room.awarenessClock(clientId)
  return current < clock || (current === clock && isRemoval && room.hasState(clientId))
}

const nullJson = new TextEncoder().encode('null')

/** Whether the state bytes are exactly `null`, the way y-protocols encodes a removal. */
function isNullState(bytes: Uint8Array): boolean {
  return bytes.length === nullJson.length && bytes.every((byte, i) => byte === nullJson[i])
}

/** At most three reasons, so a refusal of a 1000-entry update stays a short log line. */
function summarize(reasons: string[]): string {
  const shown = reasons.slice(0, 3).join('; ')
  return reasons.length > 3 ? `${shown}; and ${reasons.length - 3} more` : shown
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** The state as it will be applied (`json` re-serialized after cleaning), or why it is refused. */
function parseState(bytes: Uint8Array, limits: AwarenessLimits): { value: Record<string, unknown> | null; json: string } | string {
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(bytes))
  } catch {
    return 'state is not UTF-8 JSON'
  }
  if (value === null) return { value: null, json: 'null' }
  if (typeof value !== 'object' || Array.isArray(value)) return 'state is neither null nor an object'
  const state = value as Record<string, unknown>
  if (!('user' in state)) return { value: state, json: JSON.stringify(state) }
  const user = state.user
  if (typeof user !== 'object' || user === null || Array.isArray(user)) return 'user is not an object'
  const cleaned: Record<string, unknown> = { ...(user as Record<string, unknown>) }
  const name = cleanName(cleaned.name, limits.maxNameLength)
  if (name === null) delete cleaned.name
  else cleaned.name = name
  if (typeof cleaned.color !== 'string' || !hexColor.test(cleaned.color)) delete cleaned.color
  const result = { ...state, user: cleaned }
  return { value: result, json: JSON.stringify(result) }
}

/** `value` as a display name, or null when it is not a string or nothing is left. */
function cleanName(value: unknown, maxLength: number): string | null {
  if (typeof value !== 'string') return null
  const name = value.replace(invisible, '').trim()
  if (name === '') return null
  // Count code points so a cut never splits a surrogate pair.
  return Array.from(name).slice(0, maxLength).join('').trim()
}
