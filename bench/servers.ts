/**
 * The servers under test, each started as its own child process so that its
 * memory and CPU can be read alone from /proc:
 * - Cometpad: the built server (dist/server/main.js) with LevelDB in a
 *   fresh folder, the way `npm start` runs it;
 * - the y-websocket reference server (@y/websocket-server's own bin);
 * - Hocuspocus (bench/peers/hocuspocus.mjs).
 * The peers keep documents in memory only; Cometpad writes every update to
 * disk (`sync: true`) before it confirms it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ServerKind } from './clients'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

export interface RunningServer {
  kind: ServerKind
  url: string
  pid: number
  /** Resident memory now, in bytes. */
  rss(): number
  /** CPU time used so far (user + system), in ms. */
  cpuMs(): number
  /**
   * Cometpad: the server's event-loop delay p99 since the previous call, in
   * ms (its /metrics gauge, sampled every 10 ms); null for the peers.
   */
  loopLagMs(): Promise<number | null>
  /** Run a full garbage collection in the server (see peers/gc-preload.cjs); resolves with its live JS heap, in bytes. */
  collectGarbage(): Promise<number>
  /** Create a document and return its name (Cometpad needs one created; the peers take any name). */
  createDoc(): Promise<string>
  /** Cometpad: its data folder. */
  dataDir: string | null
  /** Stop gracefully (SIGTERM) and wait for the exit; deletes the data folder unless `keepData`. */
  stop(): Promise<void>
  /** Delete the data folder (after a `keepData` stop). */
  removeData(): Promise<void>
}

/**
 * The per-IP and per-session limits protect a public server from one
 * client; every benchmark client comes from 127.0.0.1 and the load is the
 * point, so the benchmark lifts them. Everything else is the default.
 */
const cometpadBenchEnv = {
  MAX_SESSIONS_PER_IP: '100000',
  MAX_MESSAGES_PER_SECOND: '100000',
  MAX_BYTES_PER_SECOND: String(256 * 1024 * 1024),
  LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

export function readRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 'NaN') * 1024
}

export function readCpuMs(pid: number): number {
  // Fields 14 and 15 of /proc/<pid>/stat, after the parenthesised command name.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks * 1000) / 100 // USER_HZ is 100 on Linux
}

