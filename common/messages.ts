/**
 * Application messages carried in Comet Data frames (PROTOCOL.md §6).
 * One channel multiplexes many documents, so every message starts with the
 * document address it concerns:
 *
 *   docMessage := varString(docId) • varUint(messageType) • body
 *
 * Types 0–3 keep the y-websocket numbering and carry y-protocols bodies
 * unchanged; 16 and up are Cometpad's own.
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

/** Message types; the numbers are on the wire. */
export const MessageType = {
  /** y-protocols sync (step 1, step 2, update). */
  Sync: 0,
  /** y-protocols awareness update. */
  Awareness: 1,
  /** y-protocols auth (permission denied). */
  Auth: 2,
  /** Ask for every awareness state. */
  QueryAwareness: 3,
  /** client→server: open the document on this channel. Body empty. */
  Join: 16,
  /** client→server: close the document on this channel. Body empty. */
  Leave: 17,
  /** client→server: `varUint(updateId) • varByteArray(update)`, a Yjs update the client wants confirmed. */
  Update: 18,
  /** server→client: `varUint(updateId)`: every Update up to this id is durably stored. */
  Saved: 19,
  /** server→client: `varUint(code) • varString(message)`: the document could not be served or saved. */
  Error: 20,
} as const

/** One of the values of {@link MessageType}. */
export type MessageType = (typeof MessageType)[keyof typeof MessageType]

/** Error codes carried by an Error message. */
export const DocErrorCode = {
  /** A message could not be decoded or applied; it was dropped. */
  BadMessage: 400,
  /** The address is malformed or names no document. */
  NotFound: 404,
  /** A message for a document this channel has not joined; it was dropped. */
  NotJoined: 409,
  /** The link does not allow this (e.g. a view link sending updates). */
  Forbidden: 403,
  /** The document could not be loaded or stored; the server keeps trying. */
  StorageFailed: 500,
  /** The update would grow the document past the server's size limit; it was dropped. */
  TooLarge: 413,
  /** The server holds as many documents open as it may; try again later. */
  Busy: 503,
} as const

/** Start a message for `docId`: returns an encoder positioned at the body. */
export function startDocMessage(docId: string, type: MessageType): encoding.Encoder {
  const encoder = encoding.createEncoder()
  encoding.writeVarString(encoder, docId)
  encoding.writeVarUint(encoder, type)
  return encoder
}

/**
 * A document message split into its address and the room message that
 * follows it (`varUint(messageType) • body`, the y-websocket framing).
 */
export interface SplitDocMessage {
  docId: string
  type: number
  /** The room message, type included; a view into the original bytes. */
  message: Uint8Array
}

/** Split a document message. Throws on truncated input. */
export function splitDocMessage(bytes: Uint8Array): SplitDocMessage {
  const decoder = decoding.createDecoder(bytes)
  const docId = decoding.readVarString(decoder)
  const messageStart = decoder.pos
  const type = decoding.readVarUint(decoder)
  return { docId, type, message: bytes.subarray(messageStart) }
}

/** Encode an Update message. */
export function encodeUpdateMessage(docId: string, updateId: number, update: Uint8Array): Uint8Array {
  const encoder = startDocMessage(docId, MessageType.Update)
  encoding.writeVarUint(encoder, updateId)
  encoding.writeVarUint8Array(encoder, update)
  return encoding.toUint8Array(encoder)
}

/** Encode a Saved message. */
export function encodeSavedMessage(docId: string, updateId: number): Uint8Array {
  const encoder = startDocMessage(docId, MessageType.Saved)
  encoding.writeVarUint(encoder, updateId)
  return encoding.toUint8Array(encoder)
}

/** Encode an Error message. */
export function encodeErrorMessage(docId: string, code: number, message: string): Uint8Array {
  const encoder = startDocMessage(docId, MessageType.Error)
  encoding.writeVarUint(encoder, code)
  encoding.writeVarString(encoder, message)
  return encoding.toUint8Array(encoder)
}

/** Encode a body-less message (Join, Leave, QueryAwareness). */
export function encodeEmptyMessage(docId: string, type: MessageType): Uint8Array {
  return encoding.toUint8Array(startDocMessage(docId, type))
}
