import { readFileSync } from 'node:fs'
const [file, name, depth = '6'] = process.argv.slice(2)
const prof = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(prof.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const self = new Map()
for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0))
const stacks = new Map()
for (const [id, t] of self) {
  const n = byId.get(id)
  if (n.callFrame.functionName !== name) continue
  const chain = []
  let p = parent.get(id)
  for (let d = 0; d < Number(depth) && p; d++) { const pn = byId.get(p); chain.push(`${pn.callFrame.functionName || '(anon)'}:${pn.callFrame.lineNumber}`); p = parent.get(p) }
  const k = chain.join(' < ')
  stacks.set(k, (stacks.get(k) ?? 0) + t)
}
for (const [k, t] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log((t / 1000).toFixed(1).padStart(8), 'ms ', k)
