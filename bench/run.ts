/**
 * `npm run bench [-- --quick | --smoke] [--only=typing,throughput,memory,cold-load] [--targets=cometpad/websocket,hocuspocus,…] [--scenarios=2,50,200,1000,100x10] [--out=dir] [--workers=n]`
 *
 * Runs Cometpad (on each of its transports) and the peers — the y-websocket
 * reference server and Hocuspocus — on the same workloads in one run, each
 * server in its own child process, driven by headless clients in worker
 * processes, and writes bench/results/<date>.{json,md,svg}. Ratios between
 * servers measured in one run are the figures that count: these machines
 * are shared and noisy. See bench/README.md for the method.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { targetName, type Target } from './clients'
import { throughputLatencyChart } from './chart'
import { measureColdLoad, warmUpClient, type ColdLoadResult } from './cold-load'
import { syntheticDocument, traceDocument, type BenchDocument } from './documents'
import { measureMemory, type MemoryResult } from './memory'
import { WorkerPool } from './pool'
import { checkTargets, markdownReport, type Repeat } from './report'
import { startServer, type RunningServer } from './servers'
import { capacityAt, refinementRate } from './capacity'
import { connectLayout, layoutName, measureTyping, summarizeTyping, typeAndMeasure, type Layout, type RunTiming, type Session, type TypingResult, type TypingSample } from './typing'

type Row = Omit<Target, 'url'>
const allRows: Row[] = [
  { server: 'cometpad', transport: 'websocket' },
  { server: 'cometpad', transport: 'stream' },
  { server: 'cometpad', transport: 'long-poll' },
  { server: 'y-websocket', transport: 'websocket' },
  { server: 'hocuspocus', transport: 'websocket' },
]
/** The rows this run measures: all of them unless `--targets` picks some. */
let rows = allRows

type Workload = 'typing' | 'throughput' | 'memory' | 'cold-load'

/** How big each workload is in each mode. */
interface Plan {
  /**
   * Typing scenarios; `allTransports: false` runs only the WebSocket rows
   * (too many clients for HTTP ones here); `rounds` (default 1) splits the
   * window into interleaved rounds (see runTyping).
   */
  typing: Array<{ layout: Layout; allTransports: boolean; rounds?: number }>
  typingTiming: RunTiming
  throughput: { layout: Layout; ratesPerWriter: number[]; timing: RunTiming }
  /** `clientReadings`: per-client readings (median) for the rows a per-client memory target compares (see measureMemory). */
  memory: { clients: number; documents: number; settleMs: number; clientReadings: number }
  coldLoad: { documents: Array<() => BenchDocument>; repeats: number }
}

const oneDoc = (clients: number): Layout => ({ docs: 1, clientsPerDoc: clients, writersPerDoc: Math.max(1, Math.round(clients / 10)) })

const plans: Record<'full' | 'quick' | 'smoke', Plan> = {
  full: {
    typing: [
      { layout: oneDoc(2), allTransports: true },
      // The scenarios the latency targets compare get two interleaved rounds.
      { layout: oneDoc(50), allTransports: true, rounds: 2 },
      { layout: oneDoc(200), allTransports: true, rounds: 2 },
      { layout: oneDoc(1000), allTransports: false },
      { layout: { docs: 100, clientsPerDoc: 10, writersPerDoc: 1 }, allTransports: false },
    ],
    typingTiming: { warmupMs: 1_000, durationMs: 10_000 },
    // From 20 a writer: the typing rate (10) at 50 clients is the typing
    // scenario above; the time goes to the capacity's refinement instead.
    throughput: { layout: oneDoc(50), ratesPerWriter: [20, 50, 100, 200, 400, 800, 1600, 3200, 6400], timing: { warmupMs: 500, durationMs: 3_000 } },
    // 5 s idle before each reading: with 3 s and with 10 s, five readings
    // each (2026-11-28), the medians were within the readings' spread
    // (Cometpad's WebSocket 7.5 and 8.0 against 6.9 KiB, Hocuspocus 12.2
    // and 11.8 against 11.9), and the memory workload's 28 readings at
    // 10 s took a third of the full run, close to the 15 minutes it has.
    memory: { clients: 1000, documents: 200, settleMs: 5_000, clientReadings: 3 },
    coldLoad: { documents: [traceDocument, () => syntheticDocument()], repeats: 7 },
  },
  quick: {
    typing: [{ layout: oneDoc(50), allTransports: true }],
    typingTiming: { warmupMs: 500, durationMs: 3_000 },
    throughput: { layout: oneDoc(50), ratesPerWriter: [20, 100, 400], timing: { warmupMs: 300, durationMs: 1_500 } },
    memory: { clients: 200, documents: 50, settleMs: 1_000, clientReadings: 1 },
    coldLoad: { documents: [traceDocument], repeats: 1 },
  },
  smoke: {
    // Two rounds, so that the smoke test covers the interleaving and pooling.
    typing: [{ layout: oneDoc(2), allTransports: true, rounds: 2 }],
    typingTiming: { warmupMs: 200, durationMs: 1_000 },
    throughput: { layout: oneDoc(2), ratesPerWriter: [20], timing: { warmupMs: 200, durationMs: 500 } },
    memory: { clients: 4, documents: 2, settleMs: 200, clientReadings: 1 },
    coldLoad: { documents: [() => syntheticDocument(64 * 1024)], repeats: 1 },
  },
}

