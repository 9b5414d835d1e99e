import type { AddressInfo } from 'node:net'
import { memoryStore } from '@recovery-codes/store-memory'
import { runHttpAdapterConformance } from '@recovery-codes/testing'
import express from 'express'
import { recoveryCodesRouter } from '../src/index.ts'

runHttpAdapterConformance({
  name: 'express',
  store: () => memoryStore(),
  mount: async (rc, hooks, options) => {
    const app = express().use('/recovery', recoveryCodesRouter(rc, hooks, options))
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/recovery`
    return {
      fetch: (path, init) => fetch(base + path, init),
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
      mountPath: '/recovery',
    }
  },
})
