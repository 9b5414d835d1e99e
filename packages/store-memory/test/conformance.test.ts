import { runStoreConformance } from '@recovery-codes/testing'
import { memoryStore } from '../src/index.ts'

runStoreConformance({ name: 'memory', setup: () => memoryStore() })
