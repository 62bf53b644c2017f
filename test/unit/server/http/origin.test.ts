/**
 * The origin rule (server/http/origin.ts) as a pure function: same origin
 * and allow-listed origins pass, other origins and malformed ones do not,
 * and a request without an Origin header (a non-browser client) passes.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { checkOrigin, normaliseOrigin } from '../../../../server/http/origin'
import { ConfigError, loadConfig } from '../../../../server/config'

describe('checkOrigin', () => {
  it('accepts the same origin', () => {
    assert.deepEqual(checkOrigin('http://127.0.0.1:3000', '127.0.0.1:3000', []), { ok: true, kind: 'same-origin' })
    // The default port of the scheme may be spelled or not.
    assert.equal(checkOrigin('https://pad.example', 'pad.example:443', []).ok, true)
    assert.equal(checkOrigin('http://Pad.Example', 'pad.example', []).ok, true)
    // Behind a TLS proxy the request is http while the page is https: hosts decide.
    assert.equal(checkOrigin('https://pad.example', 'pad.example', []).ok, true)
  })

  it('refuses another origin', () => {
    const verdict = checkOrigin('http://evil.example', '127.0.0.1:3000', [])
    assert.equal(verdict.ok, false)
    assert.match(verdict.ok ? '' : verdict.reason, /evil\.example is not allowed/)
    // Same host, other port: another origin.
    assert.equal(checkOrigin('http://127.0.0.1:4000', '127.0.0.1:3000', []).ok, false)
    // No Host to compare with: nothing is same-origin.
    assert.equal(checkOrigin('http://127.0.0.1:3000', undefined, []).ok, false)
  })

  it('accepts an allow-listed origin and says CORS headers are due', () => {
    const allowed = [normaliseOrigin('https://app.example')]
    assert.deepEqual(checkOrigin('https://app.example', 'pad.example', allowed), { ok: true, kind: 'allowed', origin: 'https://app.example' })
    assert.equal(checkOrigin('http://app.example', 'pad.example', allowed).ok, false, 'the scheme is part of the origin')
  })

  it('accepts a request without an Origin header', () => {
    assert.deepEqual(checkOrigin(undefined, '127.0.0.1:3000', []), { ok: true, kind: 'absent' })
  })

  it('refuses a malformed or opaque Origin', () => {
    for (const origin of ['', 'not a url', 'null', 'file:///etc/passwd', 'chrome-extension://abc', 'ws://127.0.0.1:3000']) {
      assert.equal(checkOrigin(origin, '127.0.0.1:3000', []).ok, false, origin)
    }
  })
})

describe('normaliseOrigin', () => {
  it('normalises an origin and rejects what is not one', () => {
    assert.equal(normaliseOrigin(' HTTPS://App.Example:443/ '), 'https://app.example')
    assert.equal(normaliseOrigin('http://localhost:5173'), 'http://localhost:5173')
    for (const entry of ['*', 'app.example', 'ftp://app.example', 'https://app.example/path', 'https://user@app.example']) {
      assert.throws(() => normaliseOrigin(entry), TypeError, entry)
    }
  })
})

describe('ALLOWED_ORIGINS', () => {
  it('parses a comma-separated list, defaults to empty and rejects a wildcard', () => {
    assert.deepEqual(loadConfig([], {}).allowedOrigins, [])
    assert.deepEqual(loadConfig([], { ALLOWED_ORIGINS: 'https://a.example, http://b.example:8080/,' }).allowedOrigins, ['https://a.example', 'http://b.example:8080'])
    assert.deepEqual(loadConfig(['--allowed-origins', 'https://c.example'], { ALLOWED_ORIGINS: 'https://a.example' }).allowedOrigins, ['https://c.example'])
    assert.throws(() => loadConfig([], { ALLOWED_ORIGINS: '*' }), ConfigError)
  })
})
