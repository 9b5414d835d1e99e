import { runServiceConformance } from '@recovery-codes/testing'
import { inspectMemoryStore, memoryStore } from '../src/index.ts'

runServiceConformance({
  name: 'memory',
  setup: () => memoryStore(),
  dump: (store) => inspectMemoryStore(store as never),
})
