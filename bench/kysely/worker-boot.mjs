/**
 * Worker-thread entry for the bench's TypeScript workers: tsx's loader hooks are registered on the
 * main thread only, so a worker registers them itself and then imports `workerData.entry` (.ts).
 */
import { workerData } from 'node:worker_threads'
import { register } from 'tsx/esm/api'

register()
await import(workerData.entry)
