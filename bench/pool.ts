/** The benchmark's client worker processes, and request/reply over their IPC channels. */
import { fork, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { readCpuMs } from './servers'
import type { WorkerCommand, WorkerReply } from './worker-protocol'

const here = path.dirname(fileURLToPath(import.meta.url))

type Reply<C extends WorkerCommand['cmd']> = Extract<WorkerReply, { ok: true; cmd: C }>

/** One worker: commands are answered in order, one reply each. */
class Worker {
  private readonly child: ChildProcess
  private readonly waiting: Array<{ resolve(reply: WorkerReply): void; reject(error: Error): void }> = []

  constructor() {
    this.child = fork(path.join(here, 'worker.ts'), [], { execArgv: ['--import', 'tsx', ...(process.env.BENCH_WORKER_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_WORKER_PROF}`] : [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (reply: WorkerReply) => this.waiting.shift()?.resolve(reply))
    this.child.on('exit', (code, signal) => {
      for (const waiter of this.waiting.splice(0)) waiter.reject(new Error(`bench worker exited (${code ?? signal})`))
    })
  }

  async call<C extends WorkerCommand['cmd']>(command: Extract<WorkerCommand, { cmd: C }>): Promise<Reply<C>> {
    const reply = await new Promise<WorkerReply>((resolve, reject) => {
      this.waiting.push({ resolve, reject })
      this.child.send(command)
    })
    if (!reply.ok) throw new Error(`bench worker: ${command.cmd} failed: ${reply.error}`)
    if (reply.cmd !== command.cmd) throw new Error(`bench worker answered ${reply.cmd} to ${command.cmd}`)
    return reply as Reply<C>
  }

  get pid(): number {
    return this.child.pid ?? 0
  }

  /** Let the worker exit on its own (closing IPC), so profiles and buffers are flushed. */
  end(): void {
    if (this.child.connected) this.child.disconnect()
  }
}

/** A fixed set of workers. */
export class WorkerPool {
  readonly workers: Worker[]

  constructor(size: number) {
    this.workers = Array.from({ length: size }, () => new Worker())
  }

  /** Send each worker its own command (or none) and wait for every reply. */
  each<C extends WorkerCommand['cmd']>(command: (index: number) => Extract<WorkerCommand, { cmd: C }> | null): Promise<Array<Reply<C> | null>> {
    return Promise.all(
      this.workers.map((worker, index) => {
        const one = command(index)
        return one ? worker.call(one) : Promise.resolve(null)
      }),
    )
  }

  /** CPU time the workers have used so far, in ms (all clients together). */
  cpuMs(): number {
    return this.workers.reduce((sum, worker) => sum + readCpuMs(worker.pid), 0)
  }

  close(): void {
    for (const worker of this.workers) worker.end()
  }
}
