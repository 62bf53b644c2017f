/**
 * Every live Comet session, and the one timer that keeps them honest.
 */
import { Observable } from '../../common/observable'
import type { Logger } from 'pino'
import { closeCodeName } from '../../common/close-codes'
import { randomId, type SessionId } from '../../common/ids'
import type { TransportName } from '../../common/comet/handshake'
import { Session, type SessionOptions } from './session'
import type { IpCounter } from '../util/ip-counter'

/** Events of a {@link SessionRegistry}. */
export type SessionRegistryEvents = {
  /** A new session started; subscribe to its messages here. */
  session: (session: Session) => void
}

/** Creates, finds and sweeps sessions. */
export class SessionRegistry extends Observable<SessionRegistryEvents> {
  private readonly sessions = new Map<SessionId, Session>()
  /**
   * Why recently ended sessions ended, kept for `sessionGraceMs`: an HTTP
   * client that was between requests when its session closed learns the
   * real code (say 4403) instead of "unknown session", which it would
   * answer by starting a new one.
   */
  private readonly ended = new Map<string, { code: number; reason: string; at: number }>()
  private sweepTimer: NodeJS.Timeout | null = null

  constructor(
    private readonly options: SessionOptions & {
      /** How often the shared liveness sweep runs, in ms. @default 1000 */
      sweepIntervalMs?: number
      /** Sessions per client address (shared with the y-websocket endpoint); none: no limit. */
      perIp?: IpCounter
      /**
       * Where each session's one open line and one close line go, at info
       * level. Per session, not per connection: a long-polling client makes
       * a request every few seconds, and resumes and upgrades are routine
       * (the endpoints log those at debug). None: no logs.
       */
      logger?: Logger
    },
  ) {
    super()
  }

  /** Start the liveness sweep. */
  start(): void {
    if (this.sweepTimer) return
    // One timer for all sessions: thousands of idle clients cost a map walk
    // per second, not thousands of timers.
    this.sweepTimer = setInterval(() => {
      for (const session of this.sessions.values()) session.tick()
      const forgetBefore = Date.now() - this.options.sessionGraceMs
      for (const [sid, end] of this.ended) {
        if (end.at >= forgetBefore) break // insertion order is time order
        this.ended.delete(sid)
      }
    }, this.options.sweepIntervalMs ?? 1_000)
    this.sweepTimer.unref()
  }

  /** How many sessions are live. */
  get size(): number {
    return this.sessions.size
  }

  /** A live session by id, or undefined. */
  get(id: string): Session | undefined {
    return this.sessions.get(id as SessionId)
  }

  /** Why the session `id` ended, if it ended within the last `sessionGraceMs`. */
  endOf(id: string): { code: number; reason: string } | undefined {
    return this.ended.get(id)
  }

  /** All live sessions. */
  all(): IterableIterator<Session> {
    return this.sessions.values()
  }

  /**
   * Whether client address `ip` may start one more session. A refusal is
   * counted (`sessions_per_ip`); the caller answers 429.
   */
  admit(ip: string): boolean {
    if (!this.options.perIp || this.options.perIp.admits(ip)) return true
    this.options.onLimitExceeded?.('sessions_per_ip')
    return false
  }

  /**
   * Create and register a new session, counted against client address `ip`
   * if given (see {@link admit}). `transport` names the transport it opens
   * on, for the log.
   */
  create(ip?: string, transport?: TransportName): Session {
    const session = new Session(randomId(22) as SessionId, this.options)
    this.sessions.set(session.id, session)
    if (ip !== undefined && this.options.perIp) {
      this.options.perIp.add(ip)
      session.ip = ip
    }
    this.options.logger?.info({ sid: session.id, transport: transport ?? null, ip: ip ?? null }, 'comet session open')
    session.on('close', this.onSessionClose)
    this.emit('session', [session])
    return session
  }

  // One listener for every session, not a closure each. Session.close
  // emits once only, so the address is released once.
  private readonly onSessionClose = (code: number, reason: string, session: Session): void => {
    if (session.ip !== null) this.options.perIp?.release(session.ip)
    this.sessions.delete(session.id)
    this.ended.set(session.id, { code, reason, at: Date.now() })
    this.options.logger?.info(
      {
        sid: session.id,
        code,
        codeName: closeCodeName(code),
        reason,
        transport: session.lastTransportName,
        durationMs: (this.options.now ?? Date.now)() - session.openedAt,
      },
      'comet session closed',
    )
  }

  /** Close every session with `code` and stop the sweep. */
  closeAll(code: number, reason: string): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer)
    this.sweepTimer = null
    for (const session of [...this.sessions.values()]) session.close(code, reason)
  }
}
