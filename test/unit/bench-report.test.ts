import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { checkTargets } from '../../bench/report'
import type { BenchResults } from '../../bench/run'

function results(ours: { capacity: number; reached: boolean }, hocuspocus: { capacity: number; reached: boolean }): BenchResults {
  const row = (target: string, { capacity, reached }: { capacity: number; reached: boolean }) => ({ target, points: [], capacity, capacityReached: reached })
  return {
    date: '2026-11-28',
    mode: 'full',
    machine: { cpus: 2, cpuModel: 'test', memoryGiB: 1, node: process.version, os: 'test' },
    typing: [],
    throughput: [row('cometpad/websocket', ours), row('hocuspocus', hocuspocus)],
    memory: [],
    coldLoad: [],
  }
}

function capacityCheck(ours: { capacity: number; reached: boolean }, hocuspocus: { capacity: number; reached: boolean }) {
  const check = checkTargets(results(ours, hocuspocus)).find((one) => one.goal.startsWith('Capacity'))
  assert.ok(check, 'the capacity target is checked')
  return check
}

describe('bench capacity target', () => {
  it('passes at twice Hocuspocus and fails below', () => {
    assert.equal(capacityCheck({ capacity: 400_000, reached: true }, { capacity: 200_000, reached: true }).pass, true)
    assert.equal(capacityCheck({ capacity: 390_000, reached: true }, { capacity: 200_000, reached: true }).pass, false)
  })

  it('marks our capacity as a lower bound when our p99 never reached 100 ms, and still passes on it', () => {
    const check = capacityCheck({ capacity: 1_560_960, reached: false }, { capacity: 392_065, reached: true })
    assert.equal(check.pass, true)
    assert.match(check.measured, /^≥ 1560960 vs 392065 msg\/s \(×3\.98\) \(our p99 never reached 100 ms\)$/)
  })

  it('cannot pass when Hocuspocus never reached 100 ms: its capacity is only a lower bound', () => {
    const check = capacityCheck({ capacity: 900_000, reached: true }, { capacity: 300_000, reached: false })
    assert.equal(check.pass, false)
    assert.match(check.measured, /≥ 300000 msg\/s.*Hocuspocus never reached 100 ms/)
  })
})