export interface TypingRow {
  target: string
  scenario: string
  clients: number
  /** Interleaved rounds the result pools (see runTyping). */
  rounds: number
  /** Mean over the rounds. */
  connectMs: number
  result: TypingResult
}

export interface ThroughputRow {
  target: string
  points: TypingResult[]
  /** Delivered messages per second at which p99 crosses 100 ms (interpolated); the highest rate measured if it never does. */
  capacity: number
  capacityReached: boolean
}

export interface BenchResults {
  date: string
  mode: string
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; os: string }
  typing: TypingRow[]
  throughput: ThroughputRow[]
  memory: Array<{ target: string } & MemoryResult>
  coldLoad: Array<{ target: string } & ColdLoadResult>
}

const startedAt = Date.now()

/** A progress line on stderr, with the seconds since the run started (where the full run's 15 minutes go). */
function log(message: string): void {
  process.stderr.write(`[bench ${((Date.now() - startedAt) / 1000).toFixed(0)} s] ${message}\n`)
}

/**
 * Each typing scenario, on every row. A scenario with `rounds` > 1 splits
 * its window into that many, and runs them interleaved (every row's first
 * round, then every row's second, …), each on a fresh server with fresh
 * clients; a row's result pools its rounds' histograms. A burst of noise
 * on this shared machine then lands on every row's figures a little,
 * rather than on one row's whole run, which could flip a ratio target.
 */
async function runTyping(pool: WorkerPool, plan: Plan, results: BenchResults): Promise<void> {
  for (const { layout, allTransports, rounds = 1 } of plan.typing) {
    const targets = allTransports ? rows : rows.filter((one) => one.transport === 'websocket')
    const timing = { warmupMs: plan.typingTiming.warmupMs, durationMs: plan.typingTiming.durationMs / rounds }
    const samples = new Map<Row, { connectMs: number[]; samples: TypingSample[] }>(targets.map((row) => [row, { connectMs: [], samples: [] }]))
    for (let round = 1; round <= rounds; round++) {
      for (const row of targets) {
        await withServerSession(pool, row, layout, async (server, session) => {
          const sample = await measureTyping(pool, server, session, 10, timing)
          samples.get(row)!.samples.push(sample)
          samples.get(row)!.connectMs.push(session.connectMs)
          const one = summarizeTyping([sample])
          const roundName = rounds > 1 ? ` (round ${round} of ${rounds})` : ''
          log(`typing ${layoutName(layout)} ${targetName(row)}${roundName}: p50 ${one.latency.p50} ms, p99 ${one.latency.p99} ms, delivered ${(one.deliveredFraction * 100).toFixed(1)} %, ${loadFigures(one)}`)
        })
      }
    }
    for (const row of targets) {
      const measured = samples.get(row)!
      const connectMs = measured.connectMs.reduce((sum, ms) => sum + ms, 0) / measured.connectMs.length
      results.typing.push({ target: targetName(row), scenario: layoutName(layout), clients: layout.docs * layout.clientsPerDoc, rounds, connectMs, result: summarizeTyping(measured.samples) })
    }
  }
}

/** A typing scenario as `--scenarios` names it: `200` (clients on one document) or `100x10` (documents × clients). */
function scenarioKey(layout: Layout): string {
  return layout.docs === 1 ? String(layout.clientsPerDoc) : `${layout.docs}x${layout.clientsPerDoc}`
}

