/**
 * How the benchmark reads a server's capacity from the throughput ladder
 * (bench/capacity.ts): the crossing of p99 = 100 ms, and the one extra rate
 * it measures between the two ladder steps around that crossing.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { capacityAt, refinementRate, type CapacityPoint } from '../../bench/capacity'

const point = (deliveredPerSecond: number, p99: number, deliveredFraction = 1): CapacityPoint => ({ latency: { p99 }, deliveredFraction, deliveredPerSecond })

describe('bench capacity', () => {
  it('interpolates the rate where p99 crosses the threshold between the points around it', () => {
    const points = [point(1000, 10), point(2000, 60), point(4000, 160)]
    assert.deepEqual(capacityAt(points, 100), { capacity: 2000 + (40 / 100) * 2000, reached: true })
  })

  it('takes the last point under the threshold when the next one lost arrivals, and 0 when the first is over', () => {
    assert.deepEqual(capacityAt([point(1000, 10), point(2000, 50, 0.5)], 100), { capacity: 1000, reached: true })
    assert.deepEqual(capacityAt([point(1000, 150)], 100), { capacity: 0, reached: true })
  })

  it('says the threshold was not reached when no point is over it', () => {
    assert.deepEqual(capacityAt([point(1000, 10), point(2000, 20)], 100), { capacity: 2000, reached: false })
  })

  it('refines between the last step under the threshold and the first over it, geometrically', () => {
    const rates = [100, 200, 400, 800]
    const points = [point(1000, 10), point(2000, 20), point(4000, 80), point(8000, 900)]
    assert.equal(refinementRate(rates, points, 100), Math.round(Math.sqrt(400 * 800)))
    // A step that lost arrivals counts as over, whatever its p99.
    assert.equal(refinementRate(rates, [point(1000, 10), point(2000, 20, 0.5), point(4000, 30), point(8000, 40)], 100), Math.round(Math.sqrt(100 * 200)))
  })

  it('has nothing to refine when no step is over the threshold, when the first already is, or when the steps are adjacent', () => {
    assert.equal(refinementRate([100, 200], [point(1000, 10), point(2000, 20)], 100), null)
    assert.equal(refinementRate([100, 200], [point(1000, 200), point(2000, 300)], 100), null)
    assert.equal(refinementRate([1, 2], [point(10, 10), point(20, 300)], 100), null)
    assert.throws(() => refinementRate([100], [point(1000, 10), point(2000, 20)], 100), RangeError)
  })

  it('puts the refined point where the ladder reads its capacity from', () => {
    // Convex near saturation: the straight line between the two steps puts
    // the crossing at 4,042 msg/s; a refined point under the threshold
    // moves it to 5,672.
    const rates = [400, 800]
    const points = [point(4000, 80), point(8000, 2000)]
    assert.equal(Math.round(capacityAt(points, 100).capacity), 4042)
    const extra = refinementRate(rates, points, 100)
    assert.equal(extra, 566)
    const refined = [points[0]!, point(5660, 90), points[1]!]
    assert.equal(Math.round(capacityAt(refined, 100).capacity), Math.round(5660 + (10 / 1910) * 2340))
  })
})
