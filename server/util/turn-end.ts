/**
 * Work deferred to the end of the current event-loop turn, all of it in one
 * `setImmediate`. Rooms coalesce the updates of a turn into one broadcast
 * and sessions batch the frames of a turn into one write; both schedule
 * here, so a room's broadcast and the sessions' flushes it causes run in
 * the same pass instead of one loop iteration apart, and a busy server
 * allocates one immediate per turn instead of one per session.
 *
 * A second lane, {@link afterTurnSends}, is for work that should not hold
 * up the sends but must not wait long behind them either: the store's
 * synced write of the turn's updates. Handing a write to LevelDB's thread
 * pool wakes one of its threads, which held the event loop 150-380 µs on
 * this VM when it came before the sockets were written (timestamps in the
 * server, scratch). `npm run bench -- --only=typing --scenarios=2,50`, three
 * runs each way: with two clients a keystroke arrived in 1.5 / 1.5 / 1.5 ms
 * at the median with the write after the sends, against 2.0 / 1.9 / 2.1
 * with it first; its saved confirmation in 2.7-2.8 against 2.6-3.0 ms.
 * With two hundred clients the sends of one broadcast take milliseconds,
 * so the write starts once the pass has run {@link lateTaskDelayMs}: its
 * fsync still overlaps the rest of the sends, and the saved confirmations
 * (sent once the pass is over) wait no longer. There, three runs each way
 * were within the noise (p50 5.3 / 8.0 / 6.4 ms against 8.1 / 6.4 / 8.5;
 * saved p99 26.7 / 38.3 / 26.2 against 37.4 / 27.0 / 41.7).
 */

/**
 * An object that is its own task, for what schedules itself often and
 * exists many times over (a session per client): a callback would cost
 * each instance a closure for its whole life.
 */
export interface TurnEndTask {
  runAtTurnEnd(): void
}

/** How long a pass runs {@link atTurnEnd} tasks before it runs the {@link afterTurnSends} tasks waiting. */
export const lateTaskDelayMs = 1

const queue: Array<(() => void) | TurnEndTask> = []
const late: Array<() => void> = []
let isScheduled = false

/** Run `task` once the I/O of this turn is handled; tasks added while the queue runs join this same pass. */
export function atTurnEnd(task: (() => void) | TurnEndTask): void {
  queue.push(task)
  schedule()
}

/**
 * Run `task` in this turn's pass after the {@link atTurnEnd} tasks, those
 * they add included, or once the pass has run for {@link lateTaskDelayMs},
 * whichever comes first.
 */
export function afterTurnSends(task: () => void): void {
  late.push(task)
  schedule()
}

function schedule(): void {
  if (isScheduled) return
  isScheduled = true
  setImmediate(drain)
}

function drain(): void {
  const started = performance.now()
  let failure: { error: unknown } | null = null
  // Index loop: tasks scheduled by tasks are appended and run in this pass.
  let next = 0
  for (;;) {
    if (late.length > 0 && (next === queue.length || performance.now() - started >= lateTaskDelayMs)) {
      for (const task of late.splice(0)) {
        const thrown = run(task)
        failure ??= thrown
      }
      continue
    }
    if (next === queue.length) break
    // Not `failure ??= run(…)`: that would skip the task once one failed.
    const thrown = run(queue[next++]!)
    failure ??= thrown
  }
  queue.length = 0
  isScheduled = false
  if (failure) throw failure.error
}

/**
 * Run one task; returns what it threw, if it threw. One failing task must
 * not strand the others: the pass rethrows the first error once every task
 * has run, as an exception in a setImmediate callback would be.
 */
function run(task: (() => void) | TurnEndTask): { error: unknown } | null {
  try {
    if (typeof task === 'function') task()
    else task.runAtTurnEnd()
    return null
  } catch (error) {
    return { error }
  }
}
