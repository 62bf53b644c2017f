/**
 * The streaming transport's record reader: length-prefixed records
 * reassembled across every possible chunking, checked against the
 * server's encoder and lib0's varUint.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as encoding from 'lib0/encoding'
import { RecordError, RecordReader } from '../../../../client/comet/transports/stream'
import { encodeRecord } from '../../../../server/comet/transports/stream'

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff
  return out
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

/** Feed `stream` cut at the given offsets; returns every record, copied. */
function readAll(stream: Uint8Array, cuts: number[], reader = new RecordReader()): Uint8Array[] {
  const records: Uint8Array[] = []
  let start = 0
  for (const cut of [...cuts, stream.length]) {
    for (const record of reader.push(stream.subarray(start, cut))) records.push(Uint8Array.from(record))
    start = cut
  }
  assert.equal(reader.isMidRecord, false, 'the stream ends on a record boundary')
  return records
}

// Records of interesting sizes: heartbeat, 1 byte, the 1→2 and 2→3 byte prefix boundaries.
const sizes = [0, 1, 5, 127, 128, 300, 0, 16383, 16384, 0]
const records = sizes.map((size, i) => bytes(size, i))
const stream = concat(...records.map(encodeRecord))

describe('RecordReader', () => {
  it('encodes the prefix exactly as lib0 writes a varUint', () => {
    for (const length of [0, 1, 127, 128, 255, 300, 16383, 16384, 2 ** 21, 2 ** 28 + 5]) {
      const encoder = encoding.createEncoder()
      encoding.writeVarUint(encoder, length)
      const prefix = encoding.toUint8Array(encoder)
      if (length <= 16384) {
        const record = encodeRecord(new Uint8Array(length))
        assert.deepEqual(record.subarray(0, prefix.length), prefix, `prefix of ${length}`)
        assert.equal(record.length, prefix.length + length)
      }
      // The reader decodes the same prefix to the same length (checked via the limit).
      const reader = new RecordReader(length - 1)
      if (length > 0) assert.throws(() => reader.push(prefix), RecordError, `length ${length} is read as ${length}`)
    }
  })

  it('reads the golden bytes', () => {
    // A heartbeat, then Ack{300} (01 ac 02) as a 3-byte record.
    assert.deepEqual(encodeRecord(new Uint8Array([0x01, 0xac, 0x02])), new Uint8Array([0x03, 0x01, 0xac, 0x02]))
    const out = new RecordReader().push(new Uint8Array([0x00, 0x03, 0x01, 0xac, 0x02]))
    assert.deepEqual(out, [new Uint8Array(0), new Uint8Array([0x01, 0xac, 0x02])])
  })

  it('reads a whole stream in one chunk', () => {
    assert.deepEqual(readAll(stream, []), records)
  })

  it('reads the stream split at every byte offset', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      assert.deepEqual(readAll(stream, [cut]), records, `split at ${cut}`)
    }
  })

  it('reads the stream split at every pair of byte offsets (small records)', () => {
    // Every two-cut split of a stream of small records and long prefixes:
    // prefixes and bodies cut anywhere, empty chunks included.
    const small = [0, 3, 0, 130, 1, 0].map((size, i) => bytes(size, i + 40))
    const smallStream = concat(...small.map(encodeRecord))
    for (let a = 0; a <= smallStream.length; a++) {
      for (let b = a; b <= smallStream.length; b++) {
        assert.deepEqual(readAll(smallStream, [a, b]), small, `split at ${a} and ${b}`)
      }
    }
  })

  it('reads the stream one byte at a time', () => {
    const cuts = Array.from({ length: stream.length - 1 }, (_, i) => i + 1)
    assert.deepEqual(readAll(stream, cuts), records)
  })

  it('reads the stream in chunks of every size from 2 to 64', () => {
    for (let size = 2; size <= 64; size++) {
      const cuts: number[] = []
      for (let at = size; at < stream.length; at += size) cuts.push(at)
      assert.deepEqual(readAll(stream, cuts), records, `chunks of ${size}`)
    }
  })

  it('returns heartbeats as zero-length records, in order with the rest', () => {
    const out = new RecordReader().push(concat(encodeRecord(new Uint8Array(0)), encodeRecord(new Uint8Array([9])), encodeRecord(new Uint8Array(0))))
    assert.deepEqual(
      out.map((record) => record.length),
      [0, 1, 0],
    )
  })

  it('returns nothing for an empty chunk and keeps its state', () => {
    const reader = new RecordReader()
    const record = encodeRecord(bytes(200, 7))
    assert.deepEqual(reader.push(record.subarray(0, 1)), [])
    assert.deepEqual(reader.push(new Uint8Array(0)), [])
    assert.equal(reader.isMidRecord, true)
    assert.deepEqual(reader.push(record.subarray(1)), [bytes(200, 7)])
    assert.equal(reader.isMidRecord, false)
  })

  it('says when a stream ended mid-record (in the prefix or the body)', () => {
    const record = encodeRecord(bytes(200, 1))
    const inPrefix = new RecordReader()
    inPrefix.push(record.subarray(0, 1))
    assert.equal(inPrefix.isMidRecord, true)
    const inBody = new RecordReader()
    inBody.push(record.subarray(0, 10))
    assert.equal(inBody.isMidRecord, true)
  })

  it('does not let a later chunk overwrite an earlier record', () => {
    // Records inside one chunk are views of it; assembled ones are copies.
    const reader = new RecordReader()
    const chunk = Uint8Array.from(encodeRecord(new Uint8Array([1, 2, 3])))
    const [record] = reader.push(chunk)
    assert.deepEqual(record, new Uint8Array([1, 2, 3]))
    const split = encodeRecord(new Uint8Array([4, 5, 6]))
    const first = Uint8Array.from(split.subarray(0, 2))
    reader.push(first)
    first.fill(0)
    assert.deepEqual(reader.push(split.subarray(2)), [new Uint8Array([4, 5, 6])])
  })

  it('refuses a record over the limit before allocating it', () => {
    const reader = new RecordReader(100)
    assert.deepEqual(reader.push(encodeRecord(bytes(100, 0))), [bytes(100, 0)])
    assert.throws(() => reader.push(encodeRecord(bytes(101, 0)).subarray(0, 2)), /101 bytes passes the limit of 100/)
  })

  it('refuses a length prefix longer than 7 bytes', () => {
    assert.throws(() => new RecordReader().push(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])), RecordError)
    // Split across chunks too.
    const reader = new RecordReader()
    reader.push(new Uint8Array([0x80, 0x80, 0x80, 0x80]))
    assert.throws(() => reader.push(new Uint8Array([0x80, 0x80, 0x80, 0x01])), RecordError)
  })

  it('reads a random stream under random chunkings', () => {
    let seed = 12345
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed / 0x7fffffff
    }
    for (let round = 0; round < 50; round++) {
      const list = Array.from({ length: 1 + Math.floor(random() * 20) }, (_, i) => bytes(random() < 0.2 ? 0 : Math.floor(random() ** 3 * 20_000), round + i))
      const whole = concat(...list.map(encodeRecord))
      const cuts: number[] = []
      for (let at = 0; at < whole.length; at += 1 + Math.floor(random() * 3000)) cuts.push(at)
      assert.deepEqual(readAll(whole, cuts), list, `round ${round}`)
    }
  })
})
