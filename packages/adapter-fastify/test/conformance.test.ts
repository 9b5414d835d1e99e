import { memoryStore } from '@recovery-codes/store-memory'
import { runHttpAdapterConformance } from '@recovery-codes/testing'
import Fastify from 'fastify'
import { recoveryCodesFastify } from '../src/index.ts'

runHttpAdapterConformance({
  name: 'fastify',
  store: () => memoryStore(),
  mount: async (rc, hooks, options) => {
    const app = Fastify()
    await app.register(recoveryCodesFastify(rc, hooks, options), { prefix: '/recovery' })
    const base = `${await app.listen({ port: 0, host: '127.0.0.1' })}/recovery`
    return {
      fetch: (path, init) => fetch(base + path, init),
      close: () => app.close(),
      mountPath: '/recovery',
    }
  },
})
