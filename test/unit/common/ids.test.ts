import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isDocId, newDocId, parseDocId, randomId } from '../../../common/ids'

describe('newDocId', () => {
  it('returns 22 characters of the URL-safe base64 alphabet', () => {
    for (let i = 0; i < 200; i++) {
      const id = newDocId()
      assert.equal(id.length, 22)
      assert.match(id, /^[A-Za-z0-9_-]{22}$/)
      assert.equal(encodeURIComponent(id), id)
    }
  })

  it('returns ids that isDocId accepts', () => {
    for (let i = 0; i < 100; i++) assert.equal(isDocId(newDocId()), true)
  })

  it('returns 1000 distinct ids in 1000 calls', () => {
    const ids = new Set<string>()
    for (let i = 0; i < 1000; i++) ids.add(newDocId())
    assert.equal(ids.size, 1000)
  })

  it('uses more than one character of the alphabet in every position over many ids', () => {
    const ids = Array.from({ length: 200 }, () => newDocId())
    for (let position = 0; position < 22; position++) {
      const seen = new Set(ids.map((id) => id[position]))
      assert.ok(seen.size > 10, `position ${position} only ever held ${[...seen].join('')}`)
    }
  })
})

describe('randomId', () => {
  it('returns the requested number of characters', () => {
    assert.equal(randomId(8).length, 8)
    assert.equal(randomId(0), '')
  })
})

describe('isDocId', () => {
  it('accepts 22 characters from the whole alphabet', () => {
    assert.equal(isDocId('AZaz09_-AZaz09_-AZaz09'), true)
  })

  const rejected: [string, string][] = [
    ['the empty string', ''],
    ['a path traversal', '../x'],
    ['a path traversal padded to 22 characters', '../../../../../../../x'],
    ['21 characters', 'A'.repeat(21)],
    ['23 characters', 'A'.repeat(23)],
    ['a 10 KB string', 'A'.repeat(10 * 1024)],
    ['a percent-encoded NUL', '%00'],
    ['a percent-encoded NUL padded to 22 characters', '%00' + 'A'.repeat(19)],
    ['a raw NUL character', '\u0000' + 'A'.repeat(21)],
    ['a Cyrillic А (U+0410) that looks like a Latin A', 'AAAAAAAAAA\u0410AAAAAAAAAAA'],
    ['a Greek Ο (U+039F) that looks like a Latin O', 'OOOOOOOOOOOOOOOOOOOOO\u039f'],
    ['a fullwidth Ａ (U+FF21)', '\uff21' + 'A'.repeat(21)],
    ['standard base64 "+" and "/"', 'AAAAAAAAAAAAAAAAAAAA+/'],
    ['base64 padding', 'AAAAAAAAAAAAAAAAAAAA=='],
    ['a trailing newline', 'A'.repeat(22) + '\n'],
    ['a leading space', ' ' + 'A'.repeat(21)],
    ['a dot', 'A'.repeat(21) + '.'],
  ]
  for (const [what, value] of rejected) {
    it(`rejects ${what}`, () => {
      assert.equal(isDocId(value), false)
      assert.equal(parseDocId(value), null)
    })
  }

  it('parseDocId returns a well-formed id unchanged', () => {
    const id = newDocId()
    assert.equal(parseDocId(id), id)
  })
})
