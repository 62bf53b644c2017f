/**
 * Token buckets for messages and bytes per second, refilled lazily from a
 * clock on every `take` (no timers: an idle connection costs nothing).
 *
 * Each bucket holds up to `burst × rate` tokens and starts full. A message
 * costs one message token and its length in byte tokens. A single message
 * larger than the whole byte bucket is let through when the bucket is full
 * (a big paste must not be refused forever); the bucket then goes into debt
 * and the sender must stay quiet until it has paid it back.
 */

/** Limits of a {@link RateLimiter}; 0 (or less) turns a limit off. */
export interface RateLimits {
  /** Messages per second, sustained. */
  messagesPerSecond: number
  /** Bytes per second, sustained. */
  bytesPerSecond: number
  /** Bucket size as a multiple of the per-second rate. @default 2 */
  burst?: number
}

/** Which limit a refused `take` exceeded. */
export type RateLimitName = 'messages_per_second' | 'bytes_per_second'

/** See the module comment. */
export class RateLimiter {
  // The rates are copied out of the limits object rather than keeping it:
  // a server holds a limiter per session.
  private readonly messagesPerSecond: number
  private readonly bytesPerSecond: number
  private readonly messageCapacity: number
  private readonly byteCapacity: number
  private messageTokens: number
  private byteTokens: number
  private refilledAt: number

  constructor(
    limits: RateLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.messagesPerSecond = limits.messagesPerSecond
    this.bytesPerSecond = limits.bytesPerSecond
    const burst = limits.burst ?? 2
    this.messageCapacity = limits.messagesPerSecond * burst
    this.byteCapacity = limits.bytesPerSecond * burst
    this.messageTokens = this.messageCapacity
    this.byteTokens = this.byteCapacity
    this.refilledAt = now()
  }

  /** Whether either limit is on (an off limiter can be skipped). */
  get isEnabled(): boolean {
    return this.messagesPerSecond > 0 || this.bytesPerSecond > 0
  }

  /**
   * Spend `messages` messages and `bytes` bytes. Returns null when allowed,
   * or the name of the limit exceeded (nothing is spent then).
   */
  take(messages: number, bytes: number): RateLimitName | null {
    this.refill()
    const checkMessages = this.messagesPerSecond > 0
    const checkBytes = this.bytesPerSecond > 0
    if (checkMessages && messages > this.messageTokens) return 'messages_per_second'
    if (checkBytes && bytes > this.byteTokens && !(bytes > this.byteCapacity && this.byteTokens >= this.byteCapacity)) return 'bytes_per_second'
    if (checkMessages) this.messageTokens -= messages
    if (checkBytes) this.byteTokens -= bytes
    return null
  }

  /**
   * How long, in ms, until the bucket of `limit` is full again at its
   * sustained rate (0 when it is full or off). A client refused by this
   * limiter is advised to wait this long (PROTOCOL.md §3).
   */
  msUntilFull(limit: RateLimitName): number {
    this.refill()
    const [tokens, capacity, rate] =
      limit === 'messages_per_second'
        ? [this.messageTokens, this.messageCapacity, this.messagesPerSecond]
        : [this.byteTokens, this.byteCapacity, this.bytesPerSecond]
    if (rate <= 0 || tokens >= capacity) return 0
    return Math.ceil(((capacity - tokens) / rate) * 1_000)
  }

  private refill(): void {
    const now = this.now()
    const elapsedMs = now - this.refilledAt
    if (elapsedMs <= 0) return
    this.refilledAt = now
    const seconds = elapsedMs / 1_000
    this.messageTokens = Math.min(this.messageCapacity, this.messageTokens + seconds * this.messagesPerSecond)
    this.byteTokens = Math.min(this.byteCapacity, this.byteTokens + seconds * this.bytesPerSecond)
  }
}
