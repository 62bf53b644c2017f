/**
 * Waiting for events instead of sleeping: poll a condition on every
 * event-loop turn (cheap timers of 5 ms) until it holds or the timeout
 * passes, then fail with a message saying what was awaited.
 */

/** Resolve once `condition()` is truthy; reject after `timeoutMs` with `what`. */
export async function waitFor<T>(condition: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown = null
  for (;;) {
    try {
      const value = await condition()
      if (value) return value as NonNullable<T>
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      const suffix = lastError ? ` (last error: ${(lastError as Error).message})` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${suffix}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Resolve with the arguments of the next `event` from an emitter with `once`. */
export function nextEvent<A extends unknown[]>(
  emitter: { once(event: string, listener: (...args: A) => void): unknown },
  event: string,
  timeoutMs = 10_000,
): Promise<A> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for "${event}"`)), timeoutMs)
    emitter.once(event, (...args: A) => {
      clearTimeout(timer)
      resolve(args)
    })
  })
}
