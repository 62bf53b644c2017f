/**
 * The sync core: what a room does with one message from one peer. Pure of
 * I/O: it reads bytes, changes the room, and answers through `Peer.send`.
 *
 *   message := varUint(messageType) • body        (y-websocket framing)
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import * as authProtocol from 'y-protocols/auth'
import { DocErrorCode, MessageType } from '../../common/messages'
import type { Peer } from './peer'
import type { Room } from './room'
import { validateUpdate } from './update-validation'
import { guardAwarenessUpdate } from './awareness-guard'

/** Why a message was refused, for logs and metrics. */
export type RefusalReason = 'malformed' | 'read-only' | 'unknown-type' | 'bad-update' | 'awareness' | 'too-large'

/** The outcome of handling one message: null when it was accepted. */
export type HandleResult = null | { refused: RefusalReason; detail: string }

/** Handle one message from `peer` in `room`. Never throws for bad input: it refuses it. */
export function handleMessage(room: Room, peer: Peer, bytes: Uint8Array): HandleResult {
  const decoder = decoding.createDecoder(bytes)
  let type: number
  try {
    type = decoding.readVarUint(decoder)
  } catch {
    return refuse(peer, 'malformed', 'empty or truncated message')
  }
  try {
    switch (type) {
      case MessageType.Sync:
        return handleSync(room, peer, decoder)
      case MessageType.Awareness:
        return handleAwareness(room, peer, decoding.readVarUint8Array(decoder))
      case MessageType.QueryAwareness: {
        const states = room.awareness.getStates()
        if (states.size > 0) {
          const encoder = encoding.createEncoder()
          encoding.writeVarUint(encoder, MessageType.Awareness)
          encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(room.awareness, [...states.keys()]))
          peer.send(encoding.toUint8Array(encoder))
        }
        return null
      }
      case MessageType.Update:
        return handleTrackedUpdate(room, peer, decoder)
      case MessageType.Auth:
        return null // clients have nothing to say in the auth sub-protocol
      default:
        return refuse(peer, 'unknown-type', `unknown message type ${type}`)
    }
  } catch (error) {
    return refuse(peer, 'malformed', `malformed message of type ${type}: ${(error as Error).message}`)
  }
}

function handleSync(room: Room, peer: Peer, decoder: decoding.Decoder): HandleResult {
  const syncType = decoding.readVarUint(decoder)
  switch (syncType) {
    case syncProtocol.messageYjsSyncStep1: {
      const encoder = encoding.createEncoder()
      encoding.writeVarUint(encoder, MessageType.Sync)
      encoding.writeVarUint(encoder, syncProtocol.messageYjsSyncStep2)
      encoding.writeVarUint8Array(encoder, room.missingFrom(decoding.readVarUint8Array(decoder)))
      peer.send(encoding.toUint8Array(encoder))
      return null
    }
    case syncProtocol.messageYjsSyncStep2:
    case syncProtocol.messageYjsUpdate: {
      const update = decoding.readVarUint8Array(decoder)
      return applyUpdate(room, peer, update)
    }
    default:
      return refuse(peer, 'unknown-type', `unknown sync message type ${syncType}`)
  }
}

function handleTrackedUpdate(room: Room, peer: Peer, decoder: decoding.Decoder): HandleResult {
  const updateId = decoding.readVarUint(decoder)
  const update = decoding.readVarUint8Array(decoder)
  const result = applyUpdate(room, peer, update)
  if (result) return result
  // Saved means durable: confirm only once every change so far is stored.
  void room.durable().then(() => {
    if (!room.has(peer)) return
    if (room.failedToApply(update)) {
      // Never confirmed: the client keeps it unsaved and says so.
      refuse(peer, 'bad-update', `update ${updateId} could not be applied; it was not saved`)
      return
    }
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Saved)
    encoding.writeVarUint(encoder, updateId)
    peer.send(encoding.toUint8Array(encoder))
  })
  return null
}

function applyUpdate(room: Room, peer: Peer, update: Uint8Array): HandleResult {
  if (!peer.canWrite) {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Auth)
    authProtocol.writePermissionDenied(encoder, 'this link is view-only')
    peer.send(encoding.toUint8Array(encoder))
    return { refused: 'read-only', detail: 'update from a view-only peer' }
  }
  // A client with nothing to add (the step 2 of a fresh client) changes nothing.
  if (isEmptyUpdate(update)) return null
  // Validate fully before applying, so malformed or hostile bytes never reach
  // the document half-way through an integration (see update-validation.ts).
  if (room.wouldExceedSize(update.length)) {
    return refuse(peer, 'too-large', `the document would grow past ${room.maxDocBytes} bytes; the update was refused`)
  }
  // Checked against the document as applied so far: the updates the room
  // accepted earlier in this turn are applied with this one at its end.
  const verdict = validateUpdate(room.docAsApplied, update, room.limits)
  if (!verdict.ok) return refuse(peer, 'bad-update', verdict.reason)
  // New content under a client id another peer writes under is forged:
  // refused whole (content the room already has may be relayed by anyone).
  const claims: number[] = []
  for (const [clientId, endClock] of verdict.ends) {
    if (endClock <= room.knownClock(clientId)) continue
    const writer = room.writerOf(clientId)
    if (writer && writer !== peer) return refuse(peer, 'bad-update', `client id ${clientId} belongs to another connection`)
    if (!writer) claims.push(clientId)
  }
  for (const clientId of claims) room.claimWriter(clientId, peer)
  room.queueUpdate(update, peer, verdict.ends)
  return null
}

function handleAwareness(room: Room, peer: Peer, update: Uint8Array): HandleResult {
  // Presence belongs to its connection: entries for another peer's client
  // ids, over the caps, or malformed are dropped (see awareness-guard.ts).
  const verdict = guardAwarenessUpdate(room, peer, update, room.limits)
  if (!verdict.ok) return refuse(peer, 'awareness', verdict.reason)
  if (verdict.accepted > 0) awarenessProtocol.applyAwarenessUpdate(room.awareness, verdict.update, peer)
  return null
}

function refuse(peer: Peer, reason: RefusalReason, detail: string): HandleResult {
  if (peer.speaksCometpad) {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Error)
    encoding.writeVarUint(encoder, reason === 'read-only' ? DocErrorCode.Forbidden : reason === 'too-large' ? DocErrorCode.TooLarge : DocErrorCode.BadMessage)
    encoding.writeVarString(encoder, detail)
    peer.send(encoding.toUint8Array(encoder))
  }
  return { refused: reason, detail }
}

/** The update that carries nothing: no structs, no deletions (`Y.encodeStateAsUpdate` of an empty document). */
function isEmptyUpdate(update: Uint8Array): boolean {
  return update.length === 2 && update[0] === 0 && update[1] === 0
}
