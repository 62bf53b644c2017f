import assert from 'node:assert/strict'
import { existsSync, readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { loadConfig } from '../../../server/config'
import { warmUp, warmUpDirPrefix } from '../../../server/warm-up'
import { waitFor } from '../../helpers/wait-for'

interface LogLine {
  level: number
  msg: string
  ms?: number
  err?: { message: string }
}

/** Network handles (servers and sockets) open right now. */
function networkHandles(): number {
  return process.getActiveResourcesInfo().filter((name) => name.startsWith('TCP')).length
}

describe('warmUp', () => {
  let dir: string
  /** The real server's data folder: the warm-up must not create it. */
  let dataDir: string
  const lines: LogLine[] = []
  /** The warm-up stores' temporary folders before and after it ran. */
  const warmUpDirs = (): string[] => readdirSync(os.tmpdir()).filter((name) => name.startsWith(warmUpDirPrefix))
  let dirsBefore: string[] = []
  let dirsAfter: string[] = []

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cometpad-warm-up-'))
    dataDir = path.join(dir, 'data')
    const config = loadConfig(['--port', '0', '--data-dir', dataDir], {})
    const handlesBefore = networkHandles()
    dirsBefore = warmUpDirs()
    await warmUp(config, pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }))
    // A closed socket leaves the handle list in a later turn of the event loop.
    await waitFor(() => networkHandles() === handlesBefore, 'the loopback server and its clients to be closed', 2_000)
    dirsAfter = warmUpDirs()
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('runs every round of the exchange to the end (a round that fails or times out logs a warning)', () => {
    assert.deepEqual(
      lines.filter((line) => line.level >= 40).map((line) => `${line.msg}: ${line.err?.message ?? ''}`),
      [],
    )
    const done = lines.find((line) => line.msg === 'warmed up')
    assert.ok(done, 'the warm-up reports how long it took')
    assert.equal(typeof done.ms, 'number')
  })

  it('logs nothing at info or above: its sessions and rooms are private', () => {
    assert.deepEqual(lines.filter((line) => line.level >= 30), [])
  })

  it('deletes the temporary folder of its LevelDB store', () => {
    assert.deepEqual(dirsAfter, dirsBefore)
  })

  it('writes nothing to the real store', () => {
    assert.equal(existsSync(dataDir), false, 'the data folder was never created')
  })
})