/** Every server started and not yet stopped: killed if the benchmark exits early, so none outlives it. */
const running = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/** Spawn `args` and resolve with the URL once stdout matches `ready`. */
function spawnUntil(args: string[], env: Record<string, string>, ready: RegExp, nodeFlags: readonly string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const gcArgs = ['--expose-gc', '--require', path.join(root, 'bench/peers/gc-preload.cjs')]
  const child = spawn(process.execPath, [...gcArgs, ...nodeFlags, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  running.add(child)
  child.once('exit', () => running.delete(child))
  let stdout = ''
  let stderr = ''
  if (process.env.BENCH_SERVER_LOG) child.stdout!.pipe(process.stderr)
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
    if (stderr.length > 64 * 1024) stderr = stderr.slice(-32 * 1024)
  })
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      stdout += chunk.toString()
      const match = ready.exec(stdout)
      if (!match) return
      child.stdout!.off('data', onData)
      child.stdout!.resume()
      child.off('exit', onExit)
      resolve({ child, url: match[1]! })
    }
    const onExit = (code: number | null): void => reject(new Error(`${args.join(' ')} exited (${code}) before listening: ${stderr}`))
    child.stdout!.on('data', onData)
    child.once('exit', onExit)
  })
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.once('exit', () => {
      clearTimeout(kill)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

let docCounter = 0

/** The answer of `bench/peers/gc-preload.cjs` to a garbage collection request. */
function isGcDone(message: unknown): message is { gcDone: true; heapUsedBytes: number } {
  return typeof message === 'object' && message !== null && 'gcDone' in message && 'heapUsedBytes' in message && typeof message.heapUsedBytes === 'number'
}

/**
 * `BENCH_CPU_PROF=<dir>` writes a V8 CPU profile of each server run (ours
 * and the peers') to `<dir>/<server>/` (open it in Chrome DevTools or
 * speedscope), sampling every
 * `BENCH_CPU_PROF_INTERVAL` µs (default 1000); `BENCH_HEAP_SIGNAL=1`
 * lets SIGUSR2 write a heap snapshot; `BENCH_TRACE_GC=1` logs every garbage
 * collection, `BENCH_TRACE_GC=nvp` with every phase and size (with
 * `BENCH_SERVER_LOG=1` to see it).
 */
function profileArgs(kind: ServerKind): string[] {
  const dir = process.env.BENCH_CPU_PROF
  return [
    ...(dir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, kind)}`] : []),
    ...(dir && process.env.BENCH_CPU_PROF_INTERVAL ? [`--cpu-prof-interval=${process.env.BENCH_CPU_PROF_INTERVAL}`] : []),
    ...(process.env.BENCH_HEAP_SIGNAL ? ['--heapsnapshot-signal=SIGUSR2'] : []),
    ...(process.env.BENCH_TRACE_GC ? [process.env.BENCH_TRACE_GC === 'nvp' ? '--trace-gc-nvp' : '--trace-gc'] : []),
  ]
}

/** Options for starting Cometpad. */
export interface StartOptions {
  /** Reuse this data folder (a restart); by default a fresh one that `stop` deletes. */
  dataDir?: string
  /** Keep the data folder on stop (to restart on it). */
  keepData?: boolean
  /** Extra Node and V8 flags; the memory workload passes the same to every server. */
  nodeFlags?: readonly string[]
}

export async function startServer(kind: ServerKind, options: StartOptions = {}): Promise<RunningServer> {
  let child: ChildProcess
  let url: string
  let dataDir: string | null = null
  if (kind === 'cometpad') {
    dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'cometpad-bench-')))
    ;({ child, url } = await spawnUntil(
      [...profileArgs(kind), path.join(root, 'dist/server/main.js')],
      { ...cometpadBenchEnv, HOST: '127.0.0.1', PORT: '0', DATA_DIR: dataDir },
      /Cometpad listening on (http:\/\/\S+)/,
      options.nodeFlags,
    ))
  } else if (kind === 'y-websocket') {
    const port = await freePort()
    ;({ child } = await spawnUntil([...profileArgs(kind), path.join(root, 'node_modules/@y/websocket-server/src/server.js')], { HOST: '127.0.0.1', PORT: String(port) }, /(running) at/, options.nodeFlags))
    url = `http://127.0.0.1:${port}`
  } else {
    ;({ child, url } = await spawnUntil([...profileArgs(kind), path.join(root, 'bench/peers/hocuspocus.mjs')], { PORT: '0' }, /listening on (http:\/\/\S+)/, options.nodeFlags))
  }
  const pid = child.pid!
  return {
    kind,
    url,
    pid,
    rss: () => readRss(pid),
    cpuMs: () => readCpuMs(pid),
    collectGarbage() {
      return new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${kind} did not answer a garbage collection request`)), 10_000)
        const onMessage = (message: unknown): void => {
          if (!isGcDone(message)) return
          clearTimeout(timer)
          child.off('message', onMessage)
          resolve(message.heapUsedBytes)
        }
        child.on('message', onMessage)
        child.send('bench:gc')
      })
    },
    async loopLagMs() {
      if (kind !== 'cometpad') return null
      const response = await fetch(`${url}/metrics`)
      const match = /^cometpad_event_loop_lag_seconds (\S+)$/m.exec(await response.text())
      return match ? Number(match[1]) * 1000 : null
    },
    async createDoc() {
      if (kind !== 'cometpad') return `bench-${process.pid}-${++docCounter}`
      const response = await fetch(`${url}/api/docs`, { method: 'POST' })
      if (!response.ok) throw new Error(`POST /api/docs answered ${response.status}`)
      const { id } = (await response.json()) as { id: string }
      return id
    },
    dataDir,
    async stop() {
      await stopChild(child)
      if (dataDir && !options.keepData) await rm(dataDir, { recursive: true, force: true })
    },
    async removeData() {
      if (dataDir) await rm(dataDir, { recursive: true, force: true })
    },
  }
}
