import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { atTurnEnd } from '../../../../server/util/turn-end'

const modulePath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../server/util/turn-end.ts')

describe('atTurnEnd', () => {
  it('runs tasks after the current task, in order, and tasks they add in the same pass', async () => {
    const order: string[] = []
    let immediatesBetween = 0
    atTurnEnd(() => {
      order.push('a')
      atTurnEnd(() => order.push('c: added by a'))
    })
    atTurnEnd(() => order.push('b'))
    order.push('now')
    // An immediate queued after the tasks must see all three done: one pass, not one per task.
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        immediatesBetween = order.length
        resolve()
      }),
    )
    assert.deepEqual(order, ['now', 'a', 'b', 'c: added by a'])
    assert.equal(immediatesBetween, 4)
  })

  it('runs every task when one throws, then rethrows the first error as an uncaught exception', () => {
    // In a child process: the test runner treats an uncaught exception as a failure of its own.
    const script = `
      import { atTurnEnd } from ${JSON.stringify(modulePath)}
      const ran = []
      process.on('uncaughtException', (error) => {
        setImmediate(() => {
          const after = []
          atTurnEnd(() => after.push(1))
          setImmediate(() => setImmediate(() => console.log(JSON.stringify({ ran, error: error.message, after }))))
        })
      })
      atTurnEnd(() => ran.push(1))
      atTurnEnd(() => { throw new Error('first') })
      atTurnEnd(() => { throw new Error('second') })
      atTurnEnd(() => ran.push(4))
    `
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 })
    assert.equal(child.status, 0, child.stderr)
    assert.deepEqual(JSON.parse(child.stdout.trim()), { ran: [1, 4], error: 'first', after: [1] })
  })
})
