import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as encoding from 'lib0/encoding'
import { decodeBatch, encodeBatch, FrameError, FrameKind, writeFrame, type Frame } from '../../../../common/comet/frame'

const limit = 1024

function decodeError(bytes: number[] | Uint8Array, maxPayloadBytes = limit): FrameError {
  try {
    decodeBatch(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), maxPayloadBytes)
  } catch (error) {
    assert.ok(error instanceof FrameError, `expected a FrameError, got ${String(error)}`)
    return error
  }
  assert.fail('decodeBatch did not throw')
}

describe('encodeBatch of numeric frames (its exact-size fast path)', () => {
  /** The same batch written frame by frame through lib0's encoder. */
  function viaLib0(frames: Frame[]): Uint8Array {
    const encoder = encoding.createEncoder()
    for (const frame of frames) writeFrame(encoder, frame)
    return encoding.toUint8Array(encoder)
  }

  it('writes the same bytes as lib0 for every varint width and payload size', () => {
    const numbers = [0, 1, 127, 128, 16_383, 16_384, 2 ** 21, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER]
    const sizes = [0, 1, 127, 128, 300, 70_000]
    const frames: Frame[] = [
      ...numbers.map((seq): Frame => ({ kind: FrameKind.Ack, seq })),
      ...numbers.map((nonce): Frame => ({ kind: FrameKind.Ping, nonce })),
      ...numbers.map((nonce): Frame => ({ kind: FrameKind.Pong, nonce })),
      ...numbers.map((ack): Frame => ({ kind: FrameKind.Upgrade, ack })),
      ...sizes.flatMap((size, i) => numbers.map((seq): Frame => ({ kind: FrameKind.Data, seq, payload: new Uint8Array(size).fill(i + 1) }))),
    ]
    for (const frame of frames) assert.deepEqual(encodeBatch([frame]), viaLib0([frame]), JSON.stringify({ ...frame, payload: undefined }))
    assert.deepEqual(encodeBatch(frames), viaLib0(frames))
    assert.deepEqual(decodeBatch(encodeBatch(frames), 100_000), frames)
  })

  it('encodes a mixed batch (a string frame among numeric ones) the same way', () => {
    const frames: Frame[] = [
      { kind: FrameKind.Ack, seq: 5 },
      { kind: FrameKind.Advice, json: '{"reconnect":"retry","retryAfterMs":10}' },
      { kind: FrameKind.Data, seq: 6, payload: new Uint8Array([1, 2]) },
    ]
    assert.deepEqual(encodeBatch(frames), viaLib0(frames))
  })
})

describe('encodeBatch/decodeBatch round trip', () => {
  const everyKind: Frame[] = [
    { kind: FrameKind.Data, seq: 1, payload: new Uint8Array([1, 2, 3]) },
    { kind: FrameKind.Data, seq: 2 ** 40, payload: new Uint8Array(0) },
    { kind: FrameKind.Ack, seq: 0 },
    { kind: FrameKind.Ack, seq: 123_456_789 },
    { kind: FrameKind.Ping, nonce: 7 },
    { kind: FrameKind.Pong, nonce: 2 ** 32 },
    { kind: FrameKind.Close, code: 4404, reason: 'no such document ✓ ü 日本' },
    { kind: FrameKind.Close, code: 1000, reason: '' },
    { kind: FrameKind.Hello, json: JSON.stringify({ v: 1, sid: 'abc', name: 'Zoë' }) },
    { kind: FrameKind.Advice, json: '{"reconnect":"none","retryAfterMs":0}' },
    { kind: FrameKind.Upgrade, ack: 0 },
    { kind: FrameKind.Upgrade, ack: 300 },
  ]

  const kindNames = new Map<number, string>(Object.entries(FrameKind).map(([name, kind]) => [kind, name]))
  for (const [index, frame] of everyKind.entries()) {
    it(`decodes an encoded ${kindNames.get(frame.kind)} frame (case ${index}) to an equal frame`, () => {
      assert.deepEqual(decodeBatch(encodeBatch([frame]), limit), [frame])
    })
  }

  it('decodes a batch of every kind back to the same frames in the same order', () => {
    assert.deepEqual(decodeBatch(encodeBatch(everyKind), limit), everyKind)
  })

  it('decodes a batch of 1000 Data frames in order', () => {
    const frames: Frame[] = []
    for (let seq = 1; seq <= 1000; seq++) frames.push({ kind: FrameKind.Data, seq, payload: new Uint8Array([seq & 255, seq >> 8]) })
    const decoded = decodeBatch(encodeBatch(frames), limit)
    assert.equal(decoded.length, 1000)
    assert.deepEqual(decoded, frames)
  })

  it('accepts a payload exactly at the limit', () => {
    const frame: Frame = { kind: FrameKind.Data, seq: 1, payload: new Uint8Array(16).fill(9) }
    assert.deepEqual(decodeBatch(encodeBatch([frame]), 16), [frame])
  })
})

