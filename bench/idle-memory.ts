/**
 * How much server memory an idle client costs, per transport: start the
 * built server as a child process, connect N idle clients (long-polling:
 * a held poll each; WebSocket: an open socket each), and read the child's
 * resident memory from /proc before and after.
 *
 *   node --import tsx bench/idle-memory.ts [clients=2000]
 */
import http from 'node:http'
import { readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import WebSocket from 'ws'
import { decodeBatch, FrameKind } from '../common/comet/frame'
import { parseHandshake } from '../common/comet/handshake'
import { spawnServer } from '../test/helpers/server-process'
import { tempDir } from '../test/helpers/start-server'

const clients = Number(process.argv[2] ?? 2000)

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 'NaN')
  return kb * 1024
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 1_500))

async function measure(transport: 'long-poll' | 'websocket'): Promise<number> {
  const dataDir = await tempDir('cometpad-bench-')
  const server = await spawnServer({ DATA_DIR: dataDir, POLL_HOLD_MS: '120000', PING_INTERVAL_MS: '120000', LOG_LEVEL: 'warn' })
  const pid = server.child.pid!
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity })
  const sockets: WebSocket[] = []
  const requests: http.ClientRequest[] = []
  try {
    // Warm up: one client of each kind, so lazily loaded code is counted in the baseline.
    await settle()
    const before = rssBytes(pid)
    for (let i = 0; i < clients; i++) {
      if (transport === 'websocket') {
        const socket = new WebSocket(`${server.url.replace('http', 'ws')}/comet/ws`)
        await new Promise((resolve, reject) => {
          socket.once('message', resolve)
          socket.once('error', reject)
        })
        sockets.push(socket)
      } else {
        const hello = await fetch(`${server.url}/comet/poll`)
        const [frame] = decodeBatch(new Uint8Array(await hello.arrayBuffer()), 1 << 20)
        const sid = frame?.kind === FrameKind.Hello ? parseHandshake(frame.json)?.sid : undefined
        if (!sid) throw new Error('no handshake in the first poll response')
        const request = http.get(`${server.url}/comet/poll?sid=${sid}&ack=0`, { agent })
        request.on('error', () => {})
        requests.push(request)
      }
    }
    await settle()
    const after = rssBytes(pid)
    return (after - before) / clients
  } finally {
    for (const socket of sockets) socket.terminate()
    for (const request of requests) request.destroy()
    agent.destroy()
    server.child.kill('SIGKILL')
    await server.exited
    await rm(dataDir, { recursive: true, force: true })
  }
}

for (const transport of ['long-poll', 'websocket'] as const) {
  const perClient = await measure(transport)
  console.log(`${transport}: ${(perClient / 1024).toFixed(1)} KiB server RSS per idle client (${clients} clients)`)
}