async function runThroughput(pool: WorkerPool, plan: Plan, results: BenchResults): Promise<void> {
  const { layout, ratesPerWriter, timing } = plan.throughput
  for (const row of rows) {
    const points: TypingResult[] = []
    const rates: number[] = []
    const measure = async (server: RunningServer, session: Session, rate: number): Promise<TypingResult> => {
      const point = await typeAndMeasure(pool, server, session, rate, timing)
      log(`throughput ${targetName(row)} ${Math.round(point.deliveredPerSecond)} msg/s: p50 ${point.latency.p50} ms, p99 ${point.latency.p99} ms, ${loadFigures(point)}`)
      return point
    }
    await withServerSession(pool, row, layout, async (server, session) => {
      for (const rate of ratesPerWriter) {
        const point = await measure(server, session, rate)
        points.push(point)
        rates.push(rate)
        // Past 250 ms (or losing arrivals) the server is saturated; more only takes longer.
        if (!(point.latency.p99 <= 250) || point.deliveredFraction < 0.9) break
      }
    })
    // On a fresh server: one the ladder saturated can still be working
    // through a backlog after every arrival is in. Measured right after its
    // last step, Hocuspocus read 1.4 s p50 at 277,000 msg/s, between the
    // 196,000 it had served at 6 ms and the 391,000 at 57 ms.
    const extra = refinementRate(rates, points, 100)
    if (extra !== null) {
      await withServerSession(pool, row, layout, async (server, session) => {
        const at = rates.findIndex((rate) => rate > extra)
        points.splice(at, 0, await measure(server, session, extra))
        rates.splice(at, 0, extra)
      })
    }
    const { capacity, reached } = capacityAt(points, 100)
    results.throughput.push({ target: targetName(row), points, capacity, capacityReached: reached })
  }
}

/** A measurement's CPU shares and, for Cometpad, its event-loop lag, as the progress log gives them. */
function loadFigures(result: TypingResult): string {
  const lag = result.serverLoopLagMs === null ? '' : `, server loop lag p99 ${result.serverLoopLagMs.toFixed(1)} ms`
  return `CPU server ${Math.round(result.serverCpu * 100)} % clients ${Math.round(result.clientCpu * 100)} %${lag}`
}

/** Start `row`'s server, connect `layout` to it, run `body`, then close both. */
async function withServerSession(pool: WorkerPool, row: Row, layout: Layout, body: (server: RunningServer, session: Session) => Promise<void>): Promise<void> {
  const server = await startServer(row.server)
  try {
    const session = await connectLayout(pool, server, { ...row, url: server.url }, layout)
    await body(server, session)
    await session.close()
  } finally {
    await server.stop()
  }
}

async function runMemory(pool: WorkerPool, plan: Plan, results: BenchResults): Promise<void> {
  // The idle-WebSocket-client target compares these two rows: they get
  // several readings (the others one, to keep the full run under 15 minutes).
  const compared = new Set(['cometpad/websocket', 'hocuspocus'])
  for (const row of rows) {
    const readings = compared.has(targetName(row)) ? plan.memory.clientReadings : 1
    const result = await measureMemory(pool, row, plan.memory.clients, plan.memory.documents, plan.memory.settleMs, readings)
    results.memory.push({ target: targetName(row), ...result })
    const kib = (bytes: number): string => (bytes / 1024).toFixed(1)
    log(`memory ${targetName(row)}: ${kib(result.perClientBytes)} KiB per idle client (JS heap ${kib(result.perClientHeapBytes)}), ${kib(result.perDocumentBytes)} KiB per document (JS heap ${kib(result.perDocumentHeapBytes)})`)
  }
}

