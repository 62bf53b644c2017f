// Preloaded into every server the benchmark runs, ours and the peers alike
// (with --expose-gc): on request it runs a full garbage collection, so the
// memory figures count what a server holds for its clients, not garbage it
// has yet to collect, and it answers with the live JS heap after it. (V8's "last-resort" collection would also give back
// heap grown while clients connected, but it shrinks the baseline reading
// as well, so the growth it reports is mostly V8 growing the heap again.)
process.on('message', (message) => {
  if (message !== 'bench:gc') return
  globalThis.gc()
  globalThis.gc()
  process.send({ gcDone: true, heapUsedBytes: process.memoryUsage().heapUsed })
})
// The IPC channel must not keep a server alive once it has shut down.
process.channel?.unref()
