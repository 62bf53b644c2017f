/**
 * Server configuration: every setting with its environment variable, its
 * command-line flag and its default, in one table (README "Configuration").
 */
import { parseArgs } from 'node:util'
import path from 'node:path'
import * as limits from '../common/limits'
import { normaliseOrigin } from './http/origin'

/** The server's configuration. */
export interface Config {
  /** TCP port; 0 picks a free one. @default 3000 */
  port: number
  /** Interface to listen on. @default 127.0.0.1 */
  host: string
  /** Folder of the LevelDB data files. @default ./data */
  dataDir: string
  /** pino log level (fatal, error, warn, info, debug, trace, silent). @default info */
  logLevel: string
  /** Ping interval and timeout of Comet sessions, in ms. */
  pingIntervalMs: number
  pingTimeoutMs: number
  /** How long a dropped session may be resumed, in ms. */
  sessionGraceMs: number
  /** Largest frame or WebSocket message accepted, in bytes. */
  maxFrameBytes: number
  /** How long a long-poll request is held when nothing is waiting, in ms. @default 25000 */
  pollHoldMs: number
  /**
   * Origins (`https://host[:port]`) besides the server's own that browsers
   * may connect from (WebSocket, long-poll, stream), normalised. Empty:
   * same-origin only. Requests without an Origin header are always allowed
   * (see http/origin.ts). @default []
   */
  allowedOrigins: string[]
  /** Upstream messages (WebSocket messages, POST bodies) per second per session or y-websocket socket; 0 = off. @default 200 */
  maxMessagesPerSecond: number
  /**
   * Long-poll GETs and stream resumes per second per session that the server
   * did not pace (superseding a held poll, repeating an ack, reconnecting);
   * bursts of twice that; 0 = off. @default 20
   */
  maxPollsPerSecond: number
  /** Upstream bytes per second per session or y-websocket socket; 0 = off. @default 1 MiB */
  maxBytesPerSecond: number
  /** Comet sessions plus y-websocket sockets per client IP address; 0 = off. @default 50 */
  maxSessionsPerIp: number
  /** Drop a WebSocket or stream client with more unread bytes than this buffered; 0 = off. @default 8 MiB */
  slowReaderBytes: number
  /** Refuse updates that would grow a document past this estimated size; 0 = off. @default 32 MiB */
  maxDocBytes: number
  /** Most documents in memory at once; 0 = off. @default 10000 */
  maxOpenRooms: number
}

interface Setting {
  key: keyof Config
  env: string
  flag: string
  kind: 'string' | 'integer' | 'list'
  defaultValue: string
  help: string
}

