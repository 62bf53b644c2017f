/**
 * Prometheus metrics, served at `GET /metrics`. One `Registry` per server
 * (never prom-client's global one), so two servers in one process (tests)
 * each report their own numbers and never clash on registration.
 *
 * The hot paths only bump plain numbers ({@link FrameCounts}); gauges and
 * those counters are read from the live registries at scrape time.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { Middleware } from 'koa'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { TransportName } from '../../common/comet/handshake'
import type { FrameCounts } from '../comet/session'
import type { SessionRegistry } from '../comet/session-registry'
import type { RefusalReason } from '../rooms/messages'
import type { RoomRegistry } from '../rooms/room-registry'
import type { DocStore } from '../storage/doc-store'
import { limitNames, type LimitName } from '../util/limit-names'

/** What the gauges read at scrape time. */
export interface MetricsSources {
  sessions: SessionRegistry
  rooms: RoomRegistry
  /** Open y-websocket sockets. */
  yWebSocketConnections: () => number
}

/** The path metrics are served at. */
export const metricsPath = '/metrics'

// Sampling period of the event-loop delay monitor; its samples include it.
const loopResolutionMs = 10

/** See the module comment. Create one per server; `close()` stops the monitor. */
export class ServerMetrics {
  /** This server's registry. */
  readonly registry = new Registry()
  /** Pass to the sessions and the y-websocket endpoint; they increment it. */
  readonly frameCounts: FrameCounts = { in: 0, out: 0 }
  private sources: MetricsSources | null = null
  private readonly refused: Counter<'reason'>
  private readonly limitExceeded: Counter<'limit'>
  private readonly storeWrites: Histogram
  private readonly loopDelay: IntervalHistogram

  constructor() {
    const registers = [this.registry]
    const self = this
    const transports: readonly (TransportName | 'y-websocket')[] = ['websocket', 'stream', 'long-poll', 'y-websocket']
    new Gauge({
      name: 'cometpad_connections',
      help: 'Open client connections by transport: Comet sessions with a transport attached, and y-websocket sockets',
      labelNames: ['transport'],
      registers,
      collect() {
        const counts = new Map<string, number>(transports.map((t) => [t, 0]))
        const sources = self.sources
        if (sources) {
          for (const session of sources.sessions.all()) {
            const name = session.state === 'attached' ? session.transportName : null
            if (name) counts.set(name, (counts.get(name) ?? 0) + 1)
          }
          counts.set('y-websocket', sources.yWebSocketConnections())
        }
        for (const [transport, count] of counts) this.set({ transport }, count)
      },
    })
    // The process's memory, read on each scrape (prom-client's default
    // metrics would add timers and observers per registry, and tests run
    // many servers in one process).
    new Gauge({
      name: 'process_resident_memory_bytes',
      help: 'Resident memory size in bytes',
      registers,
      collect() {
        this.set(process.memoryUsage.rss())
      },
    })
    new Gauge({
      name: 'nodejs_memory_bytes',
      help: 'V8 heap used and total, and memory outside the heap (external, array buffers), in bytes',
      labelNames: ['kind'],
      registers,
      collect() {
        const usage = process.memoryUsage()
        this.set({ kind: 'heap_used' }, usage.heapUsed)
        this.set({ kind: 'heap_total' }, usage.heapTotal)
        this.set({ kind: 'external' }, usage.external)
        this.set({ kind: 'array_buffers' }, usage.arrayBuffers)
      },
    })
    new Gauge({
      name: 'cometpad_sessions',
      help: 'Live Comet sessions, attached or waiting to be resumed',
      registers,
      collect() {
        this.set(self.sources?.sessions.size ?? 0)
      },
    })
    new Gauge({
      name: 'cometpad_open_rooms',
      help: 'Documents held in memory (open or loading)',
      registers,
      collect() {
        this.set(self.sources?.rooms.size ?? 0)
      },
    })
    new Counter({
      name: 'cometpad_frames_in_total',
      help: 'Application frames received: Comet Data frames and y-websocket messages',
      registers,
      collect() {
        this.reset()
        this.inc(self.frameCounts.in)
      },
    })
    new Counter({
      name: 'cometpad_frames_out_total',
      help: 'Application frames sent: Comet Data frames (each once, however often resent) and y-websocket messages',
      registers,
      collect() {
        this.reset()
        this.inc(self.frameCounts.out)
      },
    })
    this.refused = new Counter({
      name: 'cometpad_refused_messages_total',
      help: 'Document messages refused, by reason',
      labelNames: ['reason'],
      registers,
    })
    this.limitExceeded = new Counter({
      name: 'cometpad_limit_exceeded_total',
      help: 'Clients that exceeded a configured limit (and were refused or closed), by limit',
      labelNames: ['limit'],
      registers,
    })
    // Every limit appears at 0 from the first scrape, so a rate() has a baseline.
    for (const limit of limitNames) this.limitExceeded.inc({ limit }, 0)
    this.storeWrites = new Histogram({
      name: 'cometpad_store_write_seconds',
      help: 'Time for a DocStore append to become durable (failed appends included)',
      // Group commits with fsync: a millisecond on fast disks, far more when they struggle.
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    })
    this.loopDelay = monitorEventLoopDelay({ resolution: loopResolutionMs })
    this.loopDelay.enable()
    const loopDelay = this.loopDelay
    new Gauge({
      name: 'cometpad_event_loop_lag_seconds',
      help: 'Event-loop delay, 99th percentile since the previous scrape',
      registers,
      collect() {
        const p99 = loopDelay.count > 0 ? loopDelay.percentile(99) / 1e6 - loopResolutionMs : 0
        loopDelay.reset()
        this.set(Math.max(0, p99) / 1_000)
      },
    })
  }

