/**
 * A warn-level log line that may be written at most once per interval: one
 * per client, so that a client sending thousands of refused messages costs
 * one line a second, not thousands, and says how many it left out.
 */
import type { Logger } from 'pino'

/** Options of a {@link ThrottledLog}. */
export interface ThrottledLogOptions {
  logger: Logger
  /** At most one line per this long, in ms. @default 1000 */
  intervalMs?: number
  /** A clock, in ms (tests pass a fake one). @default Date.now */
  now?: () => number
}

/** See the module comment. Create one per client (session, socket). */
export class ThrottledLog {
  private readonly logger: Logger
  private readonly intervalMs: number
  private readonly now: () => number
  private lastAt = Number.NEGATIVE_INFINITY
  private suppressed = 0
  private lastMessage = ''
  private lastFields: object | null = null

  constructor(options: ThrottledLogOptions) {
    this.logger = options.logger
    this.intervalMs = options.intervalMs ?? 1_000
    this.now = options.now ?? Date.now
  }

  /**
   * Log `message` with `fields` at warn level, unless a line was logged less
   * than `intervalMs` ago: then count it. The next line written carries the
   * count of those left out as `suppressed`.
   */
  warn(fields: object, message: string): void {
    const now = this.now()
    this.lastFields = fields
    this.lastMessage = message
    if (now - this.lastAt < this.intervalMs) {
      this.suppressed++
      return
    }
    this.lastAt = now
    const suppressed = this.suppressed
    this.suppressed = 0
    this.logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message)
  }

  /**
   * The client is gone: if lines were left out since the last one, write
   * one more with their count (and the latest of them), so nothing goes
   * uncounted.
   */
  flush(): void {
    if (this.suppressed === 0) return
    const suppressed = this.suppressed
    this.suppressed = 0
    this.logger.warn({ ...(this.lastFields ?? {}), suppressed }, this.lastMessage)
  }
}
