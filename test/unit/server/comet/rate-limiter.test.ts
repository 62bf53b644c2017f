import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { RateLimiter } from '../../../../server/comet/rate-limiter'
import { IpCounter } from '../../../../server/util/ip-counter'

function fakeClock(start = 1_000) {
  let now = start
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

describe('RateLimiter', () => {
  it('allows a burst of twice the rate, then refuses until the clock refills it', () => {
    const clock = fakeClock()
    const limiter = new RateLimiter({ messagesPerSecond: 10, bytesPerSecond: 0 }, clock.now)
    for (let i = 0; i < 20; i++) assert.equal(limiter.take(1, 1), null, `message ${i} is within the burst`)
    assert.equal(limiter.take(1, 1), 'messages_per_second')
    clock.advance(99)
    assert.equal(limiter.take(1, 1), 'messages_per_second', 'not quite one token after 99 ms')
    clock.advance(1)
    assert.equal(limiter.take(1, 1), null, 'one token after 100 ms at 10/s')
    assert.equal(limiter.take(1, 1), 'messages_per_second')
  })

  it('refills lazily and never past the burst, however long it was idle', () => {
    const clock = fakeClock()
    const limiter = new RateLimiter({ messagesPerSecond: 5, bytesPerSecond: 0, burst: 2 }, clock.now)
    for (let i = 0; i < 10; i++) assert.equal(limiter.take(1, 0), null)
    clock.advance(3_600_000)
    for (let i = 0; i < 10; i++) assert.equal(limiter.take(1, 0), null)
    assert.equal(limiter.take(1, 0), 'messages_per_second')
  })

  it('limits bytes separately, and spends nothing on a refused take', () => {
    const clock = fakeClock()
    const limiter = new RateLimiter({ messagesPerSecond: 100, bytesPerSecond: 1_000 }, clock.now)
    assert.equal(limiter.take(1, 1_500), null)
    assert.equal(limiter.take(1, 600), 'bytes_per_second')
    assert.equal(limiter.take(1, 500), null, 'the refused take spent nothing')
    assert.equal(limiter.take(1, 1), 'bytes_per_second')
    clock.advance(500)
    assert.equal(limiter.take(1, 500), null)
  })

  it('lets one message bigger than the bucket through only when the bucket is full, then the sender pays it back', () => {
    const clock = fakeClock()
    const limiter = new RateLimiter({ messagesPerSecond: 0, bytesPerSecond: 100 }, clock.now)
    assert.equal(limiter.take(1, 1_000), null, 'a full bucket lets a big message through')
    assert.equal(limiter.take(1, 1), 'bytes_per_second', 'in debt')
    clock.advance(8_000)
    assert.equal(limiter.take(1, 1), 'bytes_per_second', 'still 0 tokens after 8 s (800 of 800 paid back)')
    clock.advance(1_000)
    assert.equal(limiter.take(1, 50), null)
    assert.equal(limiter.take(1, 1_000), 'bytes_per_second', 'a big message waits for a full bucket')
  })

  it('is off when both rates are 0, and a clock going backwards refills nothing', () => {
    const clock = fakeClock()
    const off = new RateLimiter({ messagesPerSecond: 0, bytesPerSecond: 0 }, clock.now)
    assert.equal(off.isEnabled, false)
    for (let i = 0; i < 1_000; i++) assert.equal(off.take(1, 1 << 20), null)
    const limiter = new RateLimiter({ messagesPerSecond: 1, bytesPerSecond: 0 }, clock.now)
    assert.equal(limiter.take(2, 0), null)
    clock.advance(-10_000)
    assert.equal(limiter.take(1, 0), 'messages_per_second')
  })
})

describe('RateLimiter.msUntilFull', () => {
  it('says how long the exceeded bucket needs to refill completely, 0 when full or off', () => {
    const clock = fakeClock()
    const limiter = new RateLimiter({ messagesPerSecond: 10, bytesPerSecond: 100 }, clock.now)
    assert.equal(limiter.msUntilFull('messages_per_second'), 0, 'a full bucket')
    for (let i = 0; i < 20; i++) limiter.take(1, 0)
    assert.equal(limiter.take(1, 0), 'messages_per_second')
    assert.equal(limiter.msUntilFull('messages_per_second'), 2_000, '20 tokens at 10/s')
    clock.advance(500)
    assert.equal(limiter.msUntilFull('messages_per_second'), 1_500, 'refilled lazily')
    assert.equal(limiter.take(1, 1_000), null, 'a message larger than the full byte bucket passes once')
    assert.equal(limiter.msUntilFull('bytes_per_second'), 10_000, 'the debt is paid back too: 1000 of 200 tokens spent at 100/s')
    const off = new RateLimiter({ messagesPerSecond: 0, bytesPerSecond: 0 }, clock.now)
    assert.equal(off.msUntilFull('messages_per_second'), 0)
  })
})

describe('IpCounter', () => {
  it('admits up to max per address, releases once per acquire, and 0 means no limit', () => {
    const counter = new IpCounter(2)
    const a = counter.acquire('1.2.3.4')!
    const b = counter.acquire('1.2.3.4')!
    assert.equal(counter.acquire('1.2.3.4'), null)
    assert.ok(counter.acquire('5.6.7.8'), 'another address is unaffected')
    a()
    a()
    assert.equal(counter.countOf('1.2.3.4'), 1, 'a second release of the same acquire counts nothing')
    assert.ok(counter.acquire('1.2.3.4'))
    b()
    const unlimited = new IpCounter(0)
    for (let i = 0; i < 100; i++) assert.ok(unlimited.acquire('x'))
  })
})
