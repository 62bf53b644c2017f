/**
 * A typed event emitter with lib0's ObservableV2 interface (`on`, `once`,
 * `off`, `emit`, `destroy`), written here for two costs lib0's has on our
 * hot paths:
 *
 * - Time: lib0 copies the listeners into a new array on every emit (and
 *   makes an empty Map when there are none), the largest single cost of a
 *   client receiving a busy document (the Channel and its transport emit
 *   once per message), and on the server per session.
 * - Memory: lib0 keeps a Map of event names to a Set per event, about
 *   1 KB for an object with three events. The server holds a session and a
 *   transport per connected client, so that was an eighth of the memory
 *   an idle WebSocket client cost (heap snapshot, `npm run bench -- --only=memory`).
 *
 * Here each event holds its lone listener directly, or an array of them,
 * in one plain object. A lone listener is called directly; several are
 * called from a copy, so a listener added during an emit waits for the
 * next one, as in lib0. Adding a listener twice adds it once (lib0 keeps a Set).
 */

// The constraint is lib0's own (its listeners take any arguments).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyListener = (...args: any[]) => void

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export class Observable<EVENTS extends { [key in keyof EVENTS]: (...args: any[]) => void }> {
  /** Event name → its listener, or its listeners when there are several. Names are never deleted (that would make the object a slow dictionary); an event without listeners holds undefined. */
  private listeners: Record<string, AnyListener | AnyListener[] | undefined> = {}

  /** Call `f` on every `name` event until it is removed with {@link off}. */
  on<NAME extends keyof EVENTS & string>(name: NAME, f: EVENTS[NAME]): EVENTS[NAME] {
    const current = this.listeners[name]
    if (current === undefined) this.listeners[name] = f
    else if (typeof current === 'function') {
      if (current !== f) this.listeners[name] = [current, f]
    } else if (!current.includes(f)) current.push(f)
    return f
  }

  /** Call `f` on the next `name` event only. */
  once<NAME extends keyof EVENTS & string>(name: NAME, f: EVENTS[NAME]): void {
    const once = ((...args: Parameters<EVENTS[NAME]>) => {
      this.off(name, once)
      f(...args)
    }) as EVENTS[NAME]
    this.on(name, once)
  }

  /** Stop calling `f` on `name` events. */
  off<NAME extends keyof EVENTS & string>(name: NAME, f: EVENTS[NAME]): void {
    const current = this.listeners[name]
    if (current === f) this.listeners[name] = undefined
    else if (Array.isArray(current)) {
      const index = current.indexOf(f)
      if (index === -1) return
      // A new array, not a splice: an emit under way keeps its own copy either way.
      const rest = current.filter((_, i) => i !== index)
      this.listeners[name] = rest.length === 1 ? rest[0] : rest
    }
  }

  /** Call every listener of `name` with `args`. */
  emit<NAME extends keyof EVENTS & string>(name: NAME, args: Parameters<EVENTS[NAME]>): void {
    const current = this.listeners[name]
    if (current === undefined) return
    if (typeof current === 'function') {
      current(...args)
      return
    }
    for (const listener of [...current]) listener(...args)
  }

  /** Remove every listener. */
  destroy(): void {
    this.listeners = {}
  }
}
