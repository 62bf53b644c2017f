import { runDocStoreSuite } from '../../../conformance/doc-store.suite'
import { MemoryDocStore } from '../../../../server/storage/memory-doc-store'

runDocStoreSuite({
  name: 'MemoryDocStore',
  create: async () => {
    const store = new MemoryDocStore()
    return { store, cleanup: () => store.close() }
  },
})
