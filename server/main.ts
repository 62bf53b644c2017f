/**
 * The command-line entry point: read the configuration, start the server,
 * print where to open it, and shut down gracefully on SIGTERM or SIGINT.
 */
import { ConfigError, loadConfig, usage, wantsHelp } from './config'
import { createLogger, createServer } from './app'
import { warmUp } from './warm-up'

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  if (wantsHelp(argv)) {
    process.stdout.write(`${usage()}\n`)
    return
  }
  let config
  try {
    config = loadConfig(argv, process.env)
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`cometpad: ${error.message}\n\n${usage()}\n`)
      process.exit(2)
    }
    throw error
  }
  const logger = createLogger(config)
  // Before the real server listens, so its first clients after a restart do not pay for compiling the hot paths.
  await warmUp(config, logger)
  let server
  try {
    server = await createServer(config, { logger })
  } catch (error) {
    // The usual first-run failure: say what to do, not only what happened.
    const hint = (error as NodeJS.ErrnoException).code === 'EADDRINUSE' ? `\nport ${config.port} on ${config.host} is taken (another Cometpad?); choose another with --port or PORT` : ''
    process.stderr.write(`cometpad: could not start: ${(error as Error).message}${hint}\n`)
    process.exit(1)
  }
  process.stdout.write(`Cometpad listening on ${server.url}\n`)
  server.logger.info({ url: server.url, dataDir: config.dataDir }, 'listening')

  let signals = 0
  const stop = (signal: NodeJS.Signals): void => {
    signals++
    if (signals > 1) {
      server.logger.warn({ signal }, 'second signal: exiting without waiting for pending writes')
      process.exit(1)
    }
    server.logger.info({ signal }, 'shutting down: finishing pending writes')
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        server.logger.error({ err: error }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((error: unknown) => {
  process.stderr.write(`cometpad: ${(error as Error).stack ?? String(error)}\n`)
  process.exit(1)
})
