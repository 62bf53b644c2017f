import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { throughputLatencyChart, type ChartSeries } from '../../bench/chart'

const series: ChartSeries[] = [
  {
    name: 'cometpad/long-poll',
    points: [
      { deliveredPerSecond: 100_000, p50: 12, p99: 80 },
      { deliveredPerSecond: 10_000, p50: 2, p99: 9 },
      { deliveredPerSecond: 200_000, p50: 60, p99: 900 },
    ],
  },
  {
    name: 'ws & <raw>',
    points: [
      { deliveredPerSecond: 20_000, p50: 1.5, p99: 6 },
      { deliveredPerSecond: Number.NaN, p50: 3, p99: 10 },
      { deliveredPerSecond: 150_000, p50: Number.NaN, p99: 40 },
      { deliveredPerSecond: 250_000, p50: 0, p99: 120 },
    ],
  },
]

const svg = throughputLatencyChart(series, {
  title: 'Throughput vs latency',
  subtitle: '2 cores & 1 GB <test>',
  guides: [{ ms: 100, label: 'capacity threshold' }],
})

/** Walks every tag and checks they nest: a tiny well-formedness check. */
function assertBalancedTags(xml: string): void {
  const stack: string[] = []
  for (const match of xml.matchAll(/<(\/?)([A-Za-z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = match
    if (name === undefined) continue
    if (selfClosing === '/') continue
    if (closing === '/') assert.equal(stack.pop(), name, `unbalanced </${name}>`)
    else stack.push(name)
  }
  assert.deepEqual(stack, [], 'unclosed tags')
}

describe('throughputLatencyChart', () => {
  it('returns a well-formed standalone SVG', () => {
    assert.ok(svg.startsWith('<svg'))
    assert.match(svg, /viewBox="0 0 \d+ \d+"/)
    assert.equal(svg.match(/<svg\b/g)?.length, 1)
    assert.equal(svg.match(/<\/svg>/g)?.length, 1)
    assertBalancedTags(svg)
    // No raw ampersand outside an entity.
    assert.doesNotMatch(svg, /&(?!amp;|lt;|gt;|quot;|apos;)/)
  })

  it('contains each series name, XML-escaped', () => {
    assert.ok(svg.includes('cometpad/long-poll'))
    assert.ok(svg.includes('ws &amp; &lt;raw&gt;'))
    assert.ok(!svg.includes('<raw>'))
    assert.ok(svg.includes('2 cores &amp; 1 GB &lt;test&gt;'))
  })

  it('draws one path per series per percentile', () => {
    const paths = (svg.match(/<path\b/g)?.length ?? 0) + (svg.match(/<polyline\b/g)?.length ?? 0)
    assert.equal(paths, series.length * 2)
  })

  it('labels the x axis with k suffixes', () => {
    assert.match(svg, />50k</)
    assert.match(svg, />0</)
    assert.ok(svg.includes('Delivered messages per second'))
    assert.ok(svg.includes('Latency (ms, log scale)'))
    assert.ok(svg.includes('capacity threshold'))
  })

  it('skips NaN points without writing NaN', () => {
    assert.ok(!svg.includes('NaN'))
    assert.ok(!svg.includes('Infinity'))
    assert.ok(!svg.includes('undefined'))
    const onlyNaN = throughputLatencyChart(
      [{ name: 'empty', points: [{ deliveredPerSecond: Number.NaN, p50: Number.NaN, p99: Number.NaN }] }],
      { title: 't' },
    )
    assert.ok(!onlyNaN.includes('NaN'))
    assertBalancedTags(onlyNaN)
  })

  it('is deterministic and independent of point order', () => {
    const reversed = series.map((s) => ({ ...s, points: [...s.points].reverse() }))
    const opts = { title: 'Throughput vs latency', subtitle: '2 cores & 1 GB <test>', guides: [{ ms: 100, label: 'capacity threshold' }] }
    assert.equal(throughputLatencyChart(series, opts), svg)
    assert.equal(throughputLatencyChart(reversed, opts), svg)
  })
})
