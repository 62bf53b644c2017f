/**
 * The dependency rules of the architecture (server/README.md), checked by
 * reading every import.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir)).flatMap((name) => {
    const relative = path.join(dir, name)
    if (statSync(path.join(root, relative)).isDirectory()) return sources(relative)
    return name.endsWith('.ts') ? [relative] : []
  })
}

function imports(file: string): string[] {
  const text = readFileSync(path.join(root, file), 'utf8')
  return [...text.matchAll(/^\s*import\s[^'"]*['"]([^'"]+)['"]/gm)].map((match) => {
    const spec = match[1]!
    return spec.startsWith('.') ? path.normalize(path.join(path.dirname(file), spec)) : spec
  })
}

const rules: { from: string; forbidden: RegExp[]; why: string }[] = [
  { from: 'common', forbidden: [/^(client|server)\//, /^node:/, /^(ws|koa|yjs|y-protocols|pino)$/], why: 'common/ is shared by both sides and imports nothing of ours' },
  { from: 'server/comet', forbidden: [/^yjs/, /^y-protocols/, /^server\/rooms/], why: 'the Comet layer moves bytes and knows no documents' },
  { from: 'server/rooms', forbidden: [/^ws$/, /^koa$/, /^server\/comet/], why: 'rooms see only Peers, never transports' },
  { from: 'server/storage', forbidden: [/^server\/rooms/, /^server\/comet/], why: 'storage knows nothing of rooms' },
  { from: 'client/comet', forbidden: [/^yjs/, /^y-protocols/, /^client\/sync/], why: 'the channel moves bytes' },
]

describe('architecture', () => {
  for (const rule of rules) {
    it(`${rule.from}: ${rule.why}`, () => {
      const files = sources(rule.from)
      assert.ok(files.length > 0, `no sources under ${rule.from}`)
      const violations = files.flatMap((file) =>
        imports(file)
          .filter((spec) => rule.forbidden.some((pattern) => pattern.test(spec)))
          .map((spec) => `${file} imports ${spec}`),
      )
      assert.deepEqual(violations, [])
    })
  }
})
