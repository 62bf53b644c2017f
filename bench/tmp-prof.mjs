import { readFileSync } from 'node:fs'
const [file, n = '40', mode = 'fn'] = process.argv.slice(2)
const prof = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(prof.nodes.map((node) => [node.id, node]))
const self = new Map()
const dt = prof.timeDeltas
let total = 0
const counts = new Map()
for (let i = 0; i < prof.samples.length; i++) { counts.set(prof.samples[i], (counts.get(prof.samples[i]) ?? 0) + (dt[i] ?? 0)); total += dt[i] ?? 0 }
for (const [id, t] of counts) {
  const node = byId.get(id)
  const cf = node.callFrame
  let key
  if (mode === 'file') { const u = cf.url || '(native)'; const m = u.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/); key = m ? m[1] : u.replace(/^.*\/work\/main\//, '') }
  else key = `${cf.functionName || '(anon)'} ${cf.url.replace(/^.*\/(node_modules\/)?/, '')}:${cf.lineNumber}`
  self.set(key, (self.get(key) ?? 0) + t)
}
const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(n))
console.log(`total ${(total / 1000).toFixed(0)} ms`)
for (const [k, t] of rows) console.log(`${(t / 1000).toFixed(1).padStart(8)} ms ${(100 * t / total).toFixed(1).padStart(5)}%  ${k}`)
