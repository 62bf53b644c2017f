/**
 * The Comet frame codec (PROTOCOL.md §2). A transport message (one WebSocket
 * message, one HTTP body) is a batch: one or more frames back to back. Every
 * frame is self-delimiting, so a batch needs no outer length.
 *
 *   batch := frame+
 *   frame := varUint(kind) • body
 *
 * Written over lib0's encoding, like y-protocols, so both sides share one
 * varint implementation.
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

/** Frame kinds; the numbers are on the wire, never reuse one. */
export const FrameKind = {
  /** `varUint(seq) • varByteArray(payload)`: an application message. */
  Data: 0,
  /** `varUint(seq)`: every Data frame up to `seq` arrived. */
  Ack: 1,
  /** `varUint(nonce)`: are you there? */
  Ping: 2,
  /** `varUint(nonce)`: the answer to the Ping with that nonce. */
  Pong: 3,
  /** `varUint(code) • varString(reason)`: the sender is closing the session. */
  Close: 4,
  /** `varString(json)`: server→client handshake (first frame of a connection). */
  Hello: 5,
  /** `varString(json)`: server→client new reconnect advice. */
  Advice: 6,
  /** `varUint(ack)`: client→server on a probed WebSocket: move the session here (PROTOCOL.md §5). */
  Upgrade: 7,
} as const

/** One of the values of {@link FrameKind}. */
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind]

/** A decoded frame. */
export type Frame =
  | { kind: typeof FrameKind.Data; seq: number; payload: Uint8Array }
  | { kind: typeof FrameKind.Ack; seq: number }
  | { kind: typeof FrameKind.Ping; nonce: number }
  | { kind: typeof FrameKind.Pong; nonce: number }
  | { kind: typeof FrameKind.Close; code: number; reason: string }
  | { kind: typeof FrameKind.Hello; json: string }
  | { kind: typeof FrameKind.Advice; json: string }
  | { kind: typeof FrameKind.Upgrade; ack: number }

/** Thrown by {@link decodeBatch} for bytes that are not a valid batch. */
export class FrameError extends Error {
  override readonly name = 'FrameError'
  constructor(
    message: string,
    /** `"too-large"` when a declared length passes the limit, else `"malformed"`. */
    readonly reason: 'malformed' | 'too-large' = 'malformed',
  ) {
    super(message)
  }
}

/** Append one frame to `encoder`. */
export function writeFrame(encoder: encoding.Encoder, frame: Frame): void {
  encoding.writeVarUint(encoder, frame.kind)
  switch (frame.kind) {
    case FrameKind.Data:
      encoding.writeVarUint(encoder, frame.seq)
      encoding.writeVarUint8Array(encoder, frame.payload)
      return
    case FrameKind.Ack:
      encoding.writeVarUint(encoder, frame.seq)
      return
    case FrameKind.Upgrade:
      encoding.writeVarUint(encoder, frame.ack)
      return
    case FrameKind.Ping:
    case FrameKind.Pong:
      encoding.writeVarUint(encoder, frame.nonce)
      return
    case FrameKind.Close:
      encoding.writeVarUint(encoder, frame.code)
      encoding.writeVarString(encoder, frame.reason)
      return
    case FrameKind.Hello:
    case FrameKind.Advice:
      encoding.writeVarString(encoder, frame.json)
      return
    default:
      unexpectedFrame(frame)
  }
}

function unexpectedFrame(frame: never): never {
  throw new TypeError(`unexpected frame ${JSON.stringify(frame)}`)
}

/** Read a length-prefixed byte array, refusing a declared length past `maxBytes` or past the end. */
function readBoundedBytes(decoder: decoding.Decoder, maxBytes: number): Uint8Array {
  const length = decoding.readVarUint(decoder)
  if (length > maxBytes) throw new FrameError(`payload of ${length} bytes exceeds the limit of ${maxBytes}`, 'too-large')
  if (length > decoder.arr.length - decoder.pos) throw new FrameError('payload runs past the end of the batch')
  return decoding.readUint8Array(decoder, length)
}

/** Read one frame from `decoder`. Throws {@link FrameError} on malformed input. */
export function readFrame(decoder: decoding.Decoder, maxPayloadBytes: number): Frame {
  try {
    const kind = decoding.readVarUint(decoder)
    switch (kind) {
      case FrameKind.Data: {
        const seq = decoding.readVarUint(decoder)
        return { kind, seq, payload: readBoundedBytes(decoder, maxPayloadBytes) }
      }
      case FrameKind.Ack:
        return { kind, seq: decoding.readVarUint(decoder) }
      case FrameKind.Upgrade:
        return { kind, ack: decoding.readVarUint(decoder) }
      case FrameKind.Ping:
      case FrameKind.Pong:
        return { kind, nonce: decoding.readVarUint(decoder) }
      case FrameKind.Close: {
        const code = decoding.readVarUint(decoder)
        return { kind, code, reason: readString(decoder, maxPayloadBytes) }
      }
      case FrameKind.Hello:
      case FrameKind.Advice:
        return { kind, json: readString(decoder, maxPayloadBytes) }
      default:
        throw new FrameError(`unknown frame kind ${kind}`)
    }
  } catch (error) {
    if (error instanceof FrameError) throw error
    // lib0 throws plain Errors ("Unexpected end of array", "Integer out of Range").
    throw new FrameError(`malformed frame: ${(error as Error).message}`)
  }
}

