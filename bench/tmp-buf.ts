import * as Y from 'yjs'
import { traceDocument } from './documents'
const { update } = traceDocument()
console.log('bytes', update.length)
const variants: Record<string, () => Uint8Array> = {
  plain: () => update.slice(),
  bufferView: () => { const b = Buffer.from(update); return new Uint8Array(b.buffer, b.byteOffset, b.byteLength) },
  buffer: () => Buffer.from(update),
}
for (let round = 0; round < 3; round++) for (const [name, make] of Object.entries(variants)) {
  const bytes = make()
  const t = performance.now()
  const doc = new Y.Doc(); Y.applyUpdate(doc, bytes)
  console.log(round, name, (performance.now() - t).toFixed(1))
}
