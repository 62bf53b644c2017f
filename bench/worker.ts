/**
 * A benchmark client worker: a child process that holds many headless
 * clients and does what the coordinator (run.ts) tells it over IPC. Several
 * run side by side when one process could not keep up with the clients.
 */
import { connectBenchClient, type BenchClient } from './clients'
import { createHistogram, encodeHistogram, recordMs } from './histogram'
import { Typist, now, sendTimes } from './keystrokes'
import type { ClientSpec, WorkerCommand, WorkerReply, WorkerReport } from './worker-protocol'

interface Connected {
  spec: ClientSpec
  client: BenchClient
  typist: Typist | null
  /** Cometpad writers: measured updates awaiting Saved, oldest first. */
  unsaved: Array<{ id: number; sentAt: number }>
  /** Keystrokes sent inside the window. */
  sent: number
}

let clients: Connected[] = []
let latency = createHistogram()
let saved = createHistogram()
let received = 0
let messages = 0
let window = { start: Infinity, end: -Infinity }
let ticker: NodeJS.Timeout | null = null

function reply(message: WorkerReply): void {
  process.send!(message)
}

async function open(command: Extract<WorkerCommand, { cmd: 'open' }>): Promise<number> {
  const started = now()
  let next = 0
  const connectOne = async (): Promise<void> => {
    while (next < command.clients.length) {
      const spec = command.clients[next++]!
      const typist = spec.writer ? new Typist() : null
      const ownClientId = typist?.clientId ?? null
      const unsaved: Connected['unsaved'] = []
      const client = connectBenchClient(command.target, spec.doc, {
        onUpdate(update) {
          messages++
          if (!spec.probe) return
          const arrived = now()
          for (const t of sendTimes(update, ownClientId)) {
            if (t < window.start || t > window.end) continue
            received++
            recordMs(latency, arrived - t)
          }
        },
        onSaved(updateId) {
          const arrived = now()
          while (unsaved.length > 0 && unsaved[0]!.id <= updateId) recordMs(saved, arrived - unsaved.shift()!.sentAt)
        },
      })
      clients.push({ spec, client, typist, unsaved, sent: 0 })
      await client.synced
    }
  }
  await Promise.all(Array.from({ length: command.concurrency }, connectOne))
  return now() - started
}

function startTyping(command: Extract<WorkerCommand, { cmd: 'type' }>): void {
  window = { start: command.windowStart, end: command.windowEnd }
  latency = createHistogram()
  saved = createHistogram()
  received = 0
  messages = 0
  const intervalMs = 1000 / command.ratePerWriter
  const writers = clients.filter((entry) => entry.typist)
  // Spread the writers' keystrokes evenly over one interval.
  const due = writers.map(() => command.startAt + Math.random() * intervalMs)
  for (const writer of writers) {
    writer.sent = 0
    writer.unsaved.length = 0
  }
  const tick = (): void => {
    const t = now()
    writers.forEach((writer, i) => {
      // Catch up after a late tick, so the offered load stays what was asked.
      while (due[i]! <= t && due[i]! <= command.windowEnd) {
        due[i]! += intervalMs
        const { update, sentAt } = writer.typist!.keystroke()
        const id = writer.client.send(update)
        if (sentAt < command.windowStart || sentAt > command.windowEnd) continue
        writer.sent++
        if (id > 0) writer.unsaved.push({ id, sentAt })
      }
    })
    if (t > command.windowEnd && ticker) {
      clearInterval(ticker)
      ticker = null
    }
  }
  ticker = setInterval(tick, Math.max(1, Math.min(5, intervalMs / 2)))
}

function report(): WorkerReport {
  return {
    latency: encodeHistogram(latency),
    saved: encodeHistogram(saved),
    writers: clients.filter((entry) => entry.typist).map((entry) => ({ doc: entry.spec.doc, probe: entry.spec.probe, sent: entry.sent })),
    received,
    messages,
  }
}

function close(): void {
  if (ticker) clearInterval(ticker)
  ticker = null
  for (const entry of clients) entry.client.close()
  clients = []
}

process.on('message', (command: WorkerCommand) => {
  const run = async (): Promise<WorkerReply> => {
    switch (command.cmd) {
      case 'open':
        return { ok: true, cmd: 'open', ms: await open(command) }
      case 'type':
        startTyping(command)
        return { ok: true, cmd: 'type' }
      case 'report':
        return { ok: true, cmd: 'report', report: report() }
      case 'close':
        close()
        return { ok: true, cmd: 'close' }
    }
  }
  run().then(reply, (error: unknown) => reply({ ok: false, error: error instanceof Error ? error.message : String(error) }))
})

// The coordinator closing IPC means the benchmark is over.
process.on('disconnect', () => {
  close()
  process.exit(0)
})
