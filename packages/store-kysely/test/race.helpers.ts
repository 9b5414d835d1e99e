import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** A forked worker with a message queue, so a test can await the next message of a type. */
export interface Worker {
  child: ChildProcess
  next(type: string, timeoutMs?: number): Promise<any>
  send(m: unknown): void
}

export async function startWorker(target: unknown): Promise<Worker> {
  const child = fork(WORKER, [JSON.stringify(target)], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const inbox: any[] = []
  const waiters: { type: string; resolve: (m: any) => void }[] = []
  child.on('message', (m: any) => {
    const i = waiters.findIndex((w) => w.type === m.type)
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(m)
    else inbox.push(m)
  })
  const worker: Worker = {
    child,
    send: (m) => child.send(m as never),
    next(type, timeoutMs = 30_000) {
      const i = inbox.findIndex((m) => m.type === type)
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0])
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`worker: no '${type}' within ${timeoutMs} ms`)),
          timeoutMs,
        )
        waiters.push({
          type,
          resolve: (m) => {
            clearTimeout(timer)
            resolve(m)
          },
        })
      })
    },
  }
  // Eight children boot (and transform TypeScript) at once: generous on a loaded 2-core runner.
  await worker.next('up', 120_000)
  return worker
}

export async function stopWorkers(workers: Worker[]): Promise<void> {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve()
          w.child.once('exit', () => resolve())
          w.send({ type: 'exit' })
          setTimeout(() => w.child.kill('SIGKILL'), 5000).unref()
        }),
    ),
  )
}
