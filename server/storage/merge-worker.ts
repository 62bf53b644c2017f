/**
 * The body of the merge thread (see update-merger.ts): one task merges one
 * document's updates. The result is copied back to the main thread, a
 * memcpy next to the merge itself.
 */
import { mergeStoredUpdates, type MergedState } from './merge-updates'

export default function merge(updates: Uint8Array[]): MergedState {
  return mergeStoredUpdates(updates)
}