/** Every setting; `--help` prints this table. */
export const settings: readonly Setting[] = [
  { key: 'port', env: 'PORT', flag: 'port', kind: 'integer', defaultValue: '3000', help: 'TCP port to listen on (0 picks a free one)' },
  { key: 'host', env: 'HOST', flag: 'host', kind: 'string', defaultValue: '127.0.0.1', help: 'interface to listen on (0.0.0.0 for every interface)' },
  { key: 'dataDir', env: 'DATA_DIR', flag: 'data-dir', kind: 'string', defaultValue: './data', help: 'folder for the LevelDB data files' },
  { key: 'logLevel', env: 'LOG_LEVEL', flag: 'log-level', kind: 'string', defaultValue: 'info', help: 'log level: fatal, error, warn, info, debug, trace or silent' },
  { key: 'pingIntervalMs', env: 'PING_INTERVAL_MS', flag: 'ping-interval-ms', kind: 'integer', defaultValue: String(limits.pingIntervalMs), help: 'ping an idle client this often (ms)' },
  { key: 'pingTimeoutMs', env: 'PING_TIMEOUT_MS', flag: 'ping-timeout-ms', kind: 'integer', defaultValue: String(limits.pingTimeoutMs), help: 'drop a client silent for ping interval + this (ms)' },
  { key: 'sessionGraceMs', env: 'SESSION_GRACE_MS', flag: 'session-grace-ms', kind: 'integer', defaultValue: String(limits.sessionGraceMs), help: 'keep a dropped session this long for its client to resume (ms)' },
  { key: 'pollHoldMs', env: 'POLL_HOLD_MS', flag: 'poll-hold-ms', kind: 'integer', defaultValue: String(limits.pollHoldMs), help: 'hold a long-poll request this long when nothing is waiting (ms)' },
  { key: 'maxFrameBytes', env: 'MAX_FRAME_BYTES', flag: 'max-frame-bytes', kind: 'integer', defaultValue: String(limits.maxFrameBytes), help: 'largest frame or WebSocket message accepted (bytes)' },
  { key: 'maxMessagesPerSecond', env: 'MAX_MESSAGES_PER_SECOND', flag: 'max-messages-per-second', kind: 'integer', defaultValue: String(limits.maxMessagesPerSecond), help: 'messages a client may send per second, bursts of twice that; more closes it with 4429 (0: off)' },
  { key: 'maxBytesPerSecond', env: 'MAX_BYTES_PER_SECOND', flag: 'max-bytes-per-second', kind: 'integer', defaultValue: String(limits.maxBytesPerSecond), help: 'bytes a client may send per second, bursts of twice that; more closes it with 4429 (0: off)' },
  { key: 'maxPollsPerSecond', env: 'MAX_POLLS_PER_SECOND', flag: 'max-polls-per-second', kind: 'integer', defaultValue: String(limits.maxPollsPerSecond), help: 'long-poll GETs (and stream reopens) per second per session not paced by the server (superseding a held poll, repeating an ack), bursts of twice that; stops a client hammering polls to burn CPU and bandwidth; more closes it with 4429 (0: off)' },
  { key: 'maxSessionsPerIp', env: 'MAX_SESSIONS_PER_IP', flag: 'max-sessions-per-ip', kind: 'integer', defaultValue: String(limits.maxSessionsPerIp), help: 'sessions and y-websocket sockets per client address; more are refused with 429 (0: off)' },
  { key: 'slowReaderBytes', env: 'SLOW_READER_BYTES', flag: 'slow-reader-bytes', kind: 'integer', defaultValue: String(limits.slowReaderBytes), help: 'drop a client with more unread bytes than this (4004) (0: off)' },
  { key: 'maxDocBytes', env: 'MAX_DOC_BYTES', flag: 'max-doc-bytes', kind: 'integer', defaultValue: String(limits.maxDocBytes), help: 'refuse updates growing a document past this size (413/4413) (0: off)' },
  { key: 'maxOpenRooms', env: 'MAX_OPEN_ROOMS', flag: 'max-open-rooms', kind: 'integer', defaultValue: String(limits.maxOpenRooms), help: 'most documents in memory; opening more is refused with 503 (0: off)' },
  { key: 'allowedOrigins', env: 'ALLOWED_ORIGINS', flag: 'allowed-origins', kind: 'list', defaultValue: '', help: 'comma-separated origins besides our own that browsers may connect from, e.g. https://a.example,https://b.example (empty: same-origin only)' },
]

/** Thrown for a setting that does not parse; main prints it and exits 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

/** The usage text for `--help`. */
export function usage(): string {
  const rows = settings.map((s) => `  --${s.flag.padEnd(24)} ${s.env.padEnd(24)} ${s.help} (default: ${s.defaultValue})`)
  return ['Usage: cometpad [options]', '', 'Each option can also be set by its environment variable; a flag wins.', '', '  flag                       variable                 meaning', ...rows, '  --help                                    print this help'].join('\n')
}

/**
 * Build the configuration from command-line arguments and environment
 * variables (flags win), with `overrides` on top (tests).
 */
export function loadConfig(argv: readonly string[] = [], env: NodeJS.ProcessEnv = {}, overrides: Partial<Config> = {}): Config {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } }
  for (const s of settings) options[s.flag] = { type: 'string' }
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: [...argv], options, allowPositionals: false, strict: true }).values
  } catch (error) {
    throw new ConfigError((error as Error).message)
  }
  const config: Record<string, string | number | string[]> = {}
  for (const s of settings) {
    const flagValue = values[s.flag]
    const raw = typeof flagValue === 'string' ? flagValue : (env[s.env] ?? s.defaultValue)
    if (s.kind === 'integer') {
      const value = Number(raw)
      if (!Number.isSafeInteger(value) || value < 0) throw new ConfigError(`${s.env} / --${s.flag} must be a whole number ≥ 0, got "${raw}"`)
      config[s.key] = value
    } else if (s.kind === 'list') {
      const entries = raw.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
      try {
        config[s.key] = entries.map(normaliseOrigin)
      } catch (error) {
        throw new ConfigError(`${s.env} / --${s.flag}: ${(error as Error).message}`)
      }
    } else {
      config[s.key] = raw
    }
  }
  const result = { ...(config as unknown as Config), ...overrides }
  if (result.port > 65535) throw new ConfigError(`PORT must be at most 65535, got ${result.port}`)
  result.dataDir = path.resolve(result.dataDir)
  // Overrides (tests) bypass the parsing above: normalise them the same way.
  try {
    result.allowedOrigins = result.allowedOrigins.map(normaliseOrigin)
  } catch (error) {
    throw new ConfigError(`ALLOWED_ORIGINS / --allowed-origins: ${(error as Error).message}`)
  }
  return result
}

/** Whether the arguments ask for `--help`. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h')
}
