// Summarises a V8 CPU profile (.cpuprofile, as BENCH_CPU_PROF and
// BENCH_WORKER_PROF write them) in the terminal, where no flame graph viewer is:
//
//   node bench/profile-summary.mjs <file> [top|packages] [n]   self time by function or by package
//   node bench/profile-summary.mjs <file> callers <function> [depth]   where a function's self time comes from
import { readFileSync } from 'node:fs'

const [file, mode = 'top', arg, depthArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: node bench/profile-summary.mjs <file.cpuprofile> [top [n] | packages [n] | callers <function> [depth]]')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8'))
const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
const parents = new Map()
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id)
const selfMicros = new Map()
let totalMicros = 0
profile.samples.forEach((id, i) => {
  const delta = profile.timeDeltas[i] ?? 0
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + delta)
  totalMicros += delta
})

const label = (node) => `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\//, '')}:${node.callFrame.lineNumber}`
const packageOf = (node) => {
  const url = node.callFrame.url || '(native)'
  return /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? url.replace(/^file:\/\/.*?\/(dist|client|server|common|bench)\//, '$1/')
}
const print = (totals, n) => {
  console.log(`total ${(totalMicros / 1000).toFixed(0)} ms`)
  for (const [key, micros] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`${(micros / 1000).toFixed(1).padStart(9)} ms ${((100 * micros) / totalMicros).toFixed(1).padStart(5)} %  ${key}`)
  }
}
const sum = (keyOf) => {
  const totals = new Map()
  for (const [id, micros] of selfMicros) {
    const key = keyOf(nodes.get(id))
    if (key !== null) totals.set(key, (totals.get(key) ?? 0) + micros)
  }
  return totals
}

if (mode === 'top') print(sum(label), Number(arg ?? 40))
else if (mode === 'packages') print(sum(packageOf), Number(arg ?? 20))
else if (mode === 'callers' && arg) {
  const depth = Number(depthArg ?? 6)
  print(
    sum((node) => {
      if (node.callFrame.functionName !== arg) return null
      const chain = []
      for (let id = parents.get(node.id); id !== undefined && chain.length < depth; id = parents.get(id)) chain.push(label(nodes.get(id)))
      return chain.join(' < ')
    }),
    10,
  )
} else {
  console.error(`unknown mode ${mode}`)
  process.exit(2)
}
