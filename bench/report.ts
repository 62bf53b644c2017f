/** The benchmark's verdicts on the targets (issue 5) and its Markdown report. */
import type { BenchResults, TypingRow } from './run'

export interface Check {
  goal: string
  measured: string
  /** null when the run did not measure what the check needs (e.g. --quick or --only). */
  pass: boolean | null
}

const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '—')
const kib = (bytes: number) => `${fmt(bytes / 1024)} KiB`

function typing(results: BenchResults, target: string, clients: number): TypingRow | undefined {
  return results.typing.find((row) => row.target === target && row.clients === clients && row.scenario.endsWith(' clients') && !row.scenario.includes('docs'))
}

/** Compare the run against the targets of issue 5; every figure is a ratio within this run except the absolute ones the issue sets. */
export function checkTargets(results: BenchResults): Check[] {
  const checks: Check[] = []
  const ours200 = typing(results, 'cometpad/websocket', 200)
  const hocus200 = typing(results, 'hocuspocus', 200)
  const yws200 = typing(results, 'y-websocket', 200)
  if (ours200 && hocus200) {
    const ratio = ours200.result.latency.p99 / hocus200.result.latency.p99
    checks.push({ goal: 'Typing, 200 clients: our WebSocket p99 ≤ ½ × Hocuspocus p99', measured: `${fmt(ours200.result.latency.p99)} vs ${fmt(hocus200.result.latency.p99)} ms (×${fmt(ratio, 2)})`, pass: ratio <= 0.5 })
  } else checks.push({ goal: 'Typing, 200 clients: our WebSocket p99 ≤ ½ × Hocuspocus p99', measured: 'not measured', pass: null })
  if (ours200 && hocus200 && yws200) {
    const best = Math.min(hocus200.result.latency.p50, yws200.result.latency.p50)
    checks.push({ goal: 'Typing, 200 clients: our WebSocket p50 ≤ best peer p50', measured: `${fmt(ours200.result.latency.p50)} vs ${fmt(best)} ms`, pass: ours200.result.latency.p50 <= best })
  } else checks.push({ goal: 'Typing, 200 clients: our WebSocket p50 ≤ best peer p50', measured: 'not measured', pass: null })
  if (ours200?.result.saved) {
    checks.push({ goal: 'Saved confirmation p99 < 25 ms at 200 clients', measured: `${fmt(ours200.result.saved.p99)} ms`, pass: ours200.result.saved.p99 < 25 })
  } else checks.push({ goal: 'Saved confirmation p99 < 25 ms at 200 clients', measured: 'not measured', pass: null })

  const capacity = (target: string) => results.throughput.find((row) => row.target === target)
  const ourCapacity = capacity('cometpad/websocket')
  const hocusCapacity = capacity('hocuspocus')
  if (ourCapacity && hocusCapacity) {
    const ratio = ourCapacity.capacity / hocusCapacity.capacity
    const note = hocusCapacity.capacityReached ? '' : ' (Hocuspocus never reached 100 ms)'
    checks.push({ goal: 'Capacity ≥ 2 × Hocuspocus', measured: `${fmt(ourCapacity.capacity, 0)} vs ${fmt(hocusCapacity.capacity, 0)} msg/s (×${fmt(ratio, 2)})${note}`, pass: ratio >= 2 })
  } else checks.push({ goal: 'Capacity ≥ 2 × Hocuspocus', measured: 'not measured', pass: null })

  const memory = (target: string) => results.memory.find((row) => row.target === target)
  const ourWs = memory('cometpad/websocket')
  const hocusWs = memory('hocuspocus')
  if (ourWs && hocusWs) {
    const ratio = ourWs.perClientBytes / hocusWs.perClientBytes
    checks.push({ goal: 'Memory per idle WebSocket client ≤ ½ × Hocuspocus', measured: `${kib(ourWs.perClientBytes)} vs ${kib(hocusWs.perClientBytes)} (×${fmt(ratio, 2)})`, pass: ratio <= 0.5 })
  } else checks.push({ goal: 'Memory per idle WebSocket client ≤ ½ × Hocuspocus', measured: 'not measured', pass: null })
  const ourPoll = memory('cometpad/long-poll')
  checks.push(
    ourPoll
      ? { goal: 'Memory per idle long-polling client ≤ 20 KB', measured: `${fmt(ourPoll.perClientBytes / 1000)} KB`, pass: ourPoll.perClientBytes <= 20_000 }
      : { goal: 'Memory per idle long-polling client ≤ 20 KB', measured: 'not measured', pass: null },
  )

  const ws50 = typing(results, 'cometpad/websocket', 50)
  const poll50 = typing(results, 'cometpad/long-poll', 50)
  const stream50 = typing(results, 'cometpad/stream', 50)
  if (ws50 && poll50) {
    const ratio = poll50.result.latency.p50 / ws50.result.latency.p50
    const streamNote = stream50 ? `; streaming ${fmt(stream50.result.latency.p50)} ms` : ''
    checks.push({ goal: 'Long-polling p50 at 50 clients ≤ 2 × our WebSocket p50', measured: `${fmt(poll50.result.latency.p50)} vs ${fmt(ws50.result.latency.p50)} ms (×${fmt(ratio, 2)})${streamNote}`, pass: ratio <= 2 })
  } else checks.push({ goal: 'Long-polling p50 at 50 clients ≤ 2 × our WebSocket p50', measured: 'not measured', pass: null })

  const trace = results.coldLoad.filter((row) => row.document.startsWith('editing trace'))
  const ourTrace = trace.find((row) => row.target.startsWith('cometpad'))
  const peers = trace.filter((row) => !row.target.startsWith('cometpad'))
  if (ourTrace?.afterRestartMs != null && peers.length > 0) {
    const fastest = Math.min(...peers.map((row) => row.fromMemoryMs))
    checks.push({ goal: 'Cold load of the editing trace after a restart ≤ fastest peer from memory', measured: `${fmt(ourTrace.afterRestartMs)} vs ${fmt(fastest)} ms`, pass: ourTrace.afterRestartMs <= fastest })
  } else checks.push({ goal: 'Cold load of the editing trace after a restart ≤ fastest peer from memory', measured: 'not measured', pass: null })
  return checks
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

export function markdownReport(results: BenchResults, checks: Check[], chartFile: string): string {
  const { machine } = results
  const parts: string[] = [
    `# Cometpad benchmark — ${results.date} (${results.mode})`,
    `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.os}. Servers and clients share these cores.`,
  ]
  parts.push(
    '## Targets',
    table(
      ['Goal', 'Measured', 'Met'],
      checks.map((check) => [check.goal, check.measured, check.pass === null ? '—' : check.pass ? 'yes' : '**no**']),
    ),
  )
  if (results.typing.length > 0) {
    parts.push(
      '## Typing (each writer 10 keystrokes/s; keystroke → arrival at every other client, ms)',
      table(
        ['Scenario', 'Server', 'p50', 'p95', 'p99', 'max', 'Delivered', 'Msgs/s', 'Server CPU', 'Saved p50 / p99'],
        results.typing.map((row) => [
          row.scenario,
          row.target,
          fmt(row.result.latency.p50),
          fmt(row.result.latency.p95),
          fmt(row.result.latency.p99),
          fmt(row.result.latency.max),
          `${fmt(row.result.deliveredFraction * 100)} %`,
          fmt(row.result.deliveredPerSecond, 0),
          `${fmt(row.result.serverCpu * 100, 0)} %`,
          row.result.saved ? `${fmt(row.result.saved.p50)} / ${fmt(row.result.saved.p99)}` : '—',
        ]),
      ),
    )
  }
  if (results.throughput.length > 0) {
    parts.push(
      '## Throughput vs latency (one document, 50 clients, 10 % writers)',
      `![throughput vs latency](${chartFile})`,
      table(
        ['Server', 'Capacity (msg/s at p99 = 100 ms)', 'Points (msg/s: p50 / p99 ms)'],
        results.throughput.map((row) => [
          row.target,
          `${fmt(row.capacity, 0)}${row.capacityReached ? '' : ' (not reached)'}`,
          row.points.map((point) => `${fmt(point.deliveredPerSecond, 0)}: ${fmt(point.latency.p50)} / ${fmt(point.latency.p99)}`).join('; '),
        ]),
      ),
    )
  }
  if (results.memory.length > 0) {
    parts.push(
      '## Server memory (RSS growth)',
      table(
        ['Server', 'Per idle client', 'Per open document'],
        results.memory.map((row) => [row.target, `${kib(row.perClientBytes)} (${row.clients} clients)`, `${kib(row.perDocumentBytes)} (${row.documents} documents)`]),
      ),
    )
  }
  if (results.coldLoad.length > 0) {
    parts.push(
      '## Cold load (a new client joins a large document, ms to the whole text in a Y.Doc)',
      table(
        ['Document', 'Server', 'Open (in memory)', 'Closed (from LevelDB)', 'First after a restart'],
        results.coldLoad.map((row) => [row.document, row.target, fmt(row.fromMemoryMs), row.fromStoreMs === null ? '—' : fmt(row.fromStoreMs), row.afterRestartMs === null ? '—' : fmt(row.afterRestartMs)]),
      ),
    )
  }
  return `${parts.join('\n\n')}\n`
}
