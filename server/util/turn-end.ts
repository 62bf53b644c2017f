/**
 * Work deferred to the end of the current event-loop turn, all of it in one
 * `setImmediate`. Rooms coalesce the updates of a turn into one broadcast
 * and sessions batch the frames of a turn into one write; both schedule
 * here, so a room's broadcast and the sessions' flushes it causes run in
 * the same pass instead of one loop iteration apart, and a busy server
 * allocates one immediate per turn instead of one per session.
 */

/**
 * An object that is its own task, for what schedules itself often and
 * exists many times over (a session per client): a callback would cost
 * each instance a closure for its whole life.
 */
export interface TurnEndTask {
  runAtTurnEnd(): void
}

const queue: Array<(() => void) | TurnEndTask> = []
let isScheduled = false

/** Run `task` once the I/O of this turn is handled; tasks added while the queue runs join this same pass. */
export function atTurnEnd(task: (() => void) | TurnEndTask): void {
  queue.push(task)
  if (isScheduled) return
  isScheduled = true
  setImmediate(drain)
}

function drain(): void {
  let failure: { error: unknown } | null = null
  // Index loop: tasks scheduled by tasks are appended and run in this pass.
  for (let i = 0; i < queue.length; i++) {
    try {
      const task = queue[i]!
      if (typeof task === 'function') task()
      else task.runAtTurnEnd()
    } catch (error) {
      // One failing task must not strand the others; the first error is
      // rethrown below, as an exception in a setImmediate callback would be.
      failure ??= { error }
    }
  }
  queue.length = 0
  isScheduled = false
  if (failure) throw failure.error
}
