/**
 * Latency histograms: HdrHistogram (hdr-histogram-js) in microseconds, so
 * millions of samples cost a few kilobytes and the worker processes' halves
 * merge exactly. They travel between processes as compressed base64.
 */
import * as hdr from 'hdr-histogram-js'

/** Summary of a latency distribution, in milliseconds. */
export interface LatencySummary {
  count: number
  p50: number
  p95: number
  p99: number
  max: number
  mean: number
}

export type Histogram = hdr.Histogram

/** A histogram of 1 µs … 10 min at 3 significant digits. */
export function createHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 })
}

/** Record `ms` milliseconds. */
export function recordMs(histogram: Histogram, ms: number): void {
  histogram.recordValue(Math.max(1, Math.min(600_000_000, Math.round(ms * 1000))))
}

export function encodeHistogram(histogram: Histogram): string {
  return hdr.encodeIntoCompressedBase64(histogram)
}

/** Merge encoded histograms into one. */
export function mergeHistograms(encoded: string[]): Histogram {
  const total = createHistogram()
  for (const one of encoded) total.add(hdr.decodeFromCompressedBase64(one))
  return total
}

const round = (us: number) => Math.round(us) / 1000

export function summarize(histogram: Histogram): LatencySummary {
  if (histogram.totalCount === 0) return { count: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN, mean: NaN }
  return {
    count: histogram.totalCount,
    p50: round(histogram.getValueAtPercentile(50)),
    p95: round(histogram.getValueAtPercentile(95)),
    p99: round(histogram.getValueAtPercentile(99)),
    max: round(histogram.maxValue),
    mean: round(histogram.mean),
  }
}
