/**
 * Connections per client IP address, shared by every endpoint that starts a
 * session or a socket, so one address cannot hold all of the server's
 * memory. The address is the TCP peer's (`socket.remoteAddress`): no proxy
 * header is trusted, so behind a reverse proxy every client shares the
 * proxy's address; raise the limit there, or set it to 0 (off).
 */

/** See the module comment. */
export class IpCounter {
  private readonly counts = new Map<string, number>()

  /** @param max Most connections per address; 0 = no limit. */
  constructor(readonly max: number) {}

  /** Whether `ip` may open one more connection now. */
  admits(ip: string): boolean {
    return this.max <= 0 || (this.counts.get(ip) ?? 0) < this.max
  }

  /**
   * Count one connection of `ip` if it is under the limit (or `force`).
   * Returns the function that releases it (idempotent), or null when refused.
   */
  acquire(ip: string, force = false): (() => void) | null {
    if (!force && !this.admits(ip)) return null
    this.add(ip)
    let released = false
    return () => {
      if (released) return
      released = true
      this.release(ip)
    }
  }

  /**
   * Count one connection of `ip` whatever the limit, for a holder that
   * calls {@link release} once itself (no release function to keep).
   */
  add(ip: string): void {
    this.counts.set(ip, (this.counts.get(ip) ?? 0) + 1)
  }

  /** Give back one connection of `ip`, counted with `add` (`acquire` gives a function that does it once). */
  release(ip: string): void {
    const count = (this.counts.get(ip) ?? 1) - 1
    if (count <= 0) this.counts.delete(ip)
    else this.counts.set(ip, count)
  }

  /** How many connections `ip` holds. */
  countOf(ip: string): number {
    return this.counts.get(ip) ?? 0
  }
}

/** The address of a socket's peer, or `"unknown"`. */
export function peerAddress(socket: { remoteAddress?: string | undefined }): string {
  return socket.remoteAddress ?? 'unknown'
}
