import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parseAdvice, parseHandshake, type Handshake } from '../../../../common/comet/handshake'

const valid: Handshake = {
  v: 1,
  sid: 'session-1',
  resumed: true,
  ack: 42,
  transports: ['websocket', 'long-poll', 'stream'],
  pingIntervalMs: 15_000,
  pingTimeoutMs: 10_000,
  advice: { reconnect: 'retry', retryAfterMs: 250 },
}

function withField(field: string, value: unknown): string {
  return JSON.stringify({ ...valid, [field]: value })
}

function without(field: keyof Handshake): string {
  const copy: Record<string, unknown> = { ...valid }
  delete copy[field]
  return JSON.stringify(copy)
}

describe('parseHandshake', () => {
  it('returns every field of a valid handshake', () => {
    assert.deepEqual(parseHandshake(JSON.stringify(valid)), valid)
  })

  it('reads a missing or non-true resumed as false', () => {
    assert.equal(parseHandshake(without('resumed'))?.resumed, false)
    assert.equal(parseHandshake(withField('resumed', 'yes'))?.resumed, false)
  })

  it('drops transport names it does not know', () => {
    assert.deepEqual(parseHandshake(withField('transports', ['carrier-pigeon', 'long-poll', 7]))?.transports, ['long-poll'])
  })

  it('defaults transports to websocket when the field is missing or not an array', () => {
    assert.deepEqual(parseHandshake(without('transports'))?.transports, ['websocket'])
    assert.deepEqual(parseHandshake(withField('transports', 'websocket'))?.transports, ['websocket'])
  })

  it('fills a missing advice retryAfterMs with 0', () => {
    assert.deepEqual(parseHandshake(withField('advice', { reconnect: 'handshake' }))?.advice, { reconnect: 'handshake', retryAfterMs: 0 })
  })

  const rejected: [string, string][] = [
    ['text that is not JSON', '{"v":1,'],
    ['an empty string', ''],
    ['JSON null', 'null'],
    ['a JSON number', '1'],
    ['a JSON string', '"hello"'],
    ['version 2', withField('v', 2)],
    ['a missing version', without('v')],
    ['a missing sid', without('sid')],
    ['a numeric sid', withField('sid', 12)],
    ['a missing ack', without('ack')],
    ['a string ack', withField('ack', '3')],
    ['a missing pingIntervalMs', without('pingIntervalMs')],
    ['a string pingTimeoutMs', withField('pingTimeoutMs', '10000')],
    ['a missing advice', without('advice')],
    ['an advice with an unknown reconnect value', withField('advice', { reconnect: 'sometimes', retryAfterMs: 0 })],
    ['an advice without reconnect', withField('advice', { retryAfterMs: 0 })],
  ]
  for (const [what, json] of rejected) {
    it(`returns null for ${what}`, () => {
      assert.equal(parseHandshake(json), null)
    })
  }
})

describe('parseAdvice', () => {
  for (const reconnect of ['retry', 'handshake', 'none'] as const) {
    it(`accepts reconnect "${reconnect}" as an object`, () => {
      assert.deepEqual(parseAdvice({ reconnect, retryAfterMs: 1500 }), { reconnect, retryAfterMs: 1500 })
    })
  }

  it('parses advice given as a JSON string (an Advice frame)', () => {
    assert.deepEqual(parseAdvice('{"reconnect":"none","retryAfterMs":30}'), { reconnect: 'none', retryAfterMs: 30 })
  })

  it('replaces a negative, missing or non-numeric retryAfterMs with 0', () => {
    assert.deepEqual(parseAdvice({ reconnect: 'retry', retryAfterMs: -5 }), { reconnect: 'retry', retryAfterMs: 0 })
    assert.deepEqual(parseAdvice({ reconnect: 'retry' }), { reconnect: 'retry', retryAfterMs: 0 })
    assert.deepEqual(parseAdvice({ reconnect: 'retry', retryAfterMs: '100' }), { reconnect: 'retry', retryAfterMs: 0 })
  })

  it('drops fields it does not know', () => {
    assert.deepEqual(parseAdvice({ reconnect: 'retry', retryAfterMs: 1, extra: true }), { reconnect: 'retry', retryAfterMs: 1 })
  })

  const rejected: [string, unknown][] = [
    ['an unknown reconnect value', { reconnect: 'later', retryAfterMs: 0 }],
    ['a reconnect value in another case', { reconnect: 'Retry', retryAfterMs: 0 }],
    ['a numeric reconnect value', { reconnect: 1, retryAfterMs: 0 }],
    ['a missing reconnect', { retryAfterMs: 0 }],
    ['null', null],
    ['undefined', undefined],
    ['a number', 5],
    ['a string that is not JSON', 'retry'],
    ['a JSON string holding null', 'null'],
    ['a JSON string with a bad reconnect', '{"reconnect":"never"}'],
  ]
  for (const [what, value] of rejected) {
    it(`returns null for ${what}`, () => {
      assert.equal(parseAdvice(value), null)
    })
  }
})
