import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { ThrottledLog } from '../../../../server/util/throttled-log'

/** A real pino logger writing JSON lines into an array. */
function capture() {
  const lines: Record<string, unknown>[] = []
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) })
  return { logger, lines }
}

describe('ThrottledLog', () => {
  it('writes at most one warn line per interval, and the next one counts those left out', () => {
    const { logger, lines } = capture()
    let now = 10_000
    const log = new ThrottledLog({ logger, intervalMs: 1_000, now: () => now })
    for (let i = 0; i < 50; i++) log.warn({ peer: 'p', n: i }, 'refused a message')
    assert.equal(lines.length, 1)
    assert.equal(lines[0]?.level, 40, 'warn')
    assert.equal(lines[0]?.n, 0)
    assert.equal(lines[0]?.suppressed, undefined, 'nothing left out before the first line')
    now += 999
    log.warn({ peer: 'p', n: 50 }, 'refused a message')
    assert.equal(lines.length, 1, 'still within the interval')
    now += 1
    log.warn({ peer: 'p', n: 51 }, 'refused a message')
    assert.equal(lines.length, 2)
    assert.equal(lines[1]?.n, 51)
    assert.equal(lines[1]?.suppressed, 50)
  })

  it('flush writes one more line with the count left out since the last, and nothing when none was', () => {
    const { logger, lines } = capture()
    const log = new ThrottledLog({ logger, now: () => 0 })
    log.flush()
    assert.equal(lines.length, 0)
    log.warn({ n: 1 }, 'refused')
    log.warn({ n: 2 }, 'refused')
    log.warn({ n: 3 }, 'refused')
    log.flush()
    assert.equal(lines.length, 2)
    assert.deepEqual([lines[1]?.n, lines[1]?.suppressed, lines[1]?.msg], [3, 2, 'refused'])
    log.flush()
    assert.equal(lines.length, 2, 'a second flush has nothing to add')
  })
})
