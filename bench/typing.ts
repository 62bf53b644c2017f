/**
 * The typing workload and its building blocks: connect a layout of clients
 * across the workers, have the writers type stamped keystrokes at a rate,
 * and collect what the probes measured.
 */
import type { Target } from './clients'
import { createHistogram, mergeHistograms, summarize, type Histogram, type LatencySummary } from './histogram'
import { now } from './keystrokes'
import type { WorkerPool } from './pool'
import type { RunningServer } from './servers'
import type { ClientSpec, WorkerReport } from './worker-protocol'

/** How many documents, clients and writers. */
export interface Layout {
  docs: number
  clientsPerDoc: number
  writersPerDoc: number
}

/** At most this many clients per document decode and measure; the rest only receive (light clients). */
export const maxProbesPerDoc = 100

export function layoutName(layout: Layout): string {
  return layout.docs === 1 ? `${layout.clientsPerDoc} clients` : `${layout.docs} docs × ${layout.clientsPerDoc} clients`
}

/** Clients connected for a run; close them with `close`. */
export interface Session {
  layout: Layout
  connectMs: number
  clientsPerDocByName: Map<string, number>
  probesPerDocByName: Map<string, number>
  close(): Promise<void>
}

/**
 * Connect `layout`'s clients across the workers, on new documents, or on
 * `docs` (one name per document of the layout) to add clients to
 * documents already open.
 */
export async function connectLayout(pool: WorkerPool, server: RunningServer, target: Target, layout: Layout, docs?: readonly string[]): Promise<Session> {
  if (docs && docs.length !== layout.docs) throw new Error(`connectLayout: ${docs.length} document names for a layout of ${layout.docs}`)
  const specs: ClientSpec[] = []
  const clientsPerDocByName = new Map<string, number>()
  const probesPerDocByName = new Map<string, number>()
  for (let d = 0; d < layout.docs; d++) {
    const doc = docs?.[d] ?? (await server.createDoc())
    clientsPerDocByName.set(doc, layout.clientsPerDoc)
    probesPerDocByName.set(doc, Math.min(layout.clientsPerDoc, maxProbesPerDoc))
    for (let c = 0; c < layout.clientsPerDoc; c++) specs.push({ doc, writer: c < layout.writersPerDoc, probe: c < maxProbesPerDoc })
  }
  const size = pool.workers.length
  const started = now()
  await pool.each((index) => ({ cmd: 'open', target, clients: specs.filter((_, i) => i % size === index), concurrency: 16 }))
  return {
    layout,
    connectMs: now() - started,
    clientsPerDocByName,
    probesPerDocByName,
    async close() {
      await pool.each(() => ({ cmd: 'close' }))
    },
  }
}

/** What one typing run measured. */
export interface TypingResult {
  /** Keystroke → arrival at each other probe client. */
  latency: LatencySummary
  /** Cometpad: keystroke → Saved (durable) at the writer. */
  saved: LatencySummary | null
  /** Keystrokes the writers sent in the window, per second. */
  updatesPerSecond: number
  /** Updates delivered to all clients in the window, per second (the fan-out). */
  deliveredPerSecond: number
  /** Share of the expected probe arrivals that arrived before the drain timeout. */
  deliveredFraction: number
  /** Server CPU used during the run, as a share of one core. */
  serverCpu: number
  /** CPU used by all the clients (the worker processes) during the run, as a share of one core. */
  clientCpu: number
  /** Cometpad: the server's event-loop delay p99 during the run, in ms (null for the peers). */
  serverLoopLagMs: number | null
  /** Server resident memory at the end of the run, in bytes. */
  serverRss: number
}

export interface RunTiming {
  warmupMs: number
  durationMs: number
}

/**
 * What one typing window measured, before it is summarised: the raw
 * histograms, so that the windows of several rounds pool exactly
 * ({@link summarizeTyping}).
 */
export interface TypingSample {
  latency: Histogram
  saved: Histogram
  seconds: number
  sent: number
  delivered: number
  received: number
  expected: number
  serverCpuMs: number
  clientCpuMs: number
  wallMs: number
  serverLoopLagMs: number | null
  serverRss: number
}

export async function typeAndMeasure(pool: WorkerPool, server: RunningServer, session: Session, ratePerWriter: number, timing: RunTiming): Promise<TypingResult> {
  return summarizeTyping([await measureTyping(pool, server, session, ratePerWriter, timing)])
}