function readString(decoder: decoding.Decoder, maxBytes: number): string {
  return new TextDecoder('utf-8', { fatal: true }).decode(readBoundedBytes(decoder, maxBytes))
}

/** Encode frames as one batch. */
export function encodeBatch(frames: readonly Frame[]): Uint8Array {
  const size = numericBatchSize(frames)
  if (size >= 0) return encodeNumericBatch(frames, size)
  const encoder = encoding.createEncoder()
  for (const frame of frames) writeFrame(encoder, frame)
  return encoding.toUint8Array(encoder)
}

// The fast path of encodeBatch. Almost every batch a busy server sends is a
// Data frame or two and maybe an Ack: one per client per event-loop turn,
// so tens of thousands a second. For those the exact size is known up
// front, and writing into one buffer of that size saves lib0's growable
// encoder (an allocation, a chunk list and a final copy per batch). The
// varints are lib0's format: 7 bits a byte, least significant first.

/** Bytes of `value` as a varUint. */
function varUintSize(value: number): number {
  let size = 1
  while (value > 0x7f) {
    value = Math.floor(value / 128)
    size++
  }
  return size
}

function writeVarUintAt(target: Uint8Array, offset: number, value: number): number {
  while (value > 0x7f) {
    target[offset++] = 0x80 | (value & 0x7f)
    value = Math.floor(value / 128)
  }
  target[offset++] = value
  return offset
}

/** The encoded size of a batch holding only frames without strings, or -1. */
function numericBatchSize(frames: readonly Frame[]): number {
  let size = 0
  for (const frame of frames) {
    switch (frame.kind) {
      case FrameKind.Data:
        size += 1 + varUintSize(frame.seq) + varUintSize(frame.payload.length) + frame.payload.length
        break
      case FrameKind.Ack:
        size += 1 + varUintSize(frame.seq)
        break
      case FrameKind.Ping:
      case FrameKind.Pong:
        size += 1 + varUintSize(frame.nonce)
        break
      case FrameKind.Upgrade:
        size += 1 + varUintSize(frame.ack)
        break
      default:
        return -1
    }
  }
  return size
}

/**
 * A buffer for a batch. On Node, Buffer.allocUnsafe slices small buffers
 * from a shared pool, several times cheaper than a typed array with its own
 * backing store; every byte is written. Handed out as a plain Uint8Array
 * view, like every other batch. Browsers have no Buffer.
 */
const allocate: (size: number) => Uint8Array =
  typeof Buffer === 'function'
    ? (size) => {
        const pooled = Buffer.allocUnsafe(size)
        return new Uint8Array(pooled.buffer, pooled.byteOffset, size)
      }
    : (size) => new Uint8Array(size)

function encodeNumericBatch(frames: readonly Frame[], size: number): Uint8Array {
  const bytes = allocate(size)
  let offset = 0
  for (const frame of frames) {
    bytes[offset++] = frame.kind
    switch (frame.kind) {
      case FrameKind.Data:
        offset = writeVarUintAt(bytes, offset, frame.seq)
        offset = writeVarUintAt(bytes, offset, frame.payload.length)
        bytes.set(frame.payload, offset)
        offset += frame.payload.length
        break
      case FrameKind.Ack:
        offset = writeVarUintAt(bytes, offset, frame.seq)
        break
      case FrameKind.Ping:
      case FrameKind.Pong:
        offset = writeVarUintAt(bytes, offset, frame.nonce)
        break
      case FrameKind.Upgrade:
        offset = writeVarUintAt(bytes, offset, frame.ack)
        break
    }
  }
  return bytes
}

/**
 * Decode a batch. Throws {@link FrameError} if any frame is malformed, so a
 * batch is accepted whole or not at all.
 */
export function decodeBatch(bytes: Uint8Array, maxPayloadBytes: number): Frame[] {
  if (bytes.length === 0) throw new FrameError('empty batch')
  const decoder = decoding.createDecoder(bytes)
  const frames: Frame[] = []
  while (decoding.hasContent(decoder)) frames.push(readFrame(decoder, maxPayloadBytes))
  return frames
}
