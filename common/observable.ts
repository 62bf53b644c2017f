/**
 * lib0's ObservableV2 with a cheaper `emit`. lib0 copies the listeners
 * into a new array on every emit (and makes an empty Map when there are
 * none), which showed up as the largest single cost of a client receiving
 * a busy document (the Channel and its transport emit once per message),
 * and on the server per session. Here a lone listener — the usual case on
 * those paths — is called directly; several are still called from a copy,
 * so a listener added during an emit waits for the next one, as in lib0.
 */
import { ObservableV2 } from 'lib0/observable'

// The constraint is lib0's own (its listeners take any arguments).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export class Observable<EVENTS extends { [key in keyof EVENTS]: (...args: any[]) => void }> extends ObservableV2<EVENTS> {
  override emit<NAME extends keyof EVENTS & string>(name: NAME, args: Parameters<EVENTS[NAME]>): void {
    const observers = this._observers.get(name)
    if (observers === undefined) return
    if (observers.size === 1) {
      for (const listener of observers) (listener as EVENTS[NAME])(...args)
      return
    }
    for (const listener of [...observers]) (listener as EVENTS[NAME])(...args)
  }
}
