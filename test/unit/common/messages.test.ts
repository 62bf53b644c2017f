import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as decoding from 'lib0/decoding'
import { toUint8Array as toBytes } from 'lib0/encoding'
import {
  DocErrorCode,
  encodeEmptyMessage,
  encodeErrorMessage,
  encodeSavedMessage,
  encodeUpdateMessage,
  MessageType,
  splitDocMessage,
  startDocMessage,
} from '../../../common/messages'

const docId = 'AAAAAAAAAAAAAAAAAAAAAA'

describe('encodeUpdateMessage / splitDocMessage', () => {
  it('splits an Update message into its document id, type and room message', () => {
    const update = new Uint8Array([1, 2, 3, 250])
    const split = splitDocMessage(encodeUpdateMessage(docId, 77, update))
    assert.equal(split.docId, docId)
    assert.equal(split.type, MessageType.Update)
    const decoder = decoding.createDecoder(split.message)
    assert.equal(decoding.readVarUint(decoder), MessageType.Update)
    assert.equal(decoding.readVarUint(decoder), 77)
    assert.deepEqual(decoding.readVarUint8Array(decoder), update)
    assert.equal(decoding.hasContent(decoder), false)
  })

  it('encodes an Update message as varString(docId) • 18 • varUint(id) • varByteArray(update)', () => {
    assert.deepEqual([...encodeUpdateMessage('ab', 300, new Uint8Array([9]))], [2, 0x61, 0x62, 18, 0xac, 0x02, 1, 9])
  })

  it('returns the room message as a view that starts at the message type', () => {
    const bytes = encodeUpdateMessage('d', 1, new Uint8Array([5]))
    const split = splitDocMessage(bytes)
    assert.equal(split.message.buffer, bytes.buffer)
    assert.equal(split.message.byteOffset, bytes.byteOffset + 2)
    assert.deepEqual([...split.message], [18, 1, 1, 5])
  })

  it('round-trips a document id with non-ASCII characters', () => {
    assert.equal(splitDocMessage(encodeUpdateMessage('dökümän-日本', 1, new Uint8Array())).docId, 'dökümän-日本')
  })

  it('splits a message whose type it does not know without judging it', () => {
    const bytes = toBytes(startDocMessage(docId, 99 as MessageType))
    const split = splitDocMessage(bytes)
    assert.equal(split.type, 99)
    assert.deepEqual([...split.message], [99])
  })
})

describe('encodeErrorMessage', () => {
  it('carries the code and the message after the Error type', () => {
    const split = splitDocMessage(encodeErrorMessage(docId, DocErrorCode.StorageFailed, 'disk on fire ✗'))
    assert.equal(split.docId, docId)
    assert.equal(split.type, MessageType.Error)
    const decoder = decoding.createDecoder(split.message)
    assert.equal(decoding.readVarUint(decoder), MessageType.Error)
    assert.equal(decoding.readVarUint(decoder), 500)
    assert.equal(decoding.readVarString(decoder), 'disk on fire ✗')
    assert.equal(decoding.hasContent(decoder), false)
  })

  it('has golden bytes varString(docId) • 20 • varUint(code) • varString(message)', () => {
    assert.deepEqual([...encodeErrorMessage('d', DocErrorCode.NotFound, 'no')], [1, 0x64, 20, 0x94, 0x03, 2, 0x6e, 0x6f])
  })
})

describe('encodeSavedMessage and encodeEmptyMessage', () => {
  it('encodes Saved as the Saved type and the update id', () => {
    const split = splitDocMessage(encodeSavedMessage(docId, 12))
    assert.equal(split.type, MessageType.Saved)
    assert.deepEqual([...split.message], [19, 12])
  })

  it('encodes Join, Leave and QueryAwareness with no body', () => {
    for (const type of [MessageType.Join, MessageType.Leave, MessageType.QueryAwareness]) {
      const split = splitDocMessage(encodeEmptyMessage(docId, type))
      assert.equal(split.docId, docId)
      assert.deepEqual([...split.message], [type])
    }
  })
})

describe('splitDocMessage on truncated input', () => {
  it('throws on an empty message', () => {
    assert.throws(() => splitDocMessage(new Uint8Array()))
  })

  it('throws when the document id is shorter than its declared length', () => {
    assert.throws(() => splitDocMessage(new Uint8Array([5, 0x61, 0x62])))
  })

  it('throws when the declared id length runs past the end of a view into a larger buffer', () => {
    const backing = new Uint8Array([5, 0x61, 0x62, 0x63, 0x64, 0x65, 0])
    assert.throws(() => splitDocMessage(backing.subarray(0, 3)))
  })

  it('throws when the message type is missing after the document id', () => {
    assert.throws(() => splitDocMessage(new Uint8Array([1, 0x64])))
  })

  it('throws when the message type varint is cut off', () => {
    assert.throws(() => splitDocMessage(new Uint8Array([1, 0x64, 0x80])))
  })

  it('throws for every strict prefix of a valid message', () => {
    const bytes = encodeUpdateMessage(docId, 1, new Uint8Array([1]))
    const typeEnd = 1 + docId.length + 1
    for (let length = 0; length < typeEnd; length++) {
      assert.throws(() => splitDocMessage(bytes.slice(0, length)), Error, `prefix of ${length} bytes`)
    }
  })
})
