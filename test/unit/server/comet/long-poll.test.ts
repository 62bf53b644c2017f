import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CloseCode } from '../../../../common/close-codes'
import { LongPollTransport } from '../../../../server/comet/transports/long-poll'
import type { TransportReceiver } from '../../../../server/comet/transport'

/** Hold a poll on `transport`; returns what answered it (undefined while held). */
function holdPoll(transport: LongPollTransport): { answer: Uint8Array | null | undefined } {
  const held: { answer: Uint8Array | null | undefined } = { answer: undefined }
  transport.poll(60_000, (body) => (held.answer = body), () => {})
  return held
}

describe('LongPollTransport uploads', () => {
  it('answers a POST with what its batch produced, and leaves the held poll for what comes after', () => {
    const transport = new LongPollTransport()
    transport.receiver = { receiveBatch: () => transport.send(new Uint8Array([1])), transportClosed: () => {} }
    const held = holdPoll(transport)
    transport.receive(new Uint8Array([9]))
    assert.equal(held.answer, undefined, 'the reply waits for the POST')
    assert.deepEqual(transport.answerUpload(), new Uint8Array([1]))
    transport.send(new Uint8Array([2]))
    assert.deepEqual(held.answer, new Uint8Array([2]))
    transport.close(CloseCode.Normal, 'test over')
  })

  it('does not leave later sends waiting when the session throws on a POST', () => {
    const transport = new LongPollTransport()
    const receiver: TransportReceiver = {
      receiveBatch: () => {
        transport.send(new Uint8Array([1]))
        throw new Error('bug')
      },
      transportClosed: () => {},
    }
    transport.receiver = receiver
    const held = holdPoll(transport)
    assert.throws(() => transport.receive(new Uint8Array([9])), /bug/)
    assert.deepEqual(held.answer, new Uint8Array([1]), 'what the batch produced went to the held poll')
    const next = holdPoll(transport)
    transport.send(new Uint8Array([2]))
    assert.deepEqual(next.answer, new Uint8Array([2]), 'a later send answers the poll at once')
    transport.close(CloseCode.Normal, 'test over')
  })
})
