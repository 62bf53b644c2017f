/**
 * A tiny run of the benchmark harness (`npm run bench -- --smoke`: two
 * clients, a second per workload, every server and transport) so that it
 * keeps working. It checks that every row measured something and that the
 * report files are written; it asserts no timing: the benchmark is not a test.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchResults } from '../../bench/run'
import type { Check, Repeat } from '../../bench/report'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const rows = ['cometpad/websocket', 'cometpad/stream', 'cometpad/long-poll', 'y-websocket', 'hocuspocus']

describe('benchmark harness (smoke run)', () => {
  it('runs every workload against Cometpad on each transport and both peers, and writes JSON, Markdown and SVG', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'cometpad-bench-smoke-'))
    try {
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', `--out=${out}`], { cwd: root, encoding: 'utf8', timeout: 170_000 })
      assert.equal(run.status, 0, `bench exited ${run.status}: ${run.stderr}`)
      const base = path.join(out, `${new Date().toISOString().slice(0, 10)}-smoke`)
      const results = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as BenchResults & { checks: Check[] }

      assert.deepEqual(results.typing.map((row) => row.target), rows)
      for (const row of results.typing) {
        assert.equal(row.rounds, 2, `${row.target} ran the smoke plan's two rounds`)
        assert.ok(row.result.latency.count > 0, `${row.target} measured keystrokes`)
        assert.equal(row.result.deliveredFraction, 1, `${row.target} delivered every keystroke`)
        assert.ok(row.result.latency.p50 > 0 && row.result.latency.p50 <= row.result.latency.p99, `${row.target} percentiles are ordered`)
        if (row.target.startsWith('cometpad')) assert.ok(row.result.saved && row.result.saved.count > 0, `${row.target} got Saved confirmations`)
        else assert.equal(row.result.saved, null)
      }
      assert.deepEqual(results.throughput.map((row) => row.target), rows)
      for (const row of results.throughput) assert.ok(row.points.length > 0 && row.points[0]!.deliveredPerSecond > 0, `${row.target} has a throughput point`)
      assert.deepEqual(results.memory.map((row) => row.target), rows)
      for (const row of results.memory) assert.ok(Number.isFinite(row.perClientBytes), `${row.target} memory per client`)
      assert.deepEqual(results.coldLoad.map((row) => row.target), ['cometpad/websocket', 'y-websocket', 'hocuspocus'])
      for (const row of results.coldLoad) assert.ok(row.fromMemoryMs > 0, `${row.target} loaded the document`)
      assert.ok(results.coldLoad[0]!.afterRestartMs! > 0, 'Cometpad loaded it again after a restart')
      assert.ok(results.checks.length >= 8, 'every target is listed')

      assert.match(readFileSync(`${base}.svg`, 'utf8'), /^<svg[\s\S]*<\/svg>\s*$/)
      const report = readFileSync(`${base}.md`, 'utf8')
      for (const row of rows) assert.ok(report.includes(row), `the report names ${row}`)
    } finally {
      await rm(out, { recursive: true, force: true })
    }
  })

  it('with --repeat, runs the selection that many times and reports each run\'s verdicts', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'cometpad-bench-repeat-'))
    try {
      const args = ['--import', 'tsx', 'bench/run.ts', '--smoke', '--only=memory', '--targets=cometpad/websocket,hocuspocus', '--repeat=2', `--out=${out}`]
      const run = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 120_000 })
      assert.equal(run.status, 0, `bench exited ${run.status}: ${run.stderr}`)
      // A selection, repeated: named so, never as the day's run.
      const base = path.join(out, `${new Date().toISOString().slice(0, 10)}-smoke-selection-repeat2`)
      const results = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as BenchResults & { checks: Check[]; repeats: Repeat[] }
      assert.equal(results.repeats.length, 2)
      for (const repeat of results.repeats) {
        assert.deepEqual(repeat.results.memory.map((row) => row.target), ['cometpad/websocket', 'hocuspocus'])
        assert.equal(repeat.results.typing.length, 0, 'only the selected workload ran')
        const memoryCheck = repeat.checks.find((check) => check.goal.startsWith('Memory per idle WebSocket'))
        assert.notEqual(memoryCheck?.pass, null, 'each run has its own verdict')
      }
      // The top-level figures are the last run's.
      assert.deepEqual(results.memory, results.repeats[1]!.results.memory)
      const report = readFileSync(`${base}.md`, 'utf8')
      const section = /## Targets in each of 2 runs\n([\s\S]*?)\n## Targets \(run 2\)/.exec(report)?.[1]
      assert.ok(section, 'the report has the per-run section before the last run\'s targets')
      assert.match(section, /\| Memory per idle WebSocket client ≤ ½ × Hocuspocus \| [^|]+ \| [^|]+ \| [012] of 2 \|/)
      assert.doesNotMatch(section, /Typing, 200 clients/, 'targets no run measured have no row')
    } finally {
      await rm(out, { recursive: true, force: true })
    }
  })
})
