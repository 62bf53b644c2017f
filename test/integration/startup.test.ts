import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'
import { spawnServer } from '../helpers/server-process'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

describe('starting the server', () => {
  it('on a port that is taken, exits with 1 and says how to choose another', async () => {
    const firstDir = await mkdtemp(path.join(os.tmpdir(), 'cometpad-startup-'))
    const secondDir = await mkdtemp(path.join(os.tmpdir(), 'cometpad-startup-'))
    const first = await spawnServer({ DATA_DIR: firstDir })
    try {
      const port = new URL(first.url).port
      const second = spawn(process.execPath, [path.join(root, 'dist/server/main.js')], {
        env: { PATH: process.env.PATH ?? '', PORT: port, DATA_DIR: secondDir, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stderr = ''
      second.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
      const code = await new Promise<number | null>((resolve) => second.on('exit', (exitCode) => resolve(exitCode)))
      assert.equal(code, 1)
      assert.match(stderr, /could not start: .*EADDRINUSE/)
      assert.match(stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is taken .*--port or PORT`))
    } finally {
      first.child.kill('SIGTERM')
      await first.exited
      await rm(firstDir, { recursive: true, force: true })
      await rm(secondDir, { recursive: true, force: true })
    }
  })
})
