import { memoryStore } from '@recovery-codes/store-memory'
import { runHttpAdapterConformance } from '@recovery-codes/testing'
import { Hono } from 'hono'
import { recoveryCodes } from '../src/index.ts'

runHttpAdapterConformance({
  name: 'hono',
  store: () => memoryStore(),
  mount: (rc, hooks, options) => {
    const app = new Hono().route('/recovery', recoveryCodes(rc, hooks, options))
    return {
      fetch: async (path, init) => app.request(`/recovery${path}`, init),
      close: () => {},
      mountPath: '/recovery',
    }
  },
})
