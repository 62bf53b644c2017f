/**
 * How the benchmark pools the interleaved rounds of one typing scenario
 * (bench/typing.ts summarizeTyping).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHistogram, recordMs } from '../../bench/histogram'
import { summarizeTyping, type TypingSample } from '../../bench/typing'

function sample(latenciesMs: number[], fields: Partial<TypingSample>): TypingSample {
  const latency = createHistogram()
  for (const ms of latenciesMs) recordMs(latency, ms)
  return {
    latency,
    saved: createHistogram(),
    seconds: 5,
    sent: 50,
    delivered: 50,
    received: latenciesMs.length,
    expected: latenciesMs.length,
    serverCpuMs: 1000,
    clientCpuMs: 500,
    wallMs: 5000,
    serverLoopLagMs: 2,
    serverRss: 1000,
    ...fields,
  }
}

describe('bench typing rounds', () => {
  it('pools the rounds: percentiles of all arrivals, rates and CPU over the summed time, the worst lag', () => {
    const calm = sample(Array.from({ length: 90 }, () => 1), { serverCpuMs: 1000, serverLoopLagMs: 2, serverRss: 1000 })
    const noisy = sample(Array.from({ length: 10 }, () => 100), { sent: 70, received: 9, serverCpuMs: 3000, serverLoopLagMs: 40, serverRss: 3000 })
    const pooled = summarizeTyping([calm, noisy])
    assert.equal(pooled.latency.count, 100)
    assert.equal(pooled.latency.p50, 1)
    assert.ok(pooled.latency.p99 >= 99 && pooled.latency.p99 <= 101, `p99 ${pooled.latency.p99} comes from the noisy round`)
    assert.equal(pooled.saved, null, 'no Saved recorded')
    assert.equal(pooled.updatesPerSecond, 12)
    assert.equal(pooled.serverCpu, 0.4)
    assert.equal(pooled.clientCpu, 0.1)
    assert.equal(pooled.deliveredFraction, 99 / 100)
    assert.equal(pooled.serverLoopLagMs, 40)
    assert.equal(pooled.serverRss, 3000)
  })

  it('leaves the loop lag unknown when no round knew it (the peers)', () => {
    assert.equal(summarizeTyping([sample([1], { serverLoopLagMs: null })]).serverLoopLagMs, null)
    assert.throws(() => summarizeTyping([]), /no samples/)
  })
})
