import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { nextDelay, type BackoffOptions } from '../../../../client/comet/backoff'

const options: BackoffOptions = { baseMs: 100, maxMs: 10_000 }
const low = () => 0
const high = () => 0.999

describe('nextDelay', () => {
  it('doubles the delay with every attempt', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((attempt) => nextDelay(attempt, 0, options, low)),
      [50, 100, 200, 400, 800, 1600],
    )
  })

  it('stops growing at maxMs', () => {
    assert.equal(nextDelay(7, 0, options, low), 5_000) // 100 · 2^7 = 12 800, capped to 10 000
    assert.equal(nextDelay(8, 0, options, low), 5_000)
    assert.equal(nextDelay(7, 0, options, high), 9_995)
    assert.equal(nextDelay(30, 0, options, high), 9_995)
  })

  it('stays finite and capped for huge attempt numbers', () => {
    for (const attempt of [31, 100, 1_000_000, Number.MAX_SAFE_INTEGER]) {
      const delay = nextDelay(attempt, 0, options, high)
      assert.ok(Number.isFinite(delay), `attempt ${attempt} gave ${delay}`)
      assert.ok(delay <= options.maxMs, `attempt ${attempt} gave ${delay}`)
    }
  })

  it('adds the server retryAfterMs on top of the backoff', () => {
    assert.equal(nextDelay(0, 3_000, options, low), 3_050)
    assert.equal(nextDelay(2, 3_000, options, low), 3_200)
  })

  it('never goes past maxMs + retryAfterMs', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      assert.ok(nextDelay(attempt, 2_000, options, high) <= options.maxMs + 2_000)
    }
  })

  it('keeps the jitter between half the exponential delay and all of it', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const exponential = Math.min(options.maxMs, options.baseMs * 2 ** attempt)
      const lowest = nextDelay(attempt, 0, options, low)
      const highest = nextDelay(attempt, 0, options, high)
      assert.equal(lowest, Math.round(exponential / 2), `attempt ${attempt}`)
      assert.ok(highest >= exponential * 0.99 && highest <= exponential, `attempt ${attempt}: ${highest} not near ${exponential}`)
      assert.ok(highest > lowest, `attempt ${attempt}: no jitter`)
    }
  })

  it('spreads delays with Math.random by default, inside the jitter range', () => {
    const delays = Array.from({ length: 200 }, () => nextDelay(4, 0, options))
    for (const delay of delays) assert.ok(delay >= 800 && delay <= 1_600, `${delay} outside [800, 1600]`)
    assert.ok(new Set(delays).size > 1, 'every default delay was the same')
  })

  it('returns whole milliseconds', () => {
    assert.equal(nextDelay(0, 0, { baseMs: 3, maxMs: 100 }, () => 0.5), 2) // 1.5 + 0.75 = 2.25
  })
})
