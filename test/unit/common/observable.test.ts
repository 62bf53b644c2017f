import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Observable } from '../../../common/observable'

type Events = {
  tick: (n: number) => void
  done: () => void
}

describe('Observable', () => {
  it('calls every listener of an event with its arguments, and none of another event', () => {
    const observable = new Observable<Events>()
    const calls: string[] = []
    observable.on('tick', (n) => calls.push(`a${n}`))
    observable.on('tick', (n) => calls.push(`b${n}`))
    observable.on('done', () => calls.push('done'))
    observable.emit('tick', [1])
    assert.deepEqual(calls, ['a1', 'b1'])
  })

  it('adds a listener given twice once, as lib0 does', () => {
    const observable = new Observable<Events>()
    let calls = 0
    const listener = () => calls++
    observable.on('tick', listener)
    observable.on('tick', listener)
    observable.emit('tick', [1])
    assert.equal(calls, 1)
    const other = () => {}
    observable.on('tick', other)
    observable.on('tick', listener)
    observable.emit('tick', [2])
    assert.equal(calls, 2)
  })

  it('removes listeners with off, from one and from several', () => {
    const observable = new Observable<Events>()
    const calls: string[] = []
    const a = (n: number) => calls.push(`a${n}`)
    const b = (n: number) => calls.push(`b${n}`)
    observable.on('tick', a)
    observable.off('tick', a)
    observable.emit('tick', [1])
    assert.deepEqual(calls, [])
    observable.on('tick', a)
    observable.on('tick', b)
    observable.off('tick', a)
    observable.emit('tick', [2])
    observable.off('tick', b)
    observable.emit('tick', [3])
    observable.off('tick', b) // removing one that is not there is harmless
    assert.deepEqual(calls, ['b2'])
  })

  it('calls a once listener on the next event only', () => {
    const observable = new Observable<Events>()
    const seen: number[] = []
    observable.once('tick', (n) => seen.push(n))
    observable.emit('tick', [1])
    observable.emit('tick', [2])
    assert.deepEqual(seen, [1])
  })

  it('leaves a listener added during an emit for the next emit, and still calls one removed during it', () => {
    const observable = new Observable<Events>()
    const calls: string[] = []
    const late = (n: number) => calls.push(`late${n}`)
    const second = (n: number) => calls.push(`second${n}`)
    observable.on('tick', (n) => {
      calls.push(`first${n}`)
      observable.on('tick', late)
      observable.off('tick', second)
    })
    observable.on('tick', second)
    observable.emit('tick', [1])
    observable.emit('tick', [2])
    assert.deepEqual(calls, ['first1', 'second1', 'first2', 'late2'])
  })

  it('forgets every listener on destroy', () => {
    const observable = new Observable<Events>()
    let calls = 0
    observable.on('tick', () => calls++)
    observable.on('done', () => calls++)
    observable.destroy()
    observable.emit('tick', [1])
    observable.emit('done', [])
    assert.equal(calls, 0)
  })
})