async function runColdLoad(plan: Plan, results: BenchResults): Promise<void> {
  for (const build of plan.coldLoad.documents) {
    const document = build()
    warmUpClient(document)
    for (const row of rows.filter((one) => one.server !== 'cometpad' || one.transport === 'websocket')) {
      const result = await measureColdLoad(row, document, plan.coldLoad.repeats)
      results.coldLoad.push({ target: targetName(row), ...result })
      const fromStore = result.fromStoreMs === null ? '' : `, ${result.fromStoreMs.toFixed(1)} ms from LevelDB`
      const afterRestart = result.afterRestartMs === null ? '' : `, ${result.afterRestartMs.toFixed(1)} ms first after a restart`
      log(`cold load ${document.name} ${targetName(row)}: ${result.fromMemoryMs.toFixed(1)} ms from memory${fromStore}${afterRestart}`)
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string' },
      workers: { type: 'string' },
      targets: { type: 'string' },
      scenarios: { type: 'string' },
      repeat: { type: 'string' },
    },
  })
  const mode = values.smoke ? 'smoke' : values.quick ? 'quick' : 'full'
  const plan = { ...plans[mode] }
  if (values.scenarios) {
    const wanted = new Set(values.scenarios.split(','))
    plan.typing = plan.typing.filter(({ layout }) => wanted.has(scenarioKey(layout)))
    if (plan.typing.length === 0) throw new Error(`--scenarios matched none of ${plans[mode].typing.map(({ layout }) => scenarioKey(layout)).join(', ')}`)
  }
  if (values.targets) {
    const wanted = new Set(values.targets.split(','))
    const unknown = [...wanted].filter((name) => !allRows.some((row) => targetName(row) === name))
    if (unknown.length > 0) throw new Error(`unknown --targets ${unknown.join(', ')}; known: ${allRows.map(targetName).join(', ')}`)
    rows = allRows.filter((row) => wanted.has(targetName(row)))
  }
  const only = new Set((values.only ?? 'typing,throughput,memory,cold-load').split(',') as Workload[])
  const repeat = Number(values.repeat ?? '1')
  if (!Number.isSafeInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a whole number ≥ 1, got ${values.repeat}`)
  const outDir = values.out ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'results')
  const started = Date.now()
  const date = new Date().toISOString().slice(0, 10)
  const cpus = os.cpus()
  const machine = { cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, os: `${os.type()} ${os.release()}` }
  // --repeat runs the whole selection again, start to end, so that each
  // target's verdict can be read as "met in k of n runs" (see Repeat).
  const runs: BenchResults[] = []
  const pool = new WorkerPool(Number(values.workers ?? 2))
  try {
    for (let run = 1; run <= repeat; run++) {
      if (repeat > 1) log(`run ${run} of ${repeat}`)
      const results: BenchResults = { date, mode, machine, typing: [], throughput: [], memory: [], coldLoad: [] }
      if (only.has('typing')) await runTyping(pool, plan, results)
      if (only.has('throughput')) await runThroughput(pool, plan, results)
      if (only.has('memory')) await runMemory(pool, plan, results)
      if (only.has('cold-load')) await runColdLoad(plan, results)
      runs.push(results)
    }
  } finally {
    pool.close()
  }
  // The tables show the last run; with --repeat, the report adds every run's verdicts.
  const results = runs[runs.length - 1]!
  mkdirSync(outDir, { recursive: true })
  // Only the whole full plan, run once, is the day's run (`<date>.*`): a
  // selection or a repeat is named for what it is rather than overwrite it.
  const isSelection = values.only !== undefined || values.targets !== undefined || values.scenarios !== undefined
  const suffix = [mode === 'full' ? '' : `-${mode}`, isSelection ? '-selection' : '', repeat > 1 ? `-repeat${repeat}` : ''].join('')
  const base = path.join(outDir, `${date}${suffix}`)
  const chart = throughputLatencyChart(
    results.throughput.map((row) => ({ name: row.target, points: row.points.map((point) => ({ deliveredPerSecond: point.deliveredPerSecond, p50: point.latency.p50, p99: point.latency.p99 })) })),
    {
      title: 'Throughput vs latency: one document, 50 clients, 10 % writers',
      subtitle: `${results.machine.cpus} × ${results.machine.cpuModel}, Node ${results.machine.node}, ${date} (${mode})`,
      guides: [{ ms: 100, label: 'capacity: p99 = 100 ms' }],
    },
  )
  const repeats: Repeat[] = runs.map((run) => ({ checks: checkTargets(run), results: run }))
  const { checks } = repeats[repeats.length - 1]!
  writeFileSync(`${base}.json`, `${JSON.stringify({ ...results, checks, ...(repeat > 1 ? { repeats } : {}) }, null, 2)}\n`)
  writeFileSync(`${base}.svg`, chart)
  const report = markdownReport(results, checks, `${path.basename(base)}.svg`, repeats)
  writeFileSync(`${base}.md`, report)
  process.stdout.write(`${report}\nWrote ${base}.json, .md and .svg in ${((Date.now() - started) / 1000).toFixed(0)} s.\n`)
}

// Exit through process.exit so that servers.ts kills any server still running.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))
main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