describe('encodeBatch golden bytes', () => {
  it('encodes Data {seq: 1, payload: [7, 8]} as kind, seq, length, bytes', () => {
    assert.deepEqual([...encodeBatch([{ kind: FrameKind.Data, seq: 1, payload: new Uint8Array([7, 8]) }])], [0, 1, 2, 7, 8])
  })

  it('encodes Ack {seq: 300} with a two-byte varint', () => {
    // 300 = 0b10_0101100: low seven bits 0x2c with the continuation bit, then 2.
    assert.deepEqual([...encodeBatch([{ kind: FrameKind.Ack, seq: 300 }])], [1, 0xac, 0x02])
  })

  it('encodes Close {code: 1000, reason: "bye"} as kind, varint code, varString reason', () => {
    assert.deepEqual([...encodeBatch([{ kind: FrameKind.Close, code: 1000, reason: 'bye' }])], [4, 0xe8, 0x07, 3, 0x62, 0x79, 0x65])
  })

  it('encodes Ping, Pong, Hello and Advice with their kind numbers', () => {
    assert.deepEqual([...encodeBatch([{ kind: FrameKind.Ping, nonce: 5 }])], [2, 5])
    assert.deepEqual([...encodeBatch([{ kind: FrameKind.Pong, nonce: 5 }])], [3, 5])
    assert.deepEqual([...encodeBatch([{ kind: FrameKind.Hello, json: '{}' }])], [5, 2, 0x7b, 0x7d])
    assert.deepEqual([...encodeBatch([{ kind: FrameKind.Advice, json: '{}' }])], [6, 2, 0x7b, 0x7d])
  })

  it('decodes the golden bytes of two frames back to back', () => {
    assert.deepEqual(decodeBatch(new Uint8Array([1, 0xac, 0x02, 0, 1, 2, 7, 8]), limit), [
      { kind: FrameKind.Ack, seq: 300 },
      { kind: FrameKind.Data, seq: 1, payload: new Uint8Array([7, 8]) },
    ])
  })
})

describe('encodeBatch programmer errors', () => {
  it('throws a TypeError for a frame of unknown kind', () => {
    assert.throws(() => encodeBatch([{ kind: 9, seq: 1 } as unknown as Frame]), TypeError)
  })
})

describe('decodeBatch errors', () => {
  it('rejects an empty batch as malformed', () => {
    const error = decodeError([])
    assert.equal(error.reason, 'malformed')
    assert.equal(error.name, 'FrameError')
    assert.match(error.message, /empty/)
  })

  it('rejects an unknown frame kind as malformed', () => {
    const error = decodeError([9, 1])
    assert.equal(error.reason, 'malformed')
    assert.match(error.message, /unknown frame kind 9/)
  })

  it('rejects a varint cut off after its continuation byte', () => {
    assert.equal(decodeError([1, 0xac]).reason, 'malformed')
  })

  it('rejects a frame with its kind but no body', () => {
    assert.equal(decodeError([0]).reason, 'malformed')
  })

  it('rejects a Data frame whose declared payload length runs past the end', () => {
    const error = decodeError([0, 1, 5, 1, 2])
    assert.equal(error.reason, 'malformed')
    assert.match(error.message, /past the end/)
  })

  it("rejects a Data payload over the limit with reason 'too-large'", () => {
    const bytes = encodeBatch([{ kind: FrameKind.Data, seq: 1, payload: new Uint8Array(17) }])
    const error = decodeError(bytes, 16)
    assert.equal(error.reason, 'too-large')
  })

  it("refuses a declared length over the limit before checking the bytes are there ('too-large')", () => {
    // Declares 1 MiB but carries nothing: the limit, not the truncation, is reported.
    const error = decodeError([0, 1, 0x80, 0x80, 0x40], 1024)
    assert.equal(error.reason, 'too-large')
  })

  it("rejects a Close reason over the limit with reason 'too-large'", () => {
    const bytes = encodeBatch([{ kind: FrameKind.Close, code: 1000, reason: 'x'.repeat(17) }])
    assert.equal(decodeError(bytes, 16).reason, 'too-large')
  })

  it("rejects invalid UTF-8 in a Close reason as 'malformed'", () => {
    const error = decodeError([4, 0xe8, 0x07, 2, 0xff, 0xfe])
    assert.equal(error.reason, 'malformed')
  })

  it("rejects invalid UTF-8 in Hello JSON as 'malformed'", () => {
    assert.equal(decodeError([5, 1, 0xc3]).reason, 'malformed')
  })

  it('rejects the whole batch when a later frame is malformed', () => {
    const good = encodeBatch([{ kind: FrameKind.Data, seq: 1, payload: new Uint8Array([1]) }])
    const bytes = new Uint8Array([...good, 9])
    assert.equal(decodeError(bytes).reason, 'malformed')
  })
})
