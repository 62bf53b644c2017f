/**
 * The body of the merge thread (see update-merger.ts): one task merges one
 * document's updates, and hands the result back without copying it.
 */
import Piscina from 'piscina'
import { mergeStoredUpdates } from './merge-updates'

export default function merge(updates: Uint8Array[]): unknown {
  const merged = mergeStoredUpdates(updates)
  // A view into a larger buffer (an input, or a pooled one) cannot be transferred alone.
  const own = merged.byteOffset === 0 && merged.byteLength === merged.buffer.byteLength ? merged : merged.slice()
  return Piscina.move(own)
}
