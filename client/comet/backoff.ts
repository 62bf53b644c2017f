/**
 * Reconnect delays: capped exponential backoff with jitter, on top of the
 * server's advice. Jitter matters: after a server restart every client
 * reconnects at once, and without it they stampede it in lockstep.
 */

/** Backoff parameters, in ms. */
export interface BackoffOptions {
  baseMs: number
  maxMs: number
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first): at least
 * the server's `retryAfterMs`, plus an "equal jitter" backoff, half of
 * `min(maxMs, baseMs · 2^attempt)` fixed and half random.
 */
export function nextDelay(attempt: number, retryAfterMs: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponential = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(retryAfterMs + exponential / 2 + random() * (exponential / 2))
}
