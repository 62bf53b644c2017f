/**
 * The large documents of the cold-load workload: the real editing trace in
 * ../shared/data/automerge-paper.json.gz, replayed keystroke by keystroke
 * (its README: delete `numDeleted` at `position`, then insert there), and a
 * 1 MiB synthetic text typed in chunks at random places.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import { textName } from './keystrokes'

const here = path.dirname(fileURLToPath(import.meta.url))
/** The shared data folder, next to the project. */
export const tracePath = path.resolve(here, '../../shared/data/automerge-paper.json.gz')

/** A document ready to upload: its full state as one update, and the text length a loader must end up with. */
export interface BenchDocument {
  name: string
  update: Uint8Array
  length: number
  /** Operations it was built from. */
  operations: number
}

interface Trace {
  endContent: string
  txns: Array<{ patches: Array<[number, number, string]> }>
}

/** Replay the editing trace, one transaction per recorded transaction. Throws if the result is not the trace's end content. */
export function traceDocument(file = tracePath): BenchDocument {
  const trace = JSON.parse(gunzipSync(readFileSync(file)).toString('utf8')) as Trace
  const doc = new Y.Doc()
  const text = doc.getText(textName)
  for (const txn of trace.txns) {
    doc.transact(() => {
      for (const [position, deleted, inserted] of txn.patches) {
        if (deleted > 0) text.delete(position, deleted)
        if (inserted) text.insert(position, inserted)
      }
    })
  }
  if (text.toString() !== trace.endContent) throw new Error('replaying the editing trace did not reproduce its endContent')
  const result = { name: 'editing trace (automerge-paper)', update: Y.encodeStateAsUpdate(doc), length: text.length, operations: trace.txns.length }
  doc.destroy()
  return result
}

/** About `bytes` of text typed in 64-character chunks at random positions. */
export function syntheticDocument(bytes = 1024 * 1024): BenchDocument {
  const generator = prng.create(42)
  const random = () => prng.real53(generator)
  const doc = new Y.Doc()
  const text = doc.getText(textName)
  const alphabet = 'abcdefghijklmnopqrstuvwxyz     \n'
  let operations = 0
  while (text.length < bytes) {
    let chunk = ''
    for (let i = 0; i < 64; i++) chunk += alphabet[Math.floor(random() * alphabet.length)]
    text.insert(Math.floor(random() * (text.length + 1)), chunk)
    operations++
  }
  const result = { name: `synthetic ${Math.round(bytes / 1024)} KiB text`, update: Y.encodeStateAsUpdate(doc), length: text.length, operations }
  doc.destroy()
  return result
}
