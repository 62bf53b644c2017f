// Runs the test files of the given layers (unit, integration, e2e; all by
// default) with Node's test runner. Node 20's `--test` does not expand
// globs itself, so this finds the files.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const layers = process.argv.slice(2)
const wanted = layers.length > 0 ? layers : ['unit', 'integration', 'e2e']

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name)
    if (statSync(full).isDirectory()) return find(full)
    return name.endsWith('.test.ts') ? [full] : []
  })
}

const files = wanted.flatMap((layer) => find(path.join(root, 'test', layer)).sort())
if (files.length === 0) {
  console.error(`no test files found for ${wanted.join(', ')}`)
  process.exit(1)
}
// One file at a time: integration and browser tests start servers and
// Chromium, and on a two-core machine parallel files only make them flaky.
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=180000', ...files], { stdio: 'inherit', cwd: root })
process.exit(result.status ?? 1)