  /** Tell the gauges what to read (the parts exist only after the counters are handed out). */
  watch(sources: MetricsSources): void {
    this.sources = sources
  }

  /** Count one refused message; pass as `onRefused` to the router and the y-websocket endpoint. */
  readonly countRefusal = (reason: RefusalReason): void => {
    this.refused.inc({ reason })
    if (reason === 'too-large') this.countLimit('doc_bytes')
  }

  /** Count one exceeded limit; pass as `onLimitExceeded` to sessions, endpoints and rooms. */
  readonly countLimit = (limit: LimitName): void => {
    this.limitExceeded.inc({ limit })
  }

  /**
   * `store` with its `append` timed into `cometpad_store_write_seconds`;
   * everything else goes to `store` unchanged (a Proxy, so methods added to
   * the store later need no change here).
   */
  timeAppends<T extends DocStore>(store: T): T {
    const histogram = this.storeWrites
    const append: DocStore['append'] = (docId, update) => {
      const end = histogram.startTimer()
      const done = store.append(docId, update)
      done.then(
        () => end(),
        () => end(),
      )
      return done
    }
    const bound = new Map<PropertyKey, unknown>()
    return new Proxy(store, {
      get(target, property) {
        if (property === 'append') return append
        const value: unknown = Reflect.get(target, property, target)
        if (typeof value !== 'function') return value
        // Bound to the real store: its private state lives there.
        let fn = bound.get(property)
        if (fn === undefined) {
          fn = (value as (...args: unknown[]) => unknown).bind(target)
          bound.set(property, fn)
        }
        return fn
      },
    })
  }

  /** Koa middleware answering `GET /metrics` in the Prometheus text format. */
  middleware(): Middleware {
    return async (ctx, next) => {
      if (ctx.path !== metricsPath || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) {
        await next()
        return
      }
      ctx.set('Cache-Control', 'no-store')
      ctx.type = this.registry.contentType
      ctx.body = await this.registry.metrics()
    }
  }

  /** Stop the event-loop monitor and drop the metrics. */
  close(): void {
    this.loopDelay.disable()
    this.registry.clear()
  }
}