/** Type for one window and collect what the probes measured. */
export async function measureTyping(pool: WorkerPool, server: RunningServer, session: Session, ratePerWriter: number, timing: RunTiming): Promise<TypingSample> {
  const startAt = now() + 200
  const windowStart = startAt + timing.warmupMs
  const windowEnd = windowStart + timing.durationMs
  const cpuBefore = server.cpuMs()
  const clientCpuBefore = pool.cpuMs()
  await server.loopLagMs()
  const cpuStarted = now()
  await pool.each(() => ({ cmd: 'type', ratePerWriter, startAt, windowStart, windowEnd }))
  await sleep(windowEnd - now() + 300)
  const cpuAfter = server.cpuMs()
  const clientCpuAfter = pool.cpuMs()
  const serverLoopLagMs = await server.loopLagMs()
  const cpuEnded = now()

  // Drain: wait for the stragglers until every arrival is in or they stop coming.
  let reports: WorkerReport[] = []
  let expected = 0
  let received = -1
  let lastProgress = now()
  for (;;) {
    reports = (await pool.each(() => ({ cmd: 'report' }))).map((reply) => reply!.report)
    expected = expectedArrivals(session, reports)
    const total = reports.reduce((sum, report) => sum + report.received, 0)
    if (total !== received) lastProgress = now()
    received = total
    if (process.env.BENCH_DEBUG) process.stderr.write(`[drain] ${received}/${expected} messages ${reports.map((report) => report.messages).join(',')}\n`)
    if (received >= expected || now() - lastProgress > 3_000 || now() - windowEnd > 30_000) break
    await sleep(250)
  }
  const writers = reports.flatMap((report) => report.writers)
  return {
    latency: mergeHistograms(reports.map((report) => report.latency)),
    saved: mergeHistograms(reports.map((report) => report.saved)),
    seconds: timing.durationMs / 1000,
    sent: writers.reduce((sum, writer) => sum + writer.sent, 0),
    delivered: writers.reduce((sum, writer) => sum + writer.sent * ((session.clientsPerDocByName.get(writer.doc) ?? 1) - 1), 0),
    received,
    expected,
    serverCpuMs: cpuAfter - cpuBefore,
    clientCpuMs: clientCpuAfter - clientCpuBefore,
    wallMs: cpuEnded - cpuStarted,
    serverLoopLagMs,
    serverRss: server.rss(),
  }
}

/**
 * One result from the windows of one target: latencies from the pooled
 * histograms, rates and CPU over their summed time, and the worst loop
 * lag and largest RSS of any window.
 */
export function summarizeTyping(samples: readonly TypingSample[]): TypingResult {
  if (samples.length === 0) throw new Error('summarizeTyping: no samples')
  const latency = createHistogram()
  const saved = createHistogram()
  for (const sample of samples) {
    latency.add(sample.latency)
    saved.add(sample.saved)
  }
  const sum = (pick: (sample: TypingSample) => number): number => samples.reduce((total, sample) => total + pick(sample), 0)
  const lags = samples.map((sample) => sample.serverLoopLagMs).filter((lag): lag is number => lag !== null)
  const expected = sum((sample) => sample.expected)
  return {
    latency: summarize(latency),
    saved: saved.totalCount > 0 ? summarize(saved) : null,
    updatesPerSecond: sum((sample) => sample.sent) / sum((sample) => sample.seconds),
    deliveredPerSecond: sum((sample) => sample.delivered) / sum((sample) => sample.seconds),
    deliveredFraction: expected === 0 ? 1 : sum((sample) => sample.received) / expected,
    serverCpu: sum((sample) => sample.serverCpuMs) / sum((sample) => sample.wallMs),
    clientCpu: sum((sample) => sample.clientCpuMs) / sum((sample) => sample.wallMs),
    serverLoopLagMs: lags.length > 0 ? Math.max(...lags) : null,
    serverRss: Math.max(...samples.map((sample) => sample.serverRss)),
  }
}

/** Arrivals the probes should see: each measured keystroke at every probe of its document but its writer. */
function expectedArrivals(session: Session, reports: WorkerReport[]): number {
  let expected = 0
  for (const writer of reports.flatMap((report) => report.writers)) {
    const probes = session.probesPerDocByName.get(writer.doc) ?? 0
    expected += writer.sent * (probes - (writer.probe ? 1 : 0))
  }
  return expected
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))
}
