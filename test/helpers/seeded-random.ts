/**
 * Deterministic random numbers in [0, 1) for tests that must be replayable
 * from a printed seed (mulberry32). One copy for every test: the fault
 * proxy's cut schedule, the fuzzers and the room tests all draw from it, and
 * a seed some test relies on keeps meaning the same run.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
