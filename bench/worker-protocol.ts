/** What the benchmark's coordinator (run.ts) and its client workers (worker.ts) say to each other over IPC. */
import type { Target } from './clients'

/** One client a worker should connect. */
export interface ClientSpec {
  doc: string
  /** Types stamped keystrokes during a `type` command. */
  writer: boolean
  /** Decodes what it receives and records latencies; other clients only receive. */
  probe: boolean
}

export type WorkerCommand =
  | { cmd: 'open'; target: Target; clients: ClientSpec[]; concurrency: number }
  /**
   * Writers type `ratePerWriter` keystrokes a second from `startAt` to
   * `windowEnd`; keystrokes sent in [windowStart, windowEnd] are measured.
   * Times are on the shared clock (keystrokes.ts `now`).
   */
  | { cmd: 'type'; ratePerWriter: number; startAt: number; windowStart: number; windowEnd: number }
  | { cmd: 'report' }
  | { cmd: 'close' }

/** What one writer sent inside the measurement window. */
export interface WriterCount {
  doc: string
  probe: boolean
  sent: number
}

export interface WorkerReport {
  /** Keystroke latency histogram (encoded, µs), over the probes. */
  latency: string
  /** Cometpad only: send → Saved latency histogram (encoded, µs). */
  saved: string
  writers: WriterCount[]
  /** Measured keystrokes received by probes. */
  received: number
  /** Update messages received by all clients. */
  messages: number
}

export type WorkerReply =
  | { ok: true; cmd: 'open'; ms: number }
  | { ok: true; cmd: 'type' }
  | { ok: true; cmd: 'report'; report: WorkerReport }
  | { ok: true; cmd: 'close' }
  | { ok: false; error: string }
