/**
 * Start a real Cometpad server on 127.0.0.1:0 with a fresh temporary data
 * folder (real LevelDB files), and tear it all down afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { createServer, type CometpadServer, type ServerDeps } from '../../server/app'
import { loadConfig, type Config } from '../../server/config'

/** A running test server and how to stop it. */
export interface TestServer extends CometpadServer {
  dataDir: string
  /** `ws://127.0.0.1:<port>` */
  wsUrl: string
  /** Close the server and delete its data folder. */
  stop(): Promise<void>
}

/** A fresh temporary folder; the caller removes it. */
export function tempDir(prefix = 'cometpad-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix))
}

/** Start a server. Pass `dataDir` to reuse a folder (restart tests); it is then not deleted. */
export async function startServer(overrides: Partial<Config> = {}, deps: ServerDeps = {}): Promise<TestServer> {
  const ownsDir = overrides.dataDir === undefined
  const dataDir = overrides.dataDir ?? (await tempDir())
  const config = loadConfig([], {}, { port: 0, host: '127.0.0.1', logLevel: 'silent', ...overrides, dataDir })
  const logger = deps.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' })
  const server = await createServer(config, { ...deps, logger })
  return {
    ...server,
    dataDir,
    wsUrl: server.url.replace(/^http/, 'ws'),
    async stop() {
      await server.close()
      if (ownsDir) await rm(dataDir, { recursive: true, force: true })
    },
  }
}

/**
 * Stop `server` and start a new one on the same data folder and port, as
 * an operator's restart would. The returned server's `stop()` also deletes
 * the folder if the first server owned it.
 */
export async function restartServer(server: TestServer, overrides: Partial<Config> = {}, deps: ServerDeps = {}): Promise<TestServer> {
  await server.close()
  const port = Number(new URL(server.url).port)
  const restarted = await startServer({ ...overrides, dataDir: server.dataDir, port }, deps)
  return {
    ...restarted,
    async stop() {
      await restarted.stop()
      await server.stop()
    },
  }
}
