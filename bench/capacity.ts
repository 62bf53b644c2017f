/**
 * A server's capacity: the delivered message rate at which the typing p99
 * crosses a threshold (100 ms), read from the throughput ladder's points.
 */

/** What the capacity is read from: a {@link import('./typing').TypingResult} has it. */
export interface CapacityPoint {
  latency: { p99: number }
  /** Share of the expected arrivals that arrived. */
  deliveredFraction: number
  deliveredPerSecond: number
}

/** Whether a point is past the threshold: p99 over it, or arrivals lost. */
function isOver(point: CapacityPoint, thresholdMs: number): boolean {
  return !(point.latency.p99 <= thresholdMs) || point.deliveredFraction < 0.99
}

/**
 * Where p99 crosses `thresholdMs`, interpolated between the two points
 * around it (`points` in increasing rate). `reached: false` when no point is
 * over it: the capacity is then at least the last point's rate.
 */
export function capacityAt(points: readonly CapacityPoint[], thresholdMs: number): { capacity: number; reached: boolean } {
  for (let i = 0; i < points.length; i++) {
    const point = points[i]!
    if (!isOver(point, thresholdMs)) continue
    if (i === 0) return { capacity: 0, reached: true }
    const before = points[i - 1]!
    const share = Number.isFinite(point.latency.p99) && point.deliveredFraction >= 0.99 ? (thresholdMs - before.latency.p99) / (point.latency.p99 - before.latency.p99) : 0
    return { capacity: before.deliveredPerSecond + share * (point.deliveredPerSecond - before.deliveredPerSecond), reached: true }
  }
  return { capacity: points.at(-1)?.deliveredPerSecond ?? 0, reached: false }
}

/**
 * One more rate to measure (per writer), geometrically halfway between the
 * last ladder step under `thresholdMs` and the first over it; null when the
 * ladder has no such pair. `rates[i]` is the rate `points[i]` was measured at.
 *
 * The ladder doubles its rate, and near saturation latency climbs far
 * faster than linearly between two steps, so the interpolation alone could
 * put the crossing anywhere in a factor of two. In one full run
 * (2026-11-27) Hocuspocus's p99 read 92 ms at 391,000 msg/s and 3 s at
 * 651,000; in the runs before, it was past a second at 391,000. The
 * capacity target compared two such guesses.
 */
export function refinementRate(rates: readonly number[], points: readonly CapacityPoint[], thresholdMs: number): number | null {
  if (rates.length !== points.length) throw new RangeError(`refinementRate: ${rates.length} rates for ${points.length} points`)
  const first = points.findIndex((point) => isOver(point, thresholdMs))
  if (first <= 0) return null
  const rate = Math.round(Math.sqrt(rates[first - 1]! * rates[first]!))
  return rate > rates[first - 1]! && rate < rates[first]! ? rate : null
}
